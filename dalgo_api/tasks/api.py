"""``GET /api/tasks/{task_id}``: a task of the caller's organization, polled until it ends."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from dalgo_api.accounts.auth import RequestContext, has_permission
from dalgo_api.tasks import selectors
from dalgo_api.tasks.schemas import TaskOut, task_out

tasks = Router(tags=["tasks"])


def _task(ctx: RequestContext, params: dict) -> object:
    return selectors.task_for_org(ctx.org, params["task_id"])


@tasks.get("/{task_id}", response=TaskOut, auth=has_permission(["can_view_task_progress"], lookup=_task))
def get_task(request: HttpRequest, task_id: str) -> TaskOut:
    """A task's status, its progress messages (oldest first), and its result or error once it ended.
    Poll every second or two; a task of another organization is 404."""
    return task_out(request.auth.obj)
