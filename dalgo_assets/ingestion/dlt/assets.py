"""Each database or file connection as one Dagster multi-asset: one asset per stream, subsettable, keyed,
grouped, tagged and pooled as Airbyte connections are (``embedded/assets.py``).

Definitions load from the spec alone. A materialization runs one dlt sync of the selected streams and
records, per stream, the rows loaded, the table and the sync mode. One sync per connection at a time (its
pool), and one writer of a DuckDB warehouse at a time (the warehouse's pool, ``dalgo_core.pools``, across
runs; its op tags within one).
"""

from collections.abc import Iterator

import dagster as dg

from dalgo_assets.ingestion import ingestion_group, materializations, schema_reporter, stream_key
from dalgo_assets.ingestion.dlt.run import DltRun, DltSyncError
from dalgo_assets.ingestion.embedded.assets import table_name
from dalgo_assets.warehouse import WarehouseResource
from dalgo_assets.warehouse.writers import writer_tags
from dalgo_core.names import ORG_TAG
from dalgo_core.pools import sync_pool
from dalgo_core.spec import ConnectionSpec, DatabaseSource, OrgSpec

_LOG_LEVELS = {"debug", "info", "warning", "error"}


def source_label(connection: ConnectionSpec) -> str:
    """What the connection reads, for descriptions and metadata (no credentials)."""
    source = connection.source
    if isinstance(source, DatabaseSource):
        return f"{source.dialect} database {source.database} on {source.host}:{source.server_port}"
    return f"{source.format} files at {source.url}"  # type: ignore[union-attr]


def connection_asset(spec: OrgSpec, connection: ConnectionSpec) -> dg.AssetsDefinition:
    org, warehouse_type = spec.slug, spec.warehouse.type
    keys = {stream_key(org, connection.name, s.name): s for s in connection.streams}
    label = source_label(connection)
    specs = [
        dg.AssetSpec(
            key=key,
            group_name=ingestion_group(org),
            kinds={"dlt", warehouse_type},
            tags={ORG_TAG: org},
            description=f"Table '{s.name}' of {label} (connection '{connection.name}'), "
            f"{s.sync_mode.replace('_', ' ')}",
            metadata={
                "dagster/table_name": table_name(spec, connection, s.name),
                "dalgo/connection": connection.name,
                "dalgo/source": label,
                "dalgo/sync_mode": s.sync_mode,
            },
            # a stream the source no longer has is not synced under propagate_fully (its table stays)
            skippable=connection.schema_change_policy == "propagate_fully",
        )
        for key, s in keys.items()
    ]

    @dg.multi_asset(
        name=f"{org}__dlt__{connection.name}",
        specs=specs,
        can_subset=True,
        pool=sync_pool(spec, connection.name),
        op_tags=writer_tags(spec),
    )
    def _sync(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> Iterator[dg.MaterializeResult]:
        selected = [s.name for key, s in keys.items() if key in context.selected_asset_keys]

        def log(level: str, message: str) -> None:
            getattr(context.log, level if level in _LOG_LEVELS else "debug")(message)

        try:
            results = DltRun(spec, connection, warehouse, log, schema_reporter(context, org, connection)).sync(selected)
        except DltSyncError as exc:
            raise dg.Failure(description=str(exc)) from None
        yield from materializations(org, connection.name, results)

    return _sync
