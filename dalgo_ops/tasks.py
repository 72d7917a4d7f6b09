"""The worker of one API task: ``python -m dalgo_ops.tasks <task id>``, started detached by the API.

It claims the task's row in the API's database, does the work its kind names, writes each step's
progress, then the result or the error, and exits. It sits above both halves of the platform: the
API's models record the task; the work runs through ``dalgo_core.connectors`` in the organization's
sandbox (embedded ingestion), through dagster-airbyte's client against the organization's Airbyte
server (``dalgo_assets.ingestion.server.sources``), or, for the platform's own database and files
sources whatever the mode, through the dlt worker in the sandbox (``dalgo_assets.ingestion.dlt.discovery``).
Errors are written redacted: no secret of a configuration, no platform environment value, no traceback
(those go to the worker's log file, under ``$DALGO_HOME/platform/run/tasks/``, for operators).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class TaskFailed(Exception):
    """The task cannot be done; the message says why, for the user."""


@dataclass
class Job:
    """What a handler works with: the task's organization (model and spec), its input and a progress
    callback."""

    org: Any
    spec: Any
    params: dict[str, Any]
    progress: Callable[[str], None]
    secrets: list[str] = field(default_factory=list)  # values no message may show
    user: Any = None  # who started the task

    @property
    def slug(self) -> str:
        return self.spec.slug

    @property
    def server(self) -> bool:
        return self.spec.ingestion.mode == "server"

    def connection(self) -> Any:
        found = next((c for c in self.spec.connections if c.name == self.params.get("connection")), None)
        if found is None:
            raise TaskFailed(f"connection '{self.params.get('connection')}' no longer exists")
        return found

    def source(self) -> Any:
        from dalgo_api.sources.selectors import named_source

        found = named_source(self.spec, str(self.params.get("source")))
        if found is None:
            raise TaskFailed(f"source '{self.params.get('source')}' no longer exists")
        return found

    def definition(self) -> Any:
        from dalgo_api.errors import ApiError
        from dalgo_api.sources.selectors import connector_def

        try:
            return connector_def(self.org, str(self.params.get("connector")))
        except ApiError as exc:
            raise TaskFailed(exc.detail) from None


# --- the connector's specification -------------------------------------------------------------------


def _spec_of(job: Job, definition: Any) -> dict[str, Any]:
    """The connector's spec: cached, else read (installing the connector, or asking the server) and
    cached for every organization."""
    from dalgo_api.sources import selectors, services

    key = selectors.spec_key(selectors.server_url(job.spec), definition)
    found = selectors.cached_spec(key)
    if found is None:
        if job.server:
            from dalgo_assets.ingestion.server import sources as server

            found = server.read_spec(job.spec, definition.connector, job.progress)
        else:
            from dalgo_core.connectors import calls

            found = calls.read_spec(job.slug, _connector(definition), job.progress)
        services.store_spec(key, found)
    return found


def _connector(definition: Any) -> Any:
    from dalgo_core.connectors.calls import Connector

    return Connector(definition.connector, definition.version, definition.package or None)


def connector_spec(job: Job) -> dict[str, Any]:
    from dalgo_core.connectors.config import secret_paths

    definition = job.definition()
    found = _spec_of(job, definition)
    return {"connector": definition.connector, "version": definition.version, "secret_fields": secret_paths(found)}


# --- check and discover ------------------------------------------------------------------------------


def check_source(job: Job) -> dict[str, Any]:
    """The connector's check of a configuration (validated against its spec first)."""
    from dalgo_core.connectors import config as configs

    definition = job.definition()
    spec_doc = _spec_of(job, definition)
    config = job.params.get("config") or {}
    job.secrets += list(configs.split_secrets(config, configs.secret_paths(spec_doc))[1].values())
    problems = configs.validate(spec_doc, config)
    if not problems and definition.engine == "dlt":
        from dalgo_core.connectors import builtin

        problems = builtin.validate(definition.connector, config)
    if problems:
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
        return {
            "succeeded": False,
            "message": f"the configuration does not match the spec: {summary}",
            "errors": problems,
        }
    if definition.engine == "dlt":
        from dalgo_assets.ingestion.dlt import discovery
        from dalgo_core.connectors import builtin

        found = builtin.configured(definition.connector, config)
        succeeded, message, _ = discovery.check(job.spec, found, job.progress)
    elif job.server:
        from dalgo_assets.ingestion.server import sources as server

        succeeded, message = server.check(job.spec, definition.connector, config, job.progress)
    else:
        from dalgo_core.connectors import calls

        found = calls.check(job.slug, _connector(definition), config, job.progress)
        succeeded, message = found.succeeded, found.message
    from dalgo_core.redact import redact

    return {"succeeded": succeeded, "message": redact(message, job.secrets), "errors": []}


def _discover(job: Job, name: str, source: Any) -> dict[str, dict[str, Any]]:
    """The streams of a source (a named source, or a connection's own), by name, in the protocol's shape
    (a platform source's with its columns' own types and cursor candidates)."""
    from dalgo_core.connectors.builtin import is_builtin
    from dalgo_core.connectors.streams import protocol_stream

    if is_builtin(source.connector):
        from dalgo_assets.ingestion.dlt import discovery

        return discovery.discover(job.spec, source, job.progress)
    if job.server:
        from dalgo_assets.ingestion.server import sources as server

        streams = server.discover(job.spec, name, source, job.progress)
    else:
        from dalgo_core.connectors import calls
        from dalgo_core.connectors.config import get_path, resolved

        try:
            config = resolved(job.slug, source)
        except LookupError as exc:
            raise TaskFailed(f"a secret of the source cannot be read: {exc}") from None
        job.secrets += [str(get_path(config, path)) for path in source.secrets]
        connector = calls.Connector(source.connector, source.version, source.package)
        streams = calls.discover(job.slug, connector, config, job.progress)
    return {n: protocol_stream(s) for n, s in streams.items()}


def discover_source(job: Job) -> dict[str, Any]:
    source = job.source()
    return {"streams": list(_discover(job, source.name, source).values())}


# --- schema changes ---------------------------------------------------------------------------------


def refresh_schema(job: Job) -> dict[str, Any]:
    """Discover the connection's source now and compare it with the applied catalog."""
    from dalgo_core.connectors import changes

    connection = job.connection()
    chosen = [s.name for s in connection.streams]
    if job.server and connection.is_airbyte:
        from dalgo_assets.ingestion.server import sources as server

        discovered, applied = server.connection_catalogs(job.spec, connection, job.progress)
        changes.save_applied(job.slug, connection.name, applied)
    else:
        discovered = _discover(job, connection.source_name or connection.name, connection.source)
        applied = changes.load_applied(job.slug, connection.name)
        if applied is None:  # never synced: today's catalog is where it starts
            applied = changes.AppliedCatalog.from_discovered(discovered, chosen)
            changes.save_applied(job.slug, connection.name, applied)
    changes.save_discovered(job.slug, connection.name, discovered)
    outcome = changes.apply_policy(connection.schema_change_policy, applied, discovered, chosen)
    _tell_alerts(job, connection.name, changes.observations(connection, outcome))
    return {"changes": [c.as_dict() for c in changes.diff(applied, discovered, chosen)]}


APPROVAL = "POST /api/connections/{name}/schema-changes/approve"  # the audit log's action of an approval's streams


def approve_schema(job: Job) -> dict[str, Any]:
    """Take the last discovered catalog as the connection's (on the server too); under the policy
    ``propagate_fully`` the streams added to the source are chosen (full refresh)."""
    from dalgo_api.connections.services import add_source_streams
    from dalgo_core.connectors import changes

    connection = job.connection()
    discovered = changes.load_discovered(job.slug, connection.name)
    if discovered is None:
        raise TaskFailed(f"connection '{connection.name}' has no discovered catalog yet: refresh its schema first")
    chosen = [s.name for s in connection.streams]
    applied = changes.load_applied(job.slug, connection.name) or changes.AppliedCatalog()
    approved = changes.diff(applied, discovered.streams, chosen)
    if job.server and connection.is_airbyte:
        from dalgo_assets.ingestion.server import sources as server

        server.approve(job.spec, connection, discovered.streams, job.progress)
    gained = [c.stream for c in approved if c.kind == "stream_added"]
    added = add_source_streams(job.org, connection.name, gained, actor=job.user, action=APPROVAL)
    if added:
        job.progress(f"streams chosen, each syncing in full at the next sync: {', '.join(added)}")
        if job.server and connection.is_airbyte:
            from dalgo_core.spec import load_org_spec

            server.apply_spec(load_org_spec(job.slug), job.progress)
    changes.save_applied(
        job.slug, connection.name, changes.AppliedCatalog.from_discovered(discovered.streams, chosen + added)
    )
    _tell_alerts(job, connection.name, changes.approved(connection))
    return {"approved": [c.as_dict() for c in approved], "streams_added": added}


def _tell_alerts(job: Job, connection: str, observed: dict[str, dict[str, Any]]) -> None:
    """Record, per stream, whether a schema change waits (for the alert dispatcher); a Dagster that
    cannot be reached is said, not fatal (the connection's next sync records it again)."""
    from dalgo_api import bridge

    try:
        bridge.report_observations(job.slug, {f"{connection}/{stream}": meta for stream, meta in observed.items()})
    except bridge.DagsterUnavailable as exc:
        job.progress(f"the alerts were not told of the schema's state: {exc.detail}")


def apply_airbyte(job: Job) -> dict[str, Any]:
    """Make the organization's Airbyte workspace match its spec, then reload its code location (which
    reads the recorded connection ids)."""
    from dalgo_api import bridge
    from dalgo_assets.ingestion.server import sources as server

    lines = server.apply_spec(job.spec, job.progress)
    try:
        bridge.reload_location(job.slug)
    except Exception as exc:  # the ids are recorded: the next reload picks them up
        job.progress(f"the code location was not reloaded ({exc}); it reads the new ids at its next reload")
    return {"plan": lines}


HANDLERS: dict[str, Callable[[Job], Any]] = {
    "connector_spec": connector_spec,
    "check_source": check_source,
    "discover_source": discover_source,
    "refresh_schema": refresh_schema,
    "approve_schema": approve_schema,
    "apply_airbyte": apply_airbyte,
}


def _known_failures() -> tuple[type[BaseException], ...]:
    """Errors whose message is for the user: the connector's, the install's, Airbyte's, a spec's."""
    import dagster as dg

    from dalgo_api.errors import ApiError
    from dalgo_assets.ingestion.dlt.run import WorkerFailed
    from dalgo_core.connectors.calls import ConnectorError, ConnectorInstallError
    from dalgo_core.sandbox import SandboxUnavailable
    from dalgo_core.spec import SpecError

    failures = (TaskFailed, ConnectorError, ConnectorInstallError, SandboxUnavailable, SpecError, ApiError)
    return (*failures, WorkerFailed, dg.Failure)


def _message(exc: BaseException, secrets: list[str]) -> str:
    from dalgo_core.redact import redact

    text = getattr(exc, "description", None) or getattr(exc, "detail", None) or str(exc)
    return redact(str(text), secrets)


def run(task_id: str) -> int:
    """Do one task; 0 once its row says how it ended."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dalgo_api.settings")
    django.setup()
    from dalgo_api.orgs.models import Org
    from dalgo_api.tasks import services as tasks
    from dalgo_core.spec import load_org_spec

    task = tasks.claim(task_id)
    handler = HANDLERS.get(task.kind)
    if handler is None:
        tasks.fail(task, f"unknown task kind '{task.kind}'")
        return 1
    job = None
    try:
        org = Org.objects.get(pk=task.org_id)
        job = Job(
            org, load_org_spec(org.slug), tasks.params(task), lambda m: tasks.report(task, m), user=task.created_by
        )
        result = handler(job)
    except _known_failures() as exc:
        tasks.fail(task, _message(exc, job.secrets if job else []))
    except Exception as exc:
        traceback.print_exc()  # the worker's log, for operators
        tasks.fail(task, f"the task failed unexpectedly ({type(exc).__name__}); operators can read its log")
    else:
        tasks.succeed(task, result)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m dalgo_ops.tasks <task id>", file=sys.stderr)
        return 2
    return run(args[0])


if __name__ == "__main__":
    sys.exit(main())
