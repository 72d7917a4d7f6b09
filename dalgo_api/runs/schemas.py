"""Bodies of the asset, run and log endpoints. Asset keys are relative to the organization
(``sales/orders`` for Dagster's ``<org>/sales/orders``), so clients never see another organization's
namespace."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from ninja import Schema
from pydantic import BaseModel, Field

AssetKey = Annotated[str, Field(min_length=1, max_length=400, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")]
RunStatus = Literal["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "SUCCESS", "FAILURE", "CANCELING", "CANCELED"]


class Answer(BaseModel):
    """The run and log answers, built from dicts and read most often: plain pydantic models validate
    them several times faster than ninja's ``Schema`` (which wraps every nested value for Django)."""


class CheckOut(Schema):
    name: str
    status: str | None = Field(None, description="SUCCEEDED, FAILED, IN_PROGRESS, ... of the latest run")
    run_id: str | None = None


class MaterializationOut(Schema):
    timestamp: float
    run_id: str


class AssetOut(Schema):
    key: str
    group: str | None
    kind: Literal["ingestion", "dbt", "source", "other"]
    kinds: list[str]
    materializable: bool
    last_materialization: MaterializationOut | None
    freshness: str | None = Field(None, description="HEALTHY, WARNING, DEGRADED or UNKNOWN; None without a target")
    checks: list[CheckOut]
    warnings: list[str] = Field(default_factory=list, description="e.g. a dbt source freshness nothing keeps")


class AssetDetailOut(AssetOut):
    description: str | None
    upstream: list[str]
    downstream: list[str]
    dagit_url: str


class LineageEdge(Schema):
    upstream: str
    downstream: str


class LineageOut(Schema):
    nodes: list[AssetOut]
    edges: list[LineageEdge]


class RunIn(Schema):
    assets: list[AssetKey] = Field(min_length=1, max_length=500, description="Asset keys to materialize")


class QueueOut(Answer):
    position: int | None = Field(None, description="1-based place in Dagster's run queue")
    reason: str | None = None


class RunOut(Answer):
    run_id: str
    status: RunStatus
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    job: str
    trigger: str | None
    user: str | None
    pipeline: str | None
    assets: list[str] | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    queue: QueueOut | None = None
    error: str | None = None
    dagit_url: str


class RunPage(Answer):
    runs: list[RunOut]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page")


class LogEventOut(Answer):
    timestamp: float
    level: str
    type: str | None
    step: str | None
    message: str
    asset: str | None = None
    file_key: str | None = Field(None, description="LOGS_CAPTURED: read the step output at .../output/<file_key>")


class LogPage(Answer):
    events: list[LogEventOut]
    cursor: str | None = Field(None, description="Pass as ?cursor= to get the events after these")
    has_more: bool
    run_status: RunStatus
    finished: bool = Field(description="The run ended: no event will follow the stored ones")


class OutputOut(Answer):
    stdout: str
    stderr: str
    cursor: str | None
