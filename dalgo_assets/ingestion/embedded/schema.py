"""Typed columns from a stream's JSON schema, and the conversion of records into typed rows.

Like Airbyte's "Destinations V2" final tables: one typed column per top-level property, plus
``_airbyte_raw_id``, ``_airbyte_extracted_at`` and ``_airbyte_meta``. A value that does not fit its
column's type is NULLed and the change recorded in ``_airbyte_meta`` (instead of failing the sync),
so one bad record never blocks a connection. Typing happens once, here, in Python, so every warehouse
loader receives the same validated values.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson

# Column kinds (shared with the schema-change comparison), mapped to a warehouse type by each loader's dialect.
from dalgo_core.connectors.types import (
    BOOLEAN,
    DATE,
    INTEGER,
    JSON,
    NUMBER,
    STRING,
    TIMESTAMP,
    TIMESTAMP_TZ,
    column_kind,
)

RAW_ID, EXTRACTED_AT, META = "_airbyte_raw_id", "_airbyte_extracted_at", "_airbyte_meta"
EMPTY_META = '{"changes":[]}'

_BAD = object()  # a value that does not fit its column


@dataclass(frozen=True)
class Column:
    name: str  # the warehouse column (lower-cased property name)
    source: str  # the record's property
    kind: str


@dataclass(frozen=True)
class StreamTable:
    """Where and how one stream lands: the table, its columns and its sync settings."""

    stream: str
    schema: str
    table: str
    columns: tuple[Column, ...]
    sync_mode: str
    primary_key: tuple[str, ...] = ()  # warehouse column names
    cursor: str | None = None  # warehouse column name

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns] + [RAW_ID, EXTRACTED_AT, META]

    @property
    def kinds(self) -> list[str]:
        return [c.kind for c in self.columns] + [STRING, TIMESTAMP_TZ, JSON]


def columns_from_schema(json_schema: Mapping[str, Any]) -> tuple[Column, ...]:
    """One column per top-level property; names are lower-cased (the first of a clash wins)."""
    columns: dict[str, Column] = {}
    for source, prop in (json_schema.get("properties") or {}).items():
        name = source.lower()
        if name.startswith("_airbyte_") or name in columns:
            continue
        columns[name] = Column(name=name, source=source, kind=column_kind(prop))
    return tuple(columns.values())


# --- value conversion ------------------------------------------------------------------------------


def _integer(v: Any) -> Any:
    if type(v) is int:
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            return _BAD
    return _BAD


def _number(v: Any) -> Any:
    if type(v) in (int, float):
        return v
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return _BAD
    return _BAD


def _boolean(v: Any) -> Any:
    return v if type(v) is bool else _BAD


def _string(v: Any) -> Any:
    return v if type(v) is str else orjson.dumps(v).decode()


def _timestamp_tz(v: Any) -> Any:
    try:
        ts = datetime.fromisoformat(v)
    except (TypeError, ValueError):
        return _BAD
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _timestamp(v: Any) -> Any:
    try:
        return datetime.fromisoformat(v)
    except (TypeError, ValueError):
        return _BAD


def _date(v: Any) -> Any:
    try:
        return date.fromisoformat(v)
    except (TypeError, ValueError):
        ts = _timestamp(v)
        return ts.date() if ts is not _BAD else _BAD


def _json_text(v: Any) -> Any:
    return orjson.dumps(v).decode()


def _json_value(v: Any) -> Any:
    return v


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    INTEGER: _integer,
    NUMBER: _number,
    BOOLEAN: _boolean,
    STRING: _string,
    TIMESTAMP_TZ: _timestamp_tz,
    TIMESTAMP: _timestamp,
    DATE: _date,
}


class RowBuilder:
    """Turns a record's ``data`` into a typed row, in ``StreamTable.column_names`` order.

    ``json_as_text``: JSON values as serialized text (PostgreSQL COPY) or as Python values (NDJSON
    loaders, which serialize the whole row).
    """

    def __init__(self, table: StreamTable, *, json_as_text: bool):
        json_fn = _json_text if json_as_text else _json_value
        self._plan = [(c.source, c.name, _CONVERTERS.get(c.kind, json_fn)) for c in table.columns]
        self._json_as_text = json_as_text
        # _airbyte_raw_id: a random per-sync prefix and a counter, UUID-shaped (uuid4() per row is slow)
        self._id_prefix = str(uuid.uuid4())[:24]
        self._count = 0
        self._last_emitted: int | None = None
        self._extracted_at: datetime | None = None

    def row(self, data: Mapping[str, Any], emitted_at: int | float | None) -> list[Any]:
        values: list[Any] = []
        changes: list[dict[str, str]] | None = None
        for source, name, convert in self._plan:
            v = data.get(source)
            if v is not None:
                v = convert(v)
                if v is _BAD:
                    v = None
                    changes = changes or []
                    changes.append({"field": name, "change": "NULLED", "reason": "DESTINATION_TYPECAST_ERROR"})
            values.append(v)
        if emitted_at != self._last_emitted:
            self._last_emitted = emitted_at
            self._extracted_at = datetime.fromtimestamp((emitted_at or 0) / 1000, UTC)
        if changes is None:
            meta: Any = EMPTY_META if self._json_as_text else {"changes": []}
        else:
            meta = orjson.dumps({"changes": changes}).decode() if self._json_as_text else {"changes": changes}
        self._count += 1
        values += [f"{self._id_prefix}{self._count:012x}", self._extracted_at, meta]
        return values
