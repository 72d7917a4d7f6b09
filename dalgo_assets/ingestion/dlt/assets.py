"""Each database or file connection as one Dagster multi-asset: one asset per stream, subsettable, keyed,
grouped, tagged and pooled as embedded Airbyte connections are (``ingestion.sync_multi_asset``).

Definitions load from the spec alone. A materialization runs one dlt sync of the selected streams and
records, per stream, the rows loaded, the table and the sync mode. One sync per connection at a time (its
pool), and one writer of a DuckDB warehouse at a time (the warehouse's pool, ``dalgo_core.pools``, across
runs; its op tags within one).
"""

from collections.abc import Iterator

import dagster as dg

from dalgo_assets.ingestion import materializations, schema_reporter, selected_streams, step_log, sync_multi_asset
from dalgo_assets.ingestion.dlt.run import DltRun, DltSyncError
from dalgo_assets.warehouse import WarehouseResource
from dalgo_core.spec import ConnectionSpec, DatabaseSource, OrgSpec


def source_label(connection: ConnectionSpec) -> str:
    """What the connection reads, for descriptions and metadata (no credentials)."""
    source = connection.source
    if isinstance(source, DatabaseSource):
        return f"{source.dialect} database {source.database} on {source.host}:{source.server_port}"
    return f"{source.format} files at {source.url}"  # type: ignore[union-attr]


def connection_asset(spec: OrgSpec, connection: ConnectionSpec) -> dg.AssetsDefinition:
    org, label = spec.slug, source_label(connection)

    @sync_multi_asset(
        spec,
        connection,
        kind="dlt",
        describe=lambda stream: f"Table '{stream}' of {label}",
        metadata={"dalgo/source": label},
    )
    def _sync(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> Iterator[dg.MaterializeResult]:
        run = DltRun(spec, connection, warehouse, step_log(context), schema_reporter(context, org, connection))
        try:
            results = run.sync(selected_streams(context, org, connection))
        except DltSyncError as exc:
            raise dg.Failure(description=str(exc)) from None
        yield from materializations(org, connection.name, results)

    return _sync
