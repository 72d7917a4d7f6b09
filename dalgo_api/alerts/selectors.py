"""Reading alerts: what an organization's rules sent, a member's inbox and choices."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from dalgo_api.accounts.models import User
from dalgo_api.alerts.models import AlertEvent, Notification, NotificationPreference
from dalgo_api.orgs.models import Org
from dalgo_core.spec import AlertRuleSpec


def event_out(event: AlertEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        **event.summary(),
        "occurred_at": event.occurred_at,
        "sent_at": event.created_at,
        "emails": event.emails,
        "webhooks": [
            {
                "format": d.format,
                "host": d.host,
                "delivered": d.delivered_at is not None,
                "attempts": d.attempts,
                "status": d.last_status,
                "error": d.last_error,
            }
            for d in event.deliveries.all()
        ],
    }


def _page(found: QuerySet, cursor: int | None, limit: int) -> tuple[list[Any], int | None]:
    if cursor is not None:
        found = found.filter(id__lt=cursor)
    page = list(found.order_by("-id")[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return page, (page[-1].pk if more and page else None)


def events(
    org: Org, *, rule: str | None, kind: str | None, status: str | None, cursor: int | None, limit: int
) -> dict[str, Any]:
    """What the organization's rules sent, newest first."""
    found = AlertEvent.objects.filter(org=org).select_related("org").prefetch_related("deliveries")
    if rule:
        found = found.filter(rule=rule)
    if kind:
        found = found.filter(kind=kind)
    if status:
        found = found.filter(status=status)
    page, next_cursor = _page(found, cursor, limit)
    return {"events": [event_out(e) for e in page], "next_cursor": next_cursor}


def inbox_of(user: User, org: Org) -> QuerySet:
    return Notification.objects.filter(user=user, event__org=org)


def notification_out(note: Notification) -> dict[str, Any]:
    return {
        "id": note.pk,
        "read": note.read_at is not None,
        "created_at": note.created_at,
        "event": event_out(note.event),
    }


def inbox(user: User, org: Org, *, unread: bool | None, cursor: int | None, limit: int) -> dict[str, Any]:
    """A member's notifications in an organization, newest first, and how many are unread."""
    mine = inbox_of(user, org)
    found = mine.select_related("event__org").prefetch_related("event__deliveries")
    if unread is not None:
        found = found.filter(read_at__isnull=unread)
    page, next_cursor = _page(found, cursor, limit)
    return {
        "notifications": [notification_out(n) for n in page],
        "unread": mine.filter(read_at__isnull=True).count(),
        "next_cursor": next_cursor,
    }


def preferences(user: User, org: Org, rules: list[AlertRuleSpec]) -> list[dict[str, Any]]:
    """The member's choice for each rule of the organization (email and inbox both on unless turned off)."""
    chosen = {p.rule: p for p in NotificationPreference.objects.filter(user=user, org=org)}
    out = []
    for rule in rules:
        choice = chosen.get(rule.name)
        out.append(
            {
                "rule": rule.name,
                "kind": rule.kind,
                "email": choice.email if choice else True,
                "inbox": choice.inbox if choice else True,
            }
        )
    return out
