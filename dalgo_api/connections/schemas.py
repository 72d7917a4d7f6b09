"""Bodies of the connection endpoints: the spec's own models wherever they fit (so the API and the
YAML validate the same way), with secrets given as values and stored apart."""

from __future__ import annotations

from typing import Annotated, Any

from ninja import Schema
from pydantic import Field, SecretStr

from dalgo_core.spec import FIELD_PATH_PATTERN, NAME_PATTERN, VERSION_PATTERN, StreamSpec


class SourceIn(Schema):
    connector: str = Field(pattern=r"^source-[a-z0-9-]+$", description="Airbyte connector, e.g. source-faker")
    version: str | None = Field(None, pattern=VERSION_PATTERN, description="PyPI version, e.g. 6.2.1; default latest")
    config: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[Annotated[str, Field(pattern=FIELD_PATH_PATTERN, max_length=200)], SecretStr] = Field(
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


class ResetIn(Schema):
    streams: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list,
        max_length=1000,
        description="The streams to reset (their tables and state dropped); none or empty: every stream",
    )
