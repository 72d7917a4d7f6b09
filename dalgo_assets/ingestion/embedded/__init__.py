"""Embedded ingestion: Airbyte's Python source connectors run on this host, no Airbyte server.

Each connector is installed from PyPI into its own venv and run as an Airbyte-protocol CLI in the
organization's sandbox (``dalgo_core.connectors``, shared with the API's tasks); its records are typed
from the discovered JSON schemas (``schema.py``) and loaded into the organization's warehouse
(``loaders.py``, ``bigquery.py``, ``sql.py``) with the connector state in the same transaction
(``state.py``), one sync per connection (``sync.py``: schema changes handled as the connection's policy
says, ``dalgo_core.connectors.changes``), each connection a multi-asset (``assets.py``) and a reset job
(``reset.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dalgo_assets.ingestion import IngestionDefinitions
    from dalgo_core.spec import OrgSpec


def build_embedded_ingestion(spec: OrgSpec) -> IngestionDefinitions:
    """One multi-asset and one reset job per connection, and the connector runtime resource; no
    network, no install."""
    from dalgo_assets.ingestion import IngestionDefinitions
    from dalgo_assets.ingestion.embedded.assets import RUNTIME_KEY, ConnectorRuntime, connection_asset
    from dalgo_assets.ingestion.embedded.reset import embedded_reset_job

    return IngestionDefinitions(
        assets=[connection_asset(spec, conn) for conn in spec.connections],
        resources={RUNTIME_KEY: ConnectorRuntime()},
        jobs=[embedded_reset_job(spec, conn) for conn in spec.connections],
    )
