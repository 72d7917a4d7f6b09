"""The column kind of a JSON-schema property: how a stream's field is typed in a warehouse, and what a
schema change compares (a field whose kind changed is a retyped column)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

INTEGER, NUMBER, BOOLEAN, STRING = "integer", "number", "boolean", "string"
TIMESTAMP_TZ, TIMESTAMP, DATE, JSON = "timestamp_tz", "timestamp", "date", "json"


def column_kind(prop: Mapping[str, Any]) -> str:
    """The column kind of one JSON-schema property (unions and untyped values become JSON)."""
    if not isinstance(prop, Mapping) or "oneOf" in prop or "anyOf" in prop:
        return JSON
    raw = prop.get("type")
    types = {raw} if isinstance(raw, str) else set(raw or [])
    types.discard("null")
    if types == {"integer", "number"}:
        types = {"number"}
    if len(types) != 1:
        return JSON
    (kind,) = types
    airbyte_type = prop.get("airbyte_type")
    if kind == "integer" or (kind == "number" and airbyte_type == "integer"):
        return INTEGER
    if kind in (NUMBER, BOOLEAN):
        return kind
    if kind == "string":
        fmt = prop.get("format")
        if fmt == "date-time":
            return TIMESTAMP if airbyte_type == "timestamp_without_timezone" else TIMESTAMP_TZ
        if fmt == "date":
            return DATE
        return STRING
    return JSON
