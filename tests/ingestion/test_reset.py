"""A reset of a connection or of some of its streams: their tables and connector state dropped, the next
sync a full one. ``dalgo reset`` runs the organization's reset job in process (DuckDB); the same job on
PostgreSQL drops the views built on a table with it and says so."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import psycopg
import pytest

from dalgo_assets.definitions import build_org_definitions
from dalgo_assets.warehouse import warehouse_resources
from dalgo_core.names import reset_job_name, reset_run_config
from dalgo_ops.cli import main as dalgo
from tests.ingestion.embedded_support import (
    embedded_env,  # noqa: F401 (fixture)
    faker_connection,
    faker_users_on_postgres,
    loaded,
    run_log,
    sync,
    write_org,
)
from tests.support.postgres import PostgresServer


def test_dalgo_reset_of_one_stream_then_of_the_connection(
    embedded_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = write_org(embedded_env / "orgs", "acme", faker_connection(count=12))
    assert sync(spec).success
    path = warehouse_resources(spec)["warehouse"].duckdb_path

    def query(sql: str) -> list[tuple]:
        with duckdb.connect(path, read_only=True) as db:
            return db.sql(sql).fetchall()

    def tables() -> set[str]:
        return {
            t for (t,) in query("select table_name from information_schema.tables where table_schema = 'raw_faker'")
        }

    assert tables() == {"users", "products", "_dalgo_airbyte_state"}
    assert loaded(sync(spec))["users"]["rows_loaded"] == 0  # incremental: nothing new since

    # names are checked before anything runs
    assert dalgo(["reset", "acme", "nope"]) == 1
    assert "organization 'acme' has no connection 'nope' (its connections: faker)" in capsys.readouterr().out
    assert dalgo(["reset", "acme", "faker", "--stream", "customers"]) == 1
    assert "connection 'faker' has no stream 'customers' (its streams: users, products)" in capsys.readouterr().out

    assert dalgo(["reset", "acme", "faker", "--stream", "users"]) == 0
    out = capsys.readouterr().out
    assert "dropped raw_faker.users" in out and "dropped the state of stream 'users'" in out, out
    assert "connection 'faker': users will be synced in full at the next sync" in out
    assert tables() == {"products", "_dalgo_airbyte_state"}
    assert query("select count(*) from raw_faker._dalgo_airbyte_state") == [(0,)]

    again = sync(spec)
    assert again.success and loaded(again)["users"]["rows_loaded"] == 12  # a full sync
    assert query("select count(*), count(distinct id) from raw_faker.users") == [(12, 12)]

    assert dalgo(["reset", "acme", "faker"]) == 0
    out = capsys.readouterr().out
    assert "dropped raw_faker.users" in out and "dropped raw_faker.products" in out, out
    assert tables() == {"_dalgo_airbyte_state"}
    assert dalgo(["reset", "acme", "faker"]) == 0  # nothing left: says so, and succeeds
    assert "nothing to drop" in capsys.readouterr().out


def test_reset_job_on_postgres_drops_the_views_on_the_table_and_the_next_sync_is_full(
    embedded_env: Path,  # noqa: F811
    postgres: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec, query, dsn = faker_users_on_postgres(embedded_env / "orgs", postgres, "pgreset", 10, monkeypatch)

    assert sync(spec).success
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("create view raw_faker.adults as select id from raw_faker.users where age >= 18")

    job = build_org_definitions(spec).resolve_job_def(reset_job_name("pgreset", "faker"))
    instance = dg.DagsterInstance.ephemeral()
    result = job.execute_in_process(run_config=reset_run_config("pgreset", "faker", []), instance=instance)
    assert result.success
    log = run_log(instance, result)
    assert "dropped raw_faker.users" in log and "dropped raw_faker.adults" in log, log
    assert "dropped the state of stream 'users'" in log
    assert query("select table_name from information_schema.tables where table_schema = 'raw_faker'") == [
        ("_dalgo_airbyte_state",)
    ]
    again = sync(spec)
    assert again.success and loaded(again)["users"]["rows_loaded"] == 10
    assert query("select count(*) from raw_faker.users") == [(10,)]
