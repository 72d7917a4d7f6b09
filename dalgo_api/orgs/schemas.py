"""Request and response bodies of the organization, membership, invitation, warehouse and flag endpoints.

Warehouse inputs carry their secret (``password``, ``keyfile_json``) as ``SecretStr``; outputs never
have it, only ``secret_set``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import Field, SecretStr, field_validator

from dalgo_api.accounts.schemas import Code, Email, OrgName, PersonName
from dalgo_core.spec import NAME_PATTERN


class OrgIn(Schema):
    name: OrgName
    account_manager_email: Email | None = Field(
        None, description="Make this user (or invite this email as) the organization's Account Manager"
    )


class OrgRenameIn(Schema):
    name: OrgName


class OrgOut(Schema):
    slug: str
    name: str
    role: str | None = Field(None, description="The caller's role in it")


class MemberOut(Schema):
    user_id: int
    email: str
    first_name: str
    last_name: str
    role: str
    joined_at: datetime


class RoleIn(Schema):
    role: str


class InvitationIn(Schema):
    email: Email
    role: str


class InvitationOut(Schema):
    id: int
    email: str
    role: str
    invited_by: str | None
    sent_at: datetime


class AcceptInvitationIn(Schema):
    invite_code: Code
    password: Annotated[SecretStr, Field(max_length=256)] | None = Field(
        None, description="Required for a new account; an existing user logs in instead (Bearer token)"
    )
    first_name: PersonName = ""
    last_name: PersonName = ""


class FlagIn(Schema):
    enabled: bool


# --- warehouse -------------------------------------------------------------------------------------

Schema_ = Annotated[str, Field(pattern=NAME_PATTERN)]


class DuckDBIn(Schema):
    """The zero-server warehouse; its file is the platform's, inside the organization's root."""

    type: Literal["duckdb"]
    path: None = Field(None, description="not settable: the platform assigns the DuckDB file")
    schema_: Schema_ = Field("main", alias="schema")

    @field_validator("path", mode="before")
    @classmethod
    def _no_path(cls, value: object) -> None:
        if value is not None:
            raise ValueError("the platform assigns the DuckDB file inside the organization's root; remove 'path'")
        return None


class PostgresIn(Schema):
    type: Literal["postgres"]
    host: Annotated[str, Field(min_length=1)]
    port: int = Field(5432, ge=1, le=65535)
    user: Annotated[str, Field(min_length=1)]
    password: SecretStr | None = Field(None, description="required the first time; omitted: keep the stored one")
    database: Annotated[str, Field(min_length=1)]
    schema_: Schema_ = Field("public", alias="schema")
    sslmode: str | None = None


class BigQueryIn(Schema):
    type: Literal["bigquery"]
    project: Annotated[str, Field(min_length=1)]
    dataset: Schema_
    location: str = "US"
    keyfile_json: SecretStr | None = Field(None, description="service-account key; omitted: keep the stored one")


WarehouseIn = Annotated[DuckDBIn | PostgresIn | BigQueryIn, Field(discriminator="type")]


def warehouse_data(payload: DuckDBIn | PostgresIn | BigQueryIn) -> dict[str, Any]:
    """The input as plain data with its secret revealed (kept in memory only, never logged)."""
    data = payload.model_dump(by_alias=True)
    for key, value in list(data.items()):
        if isinstance(value, SecretStr):
            data[key] = value.get_secret_value()
    return data


class WarehouseOut(Schema):
    """The warehouse's settings; of its secret only whether one is stored."""

    type: str
    secret_set: bool
    schema_: str | None = Field(None, alias="schema")
    host: str | None = None
    port: int | None = None
    user: str | None = None
    database: str | None = None
    sslmode: str | None = None
    project: str | None = None
    dataset: str | None = None
    location: str | None = None


class ConnectionTestOut(Schema):
    ok: bool
    message: str
