"""The API's only way to Dagster, a small package with one job per module:

- ``transport``: the webserver's GraphQL API (``DALGO_DAGSTER_URL``) through ``dagster_graphql``'s client
  where it serves, and the instance's storage (``DAGSTER_HOME``) for reads; errors become 503 or 409;
- ``locations``: reloading an organization's code location, the daemon's view of it, pools;
- ``assets``: the organization's asset graph;
- ``runs``: launching (a launch Dagster accepted always returns its run id), cancelling, retrying, listing runs
  and reading their logs (``run_records``: a run as the API's ``RunInfo``; ``recent_runs``: each
  organization's newest runs kept in the process, for the first page of its list);
- ``queue``: why a queued run waits;
- ``signals``: what the alerts watch (ended runs and their checks, freshness state changes, code
  locations that do not load), for every organization at once, from cursors the caller keeps;
- ``observations``: what the platform records of an organization's assets outside runs (schema changes
  found or approved by a task).

Every function takes the organization's slug and stays inside it: GraphQL queries name its code location
``org_<slug>``; run reads filter on Dagster's own ``dagster/code_location`` tag, which a launch cannot
override; a run id given by a caller is used only after ``run_for_org`` checked that the run ran in the
organization's location. Answers are the API's own types (``AssetNode``, ``RunInfo``, ``RunEvent``):
no Dagster object leaves this package.
"""

from dalgo_api.bridge.assets import AssetNode, absolute_path, asset_keys, asset_nodes, relative_key
from dalgo_api.bridge.locations import (
    add_location,
    ensure_pools,
    reload_location,
    remove_location,
    wait_for_daemon,
)
from dalgo_api.bridge.observations import report_observations
from dalgo_api.bridge.queue import queue_position, waiting_reason
from dalgo_api.bridge.recent_runs import warm as keep_recent_runs
from dalgo_api.bridge.runs import (
    ASSET_JOB,
    LAUNCH_MAX_SECONDS,
    RunEvent,
    RunInfo,
    RunQuery,
    cancel_run,
    captured_log,
    launch_run,
    launched_as,
    list_runs,
    materializations,
    new_launch_id,
    retry_run,
    run_error,
    run_for_org,
    run_logs,
    runs_of_assets,
    wait_for_run,
)
from dalgo_api.bridge.signals import Signal, Signals, location_signals, read_signals
from dalgo_api.bridge.transport import DagsterRejected, DagsterUnavailable, dagit_url, open_in_background

__all__ = [
    "ASSET_JOB",
    "LAUNCH_MAX_SECONDS",
    "AssetNode",
    "DagsterRejected",
    "DagsterUnavailable",
    "RunEvent",
    "RunInfo",
    "RunQuery",
    "Signal",
    "Signals",
    "absolute_path",
    "add_location",
    "asset_keys",
    "asset_nodes",
    "cancel_run",
    "captured_log",
    "dagit_url",
    "ensure_pools",
    "keep_recent_runs",
    "launch_run",
    "launched_as",
    "list_runs",
    "location_signals",
    "materializations",
    "new_launch_id",
    "open_in_background",
    "queue_position",
    "read_signals",
    "relative_key",
    "reload_location",
    "remove_location",
    "report_observations",
    "retry_run",
    "run_error",
    "run_for_org",
    "run_logs",
    "runs_of_assets",
    "wait_for_daemon",
    "wait_for_run",
    "waiting_reason",
]
