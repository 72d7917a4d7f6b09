"""Each declared Airbyte connection as one multi-asset, one asset per stream, built without calling Airbyte.

dagster-airbyte's ``build_airbyte_assets_definitions`` asks the server for its connections while
definitions load; a code location must load even when Airbyte is down, so the specs are built here from
the organization's spec with ``AirbyteConnectionTableProps`` and a translator, and the server is called
only when a stream is materialized: ``AirbyteWorkspace.sync_and_poll`` starts the connection's sync,
polls it to the end and reports every stream it synced.
"""

# no `from __future__ import annotations`: Dagster checks the annotations of the asset body at runtime
from collections.abc import Iterator, Mapping

import dagster as dg
from dagster import AssetExecutionContext
from dagster_airbyte import AirbyteConnectionTableProps, DagsterAirbyteTranslator
from dagster_airbyte.utils import DAGSTER_AIRBYTE_TRANSLATOR_METADATA_KEY

from dalgo_assets.ingestion import ingestion_group, stream_key, warehouse_database
from dalgo_assets.ingestion.server.resource import DalgoAirbyteWorkspace
from dalgo_core.names import ORG_TAG
from dalgo_core.pools import sync_pool
from dalgo_core.spec import ConnectionSpec, OrgSpec


class OrgAirbyteTranslator(DagsterAirbyteTranslator):
    """Stream assets keyed ``<org>/<connection>/<stream>``, whatever Airbyte calls the connection."""

    def __init__(self, org: str, connection_names: Mapping[str, str]):
        self.org = org
        # Airbyte connection id -> the connection's name in the spec (run-time props carry Airbyte's name)
        self.connection_names = dict(connection_names)

    def get_asset_spec(self, props: AirbyteConnectionTableProps) -> dg.AssetSpec:
        connection = self.connection_names.get(props.connection_id, props.connection_name)
        return (
            super()
            .get_asset_spec(props)
            .replace_attributes(
                key=stream_key(self.org, connection, props.stream_name),
                group_name=ingestion_group(self.org),
            )
            .merge_attributes(tags={ORG_TAG: self.org, "dalgo/connection": connection})
        )


def stream_specs(
    spec: OrgSpec, conn: ConnectionSpec, connection_id: str | None, translator: OrgAirbyteTranslator
) -> list[dg.AssetSpec]:
    return [
        translator.get_asset_spec(
            AirbyteConnectionTableProps(
                table_name=stream.name,
                stream_prefix=None,
                stream_name=stream.name,
                json_schema={},
                connection_id=connection_id or "",
                connection_name=conn.name,
                destination_type=spec.warehouse.type,
                database=warehouse_database(spec),
                schema=conn.destination_schema,
            )
        ).merge_attributes(
            metadata={DAGSTER_AIRBYTE_TRANSLATOR_METADATA_KEY: translator},
            tags={"dalgo/sync_mode": stream.sync_mode},
        )
        for stream in conn.streams
    ]


def connection_assets(
    spec: OrgSpec, conn: ConnectionSpec, connection_id: str | None, translator: OrgAirbyteTranslator
) -> dg.AssetsDefinition:
    """The multi-asset that syncs one connection; without an id it loads, and its runs say what to do."""
    org = spec.slug
    where = f"organization '{org}', connection '{conn.name}'"

    @dg.multi_asset(
        name=f"{org}__airbyte__{conn.name}",
        specs=stream_specs(spec, conn, connection_id, translator),
        can_subset=True,
        pool=sync_pool(spec, conn.name),
        description=f"Airbyte connection '{conn.name}' ({conn.source.connector}) into schema "
        f"{conn.destination_schema}; every stream syncs together.",
    )
    def _sync(context: AssetExecutionContext, airbyte: DalgoAirbyteWorkspace) -> Iterator:
        if connection_id is None:
            raise dg.Failure(
                f"{where}: no Airbyte connection id; set airbyte_connection_id in the spec "
                f"or run `dalgo airbyte apply {org}` to create the connection"
            )
        produced: set[dg.AssetKey] = set()
        try:
            for event in airbyte.sync_and_poll(context=context):
                produced.add(event.asset_key)
                yield event
        except dg.Failure as exc:
            raise dg.Failure(f"{where}: {exc.description}", metadata=exc.metadata) from exc
        missing = context.selected_asset_keys - produced
        if missing:
            names = ", ".join(sorted(k.path[-1] for k in missing))
            raise dg.Failure(
                f"{where}: Airbyte connection {connection_id} synced but does not select stream(s) {names}; "
                f"run `dalgo airbyte plan {org}` to compare the spec with Airbyte"
            )

    return _sync
