"""The answer of a task: what the frontend polls until ``status`` is succeeded or failed."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class ProgressOut(BaseModel):
    at: datetime
    message: str


class TaskOut(BaseModel):
    task_id: str
    kind: str = Field(description="connector_spec, check_source, discover_source, refresh_schema, ...")
    subject: str
    status: Literal["queued", "running", "succeeded", "failed"]
    progress: list[ProgressOut]
    result: Any = Field(None, description="Once succeeded: what the task found (its kind says the shape)")
    error: str | None = None
    created_at: datetime
    updated_at: datetime
    poll: str = Field(description="Where to poll: GET this path until the status is succeeded or failed")


def task_out(task: Any) -> TaskOut:
    return TaskOut(
        task_id=str(task.id),
        kind=task.kind,
        subject=task.subject,
        status=task.status,
        progress=task.progress,
        result=task.result,
        error=task.error or None,
        created_at=task.created_at,
        updated_at=task.updated_at,
        poll=f"/api/tasks/{task.id}",
    )
