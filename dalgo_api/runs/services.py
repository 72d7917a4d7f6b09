"""What the asset and run endpoints do, on top of ``dalgo_api.dagster_bridge``: validate selections
against the organization's assets, tag and launch runs, and turn Dagster's records into API answers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from dalgo_api import dagster_bridge as bridge
from dalgo_api.errors import ApiError
from dalgo_assets.spec import OrgSpec

TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
STATES = {
    "QUEUED": "queued",
    "NOT_STARTED": "queued",
    "STARTING": "running",
    "STARTED": "running",
    "CANCELING": "running",
    "SUCCESS": "succeeded",
    "FAILURE": "failed",
    "CANCELED": "cancelled",
}


# --- assets ----------------------------------------------------------------------------------------


def asset_kind(spec: OrgSpec, node: bridge.AssetNode) -> str:
    """Ingestion stream, dbt model, an external source, or other: from the key's namespace in the spec."""
    namespace = node.key.split("/", 1)[0]
    if namespace in {c.name for c in spec.connections}:
        return "ingestion"
    if namespace in {p.name for p in spec.dbt_projects}:
        return "dbt"
    return "other" if node.materializable else "source"


def asset_out(spec: OrgSpec, node: bridge.AssetNode) -> dict[str, Any]:
    return {
        "key": node.key,
        "group": node.group,
        "kind": asset_kind(spec, node),
        "kinds": node.kinds,
        "materializable": node.materializable,
        "last_materialization": node.last_materialization,
        "freshness": node.freshness,
        "checks": node.checks,
    }


def asset_dagit_url(slug: str, key: str) -> str:
    return f"{bridge.dagit_url()}/assets/{quote(slug)}/{quote(key)}"


def find_asset(slug: str, key: str) -> bridge.AssetNode:
    for node in bridge.asset_nodes(slug):
        if node.key == key:
            return node
    raise ApiError(404, f"asset '{key}' not found in organization '{slug}'")


def check_selection(slug: str, keys: Sequence[str]) -> list[str]:
    """The selection, de-duplicated, if every key is a materializable asset of the organization;
    otherwise 422 naming the keys that are not."""
    nodes = {n.key: n for n in bridge.asset_nodes(slug)}
    unknown = [k for k in keys if k not in nodes]
    external = [k for k in keys if k in nodes and not nodes[k].materializable]
    errors = [{"field": "body.assets", "message": f"unknown asset key '{k}'"} for k in unknown]
    errors += [{"field": "body.assets", "message": f"'{k}' is an external source: it cannot be run"} for k in external]
    if errors:
        names = ", ".join(f"'{k}'" for k in unknown + external)
        raise ApiError(422, f"assets: organization '{slug}' has no runnable asset {names}", errors)
    return list(dict.fromkeys(keys))


# --- runs ------------------------------------------------------------------------------------------


def run_tags(user_email: str, trigger: str, **extra: str) -> dict[str, str]:
    return {bridge.USER_TAG: user_email, bridge.TRIGGER_TAG: trigger, **extra}


def _time(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, tz=UTC) if ts else None


def run_out(slug: str, record: Any, *, detail: bool = False) -> dict[str, Any]:
    """A run as the API shows it; ``detail`` adds the queue position and reason and the error."""
    run = record.dagster_run
    status = run.status.value
    out = {
        "run_id": run.run_id,
        "status": status,
        "state": STATES.get(status, "running"),
        "job": run.job_name,
        "trigger": run.tags.get(bridge.TRIGGER_TAG),
        "user": run.tags.get(bridge.USER_TAG),
        "pipeline": run.tags.get(bridge.PIPELINE_TAG),
        "assets": sorted(
            k for k in (bridge.relative_key(slug, a.path) for a in run.asset_selection or ()) if k is not None
        )
        or None,
        "created_at": record.create_timestamp,
        "started_at": _time(record.start_time),
        "ended_at": _time(record.end_time),
        "dagit_url": f"{bridge.dagit_url()}/runs/{run.run_id}",
    }
    if detail and out["state"] == "queued":
        out["queue"] = {"position": bridge.queue_position(run.run_id), "reason": bridge.waiting_reason(slug, run)}
    if detail and status == "FAILURE":
        out["error"] = bridge.run_error(run.run_id)
    return out


def get_run(slug: str, run_id: str) -> Any:
    record = bridge.run_for_org(slug, run_id)
    if record is None:
        raise ApiError(404, f"run '{run_id}' not found in organization '{slug}'")
    return record


def launched(slug: str, run_id: str) -> dict[str, Any]:
    return run_out(slug, get_run(slug, run_id), detail=True)


# --- logs ------------------------------------------------------------------------------------------


def event_out(slug: str, record: Any) -> dict[str, Any]:
    entry = record.event_log_entry
    event = entry.dagster_event
    out = {
        "timestamp": entry.timestamp,
        "level": _level(entry.level),
        "type": event.event_type_value if event else None,
        "step": entry.step_key,
        "message": (event.message if event and event.message else None) or entry.user_message or "",
    }
    if event is not None:
        if event.asset_key is not None:
            out["asset"] = bridge.relative_key(slug, event.asset_key.path)
        data = event.event_specific_data
        if event.event_type_value == "LOGS_CAPTURED":
            out["file_key"] = getattr(data, "file_key", None)
        error = getattr(data, "error", None)
        if error is not None:
            out["message"] = f"{out['message']}\n{error.message}".strip()
    return out


def _level(level: int) -> str:
    import logging

    return logging.getLevelName(level) if isinstance(level, int) else str(level)
