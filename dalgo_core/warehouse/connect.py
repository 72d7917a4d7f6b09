"""Opening an organization's warehouse from the platform's side (the API's data statistics, the
warehouse test): a DB-API connection that reaches that warehouse and nothing else.

A DuckDB file is opened read-only with DuckDB's external access off, so no SQL through it can
``ATTACH`` another file or read one (``read_text``, ``read_csv``); a file that does not exist yet is
not created. PostgreSQL connects with a timeout, to the address ``postgres_target`` checked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from dalgo_core import layout
from dalgo_core.egress import tenant_address
from dalgo_core.spec import DuckDBWarehouse, OrgSpec, PostgresWarehouse
from dalgo_core.warehouse.profiles import duckdb_path

CONNECT_TIMEOUT_SECONDS = 10


def postgres_target(host: str, port: int) -> dict[str, Any]:
    """libpq's ``host`` and ``port`` for a PostgreSQL server a tenant named, with ``hostaddr``: the address
    ``dalgo_core.egress`` resolved and allowed, which libpq connects to without resolving the name again
    (the name still serves TLS verification). Raises ``NotPublic`` for the platform's own network."""
    return {"host": host, "hostaddr": tenant_address(host, port), "port": port}


class WarehouseEmpty(LookupError):
    """The organization's DuckDB warehouse has no file yet: nothing was ever loaded into it."""


@contextlib.contextmanager
def read_warehouse(spec: OrgSpec) -> Iterator[Any]:
    """A connection for reading the organization's warehouse (DuckDB or PostgreSQL)."""
    wh = spec.warehouse
    if isinstance(wh, DuckDBWarehouse):
        import duckdb

        path = layout.no_links(duckdb_path(spec))
        if not path.is_file():
            raise WarehouseEmpty(f"the DuckDB warehouse of organization '{spec.slug}' holds no data yet")
        conn = duckdb.connect(str(path), read_only=True, config={"enable_external_access": False})
    elif isinstance(wh, PostgresWarehouse):
        import psycopg

        conn = psycopg.connect(
            **postgres_target(wh.host, wh.port),
            user=wh.user,
            password=wh.password.resolve(spec.slug),
            dbname=wh.database,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            **({"sslmode": wh.sslmode} if wh.sslmode else {}),
        )
    else:
        raise NotImplementedError(f"{wh.type} warehouses are read through their own client")
    try:
        yield conn
    finally:
        conn.close()
