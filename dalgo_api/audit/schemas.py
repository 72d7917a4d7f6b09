"""Bodies of the audit log endpoint."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import Field


class AuditEntryOut(Schema):
    id: int
    at: datetime
    actor: str | None = Field(description="The email of who made the change (None: nobody logged in)")
    action: str = Field(description='The operation, e.g. "PUT /api/organizations/warehouse"')
    target: str
    status: int
    before: Any = Field(None, description="What the change replaced, where known; secrets shown as ***")
    after: Any = Field(None, description="What the change made, where known; secrets shown as ***")
    request: Any = Field(None, description="The request's body, secrets shown as ***")


class AuditPage(Schema):
    entries: list[AuditEntryOut]
    next_cursor: int | None = Field(None, description="Pass as ?cursor= for older entries")
