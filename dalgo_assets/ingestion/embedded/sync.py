"""One sync of one connection: install, check, discover, read, load, all or nothing.

Every failure becomes a ``SyncError`` naming the organization and connection, with the connector's or
the warehouse's own message, so the run's failure says what to fix and where.

Before reading, each stream's existing table is brought to the types of the connector's catalog
(``Loader.reconcile``); the run's log says, per changed column, from which type to which and whether
it was migrated in place or its table rebuilt (then the stream's state is forgotten and it is read in
full, in this sync).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dalgo_assets.ingestion import StreamResult
from dalgo_assets.ingestion.embedded.loaders import Loader, Reconciled
from dalgo_assets.ingestion.embedded.loading import open_loader
from dalgo_assets.ingestion.embedded.schema import StreamTable, columns_from_schema
from dalgo_assets.ingestion.embedded.state import GLOBAL_KEY, StateTracker, state_input
from dalgo_assets.warehouse import WarehouseResource
from dalgo_core.connectors import changes
from dalgo_core.connectors.calls import connector_policy
from dalgo_core.connectors.config import resolved
from dalgo_core.connectors.install import ConnectorInstallError, ensure_connector
from dalgo_core.connectors.protocol import ConnectorError, ConnectorProcess, LogFn
from dalgo_core.spec import ConnectionSpec, StreamSpec


class SyncError(Exception):
    """A sync that failed, naming the organization and connection."""

    def __init__(self, org: str, connection: str, message: str):
        self.org, self.connection = org, connection
        super().__init__(f"organization '{org}', connection '{connection}': {message}")


def _column_path(path: list[str] | None, columns: set[str]) -> str | None:
    """The warehouse column of a top-level field path (None for nested paths)."""
    if path and len(path) == 1 and path[0].lower() in columns:
        return path[0].lower()
    return None


def plan_stream(spec: StreamSpec, discovered: Mapping[str, Any], schema: str) -> tuple[StreamTable, dict[str, Any]]:
    """The stream's table and its configured-catalog entry, from the spec and discovered defaults."""
    name = spec.name
    modes = discovered.get("supported_sync_modes") or ["full_refresh"]
    if spec.sync_mode not in modes:
        raise ValueError(f"stream '{name}' does not support {spec.sync_mode} (supported: {', '.join(modes)})")
    cursor = spec.cursor_field or discovered.get("default_cursor_field") or []
    if discovered.get("source_defined_cursor"):
        cursor = discovered.get("default_cursor_field") or cursor
    primary_key = spec.primary_key or discovered.get("source_defined_primary_key") or []
    if spec.sync_mode == "incremental" and not cursor:
        raise ValueError(f"stream '{name}' is incremental but has no cursor_field (set one in the spec)")
    columns = columns_from_schema(discovered.get("json_schema") or {})
    names = {c.name for c in columns}
    key_columns = [_column_path(p, names) for p in primary_key]
    table = StreamTable(
        stream=name,
        schema=schema,
        table=name.lower(),
        columns=columns,
        sync_mode=spec.sync_mode,
        primary_key=tuple(k for k in key_columns if k) if all(key_columns) else (),
        cursor=_column_path(cursor, names),
    )
    incremental_mode = "append_dedup" if primary_key else "append"
    destination_mode = "overwrite" if spec.sync_mode == "full_refresh" else incremental_mode
    entry: dict[str, Any] = {
        "stream": dict(discovered),
        "sync_mode": spec.sync_mode,
        "destination_sync_mode": destination_mode,
    }
    if cursor:
        entry["cursor_field"] = list(cursor)
    if primary_key:
        entry["primary_key"] = [list(p) for p in primary_key]
    return table, entry


class ConnectionSync:
    """Runs one connection's sync for the selected streams into the organization's warehouse."""

    def __init__(
        self,
        org: str,
        connection: ConnectionSpec,
        warehouse: WarehouseResource,
        *,
        connectors_root: str | None = None,
        log: LogFn,
        note: LogFn | None = None,
        report: Callable[[changes.Outcome], None] | None = None,
    ):
        self.org = org
        self.connection = connection
        self.warehouse = warehouse
        self.connectors_root = connectors_root
        self.log = log  # the connector's messages
        self.note = note or log  # the platform's own (schema changes)
        self.report = report  # the outcome of the schema change policy, per stream (changes.observations)

    def error(self, message: str) -> SyncError:
        return SyncError(self.org, self.connection.name, message)

    def run(self, streams: list[str]) -> list[StreamResult]:
        conn, connector = self.connection, self.connection.source.connector
        try:
            config = resolved(self.org, conn.source)
        except LookupError as exc:
            raise self.error(f"secret for {connector}: {exc}") from None
        workdir = Path(tempfile.mkdtemp(prefix="dalgo-sync-"))
        try:
            with contextlib.ExitStack() as stack:
                try:
                    loader = stack.enter_context(open_loader(self.warehouse, workdir))
                except Exception as exc:
                    raise self.error(f"the {self.warehouse.type} warehouse is unreachable: {exc}") from None
                return self._sync(loader, config, streams)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _sync(self, loader: Loader, config: dict[str, Any], streams: list[str]) -> list[StreamResult]:
        conn, connector = self.connection, self.connection.source.connector
        try:
            executable = ensure_connector(connector, conn.source.version, self.connectors_root, conn.source.package)
        except ConnectorInstallError as exc:
            raise self.error(f"cannot install connector {connector}: {exc}") from None
        with ConnectorProcess(executable, config, connector_policy(self.org), self.log) as proc:
            proc.start_discover()
            try:
                proc.check()
            except ConnectorError as exc:
                raise self.error(f"{connector} check failed: {exc}") from None
            try:
                catalog = proc.discover()
            except ConnectorError as exc:
                raise self.error(f"{connector} discover failed: {exc}") from None
            catalog, streams = self._schema_changes(catalog, streams)
            tables, entries = self._plan(catalog, streams)
            try:
                saved = loader.load_state(conn.destination_schema, self.org, conn.name)
            except Exception as exc:
                raise self.error(f"reading the saved state failed: {exc}") from None
            self._reconcile(loader, tables, saved)
            incremental = [t.stream for t in tables if t.sync_mode == "incremental"]
            counts = self._read(proc, loader, tables, entries, state_input(saved, incremental) or None)
            return self._commit(loader, tables, counts, incremental)

    def _schema_changes(self, catalog: dict[str, Any], streams: list[str]) -> tuple[dict[str, Any], list[str]]:
        """Compare the discovered catalog with the applied one and follow the connection's policy
        (``dalgo_core.connectors.changes``): the catalog to load with, and the streams to sync."""
        try:
            outcome = changes.follow_policy(self.org, self.connection, catalog, self.note, self.report)
        except changes.SchemaChangesHeld as exc:
            raise self.error(str(exc)) from None
        loading = {
            name: {**stream, "json_schema": outcome.applied.streams.get(name, stream.get("json_schema") or {})}
            for name, stream in catalog.items()
        }
        return loading, [s for s in streams if s not in outcome.skipped]

    def _plan(self, catalog: dict[str, Any], streams: list[str]) -> tuple[list[StreamTable], list[dict[str, Any]]]:
        missing = [s for s in streams if s not in catalog]
        if missing:
            raise self.error(
                f"{self.connection.source.connector} has no stream {', '.join(repr(s) for s in missing)} "
                f"(available: {', '.join(sorted(catalog)) or 'none'})"
            )
        tables, entries = [], []
        for spec in self.connection.streams:
            if spec.name in streams:
                try:
                    table, entry = plan_stream(spec, catalog[spec.name], self.connection.destination_schema)
                except ValueError as exc:
                    raise self.error(str(exc)) from None
                tables.append(table)
                entries.append(entry)
        return tables, entries

    def _reconcile(self, loader: Loader, tables: list[StreamTable], saved: dict[str, str]) -> None:
        """Bring every existing table to the catalog's column types; a rebuilt stream's state goes (from
        the warehouse, in the sync's transaction, and from this read's input)."""
        conn = self.connection
        for table in tables:
            try:
                done = loader.reconcile(table)
                if done.rebuilt:
                    for stream in (table.stream, GLOBAL_KEY):
                        loader.forget_state(conn.destination_schema, self.org, conn.name, stream)
            except Exception as exc:
                raise self.error(
                    f"changing the column types of {table.schema}.{table.table} in {self.warehouse.type} failed: {exc}"
                ) from None
            self._log_changes(table, done)
            if done.rebuilt:
                saved.pop(table.stream, None)
                if saved.pop(GLOBAL_KEY, None) is not None:
                    self.note(
                        "warning",
                        f"the connection-wide state is dropped too: every stream of {conn.name} is read in full",
                    )

    def _log_changes(self, table: StreamTable, done: Reconciled) -> None:
        where = f"{table.schema}.{table.table}"
        for change in done.changes:
            what = f"table {where}: column '{change.column}' changed type from {change.old} to {change.new}"
            if done.rebuilt:
                self.note(
                    "warning",
                    f"{what}: its values cannot be cast ({done.reason}); the table is rebuilt: dropped, "
                    f"created with the new types, its state dropped, and stream '{table.stream}' synced in full",
                )
            else:
                self.note("info", f"{what}: migrated in place (ALTER COLUMN ... TYPE, existing values cast)")

    def _read(
        self,
        proc: ConnectorProcess,
        loader: Loader,
        tables: list[StreamTable],
        entries: list[dict[str, Any]],
        state: list[Any] | None,
    ) -> tuple[dict[str, int], StateTracker]:
        """Stream the connector's records into the staging tables; return counts and final states."""
        connector = self.connection.source.connector
        try:
            writers = {}
            for table in tables:
                sink, row = loader.begin_stream(table), loader.row_builder(table).row
                writers[table.stream] = (sink, row)
        except Exception as exc:
            raise self.error(f"preparing the tables in {self.warehouse.type} failed: {exc}") from None
        counts = dict.fromkeys(writers, 0)
        tracker = StateTracker()
        try:
            for msg in proc.read({"streams": entries}, state):
                if msg["type"] == "RECORD":
                    record = msg["record"]
                    writer = writers.get(record.get("stream"))
                    if writer is not None:
                        writer[0](writer[1](record.get("data") or {}, record.get("emitted_at")))
                        counts[record["stream"]] += 1
                else:
                    tracker.observe(msg)
        except ConnectorError as exc:
            raise self.error(f"{connector} read failed: {exc}") from None
        except SyncError:
            raise
        except Exception as exc:
            raise self.error(f"loading {connector} records into {self.warehouse.type} failed: {exc}") from None
        return counts, tracker

    def _commit(
        self,
        loader: Loader,
        tables: list[StreamTable],
        read: tuple[dict[str, int], StateTracker],
        incremental: list[str],
    ) -> list[StreamResult]:
        counts, tracker = read
        conn = self.connection
        try:
            for table in tables:
                loader.finish_stream(table)
            for stream, state in tracker.serialized(incremental).items():
                loader.save_state(conn.destination_schema, self.org, conn.name, stream, state)
            loader.commit()
        except Exception as exc:
            raise self.error(f"loading into {self.warehouse.type} failed: {exc}") from None
        return [StreamResult(t.stream, f"{t.schema}.{t.table}", t.sync_mode, counts[t.stream]) for t in tables]
