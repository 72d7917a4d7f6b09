"""Bodies of the pipeline endpoints: the spec's freshness and schedule models."""

from __future__ import annotations

from typing import Literal

from ninja import Schema
from pydantic import Field

from dalgo_core.spec import NAME_PATTERN, FreshnessSpec, ScheduleSpec


class PipelineIn(Schema):
    name: str = Field(pattern=NAME_PATTERN)
    assets: list[str] = Field(min_length=1, description="Asset keys relative to the organization; '*' globs")
    freshness: FreshnessSpec | None = None
    schedule: ScheduleSpec | None = None
    enabled: bool = True


class TargetStateOut(Schema):
    asset: str
    freshness: str | None = Field(description="HEALTHY, WARNING, DEGRADED or UNKNOWN (from Dagster)")
    last_materialization: float | None


class PipelineOut(Schema):
    name: str
    assets: list[str]
    freshness: FreshnessSpec | None
    schedule: ScheduleSpec | None
    enabled: bool
    kind: Literal["freshness", "schedule", "manual"]
    targets: list[TargetStateOut] | None = Field(None, description="Freshness state of each selected asset")
