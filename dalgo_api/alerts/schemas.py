"""Bodies of the alert rule, alert history and notification inbox endpoints. A webhook's URL is given as a
value (a secret, stored encrypted) and never returned: an answer says only its format and host."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from ninja import Schema
from pydantic import Field, SecretStr, field_validator

from dalgo_core.spec import AlertRuleFields

RESERVED_RULE_NAMES = {"events"}  # a sub-path of /api/alerts/


class WebhookIn(Schema):
    format: Literal["slack", "json"] = Field("json", description="slack: Slack's incoming-webhook format")
    url: SecretStr | None = Field(
        None,
        description="https URL (a secret: stored encrypted, never returned). On an update, omit it to keep "
        "the URL stored for this position of the list",
    )


class AlertRuleIn(AlertRuleFields):
    """A rule as the spec says it (``dalgo_core.spec.AlertRuleFields``), its webhooks' URLs as values."""

    webhooks: list[WebhookIn] = Field(default_factory=list, max_length=5)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_RULE_NAMES:
            raise ValueError(f"'{name}' is reserved: choose another name")
        return name


class WebhookOut(Schema):
    format: str
    host: str | None = Field(description="The host the URL points at (the URL itself is never returned)")


class AlertRuleOut(Schema):
    name: str
    kind: str
    assets: list[str]
    window_minutes: float
    recovery: bool
    email: bool
    webhooks: list[WebhookOut]
    enabled: bool


class DeliveryOut(Schema):
    format: str
    host: str
    delivered: bool
    attempts: int
    status: int | None
    error: str


class AlertEventOut(Schema):
    id: int
    rule: str
    kind: str
    status: Literal["alert", "recovery"]
    subject: str
    asset: str | None
    run_id: str | None
    title: str
    message: str
    occurred_at: datetime
    sent_at: datetime
    emails: int = Field(description="How many members were emailed")
    webhooks: list[DeliveryOut]


class AlertEventPage(Schema):
    events: list[AlertEventOut]
    next_cursor: int | None = Field(None, description="Pass as ?cursor= for older events")


class WebhookTestOut(Schema):
    webhooks: list[DeliveryOut]


class NotificationOut(Schema):
    id: int
    read: bool
    created_at: datetime
    event: AlertEventOut


class NotificationPage(Schema):
    notifications: list[NotificationOut]
    unread: int = Field(description="Unread notifications of the caller in the organization")
    next_cursor: int | None = Field(None, description="Pass as ?cursor= for older notifications")


class ReadIn(Schema):
    ids: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(default_factory=list, max_length=1000)
    all: bool = Field(False, description="every notification of the caller in the organization")
    read: bool = Field(True, description="false: mark them unread again")


class ReadOut(Schema):
    updated: int


class PreferenceIn(Schema):
    email: bool = True
    inbox: bool = True


class PreferenceOut(Schema):
    rule: str
    kind: str
    email: bool
    inbox: bool
