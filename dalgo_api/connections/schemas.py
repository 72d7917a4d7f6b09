"""Bodies of the connection endpoints: the spec's own models wherever they fit (so the API and the
YAML validate the same way), with secrets given as values and stored apart.

A source is an Airbyte connector (no ``type``), or, with ``type``, a database (``database``) or files
(``files``) that dlt reads on the platform's host."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import BaseModel, Discriminator, Field, SecretStr, Tag, model_validator

from dalgo_api.runs.schemas import RunStatus
from dalgo_api.tasks.schemas import TaskOut
from dalgo_core.connectors.builtin import DatabaseConfig, FilesConfig
from dalgo_core.spec import (
    FIELD_PATH_PATTERN,
    NAME_PATTERN,
    VERSION_PATTERN,
    SchemaChangePolicy,
    StreamSpec,
    source_kind,
)


class SourceIn(Schema):
    connector: str = Field(pattern=r"^source-[a-z0-9-]+$", description="Airbyte connector, e.g. source-faker")
    version: str | None = Field(None, pattern=VERSION_PATTERN, description="PyPI version, e.g. 6.2.1; default latest")
    config: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[Annotated[str, Field(pattern=FIELD_PATH_PATTERN, max_length=200)], SecretStr] = Field(
        default_factory=dict,
        description="Config fields (dotted paths) that are secrets; stored encrypted, never returned. "
        "On update, omit a field to keep its stored value.",
    )


class DatabaseSourceIn(DatabaseConfig):
    """A database of the connection's own (the form of ``GET /api/sources/connectors/database/spec``)."""

    type: Literal["database"]


class FileSourceIn(FilesConfig):
    """Files of the connection's own (the form of ``GET /api/sources/connectors/files/spec``)."""

    type: Literal["files"]


AnySourceIn = Annotated[
    Annotated[SourceIn, Tag("airbyte")]
    | Annotated[DatabaseSourceIn, Tag("database")]
    | Annotated[FileSourceIn, Tag("files")],
    Discriminator(source_kind),
]


class ConnectionIn(Schema):
    name: str = Field(pattern=NAME_PATTERN)
    source: AnySourceIn | None = Field(
        None,
        description="A source of its own (an Airbyte connector, or a database or files: 'type'); "
        "or name one of /api/sources/",
    )
    source_name: str | None = Field(None, pattern=NAME_PATTERN, description="A source of /api/sources/")
    streams: list[StreamSpec] = Field(min_length=1, description="The streams chosen, each with its sync mode")
    destination_schema: str = Field("raw", pattern=NAME_PATTERN)
    airbyte_connection_id: str | None = None
    schema_change_policy: SchemaChangePolicy = Field(
        "propagate_columns", description="What a sync does when the source's schema changed (as Airbyte)"
    )

    @model_validator(mode="after")
    def _one_source(self) -> ConnectionIn:
        if (self.source is None) == (self.source_name is None):
            raise ValueError("give either 'source' or 'source_name'")
        return self


class SourceOut(Schema):
    connector: str
    version: str | None
    config: dict[str, Any]
    secret_fields: list[str]


class DatabaseSourceOut(Schema):
    type: Literal["database"]
    dialect: str
    host: str
    port: int
    database: str
    user: str
    schema_: str | None = Field(alias="schema")
    sslmode: str | None
    secret_fields: list[str] = Field(description="the secrets stored for it (never their values)")


class FileSourceOut(Schema):
    type: Literal["files"]
    url: str
    format: str
    files: dict[str, str]
    endpoint_url: str | None
    secret_fields: list[str]


class ConnectionOut(Schema):
    name: str
    source: SourceOut | DatabaseSourceOut | FileSourceOut
    source_name: str | None
    schema_change_policy: SchemaChangePolicy
    streams: list[StreamSpec]
    destination_schema: str
    airbyte_connection_id: str | None
    assets: list[str] = Field(description="The asset key of each stream")
    task: TaskOut | None = Field(None, description="With an Airbyte server: the task applying the change to it")


class ResetIn(Schema):
    streams: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list,
        max_length=1000,
        description="The streams to reset (their tables and state dropped); none or empty: every stream",
    )


class SchemaChangeOut(BaseModel):
    kind: Literal["stream_added", "stream_removed", "column_added", "column_removed", "column_retyped"]
    stream: str
    column: str | None = None
    old_type: str | None = None
    new_type: str | None = None
    description: str


class SchemaChangesOut(BaseModel):
    policy: SchemaChangePolicy
    discovered_at: datetime | None = Field(None, description="When the source's catalog was last discovered")
    held: bool = Field(description="The policy is pause and changes wait: the connection does not sync")
    changes: list[SchemaChangeOut] = Field(description="Changes not applied yet: approve them to apply them")


class StreamCountOut(BaseModel):
    stream: str
    records: int | None = Field(None, description="Records loaded into the warehouse")
    records_read: int | None = Field(None, description="Records the connector read")


class SyncOut(BaseModel):
    run_id: str
    status: RunStatus
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    trigger: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    duration_seconds: float | None
    records: int | None = Field(None, description="Records loaded, every stream together")
    streams: list[StreamCountOut]
    logs: str = Field(description="The run's log: GET this path")
    dagit_url: str


class SyncPage(BaseModel):
    syncs: list[SyncOut]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next (older) page")
