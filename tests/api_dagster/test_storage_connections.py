"""The API reads Dagster's PostgreSQL storage on connections it keeps, as the webserver does: a run list
or a run read by several request threads at once is not a new database connection (a server process and
its authentication) per storage query."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg2
import pytest

from dalgo_api import bridge
from dalgo_api.bridge import transport
from dalgo_ops.instance import pg_env_from_url, write_postgres_instance
from tests.support.dagster_runs import add_run
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

        # a worker's request threads read at once: each storage keeps the connections they use, and
        # reads after them open none (Dagster's own pool kept one and opened one per overlapping read)
        inst = transport.instance()
        run_ids = [add_run(inst, "acme") for _ in range(4)]

        def read_runs() -> None:
            for _ in range(25):
                for run_id in run_ids:
                    assert bridge.run_for_org("acme", run_id) is not None

        def in_threads() -> None:
            threads = [threading.Thread(target=read_runs) for _ in range(transport.POOL_KEPT_CONNECTIONS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        in_threads()
        kept = backends(postgres)
        in_threads()
        assert backends(postgres) == kept
        assert len(kept) <= 3 * transport.POOL_KEPT_CONNECTIONS  # the run, event log and schedule storages
    finally:
        for instance in transport._instances.values():
            instance.dispose()


def test_reads_need_no_test_query_and_survive_a_postgresql_restart(
    dalgo_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API reads on its kept connections without a ``SELECT 1`` before each read (the instance yaml's
    pre-ping, which the webserver keeps); a read on a connection PostgreSQL closed as it restarted is made
    again on a new one, so no request fails."""
    with PostgresServer() as server:  # its own: restarting the session's would disturb other tests
        dsn = server.create_database("dagster_restart", owner="dagster_restart", password="restart-secret")
        for name, value in pg_env_from_url(dsn).items():
            monkeypatch.setenv(name, value)
        write_postgres_instance(dalgo_env / "dagster")
        monkeypatch.setattr(transport, "_instances", {})
        try:
            inst = transport.instance()
            run_id = add_run(inst, "acme")
            pings: list[object] = []
            for storage in (inst.run_storage, inst.event_log_storage):
                dialect = storage._engine.dialect
                monkeypatch.setattr(dialect, "do_ping", lambda conn, d=dialect.do_ping: pings.append(conn) or d(conn))
            query = bridge.RunQuery(limit=5)
            for _ in range(3):
                assert [run.run_id for run in bridge.list_runs("acme", query)[0]] == [run_id]
                assert bridge.run_logs("acme", bridge.run_for_org("acme", run_id), None, 10)[0] == []

            server.restart()
            assert [run.run_id for run in bridge.list_runs("acme", query)[0]] == [run_id]
            assert bridge.run_logs("acme", bridge.run_for_org("acme", run_id), None, 10)[0] == []
            assert pings == []
        finally:
            for instance in transport._instances.values():
                instance.dispose()
