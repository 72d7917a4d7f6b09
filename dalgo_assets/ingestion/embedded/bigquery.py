"""BigQuery: rows spooled as newline-delimited JSON, load jobs into staging tables, then one script.

The load jobs write ``<dataset>._dalgo_stg_<table>`` (truncating it); at commit one multi-statement
script moves every stream's rows into its final table and saves the connector state inside
``BEGIN TRANSACTION ... COMMIT TRANSACTION``, so a failure leaves the previous sync's rows and state.
The ``destination_schema`` is the dataset. (Not exercised on this machine: BigQuery needs Google's
network; the SQL and schemas are unit-tested.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from dalgo_assets.ingestion.embedded import sql
from dalgo_assets.ingestion.embedded.loaders import Loader, RowSink
from dalgo_assets.ingestion.embedded.schema import StreamTable
from dalgo_assets.warehouse import WarehouseResource


def bigquery_schema(table: StreamTable) -> list[tuple[str, str]]:
    """(column, BigQuery type) of the stream's table, for load jobs and DDL."""
    return [(n, sql.BIGQUERY.types[k]) for n, k in zip(table.column_names, table.kinds, strict=True)]


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def _inline(statement: str, params: tuple[str, ...]) -> str:
    """BigQuery scripts take positional parameters poorly: inline string literals instead."""
    for value in params:
        statement = statement.replace("?", _literal(value), 1)
    return statement


class BigQueryLoader(Loader):
    dialect = sql.BIGQUERY

    def __init__(self, client: Any, project: str, workdir: Path):
        self.client = client
        self.project = project
        self.workdir = workdir
        self._files: dict[str, Any] = {}
        self._ddl: list[str] = []
        self._script: list[str] = []
        self._staging: list[str] = []

    @classmethod
    @contextlib.contextmanager
    def open(cls, warehouse: WarehouseResource, workdir: Path) -> Iterator[BigQueryLoader]:
        with warehouse.secret_environment():
            from google.cloud import bigquery

            client = bigquery.Client(project=warehouse.project, location=warehouse.location)
            loader = cls(client, str(warehouse.project), workdir)
            try:
                yield loader
            finally:
                loader.drop_staging()
                client.close()

    def query(self, statement: str) -> list[tuple[Any, ...]]:
        return [tuple(row.values()) for row in self.client.query(statement).result()]

    def load_state(self, schema: str, org: str, connection: str) -> dict[str, str]:
        self.query(f"create schema if not exists {self.dialect.quote(schema)}")
        self.query(sql.create_state_table(self.dialect, schema))
        return dict(self.query(_inline(sql.select_state(self.dialect, schema), (org, connection))))

    def _path(self, table: StreamTable) -> Path:
        return self.workdir / f"{table.table}.ndjson"

    def begin_stream(self, table: StreamTable) -> RowSink:
        self._ddl += sql.create_final_table(self.dialect, table)
        handle = open(self._path(table), "wb", buffering=1 << 20)  # noqa: SIM115 (closed in finish_stream)
        self._files[table.stream] = handle
        names = table.column_names

        def sink(row: list[Any]) -> None:
            handle.write(orjson.dumps(dict(zip(names, row, strict=True))) + b"\n")

        return sink

    def finish_stream(self, table: StreamTable) -> None:
        from google.cloud import bigquery

        self._files.pop(table.stream).close()
        staging = f"{self.project}.{table.schema}.{sql.STAGING_PREFIX}{table.table}"
        job_config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            schema=[bigquery.SchemaField(n, t) for n, t in bigquery_schema(table)],
        )
        with open(self._path(table), "rb") as handle:
            self.client.load_table_from_file(handle, staging, job_config=job_config).result()
        self._staging.append(staging)
        self._script += sql.merge_statements(self.dialect, table, f"`{staging}`")

    def save_state(self, schema: str, org: str, connection: str, stream: str, state: str) -> None:
        delete, insert = sql.save_state(self.dialect, schema)
        self._script += [
            _inline(delete, (org, connection, stream)),
            _inline(insert, (org, connection, stream, state)),
        ]

    def commit(self) -> None:
        for statement in self._ddl:
            self.query(statement)
        self.query(commit_script(self._script))

    def drop_staging(self) -> None:
        for staging in self._staging:
            self.client.delete_table(staging, not_found_ok=True)


def commit_script(statements: list[str]) -> str:
    """One BigQuery transaction: every stream's rows and the connector state, or nothing."""
    return ";\n".join(["BEGIN TRANSACTION", *statements, "COMMIT TRANSACTION"]) + ";"
