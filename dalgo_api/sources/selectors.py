"""Reading the connector catalog, the cached specifications and the organization's sources."""

from __future__ import annotations

import functools
from typing import Any

from django.core.cache import cache

from dalgo_api.errors import not_found
from dalgo_api.sources.models import ConnectorSpec, CustomConnector
from dalgo_api.specs import store as specs
from dalgo_core.connectors import builtin
from dalgo_core.connectors import config as configs
from dalgo_core.connectors.catalog import ConnectorDef, curated
from dalgo_core.spec import NamedDatabaseSource, NamedFileSource, NamedSourceSpec, OrgSpec

NamedSource = NamedSourceSpec | NamedDatabaseSource | NamedFileSource
BUILTIN_KEY = "dlt:"  # the spec key of the platform's own sources: their form is known, never read

SPEC_CACHE_SECONDS = 3600  # a version's spec never changes; a server's connector may be upgraded
RECENT_SECONDS = 2.0  # what another process may change: which specs were read


def catalog(org: Any) -> list[ConnectorDef]:
    """The connectors the organization may use: the platform's database and files sources, the curated
    Airbyte connectors, then its operators' own, read at each call (one indexed query): a connector one
    API process added is in the next list whichever process answers it."""
    custom = CustomConnector.objects.filter(org=org).order_by("connector")
    return [*builtin.definitions(), *curated(), *(c.definition() for c in custom)]


def connector_def(org: Any, connector: str) -> ConnectorDef:
    """The catalog's connector of that name (the platform's and curated ones come first, as ``catalog``
    lists them); an operator's own is read alone, and only when it is none of those."""
    found = next((c for c in (*builtin.definitions(), *curated()) if c.connector == connector), None)
    if found is not None:
        return found
    custom = CustomConnector.objects.filter(org=org, connector=connector).first()
    if custom is None:
        raise not_found("connector", connector)
    return custom.definition()


@functools.lru_cache(maxsize=1024)
def _server_url(slug: str, version: int) -> str | None:
    spec = specs.load_spec(slug)
    return server_url(spec)


def server_url(spec: OrgSpec) -> str | None:
    """The organization's Airbyte server (None: embedded ingestion)."""
    if spec.ingestion.mode == "server" and spec.ingestion.server is not None:
        return spec.ingestion.server.url.rstrip("/")
    return None


def org_server_url(slug: str) -> str | None:
    """``server_url`` of an organization, read again only when its spec file changed."""
    try:
        version = specs.org_spec_path(slug).stat().st_mtime_ns
    except FileNotFoundError:
        version = 0
    return _server_url(slug, version)


def spec_key(server: str | None, definition: ConnectorDef) -> str:
    """What a specification is cached by: the package and version installed here (embedded), or the
    organization's Airbyte server and the connector (server mode: the server decides the version); the
    platform's own sources by name, whatever the mode (dlt runs them)."""
    if definition.engine == "dlt":
        return BUILTIN_KEY + definition.connector
    if server is not None:
        return f"airbyte:{server}#{definition.connector}"
    return f"{definition.pypi_package}=={definition.version}"


def cached_spec(key: str) -> dict[str, Any] | None:
    """The specification read for ``key``, if a task read it (kept in each API process for an hour); a
    platform source's form, always."""
    if key.startswith(BUILTIN_KEY):
        return builtin.spec(key.removeprefix(BUILTIN_KEY))
    found = cache.get(f"connector-spec:{key}")
    if found is None:
        found = ConnectorSpec.objects.filter(key=key).values_list("spec", flat=True).first()
        if found is None:
            return None
        cache.set(f"connector-spec:{key}", found, SPEC_CACHE_SECONDS)
    return found


def spec_form(key: str) -> dict[str, Any] | None:
    """What ``GET .../spec`` answers of a cached spec: the form, its secret fields, the documentation."""
    found = cache.get(f"connector-spec-form:{key}")
    if found is None:
        spec = cached_spec(key)
        if spec is None:
            return None
        found = {
            "documentation_url": spec.get("documentationUrl"),
            "connection_specification": configs.connection_schema(spec),
            "secret_fields": configs.secret_paths(spec),
        }
        cache.set(f"connector-spec-form:{key}", found, SPEC_CACHE_SECONDS)
    return found


def cached_keys(keys: list[str]) -> set[str]:
    """Which of these specifications are cached: the catalog's ``spec_cached`` (one query at most; each API
    process remembers the answer for ``RECENT_SECONDS``)."""
    found = {k for k in keys if k.startswith(BUILTIN_KEY)}
    keys = [k for k in keys if k not in found]
    remembered = cache.get_many([f"spec-cached:{k}" for k in keys])
    found |= {k for k in keys if remembered.get(f"spec-cached:{k}")}
    missing = [k for k in keys if f"spec-cached:{k}" not in remembered]
    if missing:
        stored = set(ConnectorSpec.objects.filter(key__in=missing).values_list("key", flat=True))
        cache.set_many({f"spec-cached:{k}": k in stored for k in missing}, RECENT_SECONDS)
        found |= stored
    return found


def named_source(spec: OrgSpec, name: str) -> NamedSource | None:
    return next((s for s in spec.sources if s.name == name), None)


def source_users(spec: OrgSpec, name: str) -> list[str]:
    """The connections that read a source."""
    return [c.name for c in spec.connections if c.source_name == name]
