"""Sending an event: to the inbox and email of the members who receive its rule, and to its webhooks.

Members receive a rule when their role may see alerts (``can_view_alerts``) and they did not turn it off
(``NotificationPreference``: email and inbox separately, both on by default). Webhook deliveries are rows
posted by ``deliver_webhooks`` (at once, then retried after 30 s, 2 and 10 minutes while the receiver
fails), a receiver's in their order and receivers in parallel, so a slow receiver holds up no other.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from dalgo_api import mail
from dalgo_api.accounts.auth import role_permissions
from dalgo_api.accounts.models import User
from dalgo_api.alerts import messages, webhooks
from dalgo_api.alerts.incidents import Decision
from dalgo_api.alerts.models import AlertEvent, Notification, NotificationPreference, WebhookDelivery
from dalgo_api.bridge import Signal
from dalgo_api.orgs.models import Org, OrgUser
from dalgo_core.spec import AlertRuleSpec, SecretRef

logger = logging.getLogger(__name__)

VIEW_ALERTS = "can_view_alerts"
RETRY_AFTER = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10))  # then given up
BATCH = 50


@dataclass(frozen=True)
class Recipient:
    user: User
    email: bool
    inbox: bool


def recipients(org: Org, rule: str) -> list[Recipient]:
    """The organization's active members who may see alerts, with their choice for ``rule``."""
    choices = {p.user_id: p for p in NotificationPreference.objects.filter(org=org, rule=rule)}
    found = []
    members = OrgUser.objects.filter(org=org, user__is_active=True).select_related("user", "role")
    for member in members.order_by("user__email"):
        if VIEW_ALERTS not in role_permissions(member.role.slug):
            continue
        choice = choices.get(member.user_id)
        found.append(Recipient(member.user, choice.email if choice else True, choice.inbox if choice else True))
    return found


def record(org: Org, rule: AlertRuleSpec, signal: Signal, decision: Decision) -> AlertEvent:
    """The event, its inbox entries and its webhook deliveries (to post); inside the caller's transaction."""
    event = AlertEvent.objects.create(
        org=org,
        rule=rule.name,
        kind=signal.kind,
        status=decision.status,
        subject=signal.subject[:500],
        asset=(signal.asset or "")[:400],
        run_id=signal.run_id or "",
        title=messages.title(signal),
        message=messages.message(rule.name, signal, decision.repeats),
        occurred_at=datetime.fromtimestamp(signal.at, UTC),
    )
    inbox = [r.user for r in recipients(org, rule.name) if r.inbox]
    Notification.objects.bulk_create([Notification(user=user, event=event) for user in inbox])
    now = timezone.now()
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                event=event, format=hook.format, url_ref=hook.url.model_dump(exclude_none=True), next_attempt_at=now
            )
            for hook in rule.webhooks
        ]
    )
    return event


def send_emails(event: AlertEvent, rule: AlertRuleSpec) -> int:
    """Email the event to the members who receive its rule by email; how many were sent."""
    if not rule.email:
        return 0
    subject, body = messages.email(event)
    sent = 0
    for recipient in recipients(event.org, rule.name):
        if not recipient.email:
            continue
        try:
            mail.send(recipient.user.email, subject, body)
            sent += 1
        except Exception:  # the mail server's problem: logged, the other recipients still get theirs
            logger.exception("alert %s: email to %s failed", event.pk, recipient.user.email)
    event.emails = sent
    event.save(update_fields=["emails"])
    return sent


def post(slug: str, url_ref: SecretRef, fmt: str, event: AlertEvent) -> webhooks.Posted:
    """Post an event to one webhook of the organization, in its format."""
    try:
        url = url_ref.resolve(slug)
    except LookupError:
        return webhooks.Posted(False, "", error="the webhook's URL cannot be read (changed or removed)")
    return webhooks.post(url, webhooks.payload(fmt, messages.fields(event)))


def _post(delivery: WebhookDelivery) -> webhooks.Posted:
    try:
        url_ref = SecretRef.model_validate(delivery.url_ref)
    except ValueError:
        return webhooks.Posted(False, "", error="the webhook's reference cannot be read")
    return post(delivery.event.org.slug, url_ref, delivery.format, delivery.event)


def deliver_webhooks(now: datetime | None = None) -> int:
    """Post the deliveries that are due (in parallel); how many were delivered."""
    now = now or timezone.now()
    due = list(
        WebhookDelivery.objects.filter(next_attempt_at__lte=now)
        .select_related("event__org")
        .order_by("next_attempt_at", "id")[:BATCH]
    )
    if not due:
        return 0
    # one receiver's messages in their order (an alert before its recovery), receivers in parallel
    by_receiver: dict[str, list[WebhookDelivery]] = {}
    for delivery in due:
        by_receiver.setdefault(json.dumps(delivery.url_ref, sort_keys=True), []).append(delivery)
    with ThreadPoolExecutor(max_workers=min(8, len(by_receiver))) as pool:
        done = list(pool.map(lambda batch: [(d, _post(d)) for d in batch], by_receiver.values()))
    delivered = 0
    with transaction.atomic():
        for delivery, posted in (pair for batch in done for pair in batch):
            delivery.attempts += 1
            delivery.host = posted.host[:255]
            delivery.last_status = posted.status
            delivery.last_error = posted.error[:300]
            if posted.ok:
                delivered += 1
                delivery.delivered_at, delivery.next_attempt_at = now, None
            elif delivery.attempts <= len(RETRY_AFTER):
                delivery.next_attempt_at = now + RETRY_AFTER[delivery.attempts - 1]
            else:
                delivery.next_attempt_at = None
                logger.warning("alert %s: webhook %s given up: %s", delivery.event_id, delivery.host, posted.error)
            delivery.save()
    return delivered
