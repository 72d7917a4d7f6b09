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
from dalgo_assets.warehouse.writers import writer_tags
from dalgo_core.connectors import changes
from dalgo_core.names import ORG_TAG
from dalgo_core.pools import sync_pool
from dalgo_core.spec import BigQueryWarehouse, ConnectionSpec, OrgSpec, PostgresWarehouse

_LOG_LEVELS = {"debug", "info", "warning", "error"}


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


def warehouse_database(spec: OrgSpec) -> str | None:
    """What the warehouse puts before ``schema.table``: PostgreSQL's database, BigQuery's project; none on DuckDB."""
    wh = spec.warehouse
    if isinstance(wh, PostgresWarehouse):
        return wh.database
    if isinstance(wh, BigQueryWarehouse):
        return wh.project
    return None


def table_name(spec: OrgSpec, connection: ConnectionSpec, stream: str) -> str:
    """The stream's table as the warehouse names it (for Dagster's table metadata)."""
    relation = f"{connection.destination_schema}.{stream.lower()}"
    database = warehouse_database(spec)
    return f"{database}.{relation}" if database else relation


def sync_multi_asset(
    spec: OrgSpec,
    connection: ConnectionSpec,
    *,
    kind: str,
    describe: Callable[[str], str],
    metadata: dict[str, str],
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """The decorator of the sync of a connection run on this host (embedded Airbyte connectors or dlt,
    ``kind``): one subsettable multi-asset ``<org>__<kind>__<connection>``, one sync of the connection at a
    time (its pool), one writer of a DuckDB warehouse (``writer_tags``). Its streams' assets are grouped,
    tagged, described (``describe(stream)``, then its sync mode) and labelled alike, ``kind`` beside the
    warehouse's type, ``metadata`` added to the table's."""
    org = spec.slug
    specs = [
        dg.AssetSpec(
            key=stream_key(org, connection.name, s.name),
            group_name=ingestion_group(org),
            kinds={kind, spec.warehouse.type},
            tags={ORG_TAG: org},
            description=f"{describe(s.name)} (connection '{connection.name}'), {s.sync_mode.replace('_', ' ')}",
            metadata={
                "dagster/table_name": table_name(spec, connection, s.name),
                "dalgo/connection": connection.name,
                **metadata,
                "dalgo/sync_mode": s.sync_mode,
            },
            # a stream the source no longer has is not synced under propagate_fully (its table stays)
            skippable=connection.schema_change_policy == "propagate_fully",
        )
        for s in connection.streams
    ]
    return dg.multi_asset(
        name=f"{org}__{kind}__{connection.name}",
        specs=specs,
        can_subset=True,
        pool=sync_pool(spec, connection.name),
        op_tags=writer_tags(spec),
    )


def selected_streams(context: dg.AssetExecutionContext, org: str, connection: ConnectionSpec) -> list[str]:
    """The names of the connection's streams a run selected, in the connection's order."""
    selected = context.selected_asset_keys
    return [s.name for s in connection.streams if stream_key(org, connection.name, s.name) in selected]


def step_log(context: dg.AssetExecutionContext) -> Callable[[str, str], None]:
    """``log(level, message)`` into the run's event log; a level Dagster has no method for logs at debug."""

    def log(level: str, message: str) -> None:
        getattr(context.log, level if level in _LOG_LEVELS else "debug")(message)

    return log


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
