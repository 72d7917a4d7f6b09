"""An organization's code location as the webserver and the daemon see it: reloading it, waiting for the
daemon to know it, and the concurrency pools its runs use."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable

from dalgo_api.bridge.transport import (
    RETRY_AFTER_SECONDS,
    DagsterRejected,
    DagsterUnavailable,
    graphql,
    instance,
    storage_call,
)
from dalgo_api.errors import ApiError
from dalgo_core.names import REPOSITORY, automation_sensor_name, location_name

# reloading a location starts a new code server process that imports the organization's definitions
RELOAD_TIMEOUT_SECONDS = float(os.environ.get("DALGO_DAGSTER_RELOAD_TIMEOUT_SECONDS", "300"))
# how long a launch waits for the daemon to load a new organization's code location (see wait_for_daemon)
DAEMON_WAIT_SECONDS = float(os.environ.get("DALGO_DAGSTER_DAEMON_WAIT_SECONDS", "180"))

logger = logging.getLogger(__name__)

RELOAD = """
mutation($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name) {
  __typename ... on WorkspaceLocationEntry { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } }
  ... on PythonError { message } ... on RepositoryLocationNotFound { message } ... on UnauthorizedError { message } } }
"""
RELOAD_WORKSPACE = """mutation { reloadWorkspace { __typename ... on PythonError { message } } }"""


def reload_location(slug: str, *, longer: float = 0.0) -> None:
    """Make the webserver reload the organization's code location (its spec changed). A location the
    webserver does not know yet (a new organization) makes it re-read the whole workspace file.
    A location that loads with an error is reported as ``DagsterRejected`` with Dagster's message.
    ``longer``: seconds more to wait (the location's code server waits for manifests dbt is preparing).
    (Through the plain GraphQL transport: the GraphQL client reports a webserver that is down as a
    query error, which would read as a refusal rather than as Dagster being unavailable.)"""
    name = location_name(slug)
    timeout = RELOAD_TIMEOUT_SECONDS + longer
    result = graphql(RELOAD, {"name": name}, timeout=timeout)["reloadRepositoryLocation"]
    if result["__typename"] == "RepositoryLocationNotFound":
        reload_workspace()
        return
    if result["__typename"] != "WorkspaceLocationEntry":
        raise DagsterRejected(f"reloading {name} failed: {result.get('message') or result['__typename']}")
    loaded = result.get("locationOrLoadError") or {}
    if loaded.get("__typename") == "PythonError":
        raise DagsterRejected(f"code location {name} does not load: {loaded.get('message', '').strip()}")


def reload_workspace() -> None:
    """Make the webserver re-read its workspace file (organizations were added or removed)."""
    result = graphql(RELOAD_WORKSPACE, timeout=RELOAD_TIMEOUT_SECONDS)["reloadWorkspace"]
    if result["__typename"] == "PythonError":
        raise DagsterRejected(f"reloading the workspace failed: {result.get('message', '').strip()}")


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


def forget_location(slug: str) -> None:
    """The organization's location is gone (deleted): a location of that name is new again."""
    _daemon_locations.discard(location_name(slug))


def _code_server_answers(port: int) -> bool:
    from dagster._grpc.client import DagsterGrpcClient  # noqa: TID251 - no public client for a code server's ping

    try:
        DagsterGrpcClient(port=port, host="127.0.0.1").ping("dalgo")
    except Exception:  # not listening yet, or starting
        return False
    return True


LOCATION_ENTRY = """
query($name: String!) { workspaceLocationEntryOrError(name: $name) { __typename
  ... on WorkspaceLocationEntry { loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } }
"""
# a code server the webserver lists but cannot reach yet: on Kubernetes, a pod still starting
UNREACHABLE = ("UNAVAILABLE", "Could not reach user code server", "failed to connect")


def _location_state(name: str) -> str:
    """``absent``, ``loaded``, ``starting`` (listed, its code server not reachable yet) or ``failed``."""
    entry = graphql(LOCATION_ENTRY, {"name": name})["workspaceLocationEntryOrError"]
    if not entry or entry["__typename"] != "WorkspaceLocationEntry":
        return "absent"
    loaded = entry.get("locationOrLoadError") or {}
    if loaded.get("__typename") == "PythonError":
        return "starting" if any(text in loaded.get("message", "") for text in UNREACHABLE) else "failed"
    return "loaded" if loaded else "starting"


def not_serving(slug: str) -> ApiError:
    """The API's answer when the organization's code location serves no repository: 503 saying whether
    Dagster is still loading it (the platform starting, a reload, a code server restarting), does not list
    it yet, or failed to load it (Dagster's error is for operators, in Dagit: it can name host paths)."""
    state = _location_state(location_name(slug))
    if state == "failed":  # waiting does not help: no Retry-After
        return ApiError(
            503, f"organization '{slug}': its code location does not load; an operator can see why in Dagit"
        )
    # starting, not listed yet, or loaded since the read that found no repository
    why = (
        "Dagster has not loaded its code location yet" if state == "absent" else "Dagster is loading its code location"
    )
    return ApiError(503, f"organization '{slug}': {why}; try again in a few seconds", retry_after=RETRY_AFTER_SECONDS)


def _reload_until(slug: str, done: set[str], what: str) -> None:
    """Make the webserver re-read its workspace until the organization's location is in one of the
    ``done`` states. On one host the first pass does it; on Kubernetes the controller first starts the
    code server and rewrites the workspace ConfigMap, which the kubelet then refreshes in the webserver's
    pod (``dalgo_ops.k8s``). With Dagster down the organization stays as it is: Dagster reads the
    workspace when it starts."""
    name = location_name(slug)
    deadline = time.monotonic() + RELOAD_TIMEOUT_SECONDS
    pause = 1.0  # doubling up to 15 s: each pass reloads every location of the webserver
    try:
        while True:
            reload_workspace()
            state = _location_state(name)
            if state in done:
                return
            if time.monotonic() > deadline:
                logger.warning("organization %s %s; its location is still %s in Dagster", slug, what, state)
                return
            time.sleep(pause)
            pause = min(pause * 2, 15.0)
    except (DagsterUnavailable, DagsterRejected) as exc:
        logger.warning("organization %s %s; Dagster did not reload its workspace: %s", slug, what, exc)


def add_location(slug: str, port: int | None) -> None:
    """A new organization: once its code server answers (``port``, under ``dalgo serve``, whose
    supervisor starts it when the workspace gains it), the webserver re-reads the workspace and loads
    the location. The daemon re-reads the workspace within a minute; the first run waits for it
    (``wait_for_daemon``)."""
    deadline = time.monotonic() + RELOAD_TIMEOUT_SECONDS
    while port is not None and not _code_server_answers(port):
        if time.monotonic() > deadline:
            logger.warning("organization %s: its code server on port %s did not answer", slug, port)
            break
        time.sleep(0.5)
    _reload_until(slug, {"loaded", "failed"}, "created")


def remove_location(slug: str) -> None:
    """The organization was deleted and its workspace entry removed: the webserver drops its location
    now (the daemon re-reads the same workspace file within a minute)."""
    forget_location(slug)
    _reload_until(slug, {"absent"}, "deleted")


def ensure_pools(pools: Iterable[str]) -> None:
    """Give pools their limit (the instance's ``default_limit``) before a run needs them. The run queue
    only counts pools it knew when its pass started, so two runs queued together on a pool nobody
    used yet would otherwise both start."""
    from sqlalchemy.exc import IntegrityError

    storage = instance().event_log_storage
    # Only pools without a row: on PostgreSQL, initializing an existing pool fails its transaction.
    for pool in set(pools) - storage_call(storage.get_concurrency_keys):
        try:
            storage_call(storage.initialize_concurrency_limit_to_default, pool)
        except DagsterUnavailable as exc:
            if not isinstance(exc.__cause__, IntegrityError):  # a concurrent first launch created it
                raise
