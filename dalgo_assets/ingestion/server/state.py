"""The Airbyte ids ``dalgo airbyte apply`` recorded for an organization.

Definitions must load without calling Airbyte, so the id of each connection comes from the spec
(``airbyte_connection_id``) or from this file, ``$DALGO_HOME/<org>/airbyte/connections.json``, written by
``apply``. The file names the server and workspace it belongs to; ids recorded for another workspace are
ignored, so pointing an organization at a new Airbyte never syncs a stranger's connection.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dalgo_core import layout
from dalgo_core.spec import ConnectionSpec, OrgSpec


class AirbyteStateError(Exception):
    """The recorded Airbyte ids cannot be read."""


def state_path(spec: OrgSpec) -> Path:
    return spec.state_dir() / "airbyte" / "connections.json"


def _server_of(spec: OrgSpec) -> dict[str, str]:
    assert spec.ingestion.server is not None
    return {"url": spec.ingestion.server.url.rstrip("/"), "workspace_id": spec.ingestion.server.workspace_id}


def read_state(spec: OrgSpec) -> dict[str, Any]:
    """The recorded ids for the spec's current workspace: ``{destination_id, connections: {name: {...}}}``."""
    path = state_path(spec)
    try:
        data = json.loads(layout.read_org_file(path))
    except FileNotFoundError:
        return {"connections": {}}
    except (OSError, ValueError) as exc:  # layout.OutsideRoot included
        raise AirbyteStateError(f"organization '{spec.slug}': cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or {k: data.get(k) for k in ("url", "workspace_id")} != _server_of(spec):
        return {"connections": {}}
    data.setdefault("connections", {})
    return data


def write_state(spec: OrgSpec, state: dict[str, Any]) -> Path:
    """Write atomically: a code location loading meanwhile sees the old file or the new one."""
    data = json.dumps({**state, **_server_of(spec)}, indent=2, sort_keys=True).encode()
    return layout.write_org_file(state_path(spec), data)


def connection_id(spec: OrgSpec, conn: ConnectionSpec, state: dict[str, Any] | None = None) -> str | None:
    """The Airbyte connection id of a declared connection: the spec's, else the one apply recorded."""
    if conn.airbyte_connection_id:
        return conn.airbyte_connection_id
    recorded = (state if state is not None else read_state(spec))["connections"].get(conn.name) or {}
    return recorded.get("connection_id")
