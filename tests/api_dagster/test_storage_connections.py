"""The API reads Dagster's PostgreSQL storage on connections it keeps, as the webserver does: a run list
is not a new database connection (a server process and its authentication) per storage query."""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest

from dalgo_api import bridge
from dalgo_api.bridge import transport
from dalgo_ops.instance import pg_env_from_url, write_postgres_instance
from tests.support.postgres import PostgresServer

DATABASE = "dagster_kept"


def backends(server: PostgresServer) -> set[tuple[int, object]]:
    """The server processes connected to the Dagster database (pid and start time)."""
    with psycopg2.connect(server.dsn()) as conn, conn.cursor() as cur:
        cur.execute("SELECT pid, backend_start FROM pg_stat_activity WHERE datname = %s", (DATABASE,))
        return set(cur.fetchall())


def test_run_reads_keep_their_postgresql_connection(
    postgres: PostgresServer, dalgo_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn = postgres.create_database(DATABASE, owner="dagster_kept", password="kept-secret")
    for name, value in pg_env_from_url(dsn).items():
        monkeypatch.setenv(name, value)
    write_postgres_instance(dalgo_env / "dagster")
    monkeypatch.setattr(transport, "_instances", {})  # this test's instance, disposed below
    try:
        query = bridge.RunQuery(limit=5)
        assert bridge.list_runs("acme", query) == ([], None)
        kept = backends(postgres)
        assert kept, "no connection was kept: every read opens a new one"
        for _ in range(10):
            assert bridge.list_runs("acme", query) == ([], None)
        assert backends(postgres) == kept
    finally:
        for instance in transport._instances.values():
            instance.dispose()
