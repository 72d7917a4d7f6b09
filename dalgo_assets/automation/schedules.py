"""Cron pipelines: a pipeline's selection as an asset job, on its schedule (Dalgo's orchestration pipeline)."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from dalgo_core.names import ORG_TAG, PIPELINE_TAG, TRIGGER_TAG, pipeline_job_name, pipeline_schedule_name
from dalgo_core.spec import OrgSpec, PipelineSpec


def pipeline_job(spec: OrgSpec, pipeline: PipelineSpec, keys: Sequence[dg.AssetKey]) -> dg.UnresolvedAssetJobDefinition:
    """Every pipeline gets a job (to run it by hand or from the API), tagged with its org and name."""
    return dg.define_asset_job(
        pipeline_job_name(spec.slug, pipeline.name),
        selection=dg.AssetSelection.assets(*keys),
        tags={ORG_TAG: spec.slug, PIPELINE_TAG: pipeline.name},
        description=f"Pipeline '{pipeline.name}' of {spec.name}",
    )


def pipeline_schedule(
    spec: OrgSpec, pipeline: PipelineSpec, job: dg.UnresolvedAssetJobDefinition
) -> dg.ScheduleDefinition | None:
    """The pipeline's cron schedule, running unless the pipeline is disabled."""
    if pipeline.schedule is None:
        return None
    return dg.ScheduleDefinition(
        name=pipeline_schedule_name(spec.slug, pipeline.name),
        job=job,
        cron_schedule=pipeline.schedule.cron,
        execution_timezone=pipeline.schedule.timezone or spec.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING if pipeline.enabled else dg.DefaultScheduleStatus.STOPPED,
        tags={ORG_TAG: spec.slug, PIPELINE_TAG: pipeline.name, TRIGGER_TAG: "schedule"},
    )
