"""A discovered stream in the Airbyte protocol's shape (``AirbyteStream``: ``name``, ``json_schema``,
``supported_sync_modes``, ``source_defined_cursor``, ``default_cursor_field``,
``source_defined_primary_key``), from a connector's ``discover`` or from an Airbyte server's
configuration API (camelCase: ``jsonSchema``, ``supportedSyncModes``, ...)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_FROM_SERVER = {
    "jsonSchema": "json_schema",
    "supportedSyncModes": "supported_sync_modes",
    "sourceDefinedCursor": "source_defined_cursor",
    "defaultCursorField": "default_cursor_field",
    "sourceDefinedPrimaryKey": "source_defined_primary_key",
}


def protocol_stream(stream: Mapping[str, Any]) -> dict[str, Any]:
    """The stream with the protocol's keys, whichever API it came from."""
    out = {_FROM_SERVER.get(k, k): v for k, v in stream.items()}
    return {
        "name": str(out.get("name")),
        "json_schema": dict(out.get("json_schema") or {}),
        "supported_sync_modes": list(out.get("supported_sync_modes") or ["full_refresh"]),
        "source_defined_cursor": bool(out.get("source_defined_cursor") or False),
        "default_cursor_field": list(out.get("default_cursor_field") or []),
        "source_defined_primary_key": [list(k) for k in out.get("source_defined_primary_key") or []],
        **({"namespace": out["namespace"]} if out.get("namespace") else {}),
    }
