"""Alert rules and what they sent (``/api/alerts/``), and each member's inbox and choices
(``/api/notifications/``).

A rule (the spec's ``alerts``) says which condition to watch (a freshness target missed, an asset check
failing, a run failing, a schema change waiting for approval, the code location not loading), on which
assets, how often at most, and where to send: the members' email and inbox (each member chooses per rule)
and webhooks (Slack's format or plain JSON; their URLs are secrets: stored encrypted, never returned).
``manage.py dispatch_alerts`` sends the alerts (``dalgo_api.alerts.dispatcher``)."""

from __future__ import annotations

from typing import Literal

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Schema
from pydantic import Field

from dalgo_api.accounts.auth import RequestContext, has_permission
from dalgo_api.alerts import delivery, rules, selectors
from dalgo_api.alerts.models import AlertEvent, NotificationPreference
from dalgo_api.alerts.schemas import (
    AlertEventPage,
    AlertRuleIn,
    AlertRuleOut,
    NotificationPage,
    PreferenceIn,
    PreferenceOut,
    ReadIn,
    ReadOut,
    WebhookTestOut,
)
from dalgo_api.common_responses import errors
from dalgo_api.errors import not_found
from dalgo_api.orgs.models import Org
from dalgo_api.specs import store as specs
from dalgo_core.spec import AlertKind, AlertRuleSpec

alerts = Router(tags=["alerts"])
notifications = Router(tags=["notifications"])

_rule = rules.SECTION.lookup


# --- rules -----------------------------------------------------------------------------------------


@alerts.get("/", response=list[AlertRuleOut], auth=has_permission(["can_view_alerts"]))
def list_rules(request: HttpRequest) -> list[dict]:
    slug = request.auth.org.slug
    return [rules.public_view(slug, r) for r in specs.load_spec(slug).alerts]


@alerts.post("/", response={201: AlertRuleOut, **errors(409)}, auth=has_permission(["can_create_alerts"]))
def create_rule(request: HttpRequest, payload: AlertRuleIn) -> tuple[int, dict]:
    """Add a rule; its webhooks' URLs are stored encrypted. It applies from the dispatcher's next pass."""
    slug = request.auth.org.slug
    rules.SECTION.ensure_free(slug, payload.name)
    entry = rules.to_spec(slug, payload, None)
    rules.SECTION.add(slug, entry)
    return 201, rules.public_view(slug, entry)


class EventQuery(Schema):
    rule: str | None = Field(None, max_length=63)
    kind: AlertKind | None = None
    status: Literal["alert", "recovery"] | None = None
    cursor: int | None = Field(None, ge=1, le=2**62)
    limit: int = Field(50, ge=1, le=200)


@alerts.get("/events", response=AlertEventPage, auth=has_permission(["can_view_alerts"]))
def list_events(request: HttpRequest, query: Query[EventQuery]) -> dict:
    """What the organization's rules sent, newest first: alerts and recoveries, how many members were
    emailed and how each webhook answered."""
    return selectors.events(request.auth.org, **query.dict())


@alerts.get("/{name}", response=AlertRuleOut, auth=has_permission(["can_view_alerts"], lookup=_rule))
def get_rule(request: HttpRequest, name: str) -> dict:
    return rules.public_view(request.auth.org.slug, request.auth.obj)


@alerts.put(
    "/{name}", response={200: AlertRuleOut, **errors(409)}, auth=has_permission(["can_edit_alerts"], lookup=_rule)
)
def update_rule(request: HttpRequest, name: str, payload: AlertRuleIn) -> dict:
    """Replace a rule. A webhook without ``url`` keeps the URL stored at its position; members' choices
    follow a renamed rule."""
    ctx = request.auth
    slug = ctx.org.slug
    rules.SECTION.ensure_free(slug, payload.name, current=name)
    entry = rules.to_spec(slug, payload, ctx.obj)
    rules.SECTION.replace(slug, name, entry)
    rules.forget_secrets(slug, ctx.obj, entry)
    rules.renamed(ctx.org, name, entry.name)
    return rules.public_view(slug, entry)


@alerts.delete("/{name}", response={204: None}, auth=has_permission(["can_delete_alerts"], lookup=_rule))
def delete_rule(request: HttpRequest, name: str) -> tuple[int, None]:
    """Remove a rule, its stored webhook URLs and the members' choices for it (what it sent stays)."""
    ctx = request.auth
    rules.SECTION.remove(ctx.org.slug, name)
    rules.forget_secrets(ctx.org.slug, ctx.obj, None)
    rules.removed(ctx.org, name)
    return 204, None


@alerts.post("/{name}/test", response=WebhookTestOut, auth=has_permission(["can_edit_alerts"], lookup=_rule))
def test_rule(request: HttpRequest, name: str) -> dict:
    """Post a test message to the rule's webhooks now (nothing is recorded); each webhook's answer."""
    ctx = request.auth
    rule: AlertRuleSpec = ctx.obj
    sample = AlertEvent(
        pk=0,
        org=ctx.org,
        rule=rule.name,
        kind=rule.kind,
        status=AlertEvent.ALERT,
        subject="test",
        title=f"Test of the alert rule {rule.name}",
        message=f"This is a test message of the alert rule {rule.name} of {ctx.org.name}.",
        occurred_at=timezone.now(),
    )
    results = []
    for hook in rule.webhooks:
        posted = delivery.post(ctx.org.slug, hook.url, hook.format, sample)
        results.append(
            {
                "format": hook.format,
                "host": posted.host,
                "delivered": posted.ok,
                "attempts": 1,
                "status": posted.status,
                "error": posted.error,
            }
        )
    return {"webhooks": results}


# --- the inbox -------------------------------------------------------------------------------------


class InboxQuery(Schema):
    unread: bool | None = Field(None, description="true: unread only; false: read only")
    cursor: int | None = Field(None, ge=1, le=2**62)
    limit: int = Field(50, ge=1, le=200)


@notifications.get("/", response=NotificationPage, auth=has_permission(["can_view_notifications"]))
def inbox(request: HttpRequest, query: Query[InboxQuery]) -> dict:
    """The caller's notifications in the organization, newest first, and how many are unread."""
    ctx = request.auth
    return selectors.inbox(ctx.user, ctx.org, **query.dict())


@notifications.post("/read", response=ReadOut, auth=has_permission(["can_view_notifications"]))
def mark_read(request: HttpRequest, payload: ReadIn) -> dict:
    """Mark the caller's notifications ``ids`` (or ``all`` of them in the organization) read, or unread
    again with ``read`` false; ids that are not the caller's are ignored. How many changed."""
    ctx = request.auth
    mine = selectors.inbox_of(ctx.user, ctx.org)
    if not payload.all:
        mine = mine.filter(pk__in=payload.ids)
    if payload.read:
        updated = mine.filter(read_at__isnull=True).update(read_at=timezone.now())
    else:
        updated = mine.filter(read_at__isnull=False).update(read_at=None)
    return {"updated": updated}


def _rules_of(org: Org) -> list[AlertRuleSpec]:
    return specs.load_spec(org.slug).alerts


@notifications.get("/preferences", response=list[PreferenceOut], auth=has_permission(["can_view_notifications"]))
def list_preferences(request: HttpRequest) -> list[dict]:
    """The caller's choice for each alert rule of the organization: by email, in the inbox (both unless
    turned off). Only members who may see alerts (``can_view_alerts``) receive any."""
    ctx = request.auth
    return selectors.preferences(ctx.user, ctx.org, _rules_of(ctx.org))


def _rule_of_org(ctx: RequestContext, params: dict) -> AlertRuleSpec:
    found = next((r for r in _rules_of(ctx.org) if r.name == params["rule"]), None)
    if found is None:
        raise not_found("alert rule", params["rule"])
    return found


@notifications.put(
    "/preferences/{rule}",
    response={200: PreferenceOut, **errors(409)},
    auth=has_permission(["can_view_notifications"], lookup=_rule_of_org),
)
def set_preference(request: HttpRequest, rule: str, payload: PreferenceIn) -> dict:
    """Choose how the caller receives one rule's alerts: ``email`` and ``inbox`` false is none at all."""
    ctx = request.auth
    NotificationPreference.objects.update_or_create(
        user=ctx.user, org=ctx.org, rule=rule, defaults={"email": payload.email, "inbox": payload.inbox}
    )
    return selectors.preferences(ctx.user, ctx.org, [ctx.obj])[0]
