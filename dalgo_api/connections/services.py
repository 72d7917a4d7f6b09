"""The tasks of a connection: its schema refreshed or approved, and, with an Airbyte server, the
organization's connections applied to the server after a change; the streams a source gained chosen
under the policy ``propagate_fully``."""

from __future__ import annotations

import re
from typing import Any

from dalgo_api.audit import services as audit
from dalgo_api.specs import store as specs
from dalgo_api.specs.changes import change_spec
from dalgo_api.tasks import selectors as task_selectors
from dalgo_api.tasks import services as tasks
from dalgo_api.tasks.models import Task
from dalgo_core.connectors import changes
from dalgo_core.spec import STREAM_PATTERN, ConnectionSpec, OrgSpec, StreamSpec

PROPAGATED = "schema changes propagated"  # the audit log's action of the streams the platform adds


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


def add_source_streams(
    org: Any, name: str, streams: list[str], *, actor: Any = None, action: str = PROPAGATED
) -> list[str]:
    """Choose, in connection ``name`` under the policy ``propagate_fully``, the streams its source gained
    (among ``streams``, those its last discovered catalog has and it does not choose yet), each a full
    refresh: the spec written as the API's PUT writes it (its code location reloaded, or loading them when
    Dagster starts), their schemas applied, one audit entry (``actor`` None: the platform). The streams
    added; none when the connection is gone or follows another policy now."""
    spec = specs.load_spec(org.slug)
    connection = next((c for c in spec.connections if c.name == name), None)
    discovered = changes.load_discovered(org.slug, name)
    if connection is None or discovered is None or connection.schema_change_policy != changes.FULL_PROPAGATION:
        return []
    chosen = {s.name for s in connection.streams}
    new = [
        s for s in dict.fromkeys(streams) if s not in chosen and s in discovered.streams and re.match(STREAM_PATTERN, s)
    ]
    if not new:
        return []

    def edit(spec: OrgSpec) -> None:
        for entry in spec.connections:  # as it is now, under the spec's lock
            if entry.name == name:
                taken = {s.name for s in entry.streams}
                entry.streams = [*entry.streams, *(StreamSpec(name=s) for s in new if s not in taken)]

    with audit.outside_request(org, action, f"connection={name}", actor):
        change_spec(org.slug, edit, dagster_required=False)
    changes.adopt(org.slug, name, new)
    return new
