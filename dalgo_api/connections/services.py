"""The tasks of a connection: its schema refreshed or approved, and, with an Airbyte server, the
organization's connections applied to the server after a change."""

from __future__ import annotations

from typing import Any

from dalgo_api.specs import store as specs
from dalgo_api.tasks import selectors as task_selectors
from dalgo_api.tasks import services as tasks
from dalgo_api.tasks.models import Task
from dalgo_core.spec import ConnectionSpec


def schema_task(ctx: Any, connection: ConnectionSpec, kind: str) -> Task:
    """A refresh (discover and compare) or an approval of the connection's schema changes."""
    running = task_selectors.unfinished(ctx.org, kind, connection.name)
    return running or tasks.start(ctx.org, ctx.user, kind, connection.name, {"connection": connection.name})


def apply_to_server(ctx: Any) -> Any:
    """With an Airbyte server, the task making its sources and connections match the spec (its answer for
    the frontend to poll); None in embedded mode."""
    if specs.load_spec(ctx.org.slug).ingestion.mode != "server":
        return None
    from dalgo_api.tasks.schemas import task_out

    return task_out(tasks.start(ctx.org, ctx.user, "apply_airbyte", ctx.org.slug, {}))
