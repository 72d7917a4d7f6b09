"""Data statistics (``/api/warehouse/tables/{schema}/{table}/...``), behind the DATA_STATISTICS flag:
a table's first rows and per-column statistics from the organization's warehouse."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from dalgo_api.accounts.auth import has_permission
from dalgo_api.errors import ApiError
from dalgo_api.explore import statistics as stats
from dalgo_api.orgs.flags import flags_for
from dalgo_api.specs import store as specs

explore = Router(tags=["data statistics"])
FLAG = "DATA_STATISTICS"
IDENT = r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$"


class ColumnOut(Schema):
    name: str
    type: str


class PreviewOut(Schema):
    columns: list[ColumnOut]
    rows: list[list[Any]]


class ColumnStatsOut(Schema):
    name: str
    type: str
    nulls: int
    distinct: int
    min: Any = None
    max: Any = None


class StatisticsOut(Schema):
    rows: int
    columns: list[ColumnStatsOut]


class PreviewQuery(Schema):
    limit: int = Field(50, ge=1, le=stats.MAX_PREVIEW_ROWS)


def _flagged(request: HttpRequest) -> str:
    org = request.auth.org
    if not flags_for(org).get(FLAG):
        raise ApiError(403, f"data statistics are not enabled for organization '{org.slug}' (feature flag {FLAG})")
    return org.slug


def _names(schema: str, table: str) -> None:
    import re

    bad = [n for n in (schema, table) if not re.match(IDENT, n)]
    if bad:
        raise ApiError(422, f"not a table name: {', '.join(repr(b) for b in bad)}")


@explore.get(
    "/tables/{schema_name}/{table}/preview", response=PreviewOut, auth=has_permission(["can_view_warehouse_data"])
)
def table_preview(request: HttpRequest, schema_name: str, table: str, params: Query[PreviewQuery]) -> dict:
    """The table's first ``limit`` rows."""
    slug = _flagged(request)
    _names(schema_name, table)
    return stats.preview(specs.load_spec(slug), schema_name, table, params.limit)


@explore.get(
    "/tables/{schema_name}/{table}/statistics",
    response=StatisticsOut,
    auth=has_permission(["can_view_warehouse_data"]),
)
def table_statistics(request: HttpRequest, schema_name: str, table: str) -> dict:
    """Row count, and per column: nulls, distinct values, min and max."""
    slug = _flagged(request)
    _names(schema_name, table)
    return stats.statistics(specs.load_spec(slug), schema_name, table)
