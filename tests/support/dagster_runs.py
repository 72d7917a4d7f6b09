"""Runs written into a real Dagster instance's storage, as Dagster stores them whoever launched them."""

from __future__ import annotations

import uuid

import dagster as dg

from dalgo_core.names import LOCATION_TAG, location_name


def add_run(inst: dg.DagsterInstance, slug: str, **tags: str) -> str:
    """A run of the organization's code location, as Dagster stores one whoever launched it."""
    run = dg.DagsterRun(
        job_name="__ASSET_JOB",
        run_id=str(uuid.uuid4()),
        status=dg.DagsterRunStatus.NOT_STARTED,
        tags={LOCATION_TAG: location_name(slug), **tags},
    )
    inst.add_run(run)
    return run.run_id
