"""What the asset and run endpoints do, on top of ``dalgo_api.bridge``: validate selections
against the organization's assets, tag and launch runs, and turn Dagster's records into API answers."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from dalgo_api import bridge
from dalgo_api.errors import ApiError
from dalgo_api.runs.schemas import RunOut
from dalgo_api.specs import store as specs
from dalgo_core.names import PIPELINE_TAG, TRIGGER_TAG, USER_TAG
from dalgo_core.spec import OrgSpec, selection_matches

logger = logging.getLogger(__name__)

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
        "warnings": node.warnings,
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
    runnable = bridge.asset_keys(slug)
    unknown = [k for k in keys if k not in runnable]
    external = [k for k in keys if k in runnable and not runnable[k]]
    errors = [{"field": "body.assets", "message": f"unknown asset key '{k}'"} for k in unknown]
    errors += [{"field": "body.assets", "message": f"'{k}' is an external source: it cannot be run"} for k in external]
    if errors:
        names = ", ".join(f"'{k}'" for k in unknown + external)
        raise ApiError(422, f"assets: organization '{slug}' has no runnable asset {names}", errors)
    return list(dict.fromkeys(keys))


# --- runs ------------------------------------------------------------------------------------------


def run_tags(user_email: str, trigger: str, **extra: str) -> dict[str, str]:
    return {USER_TAG: user_email, TRIGGER_TAG: trigger, **extra}


def _time(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, tz=UTC) if ts else None


@dataclass(frozen=True)
class _Shown:
    """What showing the organization's runs needs besides each run: read once per answer."""

    dagit_url: str
    freshness: tuple[tuple[str, tuple[str, ...]], ...]  # its freshness pipelines and their selections


def _shown(slug: str) -> _Shown:
    try:
        version = specs.org_spec_path(slug).stat().st_mtime_ns
    except FileNotFoundError:
        freshness: tuple[tuple[str, tuple[str, ...]], ...] = ()
    else:
        freshness = _freshness_selections(slug, version)
    return _Shown(bridge.dagit_url(), freshness)


def run_out(slug: str, run: bridge.RunInfo, *, detail: bool = False, shown: _Shown | None = None) -> dict[str, Any]:
    """A run as the API shows it; ``detail`` adds the queue position and reason and the error."""
    shown = shown or _shown(slug)
    out = {
        "run_id": run.run_id,
        "status": run.status,
        "state": STATES.get(run.status, "running"),
        "job": run.job,
        "trigger": run.trigger,
        "user": run.tags.get(USER_TAG),
        "pipeline": run.tags.get(PIPELINE_TAG) or _automation_pipeline(shown, run),
        "assets": run.assets,
        "created_at": run.created_at,
        "started_at": _time(run.started_at),
        "ended_at": _time(run.ended_at),
        "dagit_url": f"{shown.dagit_url}/runs/{run.run_id}",
    }
    if detail and out["state"] == "queued":
        out["queue"] = {"position": bridge.queue_position(run.run_id), "reason": bridge.waiting_reason(slug, run)}
    if detail and run.status == "FAILURE":
        out["error"] = bridge.run_error(run.run_id)
    return out


def run_outs(slug: str, runs: Sequence[bridge.RunInfo]) -> list[dict[str, Any]]:
    """A page of runs as the API shows them."""
    shown = _shown(slug)
    return [run_out(slug, run, shown=shown) for run in runs]


@functools.lru_cache(maxsize=512)
def _freshness_selections(slug: str, spec_version: int) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The organization's freshness pipelines and their selections, read once per spec version."""
    return tuple((p.name, tuple(p.assets)) for p in specs.load_spec(slug).pipelines if p.freshness)


def _automation_pipeline(shown: _Shown, run: bridge.RunInfo) -> str | None:
    """An automation run serves the freshness targets among its assets (one sensor keeps every target
    of the organization): the pipelines they belong to, comma-separated."""
    if run.trigger != "automation" or not run.assets or not shown.freshness:
        return None
    paths = [a.split("/") for a in run.assets]
    names = [
        name
        for name, patterns in shown.freshness
        if any(selection_matches(p, path) for p in patterns for path in paths)
    ]
    return ",".join(names) or None


def keep_recent_runs() -> None:
    """Read every organization's newest runs as an API server process starts (``bridge.recent_runs``);
    a failure is logged: the lists are then read when first asked."""
    from django.db import close_old_connections

    from dalgo_api.orgs.models import Org

    try:
        bridge.keep_recent_runs(list(Org.objects.values_list("slug", flat=True)))
    except Exception:
        logger.warning("reading the organizations' newest runs at start failed", exc_info=True)
    finally:
        close_old_connections()


def get_run(slug: str, run_id: str) -> bridge.RunInfo:
    run = bridge.run_for_org(slug, run_id)
    if run is None:
        raise ApiError(404, f"run '{run_id}' not found in organization '{slug}'")
    return run


def launched(slug: str, run_id: str) -> dict[str, Any]:
    return run_out(slug, get_run(slug, run_id), detail=True)


def launched_answer(
    slug: str,
    run_id: str,
    *,
    tags: dict[str, str],
    assets: Sequence[str] | None = None,
    job: str = bridge.ASSET_JOB,
    created_at: datetime | None = None,
) -> RunOut:
    """The answer for a run this API launched (of ``assets``, or of the pipeline ``job``): ``launched``,
    read back from Dagster. When reading it back or building the answer fails, the failure is logged and
    the answer is what the launch knows (Dagster queued the run: ``QUEUED``; a pipeline's assets are
    ``None``), never an error for a run that was launched."""
    try:
        return RunOut.model_validate(launched(slug, run_id))
    except Exception:
        logger.warning(
            "organization %s: run %s launched; answering without reading it back", slug, run_id, exc_info=True
        )
    return RunOut(
        run_id=run_id,
        status="QUEUED",
        state="queued",
        job=job,
        trigger=tags.get(TRIGGER_TAG),
        user=tags.get(USER_TAG),
        pipeline=tags.get(PIPELINE_TAG),
        assets=sorted(set(assets)) if assets is not None else None,
        created_at=created_at or datetime.now(tz=UTC),
        started_at=None,
        ended_at=None,
        dagit_url=f"{bridge.dagit_url()}/runs/{run_id}",
    )


# --- logs ------------------------------------------------------------------------------------------


def event_out(event: bridge.RunEvent) -> dict[str, Any]:
    out = {
        "timestamp": event.timestamp,
        "level": event.level,
        "type": event.type,
        "step": event.step,
        "message": event.message,
    }
    if event.asset is not None:
        out["asset"] = event.asset
    if event.file_key is not None:
        out["file_key"] = event.file_key
    return out
