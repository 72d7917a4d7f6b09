"""When a signal is worth a message: each rule keeps, per subject, whether its condition holds.

- A failing signal opens the subject's incident (or continues it). It is alerted when no alert of this rule
  on this subject went out within the rule's window; otherwise it is counted, and the next alert (once the
  window has passed and the condition still holds) says how many times it was held back.
- A clearing signal closes an open incident, with a recovery message if that incident was alerted (a
  failure held back by the window clears silently) and the rule asks for recoveries.

Signals are handled in the order Dagster recorded them and their own times count for the window, so a
dispatcher catching up after a pause decides as it would have live; handling a signal twice changes
nothing (an open incident within its window, or a closed one, sends nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dalgo_api.alerts.models import AlertEvent, Incident
from dalgo_api.bridge import Signal
from dalgo_api.orgs.models import Org
from dalgo_core.spec import AlertRuleSpec


@dataclass(frozen=True)
class Decision:
    status: str  # AlertEvent.ALERT or AlertEvent.RECOVERY
    repeats: int  # failing signals held back since the previous alert


def advance(org: Org, rule: AlertRuleSpec, signal: Signal) -> Decision | None:
    """Update the incident of ``rule`` on the signal's subject; what to send, if anything. Call inside a
    transaction (the incident row is locked)."""
    at = datetime.fromtimestamp(signal.at, UTC)
    incident = Incident.objects.select_for_update().filter(org=org, rule=rule.name, subject=signal.subject).first()
    if not signal.failing:
        if incident is None or not incident.failing:
            return None
        tell = incident.alerted and rule.recovery
        incident.failing, incident.alerted, incident.since, incident.repeats = False, False, at, 0
        incident.save()
        return Decision(AlertEvent.RECOVERY, 0) if tell else None
    if incident is None:
        incident = Incident(org=org, rule=rule.name, subject=signal.subject, since=at)
    if not incident.failing:
        incident.failing, incident.alerted, incident.since = True, False, at
    window = timedelta(minutes=rule.window_minutes)
    if incident.last_alert_at is not None and at - incident.last_alert_at < window:
        incident.repeats += 1
        incident.save()
        return None
    decision = Decision(AlertEvent.ALERT, incident.repeats)
    incident.alerted, incident.last_alert_at, incident.repeats = True, at, 0
    incident.save()
    return decision
