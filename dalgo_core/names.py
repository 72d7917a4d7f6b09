"""The names both halves agree on: code locations, run and asset tags, pools, jobs and sensors.

The definitions library (``dalgo_assets``) gives Dagster objects these names; the API (``dalgo_api``)
finds them by the same names. Neither Dagster nor Django is imported here.
"""

from __future__ import annotations

# --- organizations and the files named after them ------------------------------------------------

# An organization's slug: its folder, its code location, the first part of its asset keys.
SLUG_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
# Values that become one path component or one asset key part: no separators, no '..', no leading dot.
FILE_NAME_PATTERN = r"^[A-Za-z0-9_]+([.-][A-Za-z0-9_]+)*$"

# --- code locations --------------------------------------------------------------------------------

LOCATION_PREFIX = "org_"
# Set by Dagster itself on every run created from a code location; a launch cannot override it.
LOCATION_TAG = "dagster/code_location"
REPOSITORY = "__repository__"


def location_name(slug: str) -> str:
    """The Dagster code location of an organization (also the value of its runs' location tag)."""
    return f"{LOCATION_PREFIX}{slug}"


def location_org(location: str) -> str | None:
    """The organization of a code location name, or None for a location of no organization."""
    if not location.startswith(LOCATION_PREFIX):
        return None
    return location[len(LOCATION_PREFIX) :] or None


# --- tags ------------------------------------------------------------------------------------------

ORG_TAG = "dalgo/org"  # on every job, sensor and API run of an organization (informative: not trusted)
USER_TAG = "dalgo/user"  # who launched a run through the API
TRIGGER_TAG = "dalgo/trigger"  # manual, maintenance, schedule, automation, retry
PIPELINE_TAG = "dalgo/pipeline"  # the pipeline a run was launched for
COMMAND_TAG = "dalgo/maintenance"  # git_pull, dbt_deps or dbt_clean
DBT_PROJECT_TAG = "dalgo/dbt_project"
CONNECTION_TAG = "dalgo/connection"  # the connection a reset run drops the tables and state of
LAUNCH_TAG = "dalgo/launch"  # a fresh id per API launch: finds the run when the launch's answer was lost

# Dagster's own tags on runs its daemon launches
SENSOR_TAG = "dagster/sensor_name"
SCHEDULE_TAG = "dagster/schedule_name"
AUTOMATION_TAG = "dagster/from_automation_condition"
GRPC_INFO_TAG = ".dagster/grpc_info"  # on every run: where its code server listens (hidden: a leading dot)

# --- jobs, sensors, schedules ----------------------------------------------------------------------

MAINTENANCE_COMMANDS = ("git_pull", "dbt_deps", "dbt_clean")


def org_job_name(slug: str) -> str:
    return f"{slug}__all_assets"


def pipeline_job_name(slug: str, pipeline: str) -> str:
    return f"{slug}__{pipeline}"


def pipeline_schedule_name(slug: str, pipeline: str) -> str:
    return f"{pipeline_job_name(slug, pipeline)}_schedule"


def maintenance_job_name(slug: str, project: str, command: str) -> str:
    return f"{slug}__{project}__{command}"


def reset_job_name(slug: str, connection: str) -> str:
    """The job that drops a connection's stream tables and connector state (the next sync is full)."""
    return f"{slug}__{connection}__reset"


def reset_op_name(slug: str, connection: str) -> str:
    return f"{reset_job_name(slug, connection)}_op"


def reset_run_config(slug: str, connection: str, streams: list[str]) -> dict:
    """The run config of a reset job: the streams to reset (none: every stream of the connection)."""
    return {"ops": {reset_op_name(slug, connection): {"config": {"streams": list(streams)}}}}


def automation_sensor_name(slug: str) -> str:
    return f"{slug}_automation"


# --- pools -----------------------------------------------------------------------------------------


def dbt_pool(org: str, project: str) -> str:
    """The concurrency pool of a dbt project: one dbt step per project at a time."""
    return f"dbt/{org}/{project}"


def connection_pool(org: str, connection: str) -> str:
    """One sync of a connection at a time."""
    return f"airbyte/{org}/{connection}"


def warehouse_pool(org: str) -> str:
    """Writes into an organization's DuckDB file, one at a time (DuckDB allows one writing process)."""
    return f"warehouse/{org}"


# asset metadata: a freshness the platform does not keep (a dbt source freshness nothing here builds)
FRESHNESS_WARNING_METADATA = "dalgo/freshness_warning"

# --- alerts ----------------------------------------------------------------------------------------
# A schema change of a connection's stream that waits for approval is reported as an observation of the
# stream's asset with SCHEMA_CHANGE_METADATA "pending" (and what changed in SCHEMA_CHANGE_SUMMARY_METADATA),
# and "resolved" once approved or no longer needed: the alert dispatcher turns them into the alerts and
# recoveries of ``schema_change_pending`` rules. Under the policy propagate_fully, the streams the source
# gained are named in SCHEMA_CHANGE_STREAMS_ADDED_METADATA (a JSON list): the dispatcher adds them to
# the connection.
SCHEMA_CHANGE_METADATA = "dalgo/schema_change"
SCHEMA_CHANGE_PENDING = "pending"
SCHEMA_CHANGE_RESOLVED = "resolved"
SCHEMA_CHANGE_SUMMARY_METADATA = "dalgo/schema_change_summary"
SCHEMA_CHANGE_STREAMS_ADDED_METADATA = "dalgo/schema_change_streams_added"
