"""An organization's runs as the API's ``RunInfo``, read from Dagster's run records: what the run reads
(``runs``) and the newest runs kept per process (``recent_runs``) share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dalgo_api.bridge.assets import relative_key
from dalgo_api.bridge.transport import storage_call
from dalgo_core.names import AUTOMATION_TAG, LOCATION_TAG, SCHEDULE_TAG, SENSOR_TAG, TRIGGER_TAG, location_org

FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


@dataclass(frozen=True)
class RunInfo:
    """A run of an organization, with asset keys relative to it."""

    run_id: str
    org: str | None
    status: str  # Dagster's status: QUEUED, STARTED, SUCCESS, ...
    job: str
    tags: dict[str, str]
    assets: list[str] | None
    created_at: datetime
    updated_at: datetime | None
    started_at: float | None
    ended_at: float | None
    plan_snapshot_id: str | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def trigger(self) -> str | None:
        """What started the run: the API's own tag, else Dagster's schedule, sensor or automation tags."""
        if self.tags.get(TRIGGER_TAG):
            return self.tags[TRIGGER_TAG]
        if SCHEDULE_TAG in self.tags:
            return "schedule"
        if self.tags.get(AUTOMATION_TAG) == "true":
            return "automation"
        if SENSOR_TAG in self.tags:
            return "sensor"
        return None


def run_info(record: Any) -> RunInfo:
    """A Dagster run record as the API's ``RunInfo`` (its organization from the location tag)."""
    run = record.dagster_run
    tags = dict(run.tags)
    org = location_org(tags.get(LOCATION_TAG, ""))
    assets = None
    if run.asset_selection and org:
        assets = sorted(k for k in (relative_key(org, a.path) for a in run.asset_selection) if k is not None)
    return RunInfo(
        run_id=run.run_id,
        org=org,
        status=run.status.value,
        job=run.job_name,
        tags=tags,
        assets=assets or None,
        created_at=record.create_timestamp,
        updated_at=record.update_timestamp,
        started_at=record.start_time,
        ended_at=record.end_time,
        plan_snapshot_id=run.execution_plan_snapshot_id,
    )


def records_page(inst: Any, filters: Any, limit: int, cursor: str | None) -> list[Any]:
    """``get_run_records(filters, limit, cursor)`` in two cheap queries. With a tag filter, Dagster's one
    query makes SQLite sort every matching run together with its serialized body before the limit; the
    ids alone sort several times faster, then the page's records are read by id."""
    from dagster import RunsFilter

    ids = storage_call(inst.get_run_ids, filters, limit=limit, cursor=cursor)
    if not ids:
        return []
    by_id = {r.dagster_run.run_id: r for r in storage_call(inst.get_run_records, RunsFilter(run_ids=ids))}
    return [by_id[run_id] for run_id in ids if run_id in by_id]
