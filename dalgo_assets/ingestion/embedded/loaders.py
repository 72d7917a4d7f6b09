"""Loading a sync's records into the organization's warehouse, in one transaction per sync.

Rows are staged per stream while the connector reads (PostgreSQL: psycopg COPY into a temporary
table; DuckDB: a newline-delimited JSON file read natively by ``read_json``; BigQuery: see
``bigquery.py``), then moved into the final tables and the connector state saved in the same
transaction (``sql.py``). A failure anywhere rolls it all back, so the previous sync's rows and state
stay as they were.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from dalgo_assets.ingestion.embedded import sql
from dalgo_assets.ingestion.embedded.schema import RowBuilder, StreamTable
from dalgo_assets.warehouse import WarehouseResource

RowSink = Callable[[list[Any]], None]


class Loader(ABC):
    """One sync's writes to a warehouse: staging, moving into final tables, and state."""

    dialect: sql.Dialect
    json_as_text = False

    def row_builder(self, table: StreamTable) -> RowBuilder:
        return RowBuilder(table, json_as_text=self.json_as_text)

    @abstractmethod
    def load_state(self, schema: str, org: str, connection: str) -> dict[str, str]:
        """Saved connector states by stream (GLOBAL_KEY for connection-wide state)."""

    @abstractmethod
    def begin_stream(self, table: StreamTable) -> RowSink:
        """Prepare the stream's final and staging tables; return where its rows go."""

    @abstractmethod
    def finish_stream(self, table: StreamTable) -> None:
        """Queue the move of the staged rows into the final table (done at commit or before)."""

    @abstractmethod
    def save_state(self, schema: str, org: str, connection: str, stream: str, state: str) -> None: ...

    @abstractmethod
    def commit(self) -> None: ...


class SqlLoader(Loader):
    """DuckDB and PostgreSQL: a DB-API connection in one open transaction for the whole sync."""

    def __init__(self, conn: Any, dialect: sql.Dialect, workdir: Path):
        self.conn = conn
        self.dialect = dialect
        self.workdir = workdir
        self._schemas: set[str] = set()

    def execute(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cur = self.conn.execute(statement, params)
        try:
            return list(cur.fetchall())
        except Exception:  # statements without a result set
            return []

    def begin(self) -> None:
        """Open the sync's transaction (psycopg opens one implicitly)."""

    def _ensure_schema(self, schema: str) -> None:
        if schema not in self._schemas:
            self.execute(f"create schema if not exists {self.dialect.quote(schema)}")
            self.execute(sql.create_state_table(self.dialect, schema))
            self._schemas.add(schema)

    def staging_name(self, table: StreamTable) -> str:
        return self.dialect.quote(sql.STAGING_PREFIX + table.table)

    def load_state(self, schema: str, org: str, connection: str) -> dict[str, str]:
        self._ensure_schema(schema)
        return dict(self.execute(sql.select_state(self.dialect, schema), (org, connection)))

    def begin_stream(self, table: StreamTable) -> RowSink:
        self._ensure_schema(table.schema)
        for statement in sql.create_final_table(self.dialect, table):
            self.execute(statement)
        staging = self.staging_name(table)
        self.execute(f"drop table if exists {staging}")
        cols = ", ".join(self.dialect.quote(c) for c in table.column_names)
        final = self.dialect.table(table.schema, table.table)
        self.execute(f"create temp table {staging} as select {cols} from {final} where 1 = 0")
        return self.sink(table)

    @abstractmethod
    def sink(self, table: StreamTable) -> RowSink: ...

    @abstractmethod
    def flush(self, table: StreamTable) -> None:
        """Make every row written so far visible in the staging table."""

    def finish_stream(self, table: StreamTable) -> None:
        self.flush(table)
        staging = self.staging_name(table)
        for statement in sql.merge_statements(self.dialect, table, staging):
            self.execute(statement)
        self.execute(f"drop table {staging}")

    def save_state(self, schema: str, org: str, connection: str, stream: str, state: str) -> None:
        delete, insert = sql.save_state(self.dialect, schema)
        self.execute(delete, (org, connection, stream))
        self.execute(insert, (org, connection, stream, state))

    def commit(self) -> None:
        self.conn.commit()

    def abort(self) -> None:
        """Roll the sync's transaction back: the previous sync's rows and state stay."""
        self.conn.rollback()


class PostgresLoader(SqlLoader):
    """COPY into temporary staging tables: one COPY open at a time, switched when the stream changes."""

    json_as_text = True

    def __init__(self, conn: Any, workdir: Path):
        super().__init__(conn, sql.POSTGRES, workdir)
        self._copy_stack = contextlib.ExitStack()
        self._copying: str | None = None

    def _ensure_schema(self, schema: str) -> None:
        """Create the schema and the state table once, committed before the sync's own transaction
        starts, under an advisory lock: first syncs of several connections into one schema, at once,
        would otherwise race on PostgreSQL's catalog (``duplicate key ... pg_type_typname_nsp_index``).
        A sync ensures its schema before it writes anything (``load_state`` comes first)."""
        if schema in self._schemas:
            return
        self.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"dalgo-schema:{schema}",))
        super()._ensure_schema(schema)
        self.conn.commit()

    def _close_copy(self) -> None:
        self._copy_stack.close()
        self._copying = None

    def sink(self, table: StreamTable) -> RowSink:
        cols = ", ".join(self.dialect.quote(c) for c in table.column_names)
        statement = f"copy {self.staging_name(table)} ({cols}) from stdin"
        state: dict[str, Any] = {}

        def write(row: list[Any]) -> None:
            if self._copying != table.stream:
                self._close_copy()
                cur = self._copy_stack.enter_context(self.conn.cursor())
                state["copy"] = self._copy_stack.enter_context(cur.copy(statement))
                self._copying = table.stream
            state["copy"].write_row(row)

        return write

    def flush(self, table: StreamTable) -> None:
        self._close_copy()

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # a broken connection cannot finish its COPY
            self._close_copy()
        super().abort()

    def execute(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self._copying is not None:
            self._close_copy()
        with self.conn.cursor() as cur:
            cur.execute(statement, params or None)
            return list(cur.fetchall()) if cur.description else []


class DuckDBLoader(SqlLoader):
    """Rows spooled to newline-delimited JSON, then read natively into the staging table."""

    def __init__(self, conn: Any, workdir: Path):
        super().__init__(conn, sql.DUCKDB, workdir)
        self._files: dict[str, Any] = {}

    def begin(self) -> None:
        self.conn.execute("begin transaction")

    def _path(self, table: StreamTable) -> Path:
        return self.workdir / f"{table.table}.ndjson"

    def sink(self, table: StreamTable) -> RowSink:
        handle = open(self._path(table), "wb", buffering=1 << 20)  # noqa: SIM115 (closed in flush)
        self._files[table.stream] = handle
        names = table.column_names
        dumps, write = orjson.dumps, handle.write

        def sink(row: list[Any]) -> None:
            write(dumps(dict(zip(names, row, strict=True))))
            write(b"\n")

        return sink

    def abort(self) -> None:
        for handle in self._files.values():
            handle.close()
        super().abort()

    def flush(self, table: StreamTable) -> None:
        self._files.pop(table.stream).close()
        path = self._path(table)
        if os.path.getsize(path) == 0:
            return
        d = self.dialect
        types = ", ".join(
            "'{}': '{}'".format(n.replace("'", "''"), d.types[k])
            for n, k in zip(table.column_names, table.kinds, strict=True)
        )
        cols = ", ".join(d.quote(c) for c in table.column_names)
        self.execute(
            f"insert into {self.staging_name(table)} ({cols}) select {cols} from read_json({d.param}, "
            f"format = 'newline_delimited', columns = {{{types}}})",
            (str(path),),
        )
        path.unlink()


@contextlib.contextmanager
def open_loader(warehouse: WarehouseResource, workdir: Path) -> Iterator[Loader]:
    """A loader for the organization's warehouse, inside the sync's transaction."""
    if warehouse.type == "bigquery":
        from dalgo_assets.ingestion.embedded.bigquery import BigQueryLoader

        with BigQueryLoader.open(warehouse, workdir) as bq:
            yield bq
        return
    with warehouse.connect(workdir) as conn:
        loader: SqlLoader = DuckDBLoader(conn, workdir) if warehouse.type == "duckdb" else PostgresLoader(conn, workdir)
        loader.begin()
        try:
            yield loader
        except BaseException:
            with contextlib.suppress(Exception):
                loader.abort()
            raise
