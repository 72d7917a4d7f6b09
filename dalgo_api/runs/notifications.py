"""Emails about failed runs, by polling Dagster (``manage.py notify_failed_runs``, e.g. every minute).

Polling the instance was chosen over a run-failure sensor calling a webhook: a failure that happens
while the API is down is still found on the next pass (nothing is pushed, so nothing is lost), no
secret is shared between code locations and the API, and each failure is emailed once
(``NotifiedRun`` is unique per run id).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction

from dalgo_api import bridge, mail
from dalgo_api.accounts.auth import role_permissions
from dalgo_api.orgs.models import Org, OrgUser
from dalgo_api.runs.models import NotifiedRun, Subscription
from dalgo_core.names import PIPELINE_TAG, USER_TAG

logger = logging.getLogger(__name__)
DEFAULT_LOOKBACK = timedelta(hours=24)


def recipients(org: Org) -> list[str]:
    """Subscribed members who may still see the organization's runs."""
    emails = []
    for sub in Subscription.objects.filter(org=org).select_related("user"):
        member = OrgUser.objects.filter(org=org, user=sub.user).select_related("role").first()
        allowed = sub.user.is_superuser or (member and "can_view_runs" in role_permissions(member.role.slug))
        if sub.user.is_active and allowed:
            emails.append(sub.user.email)
    return sorted(emails)


def _message(org: Org, run: bridge.RunInfo, error: str | None) -> tuple[str, str]:
    link = mail.frontend_link("pipeline/runs", run_id=run.run_id)
    what = run.tags.get(PIPELINE_TAG) or run.job
    subject = f"[{org.name}] run of {what} failed"
    body = (
        f"A run of organization {org.name} ({org.slug}) failed.\n\n"
        f"Run: {run.run_id}\nJob: {run.job}\nTrigger: {run.trigger or 'Dagster'}\n"
        f"Started by: {run.tags.get(USER_TAG, 'Dagster')}\n\n"
        f"Error:\n{error or 'no error message was recorded'}\n\n"
        f"Logs: {link}\nDagit: {bridge.dagit_url()}/runs/{run.run_id}\n"
    )
    return subject, body


def notify_failed_runs(lookback: timedelta = DEFAULT_LOOKBACK) -> int:
    """Email each organization's subscribers about its runs that failed within ``lookback`` and were
    not emailed yet; return how many runs were handled."""
    since = datetime.now(UTC) - lookback
    handled = 0
    for run in bridge.failed_runs_since(since):
        if NotifiedRun.objects.filter(run_id=run.run_id).exists():
            continue
        org = Org.objects.filter(slug=run.org).first()
        if org is None:
            continue
        try:
            with transaction.atomic():
                marker = NotifiedRun.objects.create(run_id=run.run_id, org_slug=org.slug, failed_at=run.updated_at)
                to = recipients(org)
                subject, body = _message(org, run, bridge.run_error(run.run_id))
                for email in to:
                    mail.send(email, subject, body)
                marker.recipients = len(to)
                marker.save(update_fields=["recipients"])
        except IntegrityError:  # another poller took it
            continue
        handled += 1
        logger.info("run %s of %s failed: emailed %d subscriber(s)", run.run_id, org.slug, len(to))
    return handled
