"""Reads of a connection beyond its spec entry: its sync history (Dagster's run storage, through the
bridge) and its pending schema changes (the applied and last discovered catalogs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dalgo_api import bridge
from dalgo_api.runs import services as runs
from dalgo_core.connectors import changes
from dalgo_core.spec import ConnectionSpec

# materialization metadata holding a stream's records loaded, then read: an embedded sync loads every
# record it reads (one number); an Airbyte server counts both
LOADED_KEYS = ("rows_loaded", "airbyte/records_synced")
READ_KEYS = ("airbyte/records_emitted", "rows_loaded")


def _first_int(metadata: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    return next((metadata[k] for k in keys if isinstance(metadata.get(k), int)), None)


def sync_out(slug: str, connection: ConnectionSpec, run: bridge.RunInfo, out: dict[str, Any]) -> dict[str, Any]:
    """One sync of the connection: the run (``out``: as ``runs.run_outs`` shows it), and the records each
    of its streams loaded."""
    found = bridge.materializations(slug, run)
    streams = [
        {
            "stream": s.name,
            "records": _first_int(found[key], LOADED_KEYS),
            "records_read": _first_int(found[key], READ_KEYS),
        }
        for s in connection.streams
        if (key := f"{connection.name}/{s.name}") in found
    ]
    counts = [s["records"] for s in streams if s["records"] is not None]
    started, ended = out["started_at"], out["ended_at"]
    return {
        **{k: out[k] for k in ("run_id", "status", "state", "trigger", "created_at", "started_at", "ended_at")},
        "duration_seconds": (ended - started).total_seconds() if started and ended else None,
        "records": sum(counts) if counts else None,
        "streams": streams,
        "logs": f"/api/runs/{run.run_id}/logs",
        "dagit_url": out["dagit_url"],
    }


def history(slug: str, connection: ConnectionSpec, limit: int, cursor: str | None) -> dict[str, Any]:
    """A page of the connection's syncs, newest first: every run that synced one of its streams."""
    keys = [f"{connection.name}/{s.name}" for s in connection.streams]
    found, next_cursor = bridge.runs_of_assets(slug, keys, limit, cursor)
    syncs = [sync_out(slug, connection, r, out) for r, out in zip(found, runs.run_outs(slug, found), strict=True)]
    return {"syncs": syncs, "next_cursor": next_cursor}


def schema_changes(slug: str, connection: ConnectionSpec) -> dict[str, Any]:
    """The changes of the source not applied to the connection, from its last discover (a sync's or a
    refresh's)."""
    applied = changes.load_applied(slug, connection.name)
    discovered = changes.load_discovered(slug, connection.name)
    pending = []
    if applied is not None and discovered is not None:
        pending = changes.diff(applied, discovered.streams, [s.name for s in connection.streams])
    return {
        "policy": connection.schema_change_policy,
        "discovered_at": datetime.fromisoformat(discovered.at) if discovered and discovered.at else None,
        "held": bool(pending) and connection.schema_change_policy == "pause",
        "changes": [c.as_dict() for c in pending],
    }
