"""Bodies of the connector catalog and source endpoints. A configuration is sent whole, secrets
included; the fields its connector's spec marks secret are stored encrypted and never returned."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import BaseModel, Field

from dalgo_core.spec import CONNECTOR_PATTERN, NAME_PATTERN, PACKAGE_PATTERN, VERSION_PATTERN

Connector = Annotated[
    str,
    Field(
        pattern=r"^(source-[a-z0-9-]+|database|files)$",
        max_length=100,
        description="An Airbyte connector (e.g. source-file), or the platform's database or files",
    ),
]
Custom = Annotated[str, Field(pattern=CONNECTOR_PATTERN, max_length=100, description="e.g. source-mycrm")]
Config = Annotated[dict[str, Any], Field(description="The connector's configuration, as its spec describes it")]


class ConnectorOut(BaseModel):
    connector: str
    title: str
    description: str
    version: str
    package: str
    documentation_url: str
    custom: bool = Field(description="Added by an operator")
    engine: Literal["airbyte", "dlt"] = Field(
        description="airbyte: an Airbyte connector; dlt: the platform's own database or files source"
    )
    spec_cached: bool = Field(description="Its spec was read: GET .../spec answers at once")


class ConnectorIn(Schema):
    connector: Custom
    package: str = Field(pattern=PACKAGE_PATTERN, description="The PyPI package that installs the connector's command")
    version: str = Field(pattern=VERSION_PATTERN)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    documentation_url: str = Field("", max_length=500, pattern=r"^(https://[^\s]+)?$")


class SpecOut(BaseModel):
    connector: str
    version: str
    documentation_url: str | None
    connection_specification: dict[str, Any] = Field(description="The configuration's JSON schema (the form)")
    secret_fields: list[str] = Field(description="Dotted paths of the fields stored encrypted, never returned")


class ConfigIn(Schema):
    connector: Connector
    config: Config


class SourceIn(Schema):
    name: str = Field(pattern=NAME_PATTERN)
    connector: Connector
    config: Config


class SourceUpdateIn(Schema):
    config: Config = Field(description="The whole configuration; a secret field left out keeps its stored value")


class SourceCheckIn(Schema):
    config: Config | None = Field(None, description="A changed configuration to check (secrets left out: stored)")


class SourceOut(BaseModel):
    name: str
    connector: str
    version: str | None = Field(description="The connector's version (none for the platform's own sources)")
    config: dict[str, Any] = Field(description="Without its secret fields")
    secret_fields: list[str]
    connections: list[str] = Field(description="The connections that read this source")
