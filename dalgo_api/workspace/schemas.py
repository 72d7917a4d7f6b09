"""Bodies of the connection, dbt project and pipeline endpoints: the spec's own models wherever they
fit (so the API and the YAML validate the same way), with secrets given as values and stored apart."""

from __future__ import annotations

from typing import Any, Literal

from ninja import Schema
from pydantic import Field, SecretStr, model_validator

from dalgo_assets.spec import NAME_PATTERN, FreshnessSpec, GitSource, ScheduleSpec, StreamSpec


class SourceIn(Schema):
    connector: str = Field(pattern=r"^source-[a-z0-9-]+$", description="Airbyte connector, e.g. source-faker")
    version: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Config fields (dotted paths) that are secrets; stored encrypted, never returned. "
        "On update, omit a field to keep its stored value.",
    )


class ConnectionIn(Schema):
    name: str = Field(pattern=NAME_PATTERN)
    source: SourceIn
    streams: list[StreamSpec] = Field(min_length=1)
    destination_schema: str = Field("raw", pattern=NAME_PATTERN)
    airbyte_connection_id: str | None = None


class SourceOut(Schema):
    connector: str
    version: str | None
    config: dict[str, Any]
    secret_fields: list[str]


class ConnectionOut(Schema):
    name: str
    source: SourceOut
    streams: list[StreamSpec]
    destination_schema: str
    airbyte_connection_id: str | None
    assets: list[str] = Field(description="The asset key of each stream")


class DbtProjectIn(Schema):
    name: str = Field(pattern=NAME_PATTERN)
    path: str | None = Field(None, description="A local folder on the platform's host")
    git: GitSource | None = None

    @model_validator(mode="after")
    def _one_location(self) -> DbtProjectIn:
        if (self.path is None) == (self.git is None):
            raise ValueError("give exactly one of 'path' or 'git'")
        return self


class DbtProjectOut(Schema):
    name: str
    path: str | None
    git: GitSource | None
    commands: list[str] = Field(description="Chores runnable with POST .../commands/<command>")


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
