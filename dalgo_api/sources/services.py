"""Writes of the connector catalog and of sources: an operator's connector, a source created, changed
or deleted (its secret fields stored encrypted, ``dalgo_core.secret_store``), the tasks that read a
spec, check a configuration or discover a source's streams."""

from __future__ import annotations

from typing import Any

from dalgo_api.errors import ApiError
from dalgo_api.sources import selectors
from dalgo_api.sources.models import ConnectorSpec, CustomConnector
from dalgo_api.sources.selectors import NamedSource
from dalgo_api.specs import store as specs
from dalgo_api.specs.changes import change_spec
from dalgo_api.tasks import selectors as task_selectors
from dalgo_api.tasks import services as tasks
from dalgo_api.tasks.models import Task
from dalgo_core import secret_store
from dalgo_core.connectors import builtin
from dalgo_core.connectors import config as configs
from dalgo_core.connectors.catalog import ConnectorDef, curated
from dalgo_core.spec import NamedSourceSpec, OrgSpec, SecretRef

RESERVED_NAMES = frozenset({"connectors", "check"})  # path segments of /api/sources/


def secret_name(source: str, field: str) -> str:
    return f"source_{source}_{field}"


# --- the catalog -----------------------------------------------------------------------------------


def add_connector(org: Any, user: Any, payload: Any) -> ConnectorDef:
    """An operator's connector joins the organization's catalog (409 if the name is taken)."""
    if (
        payload.connector in {c.connector for c in curated()}
        or CustomConnector.objects.filter(org=org, connector=payload.connector).exists()
    ):
        raise ApiError(409, f"connector '{payload.connector}' is already in the catalog of '{org.slug}'")
    return CustomConnector.objects.create(org=org, added_by=user, **payload.model_dump()).definition()


def store_spec(key: str, spec: dict[str, Any]) -> None:
    """Keep a specification a task read (the worker calls this)."""
    ConnectorSpec.objects.update_or_create(key=key, defaults={"spec": spec})


def spec_task(ctx: Any, key: str, definition: ConnectorDef) -> Task:
    """The task reading a connector's spec (cached as ``key``): one already running for it, or a new one."""
    running = task_selectors.unfinished(ctx.org, "connector_spec", key)
    return running or tasks.start(ctx.org, ctx.user, "connector_spec", key, {"connector": definition.connector})


def known_spec(slug: str, definition: ConnectorDef) -> dict[str, Any]:
    """The connector's cached spec, or 409 saying how to read it."""
    found = selectors.cached_spec(selectors.spec_key(selectors.org_server_url(slug), definition))
    if found is None:
        raise ApiError(
            409,
            f"the specification of {definition.connector} {definition.version} is not read yet: "
            f"GET /api/sources/connectors/{definition.connector}/spec and poll its task, then try again",
        )
    return found


def catalog_connector(org: Any, connector: str) -> ConnectorDef:
    """A connector of the organization's catalog; 422 naming the field otherwise."""
    try:
        return selectors.connector_def(org, connector)
    except ApiError:
        raise ApiError(
            422,
            f"connector: '{connector}' is not in the catalog of '{org.slug}' (GET /api/sources/connectors)",
            [{"field": "connector", "message": "not in the organization's catalog"}],
        ) from None


# --- configurations --------------------------------------------------------------------------------


def stored_secrets(slug: str, source: NamedSource) -> dict[str, str]:
    """The secret values a source keeps (those that can be read here)."""
    values = {}
    for path, ref in source.secrets.items():
        try:
            values[path] = ref.resolve(slug)
        except LookupError:
            continue
    return values


def checked_config(
    definition: ConnectorDef, spec_doc: dict[str, Any], config: dict[str, Any], kept: dict[str, str] | None = None
) -> dict:
    """The whole configuration (secrets left out filled from ``kept``) if the connector's spec accepts it
    (a platform source's own rules too); 422 naming each field otherwise (never echoing a value)."""
    given = configs.split_secrets(config, configs.secret_paths(spec_doc))[1]
    full = configs.fill(config, {k: v for k, v in (kept or {}).items() if k not in given})
    problems = configs.validate(spec_doc, full)
    if not problems and definition.engine == "dlt":
        problems = builtin.validate(definition.connector, full)
    if problems:
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
        raise ApiError(422, f"the configuration does not match the connector's specification: {summary}", problems)
    return full


# --- sources ---------------------------------------------------------------------------------------


def _entry(
    slug: str, name: str, definition: ConnectorDef, spec_doc: dict, full: dict, refs: dict[str, SecretRef]
) -> NamedSource:
    """The spec entry of a source; its secret values are stored now (those not given keep ``refs``)."""
    plain, secrets = configs.split_secrets(full, configs.secret_paths(spec_doc))
    refs = {k: v for k, v in refs.items() if k in configs.secret_paths(spec_doc)}
    for path, value in secrets.items():
        secret_store.write_secret(slug, secret_name(name, path), value)
        refs[path] = SecretRef(file=secret_name(name, path))
    if definition.engine == "dlt":
        return builtin.named_source(definition.connector, name, plain, refs)
    return NamedSourceSpec(
        name=name,
        connector=definition.connector,
        version=definition.version,
        package=definition.package or None,
        config=plain,
        secrets=refs,
    )


def create_source(ctx: Any, payload: Any) -> NamedSource:
    slug = ctx.org.slug
    if payload.name in RESERVED_NAMES:
        raise ApiError(422, f"name: '{payload.name}' is reserved", [{"field": "name", "message": "reserved"}])
    spec = specs.load_spec(slug)
    if selectors.named_source(spec, payload.name) is not None:
        raise ApiError(409, f"source '{payload.name}' already exists in organization '{slug}'")
    definition = catalog_connector(ctx.org, payload.connector)
    spec_doc = known_spec(slug, definition)
    entry = _entry(slug, payload.name, definition, spec_doc, checked_config(definition, spec_doc, payload.config), {})
    # no connection reads a new source: Dagster need not be reachable to add one
    change_spec(slug, lambda s: s.sources.append(entry), dagster_required=False)
    return entry


def update_source(ctx: Any, current: NamedSource, payload: Any) -> NamedSource:
    """Change a source's configuration; its connections sync with it once the code location reloads."""
    slug = ctx.org.slug
    spec = specs.load_spec(slug)
    definition = catalog_connector(ctx.org, current.connector)
    spec_doc = known_spec(slug, definition)
    full = checked_config(definition, spec_doc, payload.config, stored_secrets(slug, current))
    entry = _entry(slug, current.name, definition, spec_doc, full, dict(current.secrets))

    def edit(s: OrgSpec) -> None:  # its connections read the new entry when the spec is saved
        s.sources = [entry if e.name == current.name else e for e in s.sources]

    change_spec(slug, edit, dagster_required=bool(selectors.source_users(spec, current.name)))
    return entry


def delete_source(ctx: Any, current: NamedSource) -> None:
    slug = ctx.org.slug
    users = selectors.source_users(specs.load_spec(slug), current.name)
    if users:
        raise ApiError(409, f"source '{current.name}' is read by connection(s) {', '.join(users)}: delete them first")
    # no connection reads it: Dagster need not be reachable to remove it
    change_spec(
        slug,
        lambda s: setattr(s, "sources", [e for e in s.sources if e.name != current.name]),
        dagster_required=False,
    )
    for ref in current.secrets.values():
        if ref.file:
            secret_store.delete_secret(slug, ref.file)


def source_out(spec: OrgSpec, source: NamedSource) -> dict[str, Any]:
    return {
        "name": source.name,
        "connector": source.connector,
        "version": source.version,
        "config": source.config,
        "secret_fields": sorted(source.secrets),
        "connections": selectors.source_users(spec, source.name),
    }


# --- tasks -----------------------------------------------------------------------------------------


def check_task(ctx: Any, definition: ConnectorDef, full_config: dict[str, Any], subject: str) -> Task:
    """A task running the connector's ``check`` of a configuration (sealed: it holds its secrets)."""
    params = {"connector": definition.connector, "config": full_config}
    return tasks.start(ctx.org, ctx.user, "check_source", subject, params)


def discover_task(ctx: Any, source: NamedSource) -> Task:
    running = task_selectors.unfinished(ctx.org, "discover_source", source.name)
    return running or tasks.start(ctx.org, ctx.user, "discover_source", source.name, {"source": source.name})
