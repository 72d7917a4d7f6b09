"""The alert dispatcher: one pass reads what Dagster recorded since the previous pass, for every
organization at once (``dalgo_api.bridge.signals``: ended runs with their checks, the FreshnessDaemon's
state changes, code locations), matches it to each organization's rules, and sends what the rules' windows
allow (``incidents``, ``delivery``). The syncs of connections under the policy ``propagate_fully`` name
there the streams their sources gained: a pass adds them to the connections (``add_source_streams``:
the spec written, the code location reloaded, an audit entry of the platform), since a run cannot change
its own code location. ``manage.py dispatch_alerts --loop`` runs a pass every
``DALGO_ALERTS_INTERVAL_SECONDS`` (default 5); ``dalgo up`` and ``dalgo serve`` start it.

Why a loop beside Dagster's daemon rather than a sensor in each organization's code location: it reads
Dagster's event log in a few indexed queries per pass whatever the number of organizations; a code
location that fails to load cannot run its own sensor, yet must be reported; and the members, their
choices, their inbox and the mail settings are the API's. Nothing is pushed: a pass starts from the
cursors the previous one saved, so a dispatcher that was stopped catches up and nothing is lost (on its
very first pass it looks back ``DALGO_ALERTS_LOOKBACK_MINUTES``, default 60).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from dalgo_api import bridge
from dalgo_api.alerts import delivery, incidents
from dalgo_api.alerts.models import AlertEvent, DispatchCursor
from dalgo_api.connections.services import add_source_streams
from dalgo_api.errors import ApiError
from dalgo_api.orgs.models import Org
from dalgo_core.spec import AlertRuleSpec, SpecError, load_alert_rules, org_spec_path

logger = logging.getLogger(__name__)

INTERVAL_ENV = "DALGO_ALERTS_INTERVAL_SECONDS"
LOOKBACK_ENV = "DALGO_ALERTS_LOOKBACK_MINUTES"


def interval_seconds() -> float:
    return float(os.environ.get(INTERVAL_ENV, "5"))


def lookback() -> timedelta:
    return timedelta(minutes=float(os.environ.get(LOOKBACK_ENV, "60")))


@dataclass
class Report:
    signals: int = 0
    alerts: int = 0
    recoveries: int = 0
    emails: int = 0
    delivered: int = 0
    streams_added: int = 0
    more: bool = False  # Dagster has more recorded than one pass reads: pass again at once


_rules: dict[str, tuple[int, list[AlertRuleSpec]]] = {}


def org_rules(slug: str) -> list[AlertRuleSpec]:
    """The organization's enabled rules, read again when its spec file changes."""
    try:
        stamp = org_spec_path(slug).stat().st_mtime_ns
    except FileNotFoundError:
        return []
    cached = _rules.get(slug)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        rules = [r for r in load_alert_rules(slug) if r.enabled]
    except SpecError as exc:
        logger.warning("organization %s: its alert rules cannot be read: %s", slug, exc)
        rules = []
    _rules[slug] = (stamp, rules)
    return rules


def dispatch_once(now: datetime | None = None) -> Report:
    """One pass; ``DagsterUnavailable`` when Dagster's storage cannot be read (nothing is lost: the cursors
    stay where they were)."""
    now = now or timezone.now()
    cursors = dict(DispatchCursor.objects.values_list("name", "value"))
    found = bridge.read_signals(cursors, since=(now - lookback()).timestamp())
    orgs = {org.slug: org for org in Org.objects.all()}
    signals = list(found.found)
    watched = [slug for slug in orgs if any(r.kind == "location_failed" for r in org_rules(slug))]
    if watched:
        try:
            signals += bridge.location_signals(watched, now.timestamp())
        except bridge.DagsterUnavailable as exc:
            logger.info("code locations not checked: %s", exc.detail)
    report = Report(signals=len(signals), more=found.more)
    report.streams_added = _add_streams(orgs, signals)
    for signal in signals:
        org = orgs.get(signal.org)
        if org is None:
            continue
        for rule in org_rules(org.slug):
            if rule.kind == signal.kind and rule.selects(signal.asset):
                _handle(report, org, rule, signal)
    for name, value in found.cursors.items():
        if cursors.get(name) != value:
            DispatchCursor.objects.update_or_create(name=name, defaults={"value": value})
    report.delivered = delivery.deliver_webhooks()
    return report


def _add_streams(orgs: dict[str, Org], signals: list[bridge.Signal]) -> int:
    """Add to each connection the streams its syncs found its source gained (``propagate_fully``)."""
    wanted: dict[tuple[str, str], list[str]] = {}
    for signal in signals:
        if signal.streams_added and signal.asset and signal.org in orgs:
            wanted.setdefault((signal.org, signal.asset.split("/")[0]), []).extend(signal.streams_added)
    added = 0
    for (slug, connection), streams in wanted.items():
        try:
            new = add_source_streams(orgs[slug], connection, streams)
        except ApiError as exc:  # the spec refused them: said, and tried again at the connection's next sync
            logger.warning("organization %s: streams not added to connection %s: %s", slug, connection, exc.detail)
            continue
        if new:
            logger.info("organization %s: added to connection %s the streams %s", slug, connection, ", ".join(new))
        added += len(new)
    return added


def _handle(report: Report, org: Org, rule: AlertRuleSpec, signal: bridge.Signal) -> None:
    with transaction.atomic():
        decision = incidents.advance(org, rule, signal)
        event = delivery.record(org, rule, signal, decision) if decision is not None else None
    if event is None:
        return
    if event.status == AlertEvent.ALERT:
        report.alerts += 1
    else:
        report.recoveries += 1
    report.emails += delivery.send_emails(event, rule)
    logger.info("organization %s, rule %s: %s %s", org.slug, rule.name, event.status, event.title)
