"""The organization's ingestion connections (``/api/connections/``): each writes the spec's
``connections`` entry and reloads the code location, where every chosen stream becomes an asset
``<connection>/<stream>``. A connection reads a source of ``/api/sources/`` (``source_name``) or a source
of its own: an Airbyte connector, a database or files (``source.type``, run by dlt); secret fields are
stored encrypted (``dalgo_core.secret_store``) and referenced from the spec; they are never returned.

A sync is a run of the connection's assets; its history lists those runs with the records each stream
loaded (Dagster's run storage, through the bridge). Schema changes of the source are found at every sync
and on demand (a task), listed, and applied as the connection's policy says or when a user approves
them. A reset of a connection, or of some of its streams, runs the connection's reset job in the code
location (``dalgo_core.names.reset_job_name``): their tables and connector state dropped, the next sync
a full one. With an Airbyte server, a change of a connection is applied to the server by a task."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field, SecretStr, ValidationError

from dalgo_api import bridge
from dalgo_api.accounts.auth import RequestContext, has_permission
from dalgo_api.audit import services as audit
from dalgo_api.common_responses import errors
from dalgo_api.connections import selectors, services
from dalgo_api.connections.schemas import ConnectionIn, ConnectionOut, ResetIn, SchemaChangesOut, SourceIn, SyncPage
from dalgo_api.errors import ApiError
from dalgo_api.runs import services as runs
from dalgo_api.runs.schemas import RunOut
from dalgo_api.sources.services import catalog_connector
from dalgo_api.specs import store as specs
from dalgo_api.specs.changes import SpecSection
from dalgo_api.tasks.schemas import TaskOut, task_out
from dalgo_core import secret_store
from dalgo_core.connectors import changes
from dalgo_core.names import CONNECTION_TAG, reset_job_name, reset_run_config
from dalgo_core.spec import (
    ConnectionSpec,
    DatabaseSource,
    FileSource,
    OrgSpec,
    SecretRef,
    SourceSpec,
    source_kind,
)

connections = Router(tags=["connections"])
Source = SourceSpec | DatabaseSource | FileSource


def secret_name(connection: str, field: str) -> str:
    return f"connection_{connection}_{field}"


def _source_out(source: Source) -> dict:
    """A source as the API shows it: its settings and the names of its stored secrets, never their values."""
    if isinstance(source, SourceSpec):
        return {
            "connector": source.connector,
            "version": source.version,
            "config": source.config,
            "secret_fields": sorted(source.secrets),
        }
    shown = source.model_dump(by_alias=True, exclude=set(source.SECRET_FIELDS))
    if isinstance(source, DatabaseSource):
        shown["port"] = source.server_port
    shown["secret_fields"] = sorted(source.secrets)
    return shown


def _out(spec_conn: ConnectionSpec, task: object = None) -> dict:
    return {
        "name": spec_conn.name,
        "source_name": spec_conn.source_name,
        "schema_change_policy": spec_conn.schema_change_policy,
        "task": task,
        "source": _source_out(spec_conn.source),
        "streams": spec_conn.streams,
        "destination_schema": spec_conn.destination_schema,
        "airbyte_connection_id": spec_conn.airbyte_connection_id,
        "assets": [f"{spec_conn.name}/{s.name}" for s in spec_conn.streams],
    }


SECTION = SpecSection("connections", "connection")
_connection = SECTION.lookup


def _named_source(spec: OrgSpec, name: str) -> SourceSpec:
    found = next((s for s in spec.sources if s.name == name), None)
    if found is None:
        raise ApiError(
            422,
            f"source_name: organization '{spec.slug}' has no source '{name}' (GET /api/sources/)",
            [{"field": "source_name", "message": f"no source '{name}'"}],
        )
    return found.source()


def _store(slug: str, connection: str, field: str, value: SecretStr) -> SecretRef:
    name = secret_name(connection, field)
    secret_store.write_secret(slug, name, value.get_secret_value())
    return SecretRef(file=name)


def _airbyte_source(ctx: RequestContext, payload: ConnectionIn, old: Source | None) -> SourceSpec:
    """A source of its own uses a connector of the organization's catalog (a tenant names no other package)."""
    given = payload.source
    assert isinstance(given, SourceIn)
    try:
        definition = catalog_connector(ctx.org, given.connector)
    except ApiError as exc:
        raise ApiError(
            422, f"source.{exc.detail}", [{"field": "source.connector", "message": exc.errors[0]["message"]}]
        ) from None
    refs = dict(old.secrets) if isinstance(old, SourceSpec) else {}
    for field, value in given.secrets.items():
        refs[field] = _store(ctx.org.slug, payload.name, field, value)
    return SourceSpec(
        connector=given.connector,
        version=given.version,
        config=given.config,
        secrets=refs,
        package=definition.package or None,
    )


def _dlt_source(slug: str, payload: ConnectionIn, old: Source | None) -> DatabaseSource | FileSource:
    """A database or files source of its own."""
    given = payload.source
    assert given is not None and not isinstance(given, SourceIn)
    model = DatabaseSource if given.type == "database" else FileSource
    fields = model.SECRET_FIELDS
    data = given.model_dump(by_alias=True, exclude=set(fields))
    for field in fields:
        value = getattr(given, field)
        kept = getattr(old, field, None) if old is not None and source_kind(old) == given.type else None
        data[field] = _store(slug, payload.name, field, value) if value is not None else kept
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, f"source: {exc.errors()[0]['msg']}") from None


def _to_spec(ctx: RequestContext, payload: ConnectionIn, current: ConnectionSpec | None) -> ConnectionSpec:
    """The spec entry for an input; given secrets are stored now, omitted ones keep their reference."""
    slug = ctx.org.slug
    old = current.source if current is not None and current.source_name is None else None
    if payload.source_name is not None:
        source: Source = _named_source(specs.load_spec(slug), payload.source_name)
    elif isinstance(payload.source, SourceIn):
        source = _airbyte_source(ctx, payload, old)
    else:
        source = _dlt_source(slug, payload, old)
    return ConnectionSpec(
        name=payload.name,
        source=source,
        source_name=payload.source_name,
        streams=payload.streams,
        destination_schema=payload.destination_schema,
        airbyte_connection_id=payload.airbyte_connection_id,
        schema_change_policy=payload.schema_change_policy,
    )


@connections.get(
    "/",
    response=list[ConnectionOut],
    auth=has_permission(["can_view_connections"]),
    by_alias=True,  # a database source's 'schema'
)
def list_connections(request: HttpRequest) -> list[dict]:
    return [_out(c) for c in specs.load_spec(request.auth.org.slug).connections]


@connections.get(
    "/{name}",
    response=ConnectionOut,
    auth=has_permission(["can_view_connection"], lookup=_connection),
    by_alias=True,  # a database source's 'schema'
)
def get_connection(request: HttpRequest, name: str) -> dict:
    return _out(request.auth.obj)


@connections.post(
    "/",
    response={201: ConnectionOut},
    auth=has_permission(["can_create_connection"]),
    by_alias=True,  # a database source's 'schema'
)
def create_connection(request: HttpRequest, payload: ConnectionIn) -> tuple[int, dict]:
    """Add a connection: its streams become assets once the code location reloads (done here)."""
    slug = request.auth.org.slug
    SECTION.ensure_free(slug, payload.name)  # before its secrets are stored
    entry = _to_spec(request.auth, payload, None)
    SECTION.add(slug, entry)
    return 201, _out(entry, services.apply_to_server(request.auth))


@connections.put(
    "/{name}",
    response=ConnectionOut,
    auth=has_permission(["can_edit_connection"], lookup=_connection),
    by_alias=True,  # a database source's 'schema'
)
def update_connection(request: HttpRequest, name: str, payload: ConnectionIn) -> dict:
    """Replace a connection (renaming it changes its assets' keys)."""
    slug = request.auth.org.slug
    SECTION.ensure_free(slug, payload.name, current=name)
    entry = _to_spec(request.auth, payload, request.auth.obj)
    SECTION.replace(slug, name, entry)
    return _out(entry, services.apply_to_server(request.auth))


@connections.delete("/{name}", response={204: None}, auth=has_permission(["can_delete_connection"], lookup=_connection))
def delete_connection(request: HttpRequest, name: str) -> tuple[int, None]:
    """Remove a connection and its stored secrets (its tables stay in the warehouse)."""
    slug = request.auth.org.slug
    SECTION.remove(slug, name)
    connection = request.auth.obj
    if connection.source_name is None:  # a named source keeps its secrets
        for ref in connection.secret_refs():
            if ref.file:
                secret_store.delete_secret(slug, ref.file)
    changes.forget(slug, name)
    return 204, None


def reset_streams(connection: ConnectionSpec, streams: list[str]) -> list[str]:
    """The streams a reset names, checked against the connection (422 naming the unknown ones); empty:
    every stream (the reset job's own default)."""
    known = [s.name for s in connection.streams]
    unknown = [s for s in dict.fromkeys(streams) if s not in known]
    if unknown:
        raise ApiError(
            422,
            f"connection '{connection.name}' has no stream {', '.join(repr(s) for s in unknown)} "
            f"(its streams: {', '.join(known)})",
            [{"field": "streams", "message": f"unknown stream {s!r}"} for s in unknown],
        )
    return [s for s in known if s in streams]


@connections.post(
    "/{name}/reset",
    response={201: RunOut, **errors(422)},
    auth=has_permission(["can_reset_connection"], lookup=_connection),
)
def reset_connection(request: HttpRequest, name: str, payload: ResetIn | None = None) -> tuple[int, RunOut]:
    """Reset the connection, or the streams named (none or an empty list: every stream): a run of the
    connection's reset job clears their data and connector state, so the next sync reads them in full.
    Embedded connections drop their tables (on PostgreSQL with the views built on them, which dbt builds
    again) and state in the warehouse. The run waits for a sync of the connection in progress; its log
    says what was dropped. Answers 201 with the run, as ``POST /api/runs/``; an unknown stream is 422."""
    ctx = request.auth
    slug = ctx.org.slug
    connection: ConnectionSpec = ctx.obj
    streams = reset_streams(connection, payload.streams if payload is not None else [])
    job = reset_job_name(slug, connection.name)
    tags = runs.run_tags(ctx.user.email, "manual", **{CONNECTION_TAG: connection.name})
    run_id = bridge.launch_run(
        slug, job_name=job, tags=tags, run_config=reset_run_config(slug, connection.name, streams)
    )
    audit.note(target=f"run {run_id}", after={"run_id": run_id, "connection": connection.name, "streams": streams})
    return 201, runs.launched_answer(slug, run_id, tags=tags, job=job)


# --- syncs and their history -----------------------------------------------------------------------


@connections.post(
    "/{name}/sync",
    response={201: RunOut},
    auth=has_permission(["can_sync_connection"], lookup=_connection),
)
def sync_connection(request: HttpRequest, name: str) -> tuple[int, RunOut]:
    """Sync the connection now: a run of all its streams' assets (201 with the run, as ``POST
    /api/runs/``). It waits in Dagster's queue while another sync of the connection runs."""
    ctx = request.auth
    slug, connection = ctx.org.slug, ctx.obj
    keys = [f"{connection.name}/{s.name}" for s in connection.streams]
    tags = runs.run_tags(ctx.user.email, "manual", **{CONNECTION_TAG: connection.name})
    run_id = bridge.launch_run(slug, asset_keys=keys, tags=tags)
    return 201, runs.launched_answer(slug, run_id, assets=keys, tags=tags)


class HistoryQuery(Schema):
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=64, description="The next_cursor of the previous page")


@connections.get("/{name}/syncs", response=SyncPage, auth=has_permission(["can_view_connection"], lookup=_connection))
def sync_history(request: HttpRequest, name: str, params: Query[HistoryQuery]) -> dict:
    """The connection's syncs, newest first, a page at a time: every run that synced its streams (from
    this API, a pipeline, the automation or Dagit), with its status, duration, the records each stream
    loaded and its log."""
    return selectors.history(request.auth.org.slug, request.auth.obj, params.limit, params.cursor)


# --- schema changes --------------------------------------------------------------------------------


@connections.get(
    "/{name}/schema-changes",
    response=SchemaChangesOut,
    auth=has_permission(["can_view_connection"], lookup=_connection),
)
def schema_changes(request: HttpRequest, name: str) -> dict:
    """The source's changes not applied to the connection (streams added or removed, columns added,
    removed or retyped), found by its last sync or refresh; ``held`` when its policy is pause."""
    return selectors.schema_changes(request.auth.org.slug, request.auth.obj)


@connections.post(
    "/{name}/schema-changes/refresh",
    response={202: TaskOut},
    auth=has_permission(["can_edit_connection"], lookup=_connection),
)
def refresh_schema(request: HttpRequest, name: str) -> tuple[int, TaskOut]:
    """Discover the source's catalog now and compare it with the connection's, in a task: its result
    lists the changes (then also listed by ``GET .../schema-changes``)."""
    return 202, task_out(services.schema_task(request.auth, request.auth.obj, "refresh_schema"))


@connections.post(
    "/{name}/schema-changes/approve",
    response={202: TaskOut},
    auth=has_permission(["can_edit_connection"], lookup=_connection),
)
def approve_schema(request: HttpRequest, name: str) -> tuple[int, TaskOut]:
    """Apply the source's last discovered catalog to the connection, in a task: new and retyped columns
    load from the next sync, a paused connection syncs again. A stream added to the source is chosen when
    the connection's policy is ``propagate_fully`` (a full refresh from the next sync; the task's result
    lists them in ``streams_added``); under other policies it is then known, not chosen: add it to the
    connection's streams to sync it."""
    return 202, task_out(services.schema_task(request.auth, request.auth.obj, "approve_schema"))
