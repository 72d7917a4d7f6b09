"""Each embedded connection as one Dagster multi-asset: one asset per stream, subsettable.

Definitions load with no network, no connector process and no install: the assets come from the spec
alone. A materialization syncs the selected streams (``ConnectionSync``) and records, per stream, the
rows loaded, the table and the sync mode. One sync per connection at a time (its pool: on DuckDB the
warehouse's, ``dalgo_core.pools``, one writer at a time).
"""

from collections.abc import Iterator

import dagster as dg
from pydantic import Field

from dalgo_assets.ingestion import ingestion_group, materializations, schema_reporter, stream_key
from dalgo_assets.ingestion.embedded.sync import ConnectionSync, SyncError
from dalgo_assets.warehouse import WarehouseResource
from dalgo_assets.warehouse.writers import writer_tags
from dalgo_core.names import ORG_TAG
from dalgo_core.pools import sync_pool
from dalgo_core.spec import ConnectionSpec, OrgSpec

RUNTIME_KEY = "airbyte_connectors"

_LOG_LEVELS = {"debug", "info", "warning", "error"}


class ConnectorRuntime(dg.ConfigurableResource):
    """Where embedded Airbyte connectors are installed (one venv per connector and version)."""

    connectors_dir: str | None = Field(None, description="default $DALGO_CONNECTORS_DIR, else $DALGO_HOME/connectors")


def table_name(spec: OrgSpec, connection: ConnectionSpec, stream: str) -> str:
    """The stream's table as the warehouse names it (for Dagster's table metadata)."""
    wh = spec.warehouse
    relation = f"{connection.destination_schema}.{stream.lower()}"
    if wh.type == "postgres":
        return f"{wh.database}.{relation}"
    if wh.type == "bigquery":
        return f"{wh.project}.{relation}"
    return relation


def connection_asset(spec: OrgSpec, connection: ConnectionSpec) -> dg.AssetsDefinition:
    org, warehouse_type = spec.slug, spec.warehouse.type
    keys = {stream_key(org, connection.name, s.name): s for s in connection.streams}
    specs = [
        dg.AssetSpec(
            key=key,
            group_name=ingestion_group(org),
            kinds={"airbyte", warehouse_type},
            tags={ORG_TAG: org},
            description=(
                f"Stream '{s.name}' of {connection.source.connector} (connection '{connection.name}'), "
                f"{s.sync_mode.replace('_', ' ')}"
            ),
            metadata={
                "dagster/table_name": table_name(spec, connection, s.name),
                "dalgo/connection": connection.name,
                "dalgo/connector": connection.source.connector,
                "dalgo/sync_mode": s.sync_mode,
            },
            # a stream the source no longer has is not synced under propagate_fully (its table stays)
            skippable=connection.schema_change_policy == "propagate_fully",
        )
        for key, s in keys.items()
    ]

    @dg.multi_asset(
        name=f"{org}__airbyte__{connection.name}",
        specs=specs,
        can_subset=True,
        pool=sync_pool(spec, connection.name),
        op_tags=writer_tags(spec),
    )
    def _sync(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, airbyte_connectors: ConnectorRuntime
    ) -> Iterator[dg.MaterializeResult]:
        selected = [s.name for key, s in keys.items() if key in context.selected_asset_keys]
        connector = connection.source.connector

        def note(level: str, message: str) -> None:
            getattr(context.log, level if level in _LOG_LEVELS else "debug")(message)

        def log(level: str, message: str) -> None:
            note(level, f"[{connector}] {message}")

        sync = ConnectionSync(
            org,
            connection,
            warehouse,
            connectors_root=airbyte_connectors.connectors_dir,
            log=log,
            note=note,
            report=schema_reporter(context, org, connection),
        )
        try:
            results = sync.run(selected)
        except SyncError as exc:
            raise dg.Failure(description=str(exc)) from None
        yield from materializations(org, connection.name, results)

    return _sync
