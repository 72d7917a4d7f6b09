"""Why a queued run waits: its place in Dagster's run queue, and what holds it."""

from __future__ import annotations

from typing import Any

from dalgo_api.bridge.run_records import RunInfo
from dalgo_api.bridge.runs import execution_plan
from dalgo_api.bridge.transport import instance, storage_call
from dalgo_core.names import LOCATION_TAG, location_name


def queue_position(run_id: str) -> int | None:
    """1-based position of a queued run in the instance's run queue (oldest first), or None."""
    from dagster import DagsterRunStatus, RunsFilter

    queued = storage_call(
        instance().get_run_ids, RunsFilter(statuses=[DagsterRunStatus.QUEUED]), limit=1000
    )  # newest first
    return len(queued) - queued.index(run_id) if run_id in queued else None


def waiting_reason(slug: str, run: RunInfo) -> str | None:
    """Why a queued run waits: another run of the organization holding its run slots, or a busy pool
    (one run per dbt project or connection, one run writing a DuckDB warehouse: ``dalgo_core.pools``).
    None if nothing visible holds it (the daemon has not looked yet)."""
    from dagster import DagsterRunStatus, RunsFilter

    inst = instance()
    busy = [
        r
        for r in storage_call(
            inst.get_runs,
            RunsFilter(
                tags={LOCATION_TAG: location_name(slug)},
                statuses=[DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING],
            ),
            limit=50,
        )
        if r.run_id != run.run_id
    ]
    for pool in sorted(_pools(inst, run.plan_snapshot_id)):
        holders = [r.run_id for r in busy if pool in _pools(inst, r.execution_plan_snapshot_id)]
        if holders:
            return f"waiting for pool {pool} (held by run {holders[0]})"
    if busy:
        return f"waiting for a run slot of organization '{slug}' ({len(busy)} run(s) in progress)"
    return None


def _pools(inst: Any, snapshot_id: str | None) -> set[str]:
    """The concurrency pools a run's steps use (from its execution plan snapshot)."""
    plan = execution_plan(inst, snapshot_id)
    if plan is None:
        return set()
    return {step.pool for step in plan.steps if getattr(step, "pool", None)}
