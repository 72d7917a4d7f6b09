"""Ingestion connections as assets: one asset per stream, ``<org>/<connection>/<stream>``.

Two ways to run an Airbyte connection, chosen per organization (``ingestion.mode`` in its spec):
``embedded`` (the default) runs Airbyte's Python source connectors on this host and loads their records
into the organization's warehouse; ``server`` drives an Airbyte server through dagster-airbyte's
``AirbyteWorkspace``. A connection whose source is a database or files (``source.type``) is run by dlt on
this host whatever the mode (``dlt/``). Either way the stream's table feeds the dbt sources that read it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from dalgo_assets.transform.translator import Relation
from dalgo_core.connectors import changes
from dalgo_core.spec import ConnectionSpec, OrgSpec


@dataclass
class IngestionDefinitions:
    assets: list[dg.AssetsDefinition] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)
    jobs: list[dg.JobDefinition] = field(default_factory=list)  # one reset job per connection
    # the warehouse tables the streams land in, for the dbt sources that read them
    relations: dict[Relation, tuple[str, dg.AssetKey]] = field(default_factory=dict)


def stream_key(org: str, connection: str, stream: str) -> dg.AssetKey:
    return dg.AssetKey([org, connection, stream])


@dataclass(frozen=True)
class StreamResult:
    """What a sync did to one stream."""

    stream: str
    table: str  # schema.table
    sync_mode: str
    rows_loaded: int


def materializations(org: str, connection: str, results: Iterable[StreamResult]) -> Iterator[dg.MaterializeResult]:
    """One materialization per synced stream: rows loaded, table and sync mode."""
    for result in results:
        yield dg.MaterializeResult(
            asset_key=stream_key(org, connection, result.stream),
            metadata={
                "rows_loaded": dg.MetadataValue.int(result.rows_loaded),
                "table": result.table,
                "sync_mode": result.sync_mode,
            },
        )


def schema_reporter(
    context: dg.AssetExecutionContext, org: str, connection: ConnectionSpec
) -> Callable[[changes.Outcome], None]:
    """What a sync does with the outcome of the connection's schema change policy: one observation per
    stream of the connection, in the run (before the run fails when the policy pauses it), saying whether
    a change waits for approval and which streams the platform is to add (``changes.observations``)."""

    def report(outcome: changes.Outcome) -> None:
        for stream, metadata in changes.observations(connection, outcome).items():
            key = stream_key(org, connection.name, stream)
            context.log_event(dg.AssetObservation(asset_key=key, metadata=metadata))

    return report


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
    built = IngestionDefinitions()
    airbyte = spec.airbyte_connections
    if airbyte:
        only_airbyte = spec.model_copy(update={"connections": airbyte})
        if spec.ingestion.mode == "server":
            from dalgo_assets.ingestion.server import build_server_ingestion

            built = build_server_ingestion(only_airbyte)
        else:
            from dalgo_assets.ingestion.embedded import build_embedded_ingestion

            built = build_embedded_ingestion(only_airbyte)
    others = [c for c in spec.connections if not c.is_airbyte]
    if others:
        from dalgo_assets.ingestion.dlt import build_dlt_ingestion

        extra = build_dlt_ingestion(spec, others)
        built.assets += extra.assets
        built.jobs += extra.jobs
    built.relations = stream_relations(spec)
    return built
