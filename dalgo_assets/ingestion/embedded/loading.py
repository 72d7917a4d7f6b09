"""Which loader a sync writes through: the one of the organization's warehouse (``loaders.py`` for
DuckDB and PostgreSQL, ``bigquery.py``), opened inside the sync's transaction."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from dalgo_assets.ingestion.embedded.bigquery import BigQueryLoader
from dalgo_assets.ingestion.embedded.loaders import DuckDBLoader, Loader, PostgresLoader, SqlLoader
from dalgo_assets.warehouse import WarehouseResource


@contextlib.contextmanager
def open_loader(warehouse: WarehouseResource, workdir: Path) -> Iterator[Loader]:
    """A loader for the organization's warehouse, inside the sync's transaction."""
    if warehouse.type == "bigquery":
        with BigQueryLoader.open(warehouse, workdir) as bq:
            yield bq
        return
    with warehouse.connect(workdir) as conn:
        loader: SqlLoader = DuckDBLoader(conn, workdir) if warehouse.type == "duckdb" else PostgresLoader(conn, workdir)
        loader.begin()
        try:
            yield loader
        except BaseException:
            with contextlib.suppress(Exception):
                loader.abort()
            raise
