"""A source's streams as the Airbyte protocol describes them (``AirbyteStream``: a JSON schema of its
columns, sync modes, cursor and primary key), plus each column's own type (``columns``) and the columns
an incremental sync could follow (``cursor_candidates``); and a check that the source can be read.

- A database's streams are the tables and views of its schema, reflected by SQLAlchemy (PostgreSQL,
  MySQL): types as the database declares them, primary keys as its constraints say.
- A file source's streams are the files of each pattern of ``files``, then every other file of its format
  (named by the file); columns from the first file of each: DuckDB's CSV sniffer, the Parquet footer, the
  first lines of a JSON lines file.

The sync asks for the streams it chooses (``sync_catalog``): every stream's name, and the columns of those
chosen, to compare with the catalog the connection applied (``run.py`` decides what the policy does).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .io import message_of

JSONL_SAMPLE_BYTES = 1 << 20  # the lines a JSON lines file's columns are read from
UPDATED = ("updated", "modified", "changed")


def _prop(kind: str, nullable: bool, **extra: Any) -> dict[str, Any]:
    return {"type": ["null", kind] if nullable else kind, **extra}


def stream(name: str, columns: list[dict[str, Any]], primary_key: Iterable[str], **extra: Any) -> dict[str, Any]:
    """A stream in the protocol's shape from its columns (each ``name``, ``type`` (the source's own),
    ``nullable`` and ``json`` (its JSON-schema property))."""
    candidates = [c["name"] for c in columns if _cursor_rank(c["json"]) is not None]
    candidates.sort(key=lambda n: _cursor_rank(next(c["json"] for c in columns if c["name"] == n)))
    updated = [n for n in candidates if any(word in n.lower() for word in UPDATED)]
    return {
        "name": name,
        "json_schema": {"type": "object", "properties": {c["name"]: c["json"] for c in columns}},
        "supported_sync_modes": ["full_refresh", "incremental"] if candidates else ["full_refresh"],
        "source_defined_cursor": False,
        "default_cursor_field": updated[:1],
        "source_defined_primary_key": [[k] for k in primary_key],
        "columns": [{k: c[k] for k in ("name", "type", "nullable")} for c in columns],
        "cursor_candidates": candidates,
        **extra,
    }


def _cursor_rank(prop: dict[str, Any]) -> int | None:
    """Timestamps and dates first, then integers; None for a column no cursor is made of."""
    kinds = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
    if "string" in kinds and prop.get("format") in ("date-time", "date"):
        return 0 if prop["format"] == "date-time" else 1
    return 2 if "integer" in kinds else None


# --- databases ----------------------------------------------------------------------------------------


def engine(source: dict[str, Any]) -> Any:
    import sqlalchemy as sa

    return sa.create_engine(source["sqlalchemy_url"], poolclass=sa.pool.NullPool)


def _sql_property(sqltype: Any, nullable: bool) -> dict[str, Any]:
    from sqlalchemy import types as t

    if isinstance(sqltype, t.Boolean):
        return _prop("boolean", nullable)
    if isinstance(sqltype, t.Integer):
        return _prop("integer", nullable)
    if isinstance(sqltype, t.Numeric):
        return _prop("number", nullable)
    if isinstance(sqltype, t.DateTime):
        zone = "timestamp_with_timezone" if sqltype.timezone else "timestamp_without_timezone"
        return _prop("string", nullable, format="date-time", airbyte_type=zone)
    if isinstance(sqltype, t.Date):
        return _prop("string", nullable, format="date")
    if isinstance(sqltype, t.Time):
        return _prop("string", nullable, format="time")
    if isinstance(sqltype, t.ARRAY):
        return _prop("array", nullable)
    if isinstance(sqltype, t.JSON):
        return _prop("object", nullable)
    return _prop("string", nullable)


def _type_name(sqltype: Any, dialect: Any) -> str:
    try:
        return str(sqltype.compile(dialect=dialect))
    except Exception:
        return str(sqltype)


def database_streams(source: dict[str, Any], chosen: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """The tables and views of the source's schema as streams (only the names of those not ``chosen``)."""
    import sqlalchemy as sa
    from sqlalchemy.engine.reflection import ObjectKind

    db, schema = engine(source), source.get("schema")
    try:
        inspector = sa.inspect(db)
        names = sorted([*inspector.get_table_names(schema=schema), *inspector.get_view_names(schema=schema)])
        wanted = names if chosen is None else [n for n in names if n in chosen]
        columns = inspector.get_multi_columns(schema=schema, filter_names=wanted, kind=ObjectKind.ANY) if wanted else {}
        keys = inspector.get_multi_pk_constraint(schema=schema, filter_names=wanted) if wanted else {}
        dialect = db.dialect
    finally:
        db.dispose()
    found: dict[str, dict[str, Any]] = {n: {"name": n} for n in names}
    for (where, table), reflected in columns.items():
        described = [
            {
                "name": c["name"],
                "type": _type_name(c["type"], dialect),
                "nullable": bool(c.get("nullable", True)),
                "json": _sql_property(c["type"], bool(c.get("nullable", True))),
            }
            for c in reflected
        ]
        found[table] = stream(table, described, (keys.get((where, table)) or {}).get("constrained_columns") or [])
    return found


# --- files --------------------------------------------------------------------------------------------


def _local(source: dict[str, Any]) -> Path | None:
    url = source["bucket_url"]
    return Path(urlparse(url).path) if url.startswith("file://") else None


def _remote(source: dict[str, Any]) -> Any:
    import fsspec

    url = source["bucket_url"]
    if url.startswith("s3://"):
        credentials = source.get("credentials") or {}
        options = {"key": credentials.get("aws_access_key_id"), "secret": credentials.get("aws_secret_access_key")}
        if credentials.get("endpoint_url"):
            options["endpoint_url"] = credentials["endpoint_url"]
        return fsspec.filesystem("s3", anon=not options["key"], **{k: v for k, v in options.items() if v})
    return fsspec.filesystem("http", client_kwargs=source.get("client_kwargs") or {})


def list_files(source: dict[str, Any], pattern: str) -> list[str]:
    """The files matching a pattern, relative to the source's url, sorted."""
    folder = _local(source)
    if folder is not None:
        return sorted(str(p.relative_to(folder)) for p in folder.glob(pattern) if p.is_file())
    base = source["bucket_url"].rstrip("/")
    found = _remote(source).glob(f"{base}/{pattern}")
    prefix = base.split("://", 1)[1] + "/" if base.startswith("s3://") else base + "/"
    return sorted(str(f).removeprefix(prefix) for f in found)


def local_path(source: dict[str, Any], relative: str) -> Path | None:
    folder = _local(source)
    return folder / relative if folder is not None else None


def _open(source: dict[str, Any], relative: str) -> Any:
    path = local_path(source, relative)
    if path is not None:
        return path.open("rb")
    return _remote(source).open(f"{source['bucket_url'].rstrip('/')}/{relative}", "rb")


def arrow_schema(source: dict[str, Any], relative: str) -> Any:
    """The columns of a file as Arrow types: DuckDB's CSV sniffer, the Parquet footer, JSON lines' first lines."""
    import pyarrow.parquet as pq

    fmt = source["format"]
    path = local_path(source, relative)
    if fmt == "csv" and path is not None:  # DuckDB reads its sample from the file itself
        import duckdb

        with duckdb.connect() as conn:
            return conn.read_csv(str(path)).limit(0).to_arrow_table().schema
    with _open(source, relative) as handle:
        if fmt == "csv":
            import duckdb

            with duckdb.connect() as conn:
                return conn.from_csv_auto(handle).limit(0).to_arrow_table().schema
        if fmt == "parquet":
            return pq.read_schema(handle)
        import pyarrow.json as pj

        sample = handle.read(JSONL_SAMPLE_BYTES)
        sample = sample[: sample.rfind(b"\n") + 1] or sample
        return pj.read_json(io.BytesIO(sample)).schema


def _arrow_property(kind: Any) -> dict[str, Any]:
    import pyarrow.types as at

    if at.is_boolean(kind):
        return _prop("boolean", True)
    if at.is_integer(kind):
        return _prop("integer", True)
    if at.is_floating(kind) or at.is_decimal(kind):
        return _prop("number", True)
    if at.is_timestamp(kind):
        zone = "timestamp_with_timezone" if kind.tz else "timestamp_without_timezone"
        return _prop("string", True, format="date-time", airbyte_type=zone)
    if at.is_date(kind):
        return _prop("string", True, format="date")
    if at.is_time(kind):
        return _prop("string", True, format="time")
    if at.is_list(kind) or at.is_large_list(kind):
        return _prop("array", True)
    if at.is_struct(kind) or at.is_map(kind):
        return _prop("object", True)
    return _prop("string", True)


def file_stream(source: dict[str, Any], name: str, pattern: str, files: list[str]) -> dict[str, Any]:
    schema = arrow_schema(source, files[0])
    columns = [{"name": f.name, "type": str(f.type), "nullable": True, "json": _arrow_property(f.type)} for f in schema]
    return stream(name, columns, [], files=pattern)


def file_streams(source: dict[str, Any], chosen: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """The streams of a file source: each pattern's files, then every other file of its format by name (only
    the names of those not ``chosen``; ``chosen`` maps a stream to its pattern)."""
    patterns = {**source.get("files", {}), **(chosen or {})}
    claimed: set[str] = set()
    found: dict[str, dict[str, Any]] = {}
    for name, pattern in patterns.items():
        files = list_files(source, pattern)
        claimed.update(files)
        if files and (chosen is None or name in chosen):
            found[name] = file_stream(source, name, pattern, files)
        elif files:
            found[name] = {"name": name}
    for rest in list_files(source, f"*.{source['format']}"):
        name = Path(rest).name.removesuffix(f".{source['format']}")
        if rest not in claimed and name not in found:
            found[name] = file_stream(source, name, rest, [rest]) if chosen is None else {"name": name}
    return found


# --- the modes ----------------------------------------------------------------------------------------


def discover(job: dict[str, Any]) -> dict[str, Any]:
    source = job["source"]
    found = database_streams(source) if source["type"] == "database" else file_streams(source)
    return {"streams": list(found.values())}


def sync_catalog(source: dict[str, Any], streams: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every stream of the source by name, with the columns of the connection's chosen ones."""
    if source["type"] == "database":
        return database_streams(source, [s["name"] for s in streams])
    return file_streams(source, {s["name"]: s["pattern"] for s in streams})


def check(job: dict[str, Any]) -> dict[str, Any]:
    """Whether the source can be read: a database connects and lists its tables; files are listed."""
    source = job["source"]
    try:
        if source["type"] == "database":
            names = sorted(database_streams(source, []))
            where = f"schema '{source['schema']}'" if source.get("schema") else "the database"
            listed = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
            return {"succeeded": True, "message": f"connected: {len(names)} tables in {where} ({listed})"}
        files = list_files(source, f"*.{source['format']}")
        for pattern in source.get("files", {}).values():
            files += [f for f in list_files(source, pattern) if f not in files]
        if not files:
            return {"succeeded": False, "message": f"no {source['format']} file at {source['url']}"}
        arrow_schema(source, files[0])  # readable as its format
        listed = ", ".join(files[:20]) + (", ..." if len(files) > 20 else "")
        found = f"{len(files)} {source['format']} file{'' if len(files) == 1 else 's'}"
        return {"succeeded": True, "message": f"{found} at {source['url']}: {listed}"}
    except Exception as exc:
        return {"succeeded": False, "message": message_of(exc)}
