"""The organization's ingestion connections (``/api/connections/``): each writes the spec's
``connections`` entry and reloads the code location, where every stream becomes an asset
``<connection>/<stream>``. A source is an Airbyte connector, a database or files (``source.type``).
Secret config fields are stored encrypted (``dalgo_core.secret_store``)
and referenced from the spec; they are never returned. A reset of a connection, or of some of its
streams, runs the connection's reset job in the code location (``dalgo_core.names.reset_job_name``):
their tables and connector state dropped, the next sync a full one."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router
from pydantic import SecretStr, ValidationError

from dalgo_api import bridge
from dalgo_api.accounts.auth import has_permission
from dalgo_api.common_responses import errors
from dalgo_api.connections.schemas import ConnectionIn, ConnectionOut, ResetIn, SourceIn
from dalgo_api.errors import ApiError
from dalgo_api.runs import services as runs
from dalgo_api.runs.schemas import RunOut
from dalgo_api.specs import store as specs
from dalgo_api.specs.changes import SpecSection
from dalgo_core import secret_store
from dalgo_core.names import CONNECTION_TAG, reset_job_name, reset_run_config
from dalgo_core.spec import (
    ConnectionSpec,
    DatabaseSource,
    FileSource,
    SecretRef,
    SourceSpec,
    source_kind,
)

connections = Router(tags=["connections"])
# the fields of a database or file source that are secrets: stored encrypted, referred to from the spec
SOURCE_SECRETS = {"database": ("password",), "files": ("aws_access_key_id", "aws_secret_access_key")}
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
    shown = source.model_dump(by_alias=True, exclude=set(SOURCE_SECRETS[source.type]))
    if isinstance(source, DatabaseSource):
        shown["port"] = source.server_port
    shown["secret_fields"] = [f for f in SOURCE_SECRETS[source.type] if getattr(source, f) is not None]
    return shown


def _out(spec_conn: ConnectionSpec) -> dict:
    return {
        "name": spec_conn.name,
        "source": _source_out(spec_conn.source),
        "streams": spec_conn.streams,
        "destination_schema": spec_conn.destination_schema,
        "airbyte_connection_id": spec_conn.airbyte_connection_id,
        "assets": [f"{spec_conn.name}/{s.name}" for s in spec_conn.streams],
    }


SECTION = SpecSection("connections", "connection")
_connection = SECTION.lookup


def _store(slug: str, connection: str, field: str, value: SecretStr) -> SecretRef:
    name = secret_name(connection, field)
    secret_store.write_secret(slug, name, value.get_secret_value())
    return SecretRef(file=name)


def _source(
    slug: str, payload: ConnectionIn, current: ConnectionSpec | None
) -> SourceSpec | DatabaseSource | FileSource:
    """The spec's source for an input; given secrets are stored now, omitted ones keep their reference."""
    given, old = payload.source, current.source if current is not None else None
    if isinstance(given, SourceIn):
        refs = dict(old.secrets) if isinstance(old, SourceSpec) else {}
        for field, value in given.secrets.items():
            refs[field] = _store(slug, payload.name, field, value)
        return SourceSpec(connector=given.connector, version=given.version, config=given.config, secrets=refs)
    fields = SOURCE_SECRETS[given.type]
    data = given.model_dump(by_alias=True, exclude=set(fields))
    for field in fields:
        value = getattr(given, field)
        kept = getattr(old, field, None) if old is not None and source_kind(old) == given.type else None
        data[field] = _store(slug, payload.name, field, value) if value is not None else kept
    model = DatabaseSource if given.type == "database" else FileSource
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, f"source: {exc.errors()[0]['msg']}") from None


def _to_spec(slug: str, payload: ConnectionIn, current: ConnectionSpec | None) -> ConnectionSpec:
    """The spec entry for an input; given secrets are stored now, omitted ones keep their reference."""
    source = _source(slug, payload, current)
    return ConnectionSpec(
        name=payload.name,
        source=source,
        streams=payload.streams,
        destination_schema=payload.destination_schema,
        airbyte_connection_id=payload.airbyte_connection_id,
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
    entry = _to_spec(slug, payload, None)
    SECTION.add(slug, entry)
    return 201, _out(entry)


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
    entry = _to_spec(slug, payload, request.auth.obj)
    SECTION.replace(slug, name, entry)
    return _out(entry)


@connections.delete("/{name}", response={204: None}, auth=has_permission(["can_delete_connection"], lookup=_connection))
def delete_connection(request: HttpRequest, name: str) -> tuple[int, None]:
    """Remove a connection and its stored secrets (its tables stay in the warehouse)."""
    slug = request.auth.org.slug
    SECTION.remove(slug, name)
    for ref in request.auth.obj.secret_refs():
        if ref.file:
            secret_store.delete_secret(slug, ref.file)
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
    return 201, runs.launched_answer(slug, run_id, tags=tags, job=job)
