"""Loading a sync's records into the organization's warehouse, in one transaction per sync.

Rows are staged per stream while the connector reads (PostgreSQL: psycopg COPY into a temporary
table; DuckDB: a newline-delimited JSON file read natively by ``read_json``; BigQuery: see
``bigquery.py``), then moved into the final tables and the connector state saved in the same
transaction (``sql.py``). A failure anywhere rolls it all back, so the previous sync's rows and state
stay as they were.

Before a stream's rows are staged, its table is reconciled with the connector's catalog
(``Loader.reconcile``): a column whose type changed is migrated in place when the warehouse can cast
every existing value, else the table is rebuilt (dropped and created again; the sync then forgets the
stream's state and reads it in full). On PostgreSQL, the views built on the table (dbt's) are dropped
and created again from their own definitions around the change, in the same transaction (their grants
and comments are not kept); a view that no longer builds on the new types fails the sync, naming it.
``drop_stream`` is a reset: the stream's table and its state, gone.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from dalgo_assets.ingestion.embedded import sql
from dalgo_assets.ingestion.embedded.schema import RowBuilder, StreamTable

RowSink = Callable[[list[Any]], None]


@dataclass(frozen=True)
class Reconciled:
    """What ``Loader.reconcile`` did to a stream's existing table."""

    changes: list[sql.TypeChange] = field(default_factory=list)
    rebuilt: bool = False  # dropped and created again: the stream must be read in full
    reason: str = ""  # why the existing values could not be migrated (when rebuilt)


class SchemaChangeError(Exception):
    """A column type change that neither a migration nor a rebuild can apply (a view that no longer builds)."""


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
    def reconcile(self, table: StreamTable) -> Reconciled:
        """Bring the stream's existing table to the catalog's column types (before ``begin_stream``)."""

    @abstractmethod
    def forget_state(self, schema: str, org: str, connection: str, stream: str) -> bool:
        """Delete one stream's saved state (True if there was one)."""

    @abstractmethod
    def drop_stream(self, schema: str, table: str) -> list[str]:
        """Drop a stream's table (a reset): what was dropped, the table first; empty if it did not exist."""

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

    def columns(self, schema: str, table: str) -> dict[str, str]:
        """The table's columns and their types as the warehouse reports them (empty: no such table)."""
        return dict(self.execute(sql.existing_columns(self.dialect), (schema, table)))

    def dependent_views(self, schema: str, table: str) -> list[tuple[str, str, str]]:
        """(qualified name, ``view`` or ``materialized view``, definition) of every view built on the
        table, directly or through other views, in an order they can be created in. Empty on DuckDB,
        which binds a view when it is read: its views stand through any change of the table."""
        return []

    def _drop_views(self, views: list[tuple[str, str, str]]) -> None:
        for name, kind, _ in reversed(views):
            self.execute(f"drop {kind} if exists {name}")

    def _create_views(self, views: list[tuple[str, str, str]]) -> None:
        for name, kind, definition in views:
            try:
                self.execute(f"create {kind} {name} as {definition}")
            except Exception as exc:
                raise SchemaChangeError(
                    f"{kind} {name}, built on the table, does not build on the new column types: {exc}"
                ) from None

    def reconcile(self, table: StreamTable) -> Reconciled:
        changes = sql.type_changes(self.dialect, table, self.columns(table.schema, table.table))
        if not changes:
            return Reconciled()
        views = self.dependent_views(table.schema, table.table)
        self._drop_views(views)
        reason = self.migrate(table, changes)
        if reason is not None:
            self.rebuild(table)
        self._create_views(views)
        return Reconciled(changes, rebuilt=reason is not None, reason=reason or "")

    @abstractmethod
    def migrate(self, table: StreamTable, changes: list[sql.TypeChange]) -> str | None:
        """Change the columns' types in place, casting the values; None when done, else why it cannot be
        (nothing changed then)."""

    def rebuild(self, table: StreamTable) -> None:
        self.execute(sql.drop_table(self.dialect, table.schema, table.table))
        for statement in sql.create_final_table(self.dialect, table):
            self.execute(statement)

    def forget_state(self, schema: str, org: str, connection: str, stream: str) -> bool:
        if not self.columns(schema, sql.STATE_TABLE):
            return False
        return bool(self.execute(sql.delete_state(self.dialect, schema) + " returning 1", (org, connection, stream)))

    def drop_stream(self, schema: str, table: str) -> list[str]:
        """A reset drops the views built on the table with it (dbt creates them again at its next build)."""
        if not self.columns(schema, table):
            return []
        views = [name for name, _, _ in self.dependent_views(schema, table)]
        self.execute(sql.drop_table(self.dialect, schema, table, cascade=bool(views)))
        return [f"{schema}.{table}", *views]

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
    """COPY into temporary staging tables: one COPY open at a time, switched when the stream changes.
    A type change runs under a savepoint, with the table's dependent views set aside."""

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

    def dependent_views(self, schema: str, table: str) -> list[tuple[str, str, str]]:
        return [
            (name, kind, definition)
            for name, kind, definition, _ in self.execute(DEPENDENT_VIEWS, (self.dialect.table(schema, table),))
        ]

    def migrate(self, table: StreamTable, changes: list[sql.TypeChange]) -> str | None:
        self.execute("savepoint dalgo_migrate")
        for change in changes:
            try:
                self.execute(sql.alter_column_type(self.dialect, table, change))
            except Exception as exc:
                self.execute("rollback to savepoint dalgo_migrate")
                return f"{change.column}: {str(exc).splitlines()[0]}"
        self.execute("release savepoint dalgo_migrate")
        return None

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

    def migrate(self, table: StreamTable, changes: list[sql.TypeChange]) -> str | None:
        """DuckDB has no savepoints, and a failed statement aborts the sync's transaction: every value is
        checked with ``try_cast`` first. (Views need nothing: DuckDB binds them when they are read.)"""
        for change in changes:
            (bad,) = self.execute(sql.uncastable_values(self.dialect, table, change))[0]
            if bad:
                return f"{bad} value{'s' if bad > 1 else ''} of {change.column} cannot be cast to {change.new}"
        for change in changes:
            self.execute(sql.alter_column_type(self.dialect, table, change))
        return None

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


DEPENDENT_VIEWS = """
with recursive dependents(oid, depth) as (
    select r.ev_class, 1 from pg_depend d join pg_rewrite r on r.oid = d.objid
    where d.classid = 'pg_rewrite'::regclass and d.refobjid = %s::regclass and r.ev_class <> d.refobjid
  union all
    select r.ev_class, dependents.depth + 1 from dependents
    join pg_depend d on d.refobjid = dependents.oid and d.classid = 'pg_rewrite'::regclass
    join pg_rewrite r on r.oid = d.objid
    where r.ev_class <> dependents.oid and dependents.depth < 50
)
select format('%%I.%%I', n.nspname, c.relname),
       case c.relkind when 'm' then 'materialized view' else 'view' end,
       pg_get_viewdef(c.oid), max(dependents.depth) as depth
from dependents join pg_class c on c.oid = dependents.oid join pg_namespace n on n.oid = c.relnamespace
group by n.nspname, c.relname, c.relkind, c.oid
order by depth, 1
"""
