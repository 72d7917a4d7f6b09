"""Server ingestion: an organization's connections run by an Airbyte server, driven by Dagster.

Loading the definitions makes no HTTP call: the stream assets come from the spec's connections and the
connection ids from the spec or from what ``dalgo airbyte apply`` recorded (``state.py``). A
materialization starts the connection's sync through dagster-airbyte's ``AirbyteWorkspace``, waits for
it and records what the job reported (``assets.py``, ``resource.py``). ``reconcile.py`` and ``cli.py``
are connections as code: ``dalgo airbyte plan|apply <org>``. ``tests/support/airbyte_standin.py`` is
a stand-in Airbyte server for machines that cannot run Airbyte.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dalgo_assets.ingestion import IngestionDefinitions
    from dalgo_core.spec import OrgSpec

AIRBYTE_RESOURCE_KEY = "airbyte"


def build_server_ingestion(spec: OrgSpec) -> IngestionDefinitions:
    """One multi-asset and one reset job per declared connection, and the ``airbyte`` resource (the
    organization's Airbyte workspace)."""
    # imported here: these modules import AIRBYTE_RESOURCE_KEY from this package
    from dalgo_assets.ingestion import IngestionDefinitions
    from dalgo_assets.ingestion.server.assets import OrgAirbyteTranslator, connection_assets
    from dalgo_assets.ingestion.server.reset import server_reset_job
    from dalgo_assets.ingestion.server.resource import airbyte_workspace
    from dalgo_assets.ingestion.server.state import connection_id, read_state

    state = read_state(spec)
    ids = {conn.name: connection_id(spec, conn, state) for conn in spec.connections}
    translator = OrgAirbyteTranslator(spec.slug, {cid: name for name, cid in ids.items() if cid})
    return IngestionDefinitions(
        assets=[connection_assets(spec, conn, ids[conn.name], translator) for conn in spec.connections],
        resources={AIRBYTE_RESOURCE_KEY: airbyte_workspace(spec)},
        jobs=[server_reset_job(spec, conn, ids[conn.name]) for conn in spec.connections],
    )
