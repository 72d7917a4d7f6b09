"""The organization's audit log (``/api/audit/``): every change made through the API, for its Account
Managers (``can_view_audit_log``)."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from dalgo_api.accounts.auth import has_permission
from dalgo_api.audit import selectors
from dalgo_api.audit.schemas import AuditPage

audit = Router(tags=["audit"])


class AuditQuery(Schema):
    actor: str | None = Field(None, max_length=254, description="Who made the change (email)")
    action: str | None = Field(None, max_length=160, description='Part of the operation, e.g. "warehouse"')
    target: str | None = Field(None, max_length=300, description="Part of the target, e.g. a run id")
    since: datetime | None = None
    until: datetime | None = None
    cursor: int | None = Field(None, ge=1, le=2**62)
    limit: int = Field(50, ge=1, le=200)


@audit.get("/", response=AuditPage, auth=has_permission(["can_view_audit_log"]))
def list_entries(request: HttpRequest, query: Query[AuditQuery]) -> dict:
    """Changes made through the API in the organization, newest first: who, when, the operation and its
    target, the state before and after where known, and the request's body, secrets shown as ``***``.
    Runs launched, cancelled and retried through the API are there too."""
    found, cursor = selectors.entries(request.auth.org, selectors.AuditFilter(**query.dict()))
    return {"entries": found, "next_cursor": cursor}
