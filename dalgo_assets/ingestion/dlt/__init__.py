"""Database and file sources, run by dlt on this host: no Airbyte, no Docker.

A connection whose ``source.type`` is ``database`` (PostgreSQL, MySQL) or ``files`` (CSV, Parquet, JSON
lines; a folder, HTTP(S) or S3) is one multi-asset, one asset per stream as for Airbyte connections
(``assets.py``), and a reset job (``reset.py``). Each sync or reset runs ``worker.py`` in the
organization's sandbox (``run.py``), with its job and policy built from the spec (``job.py``): dlt reads
the source into Arrow (connectorx for databases, DuckDB or PyArrow for files) and loads Parquet into the
warehouse, its state kept in the warehouse with the rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dalgo_assets.ingestion import IngestionDefinitions
    from dalgo_core.spec import ConnectionSpec, OrgSpec


def build_dlt_ingestion(spec: OrgSpec, connections: list[ConnectionSpec]) -> IngestionDefinitions:
    """One multi-asset and one reset job per connection; definitions load with no connection to anything."""
    from dalgo_assets.ingestion import IngestionDefinitions
    from dalgo_assets.ingestion.dlt.assets import connection_asset
    from dalgo_assets.ingestion.dlt.reset import dlt_reset_job

    return IngestionDefinitions(
        assets=[connection_asset(spec, conn) for conn in connections],
        jobs=[dlt_reset_job(spec, conn) for conn in connections],
    )
