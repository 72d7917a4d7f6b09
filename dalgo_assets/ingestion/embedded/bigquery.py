"""BigQuery: rows spooled as newline-delimited JSON, load jobs into staging tables, then one script.

The load jobs write ``<dataset>._dalgo_stg_<table>`` (truncating it); at commit one multi-statement
script moves every stream's rows into its final table and saves the connector state inside
``BEGIN TRANSACTION ... COMMIT TRANSACTION``, so a failure leaves the previous sync's rows and state.
The ``destination_schema`` is the dataset. A column whose type changed is migrated in place only where
BigQuery's ALTER allows it (a wider numeric type), else the table is rebuilt: the DDL, run before the
script, drops and creates it, and the stream's state is deleted at once (BigQuery's DDL is outside the
transaction: a failed sync then finds no state and reads the stream in full, into the rebuilt table).
(Not exercised on this machine: BigQuery needs Google's network; the SQL and schemas are unit-tested.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from dalgo_assets.ingestion.embedded import sql
from dalgo_assets.ingestion.embedded.loaders import Loader, Reconciled, RowSink
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

    def columns(self, schema: str, table: str) -> dict[str, str]:
        statement = (
            f"select column_name, data_type from `{self.project}.{schema}`.INFORMATION_SCHEMA.COLUMNS "
            "where table_name = ?"
        )
        return dict(self.query(_inline(statement, (table,))))

    def reconcile(self, table: StreamTable) -> Reconciled:
        changes = sql.type_changes(self.dialect, table, self.columns(table.schema, table.table))
        ddl, rebuilt = reconcile_ddl(table, changes)
        self._ddl += ddl
        if rebuilt:
            narrow = ", ".join(f"{c.column}" for c in changes if not sql.can_alter_in_place(self.dialect, c))
            return Reconciled(
                changes, rebuilt=True, reason=f"BigQuery changes the type of {narrow} in place only to a wider number"
            )
        return Reconciled(changes)

    def forget_state(self, schema: str, org: str, connection: str, stream: str) -> bool:
        if not self.columns(schema, sql.STATE_TABLE):
            return False
        self.query(_inline(sql.delete_state(self.dialect, schema), (org, connection, stream)))
        return True

    def drop_stream(self, schema: str, table: str) -> list[str]:
        if not self.columns(schema, table):
            return []
        self.query(sql.drop_table(self.dialect, schema, table))
        return [f"{schema}.{table}"]

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


def reconcile_ddl(table: StreamTable, changes: list[sql.TypeChange]) -> tuple[list[str], bool]:
    """The DDL that brings the table to the catalog's types, and whether it rebuilds the table (the
    ``create_final_table`` statements that follow create it again)."""
    if not changes:
        return [], False
    if all(sql.can_alter_in_place(sql.BIGQUERY, c) for c in changes):
        return [sql.alter_column_type(sql.BIGQUERY, table, c) for c in changes], False
    return [sql.drop_table(sql.BIGQUERY, table.schema, table.table)], True


def commit_script(statements: list[str]) -> str:
    """One BigQuery transaction: every stream's rows and the connector state, or nothing."""
    return ";\n".join(["BEGIN TRANSACTION", *statements, "COMMIT TRANSACTION"]) + ";"
