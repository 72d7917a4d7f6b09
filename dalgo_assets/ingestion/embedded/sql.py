"""The SQL that moves a sync's staged rows into its final tables, for every warehouse dialect.

Kept as text builders (no connection) so the same statements serve DuckDB, PostgreSQL and BigQuery
and can be checked without a warehouse. Full refresh replaces a table's rows (delete + insert in the
sync's transaction: readers see the old rows or the new, never none, and views that dbt built on the
table stay valid); incremental with a primary key keeps the latest record per key by cursor (then by
extraction time); incremental without a key appends.

A column whose type in the connector's catalog differs from the table's (``type_changes``) is migrated
in place (``alter_column_type``: the existing values cast) where the warehouse can cast them, else the
stream's table is rebuilt (``drop_table``, its state deleted, the stream read in full).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dalgo_assets.ingestion.embedded.schema import (
    BOOLEAN,
    DATE,
    EXTRACTED_AT,
    INTEGER,
    JSON,
    NUMBER,
    STRING,
    TIMESTAMP,
    TIMESTAMP_TZ,
    StreamTable,
)

STATE_TABLE = "_dalgo_airbyte_state"
STAGING_PREFIX = "_dalgo_stg_"


@dataclass(frozen=True)
class Dialect:
    name: str
    types: dict[str, str]
    quote_char: str = '"'
    param: str = "%s"  # placeholder of the driver
    text_type: str = "varchar"
    timestamp_type: str = "timestamp"
    extra: dict[str, str] = field(default_factory=dict)
    # how the warehouse's information schema names a kind's type, where it differs from ``types``
    reported: dict[str, str] = field(default_factory=dict)

    def quote(self, name: str) -> str:
        q = self.quote_char
        return q + name.replace(q, q + q) + q

    def table(self, schema: str, table: str) -> str:
        return f"{self.quote(schema)}.{self.quote(table)}"


DUCKDB = Dialect(
    "duckdb",
    {
        INTEGER: "BIGINT",
        NUMBER: "DOUBLE",
        BOOLEAN: "BOOLEAN",
        STRING: "VARCHAR",
        TIMESTAMP_TZ: "TIMESTAMPTZ",
        TIMESTAMP: "TIMESTAMP",
        DATE: "DATE",
        JSON: "JSON",
    },
    param="?",
    reported={TIMESTAMP_TZ: "TIMESTAMP WITH TIME ZONE"},
)
POSTGRES = Dialect(
    "postgres",
    {
        INTEGER: "bigint",
        NUMBER: "numeric",
        BOOLEAN: "boolean",
        STRING: "text",
        TIMESTAMP_TZ: "timestamptz",
        TIMESTAMP: "timestamp",
        DATE: "date",
        JSON: "jsonb",
    },
    text_type="text",
    reported={TIMESTAMP_TZ: "timestamp with time zone", TIMESTAMP: "timestamp without time zone"},
)
BIGQUERY = Dialect(
    "bigquery",
    {
        INTEGER: "INT64",
        NUMBER: "FLOAT64",
        BOOLEAN: "BOOL",
        STRING: "STRING",
        TIMESTAMP_TZ: "TIMESTAMP",
        TIMESTAMP: "DATETIME",
        DATE: "DATE",
        JSON: "JSON",
    },
    quote_char="`",
    param="?",
    text_type="STRING",
    timestamp_type="TIMESTAMP",
)


def _cols(d: Dialect, names: list[str], prefix: str = "") -> str:
    return ", ".join(prefix + d.quote(n) for n in names)


def create_final_table(d: Dialect, t: StreamTable) -> list[str]:
    """Create the stream's table if missing, and add columns the stream gained since."""
    target = d.table(t.schema, t.table)
    typed = [f"{d.quote(n)} {d.types[k]}" for n, k in zip(t.column_names, t.kinds, strict=True)]
    return [
        f"create table if not exists {target} ({', '.join(typed)})",
        *(f"alter table {target} add column if not exists {col}" for col in typed),
    ]


# --- column types that changed ----------------------------------------------------------------------


@dataclass(frozen=True)
class TypeChange:
    """A column of an existing table whose type the connector's catalog changed."""

    column: str
    old: str  # as the warehouse reports it
    new: str  # the dialect's type for the catalog's kind


def existing_columns(d: Dialect) -> str:
    """The columns of a table and their types (parameters: schema, table); none when it does not exist."""
    p = d.param
    return (
        "select column_name, data_type from information_schema.columns "
        f"where table_schema = {p} and table_name = {p} order by ordinal_position"
    )


def type_changes(d: Dialect, t: StreamTable, existing: Mapping[str, str]) -> list[TypeChange]:
    """The stream's columns that exist in the table with another type (new columns are added, columns
    the catalog no longer has are kept: neither is a change of type)."""
    changes = []
    for name, kind in zip(t.column_names, t.kinds, strict=True):
        old = existing.get(name)
        if old is not None and old.lower() != d.reported.get(kind, d.types[kind]).lower():
            changes.append(TypeChange(name, old, d.types[kind]))
    return changes


def uncastable_values(d: Dialect, t: StreamTable, change: TypeChange) -> str:
    """How many existing values of the column the new type cannot hold (DuckDB: ``try_cast``)."""
    col = d.quote(change.column)
    return (
        f"select count(*) from {d.table(t.schema, t.table)} "
        f"where {col} is not null and try_cast({col} as {change.new}) is null"
    )


# BigQuery changes a column's type in place only to a wider numeric type; anything else is a rebuild
BIGQUERY_WIDENING = {("INT64", "NUMERIC"), ("INT64", "BIGNUMERIC"), ("INT64", "FLOAT64"), ("NUMERIC", "FLOAT64")}


def can_alter_in_place(d: Dialect, change: TypeChange) -> bool:
    """Whether the warehouse may migrate the column with an ALTER (its values then decide, except on
    BigQuery, whose ALTER takes only widening numeric changes)."""
    if d.name == "bigquery":
        return (change.old.upper(), change.new.upper()) in BIGQUERY_WIDENING
    return True


def alter_column_type(d: Dialect, t: StreamTable, change: TypeChange) -> str:
    """Change the column's type in place, casting the existing values."""
    target, col = d.table(t.schema, t.table), d.quote(change.column)
    if d.name == "bigquery":
        return f"alter table {target} alter column {col} set data type {change.new}"
    # DuckDB: try_cast, after ``uncastable_values`` found none (a cast DuckDB lacks fails even on NULLs)
    using = f"try_cast({col} as {change.new})" if d.name == "duckdb" else f"{col}::{change.new}"
    return f"alter table {target} alter column {col} type {change.new} using {using}"


def drop_table(d: Dialect, schema: str, table: str, *, cascade: bool = False) -> str:
    return f"drop table if exists {d.table(schema, table)}" + (" cascade" if cascade else "")


def dedup_query(d: Dialect, t: StreamTable, staging: str) -> str:
    """The staged rows, one per primary key: the latest cursor, then the latest extracted."""
    names = t.column_names
    order = [f"{d.quote(t.cursor)} desc nulls last"] if t.cursor else []
    order.append(f"{d.quote(EXTRACTED_AT)} desc")
    return (
        f"select {_cols(d, names)} from (select {_cols(d, names)}, row_number() over "
        f"(partition by {_cols(d, list(t.primary_key))} order by {', '.join(order)}) as _dalgo_rn "
        f"from {staging}) ranked where _dalgo_rn = 1"
    )


def merge_statements(d: Dialect, t: StreamTable, staging: str) -> list[str]:
    """Statements moving the staged rows into the final table, by the stream's sync mode."""
    target = d.table(t.schema, t.table)
    names = _cols(d, t.column_names)
    if t.sync_mode == "full_refresh":
        return [
            f"delete from {target} where true",
            f"insert into {target} ({names}) select {names} from {staging}",
        ]
    if not t.primary_key:
        return [f"insert into {target} ({names}) select {names} from {staging}"]
    same_key = " and ".join(f"s.{d.quote(k)} = f.{d.quote(k)}" for k in t.primary_key)
    newer = ""
    if t.cursor:
        c = d.quote(t.cursor)
        newer = f" and (f.{c} is null or s.{c} is null or f.{c} <= s.{c})"
    latest = dedup_query(d, t, staging)
    return [
        f"delete from {target} as f where exists (select 1 from ({latest}) s where {same_key}{newer})",
        f"insert into {target} ({names}) select {names} from ({latest}) s "
        f"where not exists (select 1 from {target} as f where {same_key})",
    ]


# --- connector state, per organization + connection + stream ----------------------------------------


def create_state_table(d: Dialect, schema: str) -> str:
    cols = ", ".join(f"{d.quote(c)} {d.text_type}" for c in ("org", "connection", "stream", "state"))
    return (
        f"create table if not exists {d.table(schema, STATE_TABLE)} "
        f"({cols}, {d.quote('updated_at')} {d.timestamp_type})"
    )


def select_state(d: Dialect, schema: str) -> str:
    return (
        f"select {d.quote('stream')}, {d.quote('state')} from {d.table(schema, STATE_TABLE)} "
        f"where {d.quote('org')} = {d.param} and {d.quote('connection')} = {d.param}"
    )


def delete_state(d: Dialect, schema: str) -> str:
    """Forget one stream's state (parameters: org, connection, stream): its next read is a full one."""
    p = d.param
    key = f"{d.quote('org')} = {p} and {d.quote('connection')} = {p} and {d.quote('stream')} = {p}"
    return f"delete from {d.table(schema, STATE_TABLE)} where {key}"


def save_state(d: Dialect, schema: str) -> list[str]:
    """Replace one stream's state: a delete (org, connection, stream) and an insert (the same + state)."""
    table = d.table(schema, STATE_TABLE)
    p = d.param
    return [
        delete_state(d, schema),
        f"insert into {table} ({_cols(d, ['org', 'connection', 'stream', 'state', 'updated_at'])}) "
        f"values ({p}, {p}, {p}, {p}, current_timestamp)",
    ]
