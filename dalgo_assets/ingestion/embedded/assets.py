"""Each embedded connection as one Dagster multi-asset: one asset per stream, subsettable.

Definitions load with no network, no connector process and no install: the assets come from the spec
alone. A materialization syncs the selected streams (``ConnectionSync``) and records, per stream, the
rows loaded, the table and the sync mode. One sync per connection at a time (its pool: on DuckDB the
warehouse's, ``dalgo_core.pools``, one writer at a time).
"""

from collections.abc import Iterator

import dagster as dg
from pydantic import Field

from dalgo_assets.ingestion import materializations, schema_reporter, selected_streams, step_log, sync_multi_asset
from dalgo_assets.ingestion.embedded.sync import ConnectionSync, SyncError
from dalgo_assets.warehouse import WarehouseResource
from dalgo_core.spec import ConnectionSpec, OrgSpec

RUNTIME_KEY = "airbyte_connectors"


class ConnectorRuntime(dg.ConfigurableResource):
    """Where embedded Airbyte connectors are installed (one venv per connector and version)."""

    connectors_dir: str | None = Field(None, description="default $DALGO_CONNECTORS_DIR, else $DALGO_HOME/connectors")


def connection_asset(spec: OrgSpec, connection: ConnectionSpec) -> dg.AssetsDefinition:
    org, connector = spec.slug, connection.source.connector

    @sync_multi_asset(
        spec,
        connection,
        kind="airbyte",
        describe=lambda stream: f"Stream '{stream}' of {connector}",
        metadata={"dalgo/connector": connector},
    )
    def _sync(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, airbyte_connectors: ConnectorRuntime
    ) -> Iterator[dg.MaterializeResult]:
        note = step_log(context)

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
            results = sync.run(selected_streams(context, org, connection))
        except SyncError as exc:
            raise dg.Failure(description=str(exc)) from None
        yield from materializations(org, connection.name, results)

    return _sync
