"""What an alert or a recovery says, the same words for the inbox, email and webhooks."""

from __future__ import annotations

from typing import Any

from dalgo_api import bridge, mail
from dalgo_api.alerts.models import AlertEvent
from dalgo_api.bridge import Signal
from dalgo_core.redact import redact

DETAIL_MAX = 4000

_TITLES = {
    ("freshness_failed", True): "{subject} is stale: its freshness target was missed",
    ("freshness_failed", False): "{subject} is fresh again",
    ("check_failed", True): "Check {check} failed on {asset}",
    ("check_failed", False): "Check {check} passes again on {asset}",
    ("run_failed", True): "A run of {subject} failed",
    ("run_failed", False): "Runs of {subject} succeed again",
    ("schema_change_pending", True): "A schema change of {subject} waits for approval",
    ("schema_change_pending", False): "The schema change of {subject} no longer waits",
    ("location_failed", True): "The code location {subject} does not load",
    ("location_failed", False): "The code location {subject} loads again",
}


def title(signal: Signal) -> str:
    check = signal.subject.rsplit(":", 1)[-1] if signal.kind == "check_failed" else ""
    text = _TITLES[(signal.kind, signal.failing)]
    return text.format(subject=signal.subject, check=check, asset=signal.asset or signal.subject)[:300]


def message(rule: str, signal: Signal, repeats: int) -> str:
    """The body: what happened (Dagster's own words), which rule sent it, how often it was held back."""
    lines = [title(signal) + "."]
    if signal.detail:
        lines += ["", redact(signal.detail.strip()[:DETAIL_MAX])]
    if repeats:
        lines += ["", f"It happened {repeats} more time(s) since the last alert of this rule."]
    if signal.run_id:
        lines += ["", f"Run: {signal.run_id}"]
    lines += ["", f"Rule: {rule}"]
    return "\n".join(lines)


def link(event: AlertEvent) -> str:
    """Where the product frontend shows the event (its run's logs for a run)."""
    if event.run_id:
        return mail.frontend_link("pipeline/runs", run_id=event.run_id)
    return mail.frontend_link("alerts", event=str(event.pk))


def fields(event: AlertEvent) -> dict[str, Any]:
    """The event as webhooks receive it (the JSON format as is; Slack's built from it)."""
    return {
        "event_id": event.pk,
        "organization": event.org.slug,
        "organization_name": event.org.name,
        **event.summary(),
        "occurred_at": event.occurred_at.isoformat(),
        "link": link(event),
    }


def email(event: AlertEvent) -> tuple[str, str]:
    """Subject and body of the email of an event."""
    subject = f"[{event.org.name}] {event.title}"
    body = f"{event.message}\n\nOrganization: {event.org.name} ({event.org.slug})\nOpen in Dalgo: {link(event)}\n"
    if event.run_id:
        body += f"Dagit: {bridge.dagit_url()}/runs/{event.run_id}\n"
    body += "\nChoose which alerts you receive in your notification settings.\n"
    return subject, body
