"""A full refresh by the engines' own fast paths, written once, in one transaction per stream: readers
never see the table empty (they see the old rows, or wait for the new ones), and a failed load keeps the
old rows.

- PostgreSQL into PostgreSQL: the source's binary ``COPY ... TO STDOUT`` piped into the warehouse's binary
  ``COPY ... FROM STDIN``, after ``TRUNCATE`` of the table in the same transaction (as dlt's
  insert-from-staging does, without the staged copy); the table keeps the source's own column types
  (types of other schemas, such as enums, become text); one whose types changed is dropped with the views
  built on it (named) and created again.
- PostgreSQL into DuckDB: connectorx reads the table with PostgreSQL's binary COPY into Arrow batches,
  which DuckDB inserts into the table created with the source's types.
- CSV and Parquet files of the organization's folders into DuckDB: DuckDB's own reader (the CSV sniffer dlt
  uses too) creates the table from the files.

The rest (incremental streams, MySQL, remote files, JSON lines, BigQuery) goes through dlt (``pipeline``).
"""

from __future__ import annotations

import re
import time
from typing import Any

from . import catalog
from .io import log

BATCH_ROWS = 200_000
# PostgreSQL types connectorx reads into Arrow, and the DuckDB type of each (numeric: its precision)
CONNECTORX_TYPES = {
    "int2": "SMALLINT",
    "int4": "INTEGER",
    "int8": "BIGINT",
    "float4": "FLOAT",
    "float8": "DOUBLE",
    "numeric": None,
    "bool": "BOOLEAN",
    "text": "VARCHAR",
    "varchar": "VARCHAR",
    "bpchar": "VARCHAR",
    "date": "DATE",
    "time": "TIME",
    "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMPTZ",
    "uuid": "UUID",
    "json": "JSON",
    "jsonb": "JSON",
    "bytea": "BLOB",
}
PG_COLUMNS = """
select a.attname, format_type(a.atttypid, a.atttypmod), t.typname, n.nspname = 'pg_catalog'
from pg_attribute a join pg_type t on t.oid = a.atttypid join pg_namespace n on n.oid = t.typnamespace
where a.attrelid = to_regclass(%s) and a.attnum > 0 and not a.attisdropped order by a.attnum
"""


def eligible(job: dict[str, Any], stream: dict[str, Any]) -> bool:
    """Whether a stream's sync has a fast path (a full refresh from PostgreSQL or local CSV or Parquet)."""
    source, warehouse = job["source"], job["destination"]["type"]
    if stream["sync_mode"] != "full_refresh":
        return False
    if source["type"] == "database":
        return source.get("dialect") == "postgres" and warehouse in ("duckdb", "postgres")
    return warehouse == "duckdb" and source["format"] in ("csv", "parquet") and catalog.local_path(source, ".")


def load(job: dict[str, Any], stream: dict[str, Any], only: list[str] | None) -> dict[str, Any]:
    """Load one stream in full; what ``main.sync`` reports of it (rows, a rebuilt table, dropped views)."""
    started = time.perf_counter()
    if job["source"]["type"] == "files":
        done = files_to_duckdb(job, stream, only)
        how = "DuckDB's own reader"
    elif job["destination"]["type"] == "duckdb":
        done = postgres_to_duckdb(job, stream, only)
        how = "connectorx, PostgreSQL's binary COPY into Arrow, into DuckDB"
    else:
        done = postgres_to_postgres(job, stream, only)
        how = "binary COPY into binary COPY"
    rows = done["rows"][stream["name"]]
    log("info", f"read and loaded {rows} rows of {stream['name']} in {time.perf_counter() - started:.1f} s ({how})")
    return done


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _result(stream: dict[str, Any], rows: int, table: str, changes: list[dict[str, str]], dropped: list[str]) -> dict:
    rebuilt = [{"stream": stream["name"], "table": table, "changes": changes}] if changes else []
    return {"rows": {stream["name"]: rows}, "rebuilt": rebuilt, "dropped": dropped}


def _changes(old: dict[str, str], new: dict[str, str]) -> list[dict[str, str]]:
    return [{"column": c, "old": old[c], "new": t} for c, t in new.items() if c in old and old[c] != t]


# --- PostgreSQL sources -------------------------------------------------------------------------------


def source_columns(
    job: dict[str, Any], stream: dict[str, Any], only: list[str] | None
) -> list[tuple[str, str, str, bool]]:
    """The table's columns (name, type as PostgreSQL names it, its base name, whether PostgreSQL's own)."""
    import psycopg

    source = job["source"]
    qualified = f"{_q(source.get('schema') or 'public')}.{_q(stream['name'])}"
    with psycopg.connect(source["connectorx_url"]) as db:
        found = db.execute(PG_COLUMNS, (qualified,)).fetchall()
    if not found:
        raise LookupError(f"stream '{stream['name']}': no table {qualified} in the source")
    return [c for c in found if only is None or c[0] in only]


def _source_query(job: dict[str, Any], stream: dict[str, Any], expressions: list[str]) -> str:
    qualified = f"{_q(job['source'].get('schema') or 'public')}.{_q(stream['name'])}"
    return f"select {', '.join(expressions)} from {qualified}"


def _duckdb_type(formatted: str, base: str, builtin: bool) -> str | None:
    """The DuckDB type of a PostgreSQL column connectorx reads, else None (it is read as text)."""
    if not builtin or base not in CONNECTORX_TYPES:
        return None
    if base != "numeric":
        return CONNECTORX_TYPES[base]
    found = re.match(r"numeric\((\d+),(\d+)\)", formatted)
    if found is None:
        return "DECIMAL(38,9)"
    precision, scale = int(found[1]), int(found[2])
    return f"DECIMAL({precision},{scale})" if precision <= 38 else "DOUBLE"


def postgres_to_duckdb(job: dict[str, Any], stream: dict[str, Any], only: list[str] | None) -> dict[str, Any]:
    import connectorx as cx
    import duckdb

    columns = source_columns(job, stream, only)
    types = {name: _duckdb_type(formatted, base, builtin) for name, formatted, base, builtin in columns}
    expressions = [_q(name) if types[name] else f"{_q(name)}::text" for name, *_ in columns]
    reader = cx.read_sql(
        job["source"]["connectorx_url"],
        _source_query(job, stream, expressions),
        return_type="arrow_stream",
        batch_size=BATCH_ROWS,
    )
    ddl = ", ".join(f"{_q(name)} {types[name] or 'VARCHAR'}" for name, *_ in columns)
    with duckdb.connect(job["destination"]["path"]) as db:
        db.register("batches", reader)
        return _replace_in_duckdb(db, job, stream, f"({ddl})", "select * from batches")


def _duckdb_types(db: Any, schema: str, table: str) -> dict[str, str]:
    rows = db.execute(
        "select column_name, data_type from information_schema.columns where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return dict(rows)


def _replace_in_duckdb(
    db: Any, job: dict[str, Any], stream: dict[str, Any], ddl: str, select: str, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Create the stream's table again (its ``ddl``, or as the query's columns) from a query, in one
    transaction."""
    schema, table = job["dataset"], stream["table"]
    target = f"{_q(schema)}.{_q(table)}"
    db.execute("begin")
    try:
        db.execute(f"create schema if not exists {_q(schema)}")
        old = _duckdb_types(db, schema, table)
        if ddl:
            db.execute(f"create or replace table {target} {ddl}")
            (rows,) = db.execute(f"insert into {target} {select}", params).fetchone()
        else:
            (rows,) = db.execute(f"create or replace table {target} as {select}", params).fetchone()
        changes = _changes(old, _duckdb_types(db, schema, table))
        db.execute("commit")
    except BaseException:
        db.execute("rollback")
        raise
    return _result(stream, int(rows), f"{schema}.{table}", changes, [])


def postgres_to_postgres(job: dict[str, Any], stream: dict[str, Any], only: list[str] | None) -> dict[str, Any]:
    import psycopg

    columns = source_columns(job, stream, only)
    wanted = {name: formatted if builtin else "text" for name, formatted, _, builtin in columns}
    expressions = [_q(name) if builtin else f"{_q(name)}::text" for name, _, _, builtin in columns]
    schema, table = job["dataset"], stream["table"]
    target = f"{_q(schema)}.{_q(table)}"
    with psycopg.connect(job["source"]["connectorx_url"]) as src, psycopg.connect(**_warehouse(job)) as dst:
        if _same_table(src, dst, job, stream):
            raise ValueError(f"stream '{stream['name']}' would be loaded into the table it is read from")
        old = {name: formatted for name, formatted, *_ in dst.execute(PG_COLUMNS, (target,)).fetchall()}
        changes, dropped = _changes(old, wanted), []
        if changes:  # the types changed: the table (and the views on it) are built again
            dropped = [row[0] for row in dst.execute(DEPENDENT_VIEWS, (target, target)).fetchall()]
            dst.execute(f"drop table {target} cascade")
            old = {}
        if not old:
            dst.execute(f"create schema if not exists {_q(schema)}")
            dst.execute(f"create table {target} ({', '.join(f'{_q(n)} {t}' for n, t in wanted.items())})")
        else:
            for name in (n for n in wanted if n not in old):
                dst.execute(f"alter table {target} add column {_q(name)} {wanted[name]}")
            dst.execute(f"truncate table {target}")
        names = ", ".join(_q(n) for n in wanted)
        query = _source_query(job, stream, expressions)
        with (
            src.cursor() as out_cursor,
            out_cursor.copy(f"copy ({query}) to stdout (format binary)") as out,
            dst.cursor() as in_cursor,
        ):
            with in_cursor.copy(f"copy {target} ({names}) from stdin (format binary)") as into:
                for data in out:
                    into.write(data)
            rows = in_cursor.rowcount
        dst.commit()
    return _result(stream, rows, f"{schema}.{table}", changes, [f"{schema}.{table}", *dropped] if changes else [])


def _same_table(src: Any, dst: Any, job: dict[str, Any], stream: dict[str, Any]) -> bool:
    """Whether the source's table is the warehouse's (one server, one database, one schema and name)."""
    where = "select inet_server_addr()::text, current_setting('port'), current_database()"
    same_place = src.execute(where).fetchone() == dst.execute(where).fetchone()
    source_table = (job["source"].get("schema") or "public", stream["name"])
    return same_place and source_table == (job["dataset"], stream["table"])


def _warehouse(job: dict[str, Any]) -> dict[str, Any]:
    credentials = job["destination"]["credentials"]
    options = {
        "host": credentials["host"],
        "port": credentials["port"],
        "user": credentials["username"],
        "password": credentials["password"],
        "dbname": credentials["database"],
    }
    return {**options, **(credentials.get("query") or {})}


DEPENDENT_VIEWS = """
with recursive deps(oid) as (
    select distinct r.ev_class from pg_depend d join pg_rewrite r on r.oid = d.objid
    where d.refobjid = %s::regclass and r.ev_class <> %s::regclass
  union
    select distinct r.ev_class from pg_depend d join pg_rewrite r on r.oid = d.objid
    join deps on d.refobjid = deps.oid where r.ev_class <> deps.oid
)
select n.nspname || '.' || c.relname from deps join pg_class c on c.oid = deps.oid
join pg_namespace n on n.oid = c.relnamespace order by 1
"""


# --- local files --------------------------------------------------------------------------------------


def files_to_duckdb(job: dict[str, Any], stream: dict[str, Any], only: list[str] | None) -> dict[str, Any]:
    import duckdb

    source = job["source"]
    files = catalog.list_files(source, stream["pattern"])
    if not files:
        raise LookupError(f"stream '{stream['name']}': no file matches '{stream['pattern']}' at {source['url']}")
    paths = [str(catalog.local_path(source, f)) for f in files]
    reader = "read_csv" if source["format"] == "csv" else "read_parquet"
    union = ", union_by_name = true" if len(paths) > 1 else ""
    params: dict[str, Any] = {"files": paths}
    selected = "*"
    if only is not None:  # the columns the connection applied, of those the files have
        selected, params["only"] = "columns(lambda c: list_contains($only, c))", only
    with duckdb.connect(job["destination"]["path"]) as db:
        select = f"select {selected} from {reader}($files{union})"
        return _replace_in_duckdb(db, job, stream, "", select, params)
