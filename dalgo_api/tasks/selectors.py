"""Reading tasks: one of an organization's (404 for any other), or one still working on a subject."""

from __future__ import annotations

import uuid
from typing import Any

from dalgo_api.errors import not_found
from dalgo_api.tasks import services
from dalgo_api.tasks.models import Task


def task_for_org(org: Any, task_id: str) -> Task:
    try:
        key = uuid.UUID(str(task_id))
    except ValueError:
        raise not_found("task", task_id) from None
    task = Task.objects.filter(org=org, pk=key).first()
    if task is None:
        raise not_found("task", task_id)
    return services.check_worker(task)


def unfinished(org: Any, kind: str, subject: str) -> Task | None:
    """A task of the same kind and subject still queued or running (shared instead of started twice)."""
    task = (
        Task.objects.filter(org=org, kind=kind, subject=subject, status__in=[Task.QUEUED, Task.RUNNING])
        .order_by("-created_at")
        .first()
    )
    return None if task is None or services.check_worker(task).finished else task
