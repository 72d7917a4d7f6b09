"""Reading the connector catalog, the cached specifications and the organization's sources."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache

from dalgo_api.errors import not_found
from dalgo_api.sources.models import ConnectorSpec, CustomConnector
from dalgo_core.connectors.catalog import ConnectorDef, curated
from dalgo_core.spec import NamedSourceSpec, OrgSpec

SPEC_CACHE_SECONDS = 3600  # a version's spec never changes; a server's connector may be upgraded


def catalog(org: Any) -> list[ConnectorDef]:
    """The connectors the organization may use: the curated set, then its operators' own."""
    custom = [
        ConnectorDef(
            connector=c.connector,
            version=c.version,
            title=c.title,
            description=c.description,
            package=c.package,
            documentation_url=c.documentation_url,
            custom=True,
        )
        for c in CustomConnector.objects.filter(org=org).order_by("connector")
    ]
    return [*curated(), *custom]


def connector_def(org: Any, connector: str) -> ConnectorDef:
    found = next((c for c in catalog(org) if c.connector == connector), None)
    if found is None:
        raise not_found("connector", connector)
    return found


def spec_key(spec: OrgSpec, definition: ConnectorDef) -> str:
    """What a specification is cached by: the package and version installed here (embedded), or the
    organization's Airbyte server and the connector (server mode: the server decides the version)."""
    if spec.ingestion.mode == "server" and spec.ingestion.server is not None:
        return f"airbyte:{spec.ingestion.server.url.rstrip('/')}#{definition.connector}"
    return f"{definition.pypi_package}=={definition.version}"


def cached_spec(key: str) -> dict[str, Any] | None:
    """The specification read for ``key``, if a task read it (kept in each API process for an hour)."""
    found = cache.get(f"connector-spec:{key}")
    if found is None:
        row = ConnectorSpec.objects.filter(key=key).values_list("spec", flat=True).first()
        if row is None:
            return None
        found = row
        cache.set(f"connector-spec:{key}", found, SPEC_CACHE_SECONDS)
    return found


def named_source(spec: OrgSpec, name: str) -> NamedSourceSpec | None:
    return next((s for s in spec.sources if s.name == name), None)


def source_users(spec: OrgSpec, name: str) -> list[str]:
    """The connections that read a source."""
    return [c.name for c in spec.connections if c.source_name == name]
