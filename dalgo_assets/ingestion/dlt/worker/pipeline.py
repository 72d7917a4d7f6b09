"""The streams dlt runs (those without a fast path: incremental streams, MySQL, remote files, JSON lines,
BigQuery), and resets.

The pipeline is one per connection (``<org>__<connection>``), its dataset the connection's destination
schema; dlt keeps its state (incremental cursors) and schema in that dataset, in the same load as the
rows, and restores them from there when the pipeline's folder is gone. Streams:

- database tables through dlt's ``sql_table`` with the connectorx backend (Arrow batches read with the
  database's binary protocol), typed from the table's own reflected types, precision included;
- files through dlt's ``filesystem`` with DuckDB's CSV reader, PyArrow's Parquet reader or JSON lines;
- full refresh: ``replace`` (the new rows staged, then swapped in one transaction); incremental: by the
  cursor column (``dlt.sources.incremental``), ``merge`` on the primary key, ``append`` without one.

Loads are Parquet (DuckDB reads it natively; PostgreSQL gets it by binary COPY through ADBC). A column
whose type changed at the source rebuilds its stream: the table is dropped (on PostgreSQL with the views
built on it, named), its state forgotten, and the stream read in full. So is a table dlt did not create
(a fast path's full refresh, before the stream became incremental): dlt creates it with its own types.
"""

from __future__ import annotations

import time
from typing import Any

from . import catalog
from .fast import DEPENDENT_VIEWS
from .io import log

BATCH_ROWS = 200_000
TYPE_KEYS = ("data_type", "precision", "scale", "timezone")


# --- the warehouse ------------------------------------------------------------------------------------


def destination(spec: dict[str, Any]) -> Any:
    import dlt

    kind = spec["type"]
    if kind == "duckdb":
        return dlt.destinations.duckdb(spec["path"])
    if kind == "postgres":
        return dlt.destinations.postgres(spec["credentials"])
    if kind == "bigquery":
        return dlt.destinations.bigquery(
            credentials=spec.get("credentials"), location=spec.get("location"), project_id=spec["project"]
        )
    raise ValueError(f"unknown warehouse {kind}")


# --- the source -------------------------------------------------------------------------------------


def database_resource(source: dict[str, Any], stream: dict[str, Any], incremental: Any, only: list[str] | None) -> Any:
    from dlt.sources.sql_database import sql_table

    return sql_table(
        credentials=source["sqlalchemy_url"],
        table=stream["name"],
        schema=source.get("schema"),
        backend="connectorx",
        backend_kwargs={"conn": source["connectorx_url"], "return_type": "arrow_stream", "batch_size": BATCH_ROWS},
        reflection_level="full_with_precision",
        chunk_size=BATCH_ROWS,
        incremental=incremental,  # in the query: only rows past the cursor are read
        included_columns=only,
    )


def file_resource(source: dict[str, Any], stream: dict[str, Any], incremental: Any, only: list[str] | None) -> Any:
    from dlt.sources.filesystem import filesystem, read_csv_duckdb, read_jsonl, read_parquet

    options = {k: source[k] for k in ("credentials", "client_kwargs") if source.get(k)}  # an explicit None is not
    files = filesystem(bucket_url=source["bucket_url"], file_glob=stream["pattern"], **options)
    if source["bucket_url"].startswith(("http://", "https://")):
        files.add_map(http_file_url(source["bucket_url"]))
    first = next(iter(catalog.list_files(source, stream["pattern"])), None)
    if not first:
        raise LookupError(f"stream '{stream['name']}': no file matches '{stream['pattern']}' at {source['url']}")
    fmt = source["format"]
    if fmt == "csv":
        reader = read_csv_duckdb(use_pyarrow=True, chunk_size=BATCH_ROWS)
    elif fmt == "parquet":
        reader = read_parquet(use_pyarrow=True, chunksize=BATCH_ROWS)
    else:
        reader = read_jsonl(chunksize=10_000)
    resource = files | reader
    if incremental is not None:
        resource.apply_hints(incremental=incremental)
    if only is not None:  # the columns the connection applied
        resource.add_map(lambda item: _only(item, only))
    if fmt != "jsonl":  # the first file's types, declared: a type changed since the last sync is seen before reading
        resource.apply_hints(columns=file_columns(source, first, only))
    return resource


def _only(item: Any, columns: list[str]) -> Any:
    from dlt.common.libs.pyarrow import pyarrow

    if isinstance(item, (pyarrow.Table, pyarrow.RecordBatch)):
        return item.select([c for c in item.schema.names if c in columns])
    return {k: v for k, v in item.items() if k in columns} if isinstance(item, dict) else item


def file_columns(source: dict[str, Any], relative: str, only: list[str] | None) -> dict[str, dict[str, Any]]:
    """The columns of a CSV (DuckDB's sniffer) or Parquet file (its footer), as dlt types."""
    from dlt.common.libs.pyarrow import get_column_type_from_py_arrow

    schema = catalog.arrow_schema(source, relative)
    return {
        f.name: {"name": f.name, **get_column_type_from_py_arrow(f.type)}
        for f in schema
        if only is None or f.name in only
    }


def http_file_url(bucket_url: str) -> Any:
    """dlt's filesystem names an HTTP file ``http://http://host/...``: name it from the bucket url again."""

    def fix(item: Any) -> Any:
        item["file_url"] = f"{bucket_url.rstrip('/')}/{item['relative_path']}"
        return item

    return fix


def stream_resource(source: dict[str, Any], stream: dict[str, Any], only: list[str] | None) -> Any:
    import dlt

    build = database_resource if source["type"] == "database" else file_resource
    incremental = stream["sync_mode"] == "incremental"
    cursor = dlt.sources.incremental(stream["cursor"]) if incremental else None
    resource = build(source, stream, cursor, only).with_name(stream["name"])
    key = stream.get("primary_key") or None
    disposition = ("merge" if key else "append") if incremental else "replace"
    resource.apply_hints(table_name=stream["table"], write_disposition=disposition, primary_key=key)
    return resource


def conform(resource: Any, caps: Any) -> None:
    """Give each Arrow batch exactly the types of the table dlt creates for it (PostgreSQL's binary COPY
    takes no other width: an int2 column read into a bigint table is refused). The types are the source's
    declared ones where it declares them (a database table), else those dlt infers from the batch."""
    from dlt.common.libs.pyarrow import cast_arrow_as_columns_schema, get_column_type_from_py_arrow, pyarrow

    declared = declared_columns(resource)

    def cast(item: Any) -> Any:
        if not isinstance(item, (pyarrow.Table, pyarrow.RecordBatch)):
            return item
        columns = {
            f.name: {"name": f.name, **(declared.get(f.name.lower()) or get_column_type_from_py_arrow(f.type))}
            for f in item.schema
        }
        return cast_arrow_as_columns_schema(item, columns, caps, "UTC")

    # an empty batch (a reader's last) has nothing to cast, and dlt's cast refuses it
    resource.add_filter(lambda item: not isinstance(item, (pyarrow.Table, pyarrow.RecordBatch)) or item.num_rows > 0)
    resource.add_map(cast)


# --- schema changes -----------------------------------------------------------------------------------


def declared_columns(resource: Any) -> dict[str, dict[str, Any]]:
    """The columns the source declares for a resource (a database table's reflected types), lower-cased."""
    try:
        columns = resource.compute_table_schema().get("columns") or {}
    except Exception:
        return {}
    return {name.lower(): col for name, col in columns.items() if col.get("data_type")}


def type_changes(pipeline: Any, table: str, declared: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """Columns of the loaded table whose type the source changed (new and removed columns are not)."""
    if not pipeline.default_schema_name or table not in pipeline.default_schema.tables:
        return []
    stored = pipeline.default_schema.get_table_columns(table)
    mapper = pipeline.destination.capabilities().get_type_mapper()
    changes = []
    for name, col in declared.items():
        old = stored.get(name)
        if old and old.get("data_type") and any(old.get(k) != col.get(k) for k in TYPE_KEYS):
            changes.append({"column": name, "old": describe(mapper, old, table), "new": describe(mapper, col, table)})
    return changes


def describe(mapper: Any, col: dict[str, Any], table: str) -> str:
    """The column's type as the warehouse names it."""
    try:
        return str(mapper.to_destination_type({"name": "c", **col}, {"name": table}))
    except Exception:
        return str(col.get("data_type"))


def _exists(client: Any, warehouse: str, table: str) -> bool:
    mark = "%s" if warehouse == "postgres" else "?"
    query = f"select 1 from information_schema.tables where table_schema = {mark} and table_name = {mark}"
    return bool(client.execute_sql(query, client.dataset_name, table))


def foreign_tables(pipeline: Any, warehouse: str, tables: list[str]) -> list[str]:
    """Tables in the warehouse that dlt's schema does not know (a fast path made them)."""
    known = pipeline.default_schema.tables if pipeline.default_schema_name else {}
    unknown = [t for t in tables if t not in known]
    if not unknown or warehouse == "bigquery":
        return []
    with pipeline.sql_client() as client:
        return [t for t in unknown if _exists(client, warehouse, t)]


def drop_tables(pipeline: Any, warehouse: str, tables: list[str]) -> list[str]:
    """Drop the tables (PostgreSQL: with the views built on them); what was dropped, each table first."""
    dropped: list[str] = []
    with pipeline.sql_client() as client:
        for table in tables:
            qualified = client.make_qualified_table_name(table)
            if not _exists(client, warehouse, table):
                continue
            views = dependent_views(client, qualified) if warehouse == "postgres" else []
            client.execute_sql(f"drop table if exists {qualified}" + (" cascade" if views else ""))
            dropped += [f"{client.dataset_name}.{table}", *views]
    return dropped


def dependent_views(client: Any, qualified: str) -> list[str]:
    return [row[0] for row in client.execute_sql(DEPENDENT_VIEWS, qualified, qualified) or []]


# --- sync and reset -----------------------------------------------------------------------------------


def open_pipeline(job: dict[str, Any]) -> Any:
    import dlt

    pipeline = dlt.pipeline(
        pipeline_name=job["pipeline"],
        pipelines_dir=job["pipelines_dir"],
        destination=destination(job["destination"]),
        dataset_name=job["dataset"],
    )
    if pipeline.has_pending_data:
        # a sync that did not finish loading: the warehouse, which has neither its rows nor its state, decides
        log("warning", "the previous sync did not finish loading: it is read again from the last loaded state")
        pipeline = pipeline.drop()
    pipeline.sync_destination()  # state and schema as the warehouse has them (the folder may be gone)
    return pipeline


def forget(pipeline: Any, warehouse: str, streams: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Drop the streams' tables and their dlt state and schema (a reset, or a rebuild)."""
    from dlt.pipeline.helpers import pipeline_drop

    dropped = drop_tables(pipeline, warehouse, [s["table"] for s in streams])
    states = []
    if pipeline.default_schema_name:
        names = [s["name"] for s in streams]
        drop = pipeline_drop(pipeline, resources=names)
        states = [n for n in names if n in drop.info.get("resource_states", [])]
        if not drop.is_empty:
            drop()
    return dropped, states


def sync(job: dict[str, Any], streams: list[dict[str, Any]], only: dict[str, list[str] | None]) -> dict[str, Any]:
    """Extract, normalize and load the streams with dlt."""
    warehouse = job["destination"]["type"]
    pipeline = open_pipeline(job)

    def resource(stream: dict[str, Any]) -> Any:
        return stream_resource(job["source"], stream, only.get(stream["name"]))

    resources, rebuilt = [resource(s) for s in streams], []
    for stream, built in zip(streams, resources, strict=True):
        changes = type_changes(pipeline, stream["table"], declared_columns(built))
        if changes:
            rebuilt.append(
                {"stream": stream["name"], "table": f"{job['dataset']}.{stream['table']}", "changes": changes}
            )
    foreign = set(foreign_tables(pipeline, warehouse, [s["table"] for s in streams]))
    again = [s for s in streams if s["name"] in {r["stream"] for r in rebuilt} or s["table"] in foreign]
    dropped: list[str] = []
    if again:
        dropped, _ = forget(pipeline, warehouse, again)
        resources = [resource(s) if s in again else r for s, r in zip(streams, resources, strict=True)]  # new state
    if warehouse == "postgres":
        caps = pipeline.destination.capabilities()
        for built in resources:
            conform(built, caps)
    started = time.perf_counter()
    pipeline.extract(resources, loader_file_format="parquet")
    extracted = time.perf_counter()
    counts = pipeline.normalize().row_counts
    normalized = time.perf_counter()
    pipeline.load()
    log(
        "info",
        f"read {extracted - started:.1f} s, normalized {normalized - extracted:.1f} s, "
        f"loaded {time.perf_counter() - normalized:.1f} s (dlt: {', '.join(s['name'] for s in streams)})",
    )
    return {
        "rows": {s["name"]: int(counts.get(s["table"], 0)) for s in streams},
        "rebuilt": rebuilt,
        "dropped": dropped,
    }


def reset(job: dict[str, Any]) -> dict[str, Any]:
    pipeline = open_pipeline(job)
    dropped, states = forget(pipeline, job["destination"]["type"], job["streams"])
    return {"dropped": dropped, "states": states}
