"""The organization's ingestion connections (``/api/connections/``): each writes the spec's
``connections`` entry and reloads the code location, where every stream becomes an asset
``<connection>/<stream>``. Secret config fields are stored encrypted (``dalgo_core.secret_store``)
and referenced from the spec; they are never returned."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from dalgo_api.accounts.auth import has_permission
from dalgo_api.connections.schemas import ConnectionIn, ConnectionOut
from dalgo_api.specs import store as specs
from dalgo_api.specs.changes import SpecSection
from dalgo_core import secret_store
from dalgo_core.spec import ConnectionSpec, SecretRef, SourceSpec

connections = Router(tags=["connections"])


def secret_name(connection: str, field: str) -> str:
    return f"connection_{connection}_{field}"


def _out(spec_conn: ConnectionSpec) -> dict:
    return {
        "name": spec_conn.name,
        "source": {
            "connector": spec_conn.source.connector,
            "version": spec_conn.source.version,
            "config": spec_conn.source.config,
            "secret_fields": sorted(spec_conn.source.secrets),
        },
        "streams": spec_conn.streams,
        "destination_schema": spec_conn.destination_schema,
        "airbyte_connection_id": spec_conn.airbyte_connection_id,
        "assets": [f"{spec_conn.name}/{s.name}" for s in spec_conn.streams],
    }


SECTION = SpecSection("connections", "connection")
_connection = SECTION.lookup


def _to_spec(slug: str, payload: ConnectionIn, current: ConnectionSpec | None) -> ConnectionSpec:
    """The spec entry for an input; given secrets are stored now, omitted ones keep their reference."""
    refs = dict(current.source.secrets) if current is not None else {}
    for field, value in payload.source.secrets.items():
        name = secret_name(payload.name, field)
        secret_store.write_secret(slug, name, value.get_secret_value())
        refs[field] = SecretRef(file=name)
    source = SourceSpec(
        connector=payload.source.connector,
        version=payload.source.version,
        config=payload.source.config,
        secrets=refs,
    )
    return ConnectionSpec(
        name=payload.name,
        source=source,
        streams=payload.streams,
        destination_schema=payload.destination_schema,
        airbyte_connection_id=payload.airbyte_connection_id,
    )


@connections.get("/", response=list[ConnectionOut], auth=has_permission(["can_view_connections"]))
def list_connections(request: HttpRequest) -> list[dict]:
    return [_out(c) for c in specs.load_spec(request.auth.org.slug).connections]


@connections.get("/{name}", response=ConnectionOut, auth=has_permission(["can_view_connection"], lookup=_connection))
def get_connection(request: HttpRequest, name: str) -> dict:
    return _out(request.auth.obj)


@connections.post("/", response={201: ConnectionOut}, auth=has_permission(["can_create_connection"]))
def create_connection(request: HttpRequest, payload: ConnectionIn) -> tuple[int, dict]:
    """Add a connection: its streams become assets once the code location reloads (done here)."""
    slug = request.auth.org.slug
    SECTION.ensure_free(slug, payload.name)  # before its secrets are stored
    entry = _to_spec(slug, payload, None)
    SECTION.add(slug, entry)
    return 201, _out(entry)


@connections.put("/{name}", response=ConnectionOut, auth=has_permission(["can_edit_connection"], lookup=_connection))
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
    for ref in request.auth.obj.source.secrets.values():
        if ref.file:
            secret_store.delete_secret(slug, ref.file)
    return 204, None
