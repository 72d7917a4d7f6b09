"""An organization's runs: launch and cancel (GraphQL), list and read their event logs and captured
output (the instance's storage), as the API's own ``RunInfo`` and ``RunEvent``.

A run belongs to an organization when it ran in the organization's code location: Dagster's
``dagster/code_location`` tag, which Dagster sets on every run of a location, whoever launched it, and a
launch cannot override. Records of finished runs no longer change and are kept in Django's cache.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dalgo_api.bridge import recent_runs
from dalgo_api.bridge.assets import absolute_path, relative_key
from dalgo_api.bridge.locations import DAEMON_WAIT_SECONDS, ensure_pools, wait_for_daemon
from dalgo_api.bridge.run_records import RunInfo, records_page, run_info
from dalgo_api.bridge.transport import (
    TIMEOUT_SECONDS,
    DagsterRejected,
    DagsterUnavailable,
    client_call,
    graphql,
    instance,
    python_error,
    storage_call,
)
from dalgo_api.errors import ApiError
from dalgo_api.runs.cache import runs_cache, runs_changed
from dalgo_core.names import (
    AUTOMATION_TAG,
    LAUNCH_TAG,
    LOCATION_TAG,
    ORG_TAG,
    PIPELINE_TAG,
    REPOSITORY,
    TRIGGER_TAG,
    location_name,
)

ASSET_JOB = "__ASSET_JOB"
FINISHED_RUN_TTL_SECONDS = 3600
ASSET_SCAN_LIMIT = 5000
# what a Dagster run id can be (a UUID); anything else names no run, and is not looked up or cached
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# the longest ``launch_run`` takes: the daemon wait, its last GraphQL call and the launch's, and a margin
LAUNCH_MAX_SECONDS = DAEMON_WAIT_SECONDS + 2 * TIMEOUT_SECONDS + 60

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunEvent:
    """One entry of a run's event log."""

    timestamp: float
    level: str
    type: str | None
    step: str | None
    message: str
    asset: str | None = None
    file_key: str | None = None


# --- launching and cancelling ----------------------------------------------------------------------


def new_launch_id() -> str:
    """A fresh launch id (the run's ``dalgo/launch`` tag)."""
    return uuid.uuid4().hex


def launch_run(
    slug: str,
    *,
    tags: dict[str, str],
    asset_keys: Sequence[str] | None = None,
    job_name: str | None = None,
    launch_id: str | None = None,
    run_config: dict[str, Any] | None = None,
) -> str:
    """Submit a run of the organization's code location (to the run queue); return its id. Either
    ``asset_keys`` (relative to the organization) or a ``job_name`` of that location (with its
    ``run_config``, if it takes one).

    The run is tagged ``dalgo/launch=<launch_id>`` (a fresh id when none is given): when the webserver
    cannot answer the launch (it accepted it, then the answer was lost), the run is looked up by that tag,
    so a launched run is never reported as not launched. Once Dagster accepted the launch, nothing here
    raises: what follows (the run list cache, preparing the run's pools from the instance storage) is
    logged when it fails, and the run id returned."""
    wait_for_daemon(slug)
    launch_id = launch_id or new_launch_id()
    all_tags = {**tags, ORG_TAG: slug, LAUNCH_TAG: launch_id}
    selection = [absolute_path(slug, k) for k in asset_keys] if asset_keys is not None else None
    try:
        run_id = client_call(
            lambda c: c.submit_job_execution(
                ASSET_JOB if selection is not None else str(job_name),
                repository_location_name=location_name(slug),
                repository_name=REPOSITORY,
                run_config=run_config,
                tags=all_tags,
                asset_selection=selection,
            )
        )
    except DagsterUnavailable:
        run_id = _lost_launch(slug, launch_id)
        if run_id is None:
            raise
    _after_launch(slug, run_id)
    return run_id


def _lost_launch(slug: str, launch_id: str) -> str | None:
    """The run of a launch whose answer did not arrive, if Dagster created it (None when unknown)."""
    try:
        run_id = launched_as(slug, launch_id)
    except Exception:
        logger.warning("organization %s: launch %s may have been lost", slug, launch_id, exc_info=True)
        return None
    if run_id is not None:
        logger.warning("organization %s: run %s was launched, its launch was not answered", slug, run_id)
    return run_id


def _after_launch(slug: str, run_id: str) -> None:
    """What a launch does once Dagster accepted it; a failure is logged, never raised."""
    try:
        runs_changed(slug)
        recent_runs.changed()
        run = storage_call(instance().get_run_by_id, run_id)
        if run is not None and run.run_op_concurrency is not None:
            ensure_pools(run.run_op_concurrency.all_pools or ())
    except Exception:
        logger.warning("organization %s: run %s launched, but reading it back failed", slug, run_id, exc_info=True)


def launched_as(slug: str, launch_id: str) -> str | None:
    """The id of the organization's run tagged ``dalgo/launch=<launch_id>``, or None if there is none."""
    from dagster import RunsFilter

    filters = RunsFilter(tags={LOCATION_TAG: location_name(slug), LAUNCH_TAG: launch_id})
    ids = storage_call(instance().get_run_ids, filters, limit=1)
    return ids[0] if ids else None


REEXECUTE = """
mutation($params: ReexecutionParams!) { launchRunReexecution(reexecutionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } }
  ... on RunConfigValidationInvalid { errors { message } }
  ... on Error { message } } }
"""


def retry_run(slug: str, run_id: str, tags: dict[str, str]) -> str:
    """Run a failed run of the organization again from its failure (Dagster's re-execution: the steps that
    failed or did not run, in a new run with the parent's tags and ``tags``); the new run's id."""
    _require_run(slug, run_id)
    wait_for_daemon(slug)
    all_tags = {**tags, ORG_TAG: slug, LAUNCH_TAG: new_launch_id()}
    params = {
        "parentRunId": run_id,
        "strategy": "FROM_FAILURE",
        "extraTags": [{"key": k, "value": v} for k, v in all_tags.items()],
    }
    result = graphql(REEXECUTE, {"params": params})["launchRunReexecution"]
    if result["__typename"] != "LaunchRunSuccess":
        raise DagsterRejected(f"run {run_id} cannot be retried: {python_error(result)}")
    new_id = result["run"]["runId"]
    _after_launch(slug, new_id)
    return new_id


def cancel_run(slug: str, run_id: str) -> None:
    """Cancel a queued or running run of the organization."""
    _require_run(slug, run_id)
    try:
        client_call(lambda c: c.terminate_run(run_id))
    except DagsterRejected as exc:
        raise DagsterRejected(f"run {run_id} cannot be cancelled: {exc.detail}") from None
    finally:
        runs_changed(slug)
        recent_runs.changed()


# --- reading runs ----------------------------------------------------------------------------------


def run_for_org(slug: str, run_id: str) -> RunInfo | None:
    """The run if it exists and belongs to the organization, else None."""
    if not _RUN_ID.fullmatch(run_id):
        return None
    run = _run(run_id)
    if run is None or run.org != slug:
        return None
    return run


def _run(run_id: str) -> RunInfo | None:
    """A run; a finished run no longer changes and is kept in the cache."""
    from dagster import RunsFilter

    cache = runs_cache()
    key = f"run:{run_id}"
    run = cache.get(key)
    if run is None:
        records = storage_call(instance().get_run_records, RunsFilter(run_ids=[run_id]), limit=1)
        run = run_info(records[0]) if records else None
        if run is not None and run.finished:
            cache.set(key, run, FINISHED_RUN_TTL_SECONDS)
    return run


def wait_for_run(slug: str, run_id: str, timeout: float) -> RunInfo | None:
    """The run once it finished (or as it stands after ``timeout`` seconds); None if not the org's."""
    deadline = time.monotonic() + timeout
    while (run := run_for_org(slug, run_id)) is not None and not run.finished and time.monotonic() < deadline:
        time.sleep(0.5)
    return run


def _require_run(slug: str, run_id: str) -> None:
    """Refuse to touch a run outside the organization (the API checked it already: defence in depth)."""
    if run_for_org(slug, run_id) is None:
        raise ApiError(404, f"run '{run_id}' not found in organization '{slug}'")


@dataclass
class RunQuery:
    statuses: list[str] = field(default_factory=list)
    created_after: datetime | None = None
    created_before: datetime | None = None
    trigger: str | None = None
    pipeline: str | None = None
    asset_key: str | None = None
    limit: int = 20
    cursor: str | None = None

    @property
    def first_page(self) -> bool:
        """The newest runs, no filter: answered from the runs this process keeps (``recent_runs``)."""
        return not (
            self.statuses
            or self.created_after
            or self.created_before
            or self.trigger
            or self.pipeline
            or self.asset_key
            or self.cursor
        )


def list_runs(slug: str, query: RunQuery) -> tuple[list[RunInfo], str | None]:
    """A page of the organization's runs, newest first, and the cursor of the next page (or None)."""
    from dagster import DagsterRunStatus, RunsFilter

    tags = {LOCATION_TAG: location_name(slug)}
    if query.trigger == "automation":  # Dagster's own tag, on every run its automation requested
        tags[AUTOMATION_TAG] = "true"
    elif query.trigger:
        tags[TRIGGER_TAG] = query.trigger
    if query.pipeline:
        tags[PIPELINE_TAG] = query.pipeline
    filters = RunsFilter(
        tags=tags,
        statuses=[DagsterRunStatus(s) for s in query.statuses],
        created_after=query.created_after,
        created_before=query.created_before,
    )
    if query.first_page and (kept := recent_runs.first_page(slug, query.limit)) is not None:
        runs, more = kept
        return runs, (runs[-1].run_id if more and runs else None)
    inst = instance()
    if query.cursor and run_for_org(slug, query.cursor) is None:
        return [], None
    if query.asset_key is None:
        records = records_page(inst, filters, query.limit + 1, query.cursor)
    else:
        records = _runs_touching(inst, filters, [absolute_path(slug, query.asset_key)], query)
    more = len(records) > query.limit
    runs = [run_info(r) for r in records[: query.limit]]
    return runs, (runs[-1].run_id if more and runs else None)


def runs_of_assets(slug: str, keys: Sequence[str], limit: int, cursor: str | None) -> tuple[list[RunInfo], str | None]:
    """A page of the organization's runs that selected one of the assets (keys relative to it), newest
    first, and the cursor of the next page (or None): a connection's syncs, whoever launched them."""
    from dagster import RunsFilter

    if cursor and run_for_org(slug, cursor) is None:
        return [], None
    query = RunQuery(limit=limit, cursor=cursor)
    filters = RunsFilter(tags={LOCATION_TAG: location_name(slug)})
    records = _runs_touching(instance(), filters, [absolute_path(slug, k) for k in keys], query)
    more = len(records) > limit
    runs = [run_info(r) for r in records[:limit]]
    return runs, (runs[-1].run_id if more and runs else None)


def materializations(slug: str, run: RunInfo) -> dict[str, dict[str, Any]]:
    """The metadata of each asset a run of the organization materialized, by key relative to it. A
    finished run's are kept in the cache (they no longer change)."""
    from dagster import DagsterEventType

    if run.org != slug:
        raise ApiError(404, f"run '{run.run_id}' not found in organization '{slug}'")
    cache, key = runs_cache(), f"materializations:{run.run_id}"
    found = cache.get(key) if run.finished else None
    if found is None:
        conn = storage_call(
            instance().get_records_for_run, run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION, limit=1000
        )
        found = {}
        for record in conn.records:
            event = record.event_log_entry.dagster_event
            materialization = event.event_specific_data.materialization if event else None
            asset = relative_key(slug, materialization.asset_key.path) if materialization else None
            if asset is not None:
                found[asset] = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
        if run.finished:
            cache.set(key, found, FINISHED_RUN_TTL_SECONDS)
    return found


def _runs_touching(inst: Any, filters: Any, paths: list[list[str]], query: RunQuery) -> list[Any]:
    """Runs that selected or materialized one of some assets. Dagster's run storage cannot filter on
    assets, so this scans the organization's recent runs (at most ``ASSET_SCAN_LIMIT``)."""
    from dagster import AssetKey

    keys = {AssetKey(path) for path in paths}
    found, cursor, scanned = [], query.cursor, 0
    while len(found) <= query.limit and scanned < ASSET_SCAN_LIMIT:
        page = records_page(inst, filters, 500, cursor)
        if not page:
            break
        scanned += len(page)
        for record in page:
            run = record.dagster_run
            if (run.asset_selection and keys & run.asset_selection) or (
                run.asset_selection is None and keys & (planned_assets(inst, run.execution_plan_snapshot_id) or set())
            ):
                found.append(record)
        cursor = page[-1].dagster_run.run_id
    return found


def execution_plan(inst: Any, snapshot_id: str | None) -> Any | None:
    """A run's execution plan snapshot, if stored."""
    if not snapshot_id:
        return None
    try:
        return inst.get_execution_plan_snapshot(snapshot_id)
    except Exception:
        return None


def planned_assets(inst: Any, snapshot_id: str | None) -> set[Any] | None:
    """The assets a job run plans to materialize (from its execution plan snapshot), if known."""
    plan = execution_plan(inst, snapshot_id)
    if plan is None:
        return None
    return {
        output.properties.asset_key
        for step in plan.steps
        for output in step.outputs
        if output.properties and output.properties.asset_key
    }


# --- logs ------------------------------------------------------------------------------------------


def _event(slug: str, record: Any) -> RunEvent:
    entry = record.event_log_entry
    event = entry.dagster_event
    message = (event.message if event and event.message else None) or entry.user_message or ""
    asset = file_key = None
    if event is not None:
        if event.asset_key is not None:
            asset = relative_key(slug, event.asset_key.path)
        data = event.event_specific_data
        if event.event_type_value == "LOGS_CAPTURED":
            file_key = getattr(data, "file_key", None)
        error = getattr(data, "error", None)
        if error is not None:
            message = f"{message}\n{error.message}".strip()
    level = logging.getLevelName(entry.level) if isinstance(entry.level, int) else str(entry.level)
    return RunEvent(
        timestamp=entry.timestamp,
        level=level,
        type=event.event_type_value if event else None,
        step=entry.step_key,
        message=message,
        asset=asset,
        file_key=file_key,
    )


def run_logs(slug: str, run: RunInfo, cursor: str | None, limit: int) -> tuple[list[RunEvent], str | None, bool]:
    """A page of the event log of a run ``run_for_org`` returned (events, the cursor to pass next time,
    whether more are stored). A client following a running run passes the returned cursor again until
    the run ends and ``has_more`` is false. A cursor this API did not return raises ``ValueError``."""
    if run.org != slug:
        raise ApiError(404, f"run '{run.run_id}' not found in organization '{slug}'")
    conn = storage_call(instance().get_records_for_run, run.run_id, cursor=cursor, limit=limit)
    return [_event(slug, r) for r in conn.records], conn.cursor, conn.has_more


def captured_log(slug: str, run_id: str, file_key: str, cursor: str | None, max_bytes: int) -> dict[str, Any]:
    """A chunk of a step's captured stdout/stderr (dbt's and git's output) from the compute log manager."""
    _require_run(slug, run_id)
    manager = instance().compute_log_manager
    data = storage_call(manager.get_log_data, [run_id, "compute_logs", file_key], cursor=cursor, max_bytes=max_bytes)
    return {
        "stdout": (data.stdout or b"").decode(errors="replace"),
        "stderr": (data.stderr or b"").decode(errors="replace"),
        "cursor": data.cursor,
    }


def run_error(run_id: str) -> str | None:
    """The error that failed a run: the failed step's error, else the run failure message. Asked of
    failed runs only, which no longer change: kept in the cache."""
    cache, key = runs_cache(), f"error:{run_id}"
    found = cache.get(key)
    if found is None:
        found = (_run_error(run_id),)
        cache.set(key, found, FINISHED_RUN_TTL_SECONDS)
    return found[0]


def _run_error(run_id: str) -> str | None:
    from dagster import DagsterEventType

    inst = instance()
    for kind in (DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE, DagsterEventType.ENGINE_EVENT):
        conn = storage_call(inst.get_records_for_run, run_id, of_type=kind, limit=20)
        for record in conn.records:
            entry = record.event_log_entry
            event = entry.dagster_event
            data = getattr(event, "event_specific_data", None) if event else None
            error = getattr(data, "error", None)
            if error is not None:
                return error.message.strip()
            if kind == DagsterEventType.RUN_FAILURE and entry.message:
                return entry.message
    return None
