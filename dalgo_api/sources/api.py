"""The connector catalog and the organization's sources (``/api/sources/``).

The catalog lists the connectors an organization may use, each with its version and documentation: the
platform's own database and files sources (run by dlt, their form known at once), then Airbyte's
connectors, whose spec (the configuration form) is read once per version by a task and answered at once
afterwards. A source is a configured connector, written in the organization's spec under ``sources``: its
configuration is validated against the connector's spec; the fields the spec marks secret are stored
encrypted and never returned. Checking a configuration and discovering a source's streams run the
connector (in the organization's sandbox, or on its Airbyte server) in a task: the answer is 202 with
the task to poll (``GET /api/tasks/{task_id}``)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from dalgo_api.accounts.auth import RequestContext, has_permission
from dalgo_api.common_responses import errors
from dalgo_api.errors import not_found
from dalgo_api.sources import selectors, services
from dalgo_api.sources.schemas import (
    ConfigIn,
    ConnectorIn,
    ConnectorOut,
    SourceCheckIn,
    SourceIn,
    SourceOut,
    SourceUpdateIn,
    SpecOut,
)
from dalgo_api.specs import store as specs
from dalgo_api.tasks.schemas import TaskOut, task_out
from dalgo_core.connectors.catalog import ConnectorDef

sources = Router(tags=["sources"])


def _source(ctx: RequestContext, params: dict) -> object:
    found = selectors.named_source(specs.load_spec(ctx.org.slug), params["name"])
    if found is None:
        raise not_found("source", params["name"])
    return found


def _connector_out(definition: ConnectorDef, spec_cached: bool) -> dict:
    return {
        "connector": definition.connector,
        "title": definition.title,
        "description": definition.description,
        "version": definition.version,
        "package": definition.pypi_package,
        "documentation_url": definition.docs,
        "custom": definition.custom,
        "engine": definition.engine,
        "spec_cached": spec_cached,
    }


# --- the catalog -----------------------------------------------------------------------------------


@sources.get("/connectors", response=list[ConnectorOut], auth=has_permission(["can_view_sources"]))
def list_connectors(request: HttpRequest) -> list[dict]:
    """The connectors the organization may use: a curated set of Airbyte's Python connectors, then
    those its operators added."""
    server = selectors.org_server_url(request.auth.org.slug)
    found = selectors.catalog(request.auth.org)
    keys = [selectors.spec_key(server, c) for c in found]
    cached = selectors.cached_keys(keys)
    return [_connector_out(c, key in cached) for c, key in zip(found, keys, strict=True)]


@sources.post("/connectors", response={201: ConnectorOut, **errors(409)}, auth=has_permission(["can_add_connector"]))
def add_connector(request: HttpRequest, payload: ConnectorIn) -> tuple[int, dict]:
    """Add an operator's own connector (a PyPI package and version whose command is ``connector``) to the
    organization's catalog (platform staff only: the package is installed on the platform's hosts)."""
    definition = services.add_connector(request.auth.org, request.auth.user, payload)
    key = selectors.spec_key(selectors.org_server_url(request.auth.org.slug), definition)
    return 201, _connector_out(definition, selectors.cached_spec(key) is not None)


@sources.get(
    "/connectors/{connector}/spec",
    response={200: SpecOut, 202: TaskOut},
    auth=has_permission(["can_view_sources"]),
)
def connector_spec(request: HttpRequest, connector: str) -> tuple[int, object]:
    """The connector's configuration form (its spec's JSON schema) and the fields kept secret. Read once
    per version: until then the answer is 202 with the task reading it (installing the connector first:
    minutes); ask again once the task succeeded."""
    ctx = request.auth
    definition = selectors.connector_def(ctx.org, connector)
    key = selectors.spec_key(selectors.org_server_url(ctx.org.slug), definition)
    found = selectors.spec_form(key)
    if found is None:
        return 202, task_out(services.spec_task(ctx, key, definition))
    return 200, {
        "connector": definition.connector,
        "version": definition.version,
        **found,
        "documentation_url": found["documentation_url"] or definition.docs,
    }


@sources.post("/check", response={202: TaskOut, **errors(409)}, auth=has_permission(["can_create_source"]))
def check_config(request: HttpRequest, payload: ConfigIn) -> tuple[int, object]:
    """Check a configuration before saving it: validated against the connector's spec (422 naming each
    field), then the connector's own ``check`` in a task; its result says whether it succeeded and the
    connector's message."""
    ctx = request.auth
    definition = services.catalog_connector(ctx.org, payload.connector)
    found = selectors.cached_spec(selectors.spec_key(selectors.org_server_url(ctx.org.slug), definition))
    full = services.checked_config(definition, found, payload.config) if found is not None else payload.config
    return 202, task_out(services.check_task(ctx, definition, full, f"{definition.connector} (not saved)"))


# --- sources ---------------------------------------------------------------------------------------


@sources.get("/", response=list[SourceOut], auth=has_permission(["can_view_sources"]))
def list_sources(request: HttpRequest) -> list[dict]:
    org_spec = specs.load_spec(request.auth.org.slug)
    return [services.source_out(org_spec, s) for s in org_spec.sources]


@sources.post("/", response={201: SourceOut, **errors(409)}, auth=has_permission(["can_create_source"]))
def create_source(request: HttpRequest, payload: SourceIn) -> tuple[int, dict]:
    """Save a source: its configuration must match the connector's spec (read it first: 409 until then);
    the spec's secret fields are stored encrypted. Check it before (``POST /api/sources/check``)."""
    entry = services.create_source(request.auth, payload)
    return 201, services.source_out(specs.load_spec(request.auth.org.slug), entry)


@sources.get("/{name}", response=SourceOut, auth=has_permission(["can_view_source"], lookup=_source))
def get_source(request: HttpRequest, name: str) -> dict:
    return services.source_out(specs.load_spec(request.auth.org.slug), request.auth.obj)


@sources.put("/{name}", response=SourceOut, auth=has_permission(["can_edit_source"], lookup=_source))
def update_source(request: HttpRequest, name: str, payload: SourceUpdateIn) -> dict:
    """Replace the source's configuration (a secret field left out keeps its stored value); the
    connections reading it use it from their next sync."""
    entry = services.update_source(request.auth, request.auth.obj, payload)
    return services.source_out(specs.load_spec(request.auth.org.slug), entry)


@sources.delete("/{name}", response={204: None}, auth=has_permission(["can_delete_source"], lookup=_source))
def delete_source(request: HttpRequest, name: str) -> tuple[int, None]:
    """Delete a source and its stored secrets (409 while a connection reads it)."""
    services.delete_source(request.auth, request.auth.obj)
    return 204, None


@sources.post(
    "/{name}/check",
    response={202: TaskOut, **errors(409)},
    auth=has_permission(["can_edit_source"], lookup=_source),
)
def check_source(request: HttpRequest, name: str, payload: SourceCheckIn | None = None) -> tuple[int, object]:
    """Check the saved source, or a changed configuration of it (secret fields left out: the stored
    ones), with the connector's ``check``, in a task."""
    ctx = request.auth
    source = ctx.obj
    definition = services.catalog_connector(ctx.org, source.connector)
    spec_doc = services.known_spec(ctx.org.slug, definition)
    config = payload.config if payload is not None and payload.config is not None else source.config
    full = services.checked_config(definition, spec_doc, config, services.stored_secrets(ctx.org.slug, source))
    return 202, task_out(services.check_task(ctx, definition, full, name))


@sources.post("/{name}/discover", response={202: TaskOut}, auth=has_permission(["can_view_source"], lookup=_source))
def discover_source(request: HttpRequest, name: str) -> tuple[int, object]:
    """The source's streams (JSON schema, supported sync modes, cursor fields, primary keys), found by the
    connector's ``discover`` in a task: its result lists them, to choose a connection's streams from. A
    database's tables and a folder's files also give each column's own type (``columns``) and the columns
    an incremental sync could follow (``cursor_candidates``)."""
    return 202, task_out(services.discover_task(request.auth, request.auth.obj))
