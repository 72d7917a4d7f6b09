"""One sync or reset of a database or file connection, run by dlt inside the organization's sandbox.

Started as ``python -I worker.py <job.json>`` by ``run.py``; imports dlt and nothing of the platform (the
sandbox binds the platform's environment, not its source tree). The job file (mode 0600, in a private
folder of the organization's root that is wiped afterwards) holds the source's and the warehouse's
credentials. Output on stdout, one JSON object a line: ``{"log": level, "message": ...}`` while it runs,
then ``{"result": {...}}``, or ``{"error": message}`` and exit code 1.

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
built on it, named), its state forgotten, and the stream read in full.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from typing import Any

BATCH_ROWS = 200_000
TYPE_KEYS = ("data_type", "precision", "scale", "timezone")


def emit(**message: Any) -> None:
    sys.stdout.write(json.dumps(message, default=str) + "\n")
    sys.stdout.flush()


def log(level: str, message: str) -> None:
    emit(log=level, message=message)


def configure(workdir: str) -> None:
    """dlt's settings, all by environment (dlt reads no file of ours)."""
    os.environ.update(
        {
            "DLT_DATA_DIR": os.path.join(workdir, "dlt-data"),
            "RUNTIME__LOG_LEVEL": "ERROR",
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            "DATA_WRITER__DISABLE_COMPRESSION": "true",
            "DESTINATION__REPLACE_STRATEGY": "insert-from-staging",  # readers see the old rows or the new
            "SCHEMA__NAMING": "sql_ci_v1",  # lower-case identifiers: the table is the stream's name
            "LOAD__RAISE_ON_FAILED_JOBS": "true",
            "LOAD__TRUNCATE_STAGING_DATASET": "true",  # staged rows do not stay: a warehouse holds them once
            "LOAD__WORKERS": "2",
        }
    )


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


def database_resource(source: dict[str, Any], stream: dict[str, Any], incremental: Any) -> Any:
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
    )


def file_resource(source: dict[str, Any], stream: dict[str, Any], incremental: Any) -> Any:
    from dlt.sources.filesystem import filesystem, read_csv_duckdb, read_jsonl, read_parquet

    options = {k: source[k] for k in ("credentials", "client_kwargs") if source.get(k)}  # an explicit None is not
    files = filesystem(bucket_url=source["bucket_url"], file_glob=stream["pattern"], **options)
    if source["bucket_url"].startswith(("http://", "https://")):
        files.add_map(http_file_url(source["bucket_url"]))
    first = next(iter(filesystem(bucket_url=source["bucket_url"], file_glob=stream["pattern"], **options)), None)
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
    columns = file_columns(fmt, first, source["bucket_url"])
    if columns:  # the first file's types, declared: a type changed since the last sync is seen before reading
        resource.apply_hints(columns=columns)
    return resource


def file_columns(fmt: str, item: Any, bucket_url: str) -> dict[str, dict[str, Any]]:
    """The columns of a CSV (DuckDB's sniffer) or Parquet file (its footer), as dlt types."""
    import duckdb
    import pyarrow.parquet as pq
    from dlt.common.libs.pyarrow import get_column_type_from_py_arrow

    if bucket_url.startswith(("http://", "https://")):
        item = http_file_url(bucket_url)(item)
    if fmt == "csv":
        with duckdb.connect() as conn, item.open() as handle:
            schema = conn.from_csv_auto(handle).limit(0).to_arrow_table().schema
    elif fmt == "parquet":
        with item.open() as handle:
            schema = pq.read_schema(handle)
    else:
        return {}
    return {f.name: {"name": f.name, **get_column_type_from_py_arrow(f.type)} for f in schema}


def http_file_url(bucket_url: str) -> Any:
    """dlt's filesystem names an HTTP file ``http://http://host/...``: name it from the bucket url again."""

    def fix(item: Any) -> Any:
        item["file_url"] = f"{bucket_url.rstrip('/')}/{item['relative_path']}"
        return item

    return fix


def stream_resource(source: dict[str, Any], stream: dict[str, Any]) -> Any:
    import dlt

    build = database_resource if source["type"] == "database" else file_resource
    incremental = stream["sync_mode"] == "incremental"
    cursor = dlt.sources.incremental(stream["cursor"]) if incremental else None
    resource = build(source, stream, cursor).with_name(stream["name"])
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


def drop_tables(pipeline: Any, warehouse: str, tables: list[str]) -> list[str]:
    """Drop the tables (PostgreSQL: with the views built on them); what was dropped, each table first."""
    dropped: list[str] = []
    with pipeline.sql_client() as client:
        for table in tables:
            qualified = client.make_qualified_table_name(table)
            exists = client.execute_sql(
                "select 1 from information_schema.tables where table_schema = %s and table_name = %s"
                if warehouse == "postgres"
                else "select 1 from information_schema.tables where table_schema = ? and table_name = ?",
                client.dataset_name,
                table,
            )
            if not exists:
                continue
            views = dependent_views(client, qualified) if warehouse == "postgres" else []
            client.execute_sql(f"drop table if exists {qualified}" + (" cascade" if views else ""))
            dropped += [f"{client.dataset_name}.{table}", *views]
    return dropped


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


def dependent_views(client: Any, qualified: str) -> list[str]:
    return [row[0] for row in client.execute_sql(DEPENDENT_VIEWS, qualified, qualified) or []]


# --- the two modes ------------------------------------------------------------------------------------


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


def sync(job: dict[str, Any]) -> dict[str, Any]:
    warehouse = job["destination"]["type"]
    pipeline = open_pipeline(job)
    resources, rebuilt = [], []
    for stream in job["streams"]:
        resource = stream_resource(job["source"], stream)
        changes = type_changes(pipeline, stream["table"], declared_columns(resource))
        if changes:
            rebuilt.append(
                {"stream": stream["name"], "table": f"{job['dataset']}.{stream['table']}", "changes": changes}
            )
        resources.append(resource)
    dropped: list[str] = []
    if rebuilt:
        names = {r["stream"] for r in rebuilt}
        dropped, _ = forget(pipeline, warehouse, [s for s in job["streams"] if s["name"] in names])
        for r in rebuilt:  # the resources again: their incremental state is gone
            i = next(i for i, s in enumerate(job["streams"]) if s["name"] == r["stream"])
            resources[i] = stream_resource(job["source"], job["streams"][i])
    if warehouse == "postgres":
        caps = pipeline.destination.capabilities()
        for resource in resources:
            conform(resource, caps)
    started = time.perf_counter()
    pipeline.extract(resources, loader_file_format="parquet")
    extracted = time.perf_counter()
    counts = pipeline.normalize().row_counts
    normalized = time.perf_counter()
    pipeline.load()
    log(
        "info",
        f"read {extracted - started:.1f} s, normalized {normalized - extracted:.1f} s, "
        f"loaded {time.perf_counter() - normalized:.1f} s",
    )
    return {
        "rows": {s["name"]: int(counts.get(s["table"], 0)) for s in job["streams"]},
        "rebuilt": rebuilt,
        "dropped": dropped,
    }


def reset(job: dict[str, Any]) -> dict[str, Any]:
    pipeline = open_pipeline(job)
    dropped, states = forget(pipeline, job["destination"]["type"], job["streams"])
    return {"dropped": dropped, "states": states}


def main() -> None:
    with open(sys.argv[1]) as handle:
        job = json.load(handle)
    configure(os.path.dirname(sys.argv[1]))
    try:
        result = sync(job) if job["mode"] == "sync" else reset(job)
    except Exception as exc:
        emit(error=message_of(exc), detail=traceback.format_exc())
        sys.exit(1)
    emit(result=result)


def message_of(exc: BaseException) -> str:
    """The innermost cause's message (dlt wraps a step's failure in PipelineStepFailed)."""
    while exc.__cause__ is not None or getattr(exc, "exception", None) is not None:
        exc = exc.__cause__ or exc.exception  # type: ignore[attr-defined]
    return f"{type(exc).__name__}: {exc}".strip()


if __name__ == "__main__":
    main()
