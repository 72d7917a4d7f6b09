"""Reading the audit log: an organization's entries, newest first, filtered and a page at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dalgo_api.audit.models import AuditEntry
from dalgo_api.orgs.models import Org


@dataclass
class AuditFilter:
    actor: str | None = None  # email, exact
    action: str | None = None  # contained in "METHOD /api/path" (e.g. "warehouse", "PUT ")
    target: str | None = None  # contained
    since: datetime | None = None
    until: datetime | None = None
    cursor: int | None = None
    limit: int = 50


def entries(org: Org, query: AuditFilter) -> tuple[list[dict[str, Any]], int | None]:
    found = AuditEntry.objects.filter(org=org)
    if query.actor:
        found = found.filter(actor_email__iexact=query.actor)
    if query.action:
        found = found.filter(action__icontains=query.action)
    if query.target:
        found = found.filter(target__icontains=query.target)
    if query.since:
        found = found.filter(at__gte=query.since)
    if query.until:
        found = found.filter(at__lt=query.until)
    if query.cursor is not None:
        found = found.filter(id__lt=query.cursor)
    page = list(found.order_by("-id")[: query.limit + 1])
    more = len(page) > query.limit
    page = page[: query.limit]
    out = [
        {
            "id": e.pk,
            "at": e.at,
            "actor": e.actor_email or None,
            "action": e.action,
            "target": e.target,
            "status": e.status,
            "before": e.before,
            "after": e.after,
            "request": e.request,
        }
        for e in page
    ]
    return out, (page[-1].pk if more and page else None)
