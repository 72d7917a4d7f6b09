"""Airbyte connections as assets: one asset per stream, ``<org>/<connection>/<stream>``.

Two ways to run a connection, chosen per organization (``ingestion.mode`` in its spec):
``embedded`` (the default) runs Airbyte's Python source connectors on this host and loads their records
into the organization's warehouse; ``server`` drives an Airbyte server through dagster-airbyte's
``AirbyteWorkspace``. Either way the stream's table feeds the dbt sources that read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from dalgo_assets.transform.translator import Relation
from dalgo_core.spec import OrgSpec


@dataclass
class IngestionDefinitions:
    assets: list[dg.AssetsDefinition] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)
    jobs: list[dg.JobDefinition] = field(default_factory=list)  # one reset job per connection
    # the warehouse tables the streams land in, for the dbt sources that read them
    relations: dict[Relation, tuple[str, dg.AssetKey]] = field(default_factory=dict)


def stream_key(org: str, connection: str, stream: str) -> dg.AssetKey:
    return dg.AssetKey([org, connection, stream])


def ingestion_group(org: str) -> str:
    return f"{org}_ingestion"


def stream_relations(spec: OrgSpec) -> dict[Relation, tuple[str, dg.AssetKey]]:
    return {
        (conn.destination_schema.lower(), stream.name.lower()): (
            conn.name,
            stream_key(spec.slug, conn.name, stream.name),
        )
        for conn in spec.connections
        for stream in conn.streams
    }


def build_ingestion_definitions(spec: OrgSpec) -> IngestionDefinitions:
    if not spec.connections:
        return IngestionDefinitions()
    if spec.ingestion.mode == "server":
        from dalgo_assets.ingestion.server import build_server_ingestion

        built = build_server_ingestion(spec)
    else:
        from dalgo_assets.ingestion.embedded import build_embedded_ingestion

        built = build_embedded_ingestion(spec)
    built.relations = stream_relations(spec)
    return built
