"""The only module of the API that talks to Dagster.

Writes (launching and cancelling runs, reloading a code location) and the asset graph go through the
Dagster webserver's GraphQL API (``DALGO_DAGSTER_URL``, default ``http://127.0.0.1:3000``); run lists,
run events and captured stdout/stderr are read straight from the Dagster instance's storage
(``DAGSTER_HOME``), which is several times cheaper than GraphQL for the same rows.

Every function takes the organization's slug and stays inside it: GraphQL queries name its code
location ``org_<slug>``, run reads filter on the ``dagster/code_location`` run tag (which Dagster itself
puts on every run of a location, whoever launched it: this API, Dagit, a sensor or a schedule), and a run
id given by a caller is only used after ``run_for_org`` checked that the run ran in the organization's
code location (a run of another organization is reported exactly like a missing one). When Dagster
cannot be reached, ``DagsterUnavailable`` is raised and the API answers 503.

Records of finished runs no longer change: ``run_for_org`` keeps them in Django's cache
(``dalgo_api.runs.cache``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from dalgo_api.errors import ApiError
from dalgo_api.runs.cache import runs_cache, runs_changed
from dalgo_assets.spec import ORG_TAG, location_name

USER_TAG = "dalgo/user"
TRIGGER_TAG = "dalgo/trigger"
PIPELINE_TAG = "dalgo/pipeline"  # the same as dalgo_assets.automation.schedules.PIPELINE_TAG
LOCATION_TAG = "dagster/code_location"  # set by Dagster on every run created from a code location
LOCATION_PREFIX = location_name("")
REPOSITORY = "__repository__"
ASSET_JOB = "__ASSET_JOB"
DEFAULT_URL = "http://127.0.0.1:3000"
TIMEOUT_SECONDS = float(os.environ.get("DALGO_DAGSTER_TIMEOUT_SECONDS", "30"))
# reloading a location starts a new code server that imports the organization's definitions
RELOAD_TIMEOUT_SECONDS = float(os.environ.get("DALGO_DAGSTER_RELOAD_TIMEOUT_SECONDS", "300"))
# how long a launch waits for the daemon to load a new organization's code location (see wait_for_daemon)
DAEMON_WAIT_SECONDS = float(os.environ.get("DALGO_DAGSTER_DAEMON_WAIT_SECONDS", "180"))
FINISHED_RUN_TTL_SECONDS = 3600


class DagsterUnavailable(ApiError):
    """Dagster (its webserver or its instance storage) cannot be reached: the API answers 503."""

    def __init__(self, detail: str):
        super().__init__(503, f"Dagster is unavailable: {detail}; try again shortly")


class DagsterRejected(ApiError):
    """Dagster answered but refused the request (a launch, cancel or code location error): 409."""

    def __init__(self, detail: str):
        super().__init__(409, detail)


def webserver_url() -> str:
    return os.environ.get("DALGO_DAGSTER_URL", DEFAULT_URL).rstrip("/")


def dagit_url() -> str:
    """Where operators open Dagit (``DALGO_DAGIT_URL``, else the webserver the API talks to)."""
    return os.environ.get("DALGO_DAGIT_URL", webserver_url()).rstrip("/")


# --- GraphQL -----------------------------------------------------------------------------------------

_local = threading.local()


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def graphql(query: str, variables: dict[str, Any] | None = None, *, timeout: float = TIMEOUT_SECONDS) -> dict[str, Any]:
    """Run one GraphQL operation; connection problems and server errors become ``DagsterUnavailable``."""
    url = webserver_url()
    try:
        response = _session().post(
            f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=timeout
        )
    except requests.RequestException as exc:
        raise DagsterUnavailable(f"the Dagster webserver at {url} cannot be reached ({type(exc).__name__})") from exc
    if response.status_code >= 500 or response.status_code in (502, 503, 504):
        raise DagsterUnavailable(f"the Dagster webserver at {url} answered {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise DagsterUnavailable(f"the Dagster webserver at {url} did not answer JSON") from None
    if body.get("errors"):
        raise DagsterRejected("; ".join(e.get("message", "?") for e in body["errors"]))
    return body["data"]


def _python_error(result: dict[str, Any]) -> str:
    message = result.get("message") or result.get("__typename", "error")
    errors = result.get("errors") or []
    return "; ".join([message, *(e.get("message", "") for e in errors)]).strip("; ")


# --- the organization's code location -------------------------------------------------------------

RELOAD = """
mutation($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name) {
  __typename ... on WorkspaceLocationEntry { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } }
  ... on PythonError { message } ... on RepositoryLocationNotFound { message } ... on UnauthorizedError { message } } }
"""
RELOAD_WORKSPACE = """mutation { reloadWorkspace { __typename ... on PythonError { message } } }"""


def reload_location(slug: str) -> None:
    """Make the webserver reload the organization's code location (its spec changed). A location the
    webserver does not know yet (a new organization) makes it re-read the whole workspace file.
    A location that loads with an error is reported as ``DagsterRejected`` with Dagster's message."""
    name = location_name(slug)
    result = graphql(RELOAD, {"name": name}, timeout=RELOAD_TIMEOUT_SECONDS)["reloadRepositoryLocation"]
    if result["__typename"] == "RepositoryLocationNotFound":
        graphql(RELOAD_WORKSPACE, timeout=RELOAD_TIMEOUT_SECONDS)
        return
    if result["__typename"] != "WorkspaceLocationEntry":
        raise DagsterRejected(f"reloading {name} failed: {_python_error(result)}")
    loaded = result.get("locationOrLoadError") or {}
    if loaded.get("__typename") == "PythonError":
        raise DagsterRejected(f"code location {name} does not load: {loaded.get('message', '').strip()}")


# --- assets ----------------------------------------------------------------------------------------

ASSET_NODES = """
query($loc: String!, $repo: String!) {
  repositoryOrError(repositorySelector: {repositoryLocationName: $loc, repositoryName: $repo}) {
    __typename
    ... on Repository { assetNodes {
      assetKey { path } groupName kinds description isMaterializable isExecutable jobNames
      dependencyKeys { path } dependedByKeys { path } tags { key value }
      assetMaterializations(limit: 1) { timestamp runId }
      freshnessStatusInfo { freshnessStatus }
      assetChecksOrError { __typename ... on AssetChecks { checks { name
        executionForLatestMaterialization { status runId timestamp } } } }
    } }
    ... on RepositoryNotFoundError { message } ... on PythonError { message }
  }
}
"""


@dataclass
class AssetNode:
    """One asset of the organization as Dagster sees it, with keys relative to the organization."""

    key: str
    group: str | None
    kinds: list[str]
    description: str | None
    materializable: bool
    upstream: list[str]
    downstream: list[str]
    tags: dict[str, str]
    last_materialization: dict[str, Any] | None
    freshness: str | None
    checks: list[dict[str, Any]] = field(default_factory=list)


def relative_key(slug: str, path: Sequence[str]) -> str | None:
    """``['acme', 'sales', 'orders']`` -> ``'sales/orders'`` for org ``acme``; None outside it."""
    if len(path) < 2 or path[0] != slug:
        return None
    return "/".join(path[1:])


def absolute_path(slug: str, key: str) -> list[str]:
    return [slug, *key.split("/")]


def _node(slug: str, raw: dict[str, Any]) -> AssetNode | None:
    key = relative_key(slug, raw["assetKey"]["path"])
    if key is None:
        return None
    mats = raw.get("assetMaterializations") or []
    checks_raw = raw.get("assetChecksOrError") or {}
    checks = []
    for check in checks_raw.get("checks", []) if checks_raw.get("__typename") == "AssetChecks" else []:
        latest = check.get("executionForLatestMaterialization") or {}
        checks.append({"name": check["name"], "status": latest.get("status"), "run_id": latest.get("runId")})

    def keys(items: Iterable[dict[str, Any]]) -> list[str]:
        found = (relative_key(slug, k["path"]) for k in items)
        return sorted(k for k in found if k is not None)

    return AssetNode(
        key=key,
        group=raw.get("groupName"),
        kinds=list(raw.get("kinds") or []),
        description=raw.get("description"),
        materializable=bool(raw.get("isMaterializable")),
        upstream=keys(raw.get("dependencyKeys") or []),
        downstream=keys(raw.get("dependedByKeys") or []),
        tags={t["key"]: t["value"] for t in raw.get("tags") or []},
        last_materialization=(
            {"timestamp": float(mats[0]["timestamp"]) / 1000, "run_id": mats[0]["runId"]} if mats else None
        ),
        freshness=(raw.get("freshnessStatusInfo") or {}).get("freshnessStatus"),
        checks=checks,
    )


def asset_nodes(slug: str) -> list[AssetNode]:
    """Every asset of the organization's code location (empty if the location has no repository yet)."""
    data = graphql(ASSET_NODES, {"loc": location_name(slug), "repo": REPOSITORY})["repositoryOrError"]
    if data["__typename"] != "Repository":
        return []
    nodes = (_node(slug, raw) for raw in data["assetNodes"])
    return sorted((n for n in nodes if n is not None), key=lambda n: n.key)


# --- launching and cancelling ----------------------------------------------------------------------

LAUNCH = """
mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
  ... on LaunchRunSuccess { run { runId status } }
  ... on PythonError { message } ... on InvalidSubsetError { message }
  ... on RunConfigValidationInvalid { errors { message } } ... on PipelineNotFoundError { message }
  ... on InvalidStepError { invalidStepKey } ... on InvalidOutputError { invalidOutputName }
  ... on RunConflict { message } ... on PresetNotFoundError { message }
  ... on ConflictingExecutionParamsError { message }
  ... on NoModeProvidedError { message } ... on UnauthorizedError { message } } }
"""


def launch_run(
    slug: str,
    *,
    tags: dict[str, str],
    asset_keys: Sequence[str] | None = None,
    job_name: str | None = None,
) -> str:
    """Submit a run of the organization's code location (to the run queue); return its id. Either
    ``asset_keys`` (relative to the organization) or a ``job_name`` of that location."""
    wait_for_daemon(slug)
    selector: dict[str, Any] = {"repositoryLocationName": location_name(slug), "repositoryName": REPOSITORY}
    if asset_keys is not None:
        selector["jobName"] = ASSET_JOB
        selector["assetSelection"] = [{"path": absolute_path(slug, k)} for k in asset_keys]
    else:
        selector["jobName"] = job_name
    all_tags = {**tags, ORG_TAG: slug}
    params = {
        "selector": selector,
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in all_tags.items()]},
    }
    result = graphql(LAUNCH, {"p": params})["launchRun"]
    if result["__typename"] != "LaunchRunSuccess":
        raise DagsterRejected(f"Dagster refused the run: {_python_error(result)}")
    run_id = result["run"]["runId"]
    runs_changed(slug)
    run = _storage_call(instance().get_run_by_id, run_id)
    if run is not None and run.run_op_concurrency is not None:
        ensure_pools(run.run_op_concurrency.all_pools or ())
    return run_id


DAEMON_SEES_LOCATION = """
query($sensor: SensorSelector!) {
  instance { daemonHealth { daemonStatus(daemonType: "QUEUED_RUN_COORDINATOR") { healthy } } }
  sensorOrError(sensorSelector: $sensor) {
    __typename ... on Sensor { sensorState { status ticks(limit: 1) { timestamp } } } }
}
"""
_daemon_locations: set[str] = set()  # locations this process saw the daemon evaluate


def wait_for_daemon(slug: str) -> None:
    """Return once Dagster's daemon has loaded the organization's code location (at most
    ``DAEMON_WAIT_SECONDS``).

    The daemon re-reads the workspace only every 60 s, and its run queue fails a run of a location it
    has not loaded yet at once (``DagsterCodeLocationNotFoundError`` is not one of the user-code errors
    ``max_user_code_failure_retries`` retries). A run requested in the first minute of a new organization
    would fail, so the launch waits until the daemon has evaluated the organization's automation sensor
    (on by default in every location: its first tick comes right after the daemon loads the location).
    No wait when the daemon is not running (the run then waits in the queue), when an operator stopped
    the sensor, or when the location does not load (``launchRun`` reports why)."""
    from dalgo_assets.automation.sensors import automation_sensor_name

    name = location_name(slug)
    if name in _daemon_locations:
        return
    sensor = {"repositoryLocationName": name, "repositoryName": REPOSITORY, "sensorName": automation_sensor_name(slug)}
    deadline = time.monotonic() + DAEMON_WAIT_SECONDS
    while True:
        data = graphql(DAEMON_SEES_LOCATION, {"sensor": sensor})
        found = data["sensorOrError"]
        if found["__typename"] == "Sensor" and found["sensorState"]["ticks"]:
            _daemon_locations.add(name)
            return
        if found["__typename"] != "Sensor" or found["sensorState"]["status"] != "RUNNING":
            return  # the location does not load, or an operator stopped its sensor: nothing to wait for
        daemon_up = data["instance"]["daemonHealth"]["daemonStatus"]["healthy"]
        if not daemon_up or time.monotonic() > deadline:
            return
        time.sleep(1)


def ensure_pools(pools: Iterable[str]) -> None:
    """Give pools their limit (the instance's ``default_limit``) before a run needs them. The run queue
    only counts pools it knew when its pass started, so two runs queued together on a pool nobody
    used yet would otherwise both start."""
    from sqlalchemy.exc import IntegrityError

    storage = instance().event_log_storage
    # Only pools without a row: on PostgreSQL, initializing an existing pool fails its transaction.
    for pool in set(pools) - _storage_call(storage.get_concurrency_keys):
        try:
            _storage_call(storage.initialize_concurrency_limit_to_default, pool)
        except DagsterUnavailable as exc:
            if not isinstance(exc.__cause__, IntegrityError):  # a concurrent first launch created it
                raise


TERMINATE = """
mutation($id: String!) { terminateRun(runId: $id) { __typename
  ... on TerminateRunSuccess { run { runId status } } ... on TerminateRunFailure { message }
  ... on RunNotFoundError { message } ... on PythonError { message } ... on UnauthorizedError { message } } }
"""


def cancel_run(slug: str, run_id: str) -> None:
    """Cancel a queued or running run of the organization."""
    _require_run(slug, run_id)
    result = graphql(TERMINATE, {"id": run_id})["terminateRun"]
    runs_changed(slug)
    if result["__typename"] != "TerminateRunSuccess":
        raise DagsterRejected(f"run {run_id} cannot be cancelled: {_python_error(result)}")


# --- the instance: runs and logs -------------------------------------------------------------------

_instance_lock = threading.Lock()
_instances: dict[str, Any] = {}


def instance() -> Any:
    """The Dagster instance of ``DAGSTER_HOME`` (one per home, kept for the process)."""
    from dagster import DagsterInstance

    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise DagsterUnavailable("DAGSTER_HOME is not set: the API cannot read Dagster's runs")
    with _instance_lock:
        if home not in _instances:
            try:
                _instances[home] = DagsterInstance.from_config(home)
            except Exception as exc:
                raise DagsterUnavailable(f"Dagster's instance at {home} cannot be opened: {exc}") from exc
        return _instances[home]


def _storage_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the instance; a storage failure (database down) is ``DagsterUnavailable``."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return fn(*args, **kwargs)
    except SQLAlchemyError as exc:
        raise DagsterUnavailable(f"Dagster's run storage cannot be read ({type(exc).__name__})") from exc


def run_org(tags: dict[str, str]) -> str | None:
    """The organization whose code location a run ran in (Dagster's ``dagster/code_location`` tag,
    which a launch cannot override), or None for a run of no organization's location. The ``dalgo/org``
    tag is not trusted for this: anyone launching from Dagit may set it."""
    location = tags.get(LOCATION_TAG, "")
    if not location.startswith(LOCATION_PREFIX):
        return None
    return location[len(LOCATION_PREFIX) :] or None


def belongs_to(slug: str, tags: dict[str, str]) -> bool:
    """A run is the organization's if it ran in the organization's code location."""
    return run_org(tags) == slug


def run_for_org(slug: str, run_id: str) -> Any | None:
    """The run's ``RunRecord`` if it exists and belongs to the organization, else None."""
    if not run_id or len(run_id) > 64:
        return None
    record = _run_record(run_id)
    if record is None or not belongs_to(slug, record.dagster_run.tags):
        return None
    return record


def _run_record(run_id: str) -> Any | None:
    """A run's record; a finished run's record no longer changes and is kept in the cache."""
    from dagster import RunsFilter

    cache = runs_cache()
    key = f"run:{run_id}"
    record = cache.get(key)
    if record is None:
        records = _storage_call(instance().get_run_records, RunsFilter(run_ids=[run_id]), limit=1)
        record = records[0] if records else None
        if record is not None and record.dagster_run.is_finished:
            cache.set(key, record, FINISHED_RUN_TTL_SECONDS)
    return record


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


ASSET_SCAN_LIMIT = 5000


def list_runs(slug: str, query: RunQuery) -> tuple[list[Any], str | None]:
    """A page of the organization's runs, newest first, and the cursor of the next page (or None)."""
    from dagster import DagsterRunStatus, RunsFilter

    tags = {LOCATION_TAG: location_name(slug)}
    if query.trigger:
        tags[TRIGGER_TAG] = query.trigger
    if query.pipeline:
        tags[PIPELINE_TAG] = query.pipeline
    filters = RunsFilter(
        tags=tags,
        statuses=[DagsterRunStatus(s) for s in query.statuses],
        created_after=query.created_after,
        created_before=query.created_before,
    )
    inst = instance()
    if query.cursor and run_for_org(slug, query.cursor) is None:
        return [], None
    if query.asset_key is None:
        records = _records_page(inst, filters, query.limit + 1, query.cursor)
    else:
        records = _runs_touching(inst, filters, absolute_path(slug, query.asset_key), query)
    more = len(records) > query.limit
    records = records[: query.limit]
    return records, (records[-1].dagster_run.run_id if more and records else None)


def _records_page(inst: Any, filters: Any, limit: int, cursor: str | None) -> list[Any]:
    """``get_run_records(filters, limit, cursor)`` in two cheap queries. With a tag filter, Dagster's one
    query makes SQLite sort every matching run together with its serialized body before the limit; the
    ids alone sort several times faster, then the page's records are read by id."""
    from dagster import RunsFilter

    ids = _storage_call(inst.get_run_ids, filters, limit=limit, cursor=cursor)
    if not ids:
        return []
    by_id = {r.dagster_run.run_id: r for r in _storage_call(inst.get_run_records, RunsFilter(run_ids=ids))}
    return [by_id[run_id] for run_id in ids if run_id in by_id]


def _runs_touching(inst: Any, filters: Any, path: list[str], query: RunQuery) -> list[Any]:
    """Runs that selected or materialized an asset. Dagster's run storage cannot filter on assets, so
    this scans the organization's recent runs (at most ``ASSET_SCAN_LIMIT``)."""
    from dagster import AssetKey

    key = AssetKey(path)
    found, cursor, scanned = [], query.cursor, 0
    while len(found) <= query.limit and scanned < ASSET_SCAN_LIMIT:
        page = _records_page(inst, filters, 500, cursor)
        if not page:
            break
        scanned += len(page)
        for record in page:
            run = record.dagster_run
            if (run.asset_selection and key in run.asset_selection) or (
                run.asset_selection is None and key in (_planned_assets(inst, run) or ())
            ):
                found.append(record)
        cursor = page[-1].dagster_run.run_id
    return found


def _planned_assets(inst: Any, run: Any) -> set[Any] | None:
    """The assets a job run plans to materialize (from its execution plan snapshot), if known."""
    if not run.execution_plan_snapshot_id:
        return None
    try:
        plan = inst.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    except Exception:
        return None
    keys = set()
    for step in plan.steps:
        for output in step.outputs:
            if output.properties and output.properties.asset_key:
                keys.add(output.properties.asset_key)
    return keys


def run_logs(slug: str, record: Any, cursor: str | None, limit: int) -> tuple[list[Any], str | None, bool]:
    """A page of the event log of a run ``run_for_org`` returned (records, the cursor to pass next
    time, whether more are stored). A client following a running run passes the returned cursor again
    until the run ends and ``has_more`` is false."""
    run_id = record.dagster_run.run_id
    if not belongs_to(slug, record.dagster_run.tags):
        raise ApiError(404, f"run '{run_id}' not found in organization '{slug}'")
    conn = _storage_call(instance().get_records_for_run, run_id, cursor=cursor, limit=limit)
    return list(conn.records), conn.cursor, conn.has_more


def captured_log(slug: str, run_id: str, file_key: str, cursor: str | None, max_bytes: int) -> dict[str, Any]:
    """A chunk of a step's captured stdout/stderr (dbt's and git's output) from the compute log manager."""
    _require_run(slug, run_id)
    manager = instance().compute_log_manager
    data = _storage_call(manager.get_log_data, [run_id, "compute_logs", file_key], cursor=cursor, max_bytes=max_bytes)
    return {
        "stdout": (data.stdout or b"").decode(errors="replace"),
        "stderr": (data.stderr or b"").decode(errors="replace"),
        "cursor": data.cursor,
    }


# --- queue state -----------------------------------------------------------------------------------


def queue_position(run_id: str) -> int | None:
    """1-based position of a queued run in the instance's run queue (oldest first), or None."""
    from dagster import DagsterRunStatus, RunsFilter

    queued = _storage_call(
        instance().get_run_ids, RunsFilter(statuses=[DagsterRunStatus.QUEUED]), limit=1000
    )  # newest first
    return len(queued) - queued.index(run_id) if run_id in queued else None


def waiting_reason(slug: str, run: Any) -> str | None:
    """Why a queued run waits: another run of the organization holding its run slots, or a busy pool
    (one dbt run per dbt project). None if nothing visible holds it (the daemon has not looked yet)."""
    from dagster import DagsterRunStatus, RunsFilter

    inst = instance()
    busy = [
        r
        for r in _storage_call(
            inst.get_runs,
            RunsFilter(
                tags={LOCATION_TAG: location_name(slug)},
                statuses=[DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING],
            ),
            limit=50,
        )
        if r.run_id != run.run_id
    ]
    pools = run_pools(inst, run)
    for pool in sorted(pools):
        holders = [r.run_id for r in busy if pool in run_pools(inst, r)]
        if holders:
            return f"waiting for pool {pool} (held by run {holders[0]})"
    if busy:
        return f"waiting for a run slot of organization '{slug}' ({len(busy)} run(s) in progress)"
    return None


def run_pools(inst: Any, run: Any) -> set[str]:
    """The concurrency pools a run's steps use (from its execution plan snapshot)."""
    if not run.execution_plan_snapshot_id:
        return set()
    try:
        plan = inst.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    except Exception:
        return set()
    return {step.pool for step in plan.steps if getattr(step, "pool", None)}


# --- notifications ---------------------------------------------------------------------------------


def failed_runs_since(updated_after: datetime | None, limit: int = 200) -> list[Any]:
    """Failed runs of every organization updated after a time (oldest first), for notifications."""
    from dagster import DagsterRunStatus, RunsFilter

    records = _storage_call(
        instance().get_run_records,
        RunsFilter(statuses=[DagsterRunStatus.FAILURE], updated_after=updated_after),
        limit=limit,
        ascending=True,
    )
    return [r for r in records if run_org(r.dagster_run.tags)]


def run_error(run_id: str) -> str | None:
    """The error that failed a run: the failed step's error, else the run failure message."""
    from dagster import DagsterEventType

    inst = instance()
    for kind in (DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE, DagsterEventType.ENGINE_EVENT):
        conn = _storage_call(inst.get_records_for_run, run_id, of_type=kind, limit=20)
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
