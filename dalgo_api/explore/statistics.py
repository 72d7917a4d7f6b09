"""A warehouse table's first rows and per-column statistics (nulls, distinct count, min, max), read with
the organization's own warehouse connection (DuckDB or PostgreSQL; BigQuery is not supported here yet).

The schema and table named by the caller are first looked up in ``information_schema``; only names
found there are put (quoted) into SQL, so a request cannot inject SQL or reach another database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
from collections.abc import Iterator
from typing import Any

from dalgo_api.errors import ApiError
from dalgo_core import layout
from dalgo_core.egress import NoSuchHost, NotPublic
from dalgo_core.spec import OrgSpec

MAX_PREVIEW_ROWS = 500
# min/max make no sense (or are not defined) for these types
_NO_ORDER = ("json", "struct", "map", "list", "array", "blob", "bytea", "bool", "uuid", "[]")


@contextlib.contextmanager
def _connect(spec: OrgSpec) -> Iterator[Any]:
    """The warehouse connection; a driver error (warehouse down, DuckDB file locked by a running dbt
    build, a host that does not resolve) becomes a 503 naming the organization, with the driver's message,
    and a warehouse the platform may not read (a link in its root, a host on its own network) a 409."""
    if spec.warehouse.type == "bigquery":
        raise ApiError(409, f"organization '{spec.slug}': data statistics are not available for BigQuery yet")
    from dalgo_core.warehouse.connect import WarehouseEmpty, read_warehouse

    try:
        with read_warehouse(spec) as conn:
            yield conn
    except ApiError:
        raise
    except WarehouseEmpty as exc:
        raise ApiError(404, str(exc)) from None
    except (layout.OutsideRoot, NotPublic) as exc:  # a link in its root; a host on the platform's network
        raise ApiError(409, f"the warehouse of organization '{spec.slug}' cannot be read: {exc}") from None
    except NoSuchHost as exc:
        raise ApiError(503, f"the warehouse of organization '{spec.slug}' cannot be read: {exc}") from None
    except Exception as exc:
        if not type(exc).__module__.startswith(("duckdb", "psycopg")):
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ApiError(503, f"the warehouse of organization '{spec.slug}' cannot be read: {message}") from None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _value(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime | dt.time | dt.timedelta):
        return value.isoformat() if hasattr(value, "isoformat") else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value))} bytes>"
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _columns(conn: Any, spec: OrgSpec, schema: str, table: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = %s and table_name = %s order by ordinal_position".replace(
            "%s", "?" if spec.warehouse.type == "duckdb" else "%s"
        ),
        [schema, table],
    ).fetchall()
    if not rows:
        raise ApiError(404, f"table '{schema}.{table}' not found in the warehouse of organization '{spec.slug}'")
    return [(str(name), str(kind).lower()) for name, kind in rows]


def preview(spec: OrgSpec, schema: str, table: str, limit: int) -> dict[str, Any]:
    with _connect(spec) as conn:
        columns = _columns(conn, spec, schema, table)
        select = ", ".join(_quote(c) for c, _ in columns)
        cursor = conn.execute(
            f"select {select} from {_quote(schema)}.{_quote(table)} limit {min(limit, MAX_PREVIEW_ROWS)}"
        )
        rows = [[_value(v) for v in row] for row in cursor.fetchall()]
    return {"columns": [{"name": c, "type": t} for c, t in columns], "rows": rows}


def statistics(spec: OrgSpec, schema: str, table: str) -> dict[str, Any]:
    """One pass over the table: count, then per column nulls, distinct values, min and max."""
    with _connect(spec) as conn:
        columns = _columns(conn, spec, schema, table)
        parts = ["count(*)"]
        for name, kind in columns:
            col = _quote(name)
            ordered = not any(marker in kind for marker in _NO_ORDER)
            parts += [
                f"count(*) - count({col})",
                f"count(distinct {col})",
                f"min({col})" if ordered else "null",
                f"max({col})" if ordered else "null",
            ]
        row = conn.execute(f"select {', '.join(parts)} from {_quote(schema)}.{_quote(table)}").fetchone()
    stats = []
    for i, (name, kind) in enumerate(columns):
        nulls, distinct, low, high = row[1 + 4 * i : 5 + 4 * i]
        stats.append(
            {
                "name": name,
                "type": kind,
                "nulls": int(nulls),
                "distinct": int(distinct),
                "min": _value(low),
                "max": _value(high),
            }
        )
    return {"rows": int(row[0]), "columns": stats}
