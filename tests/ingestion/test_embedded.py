"""Embedded ingestion with the real source-faker connector into DuckDB and a real PostgreSQL warehouse."""

from __future__ import annotations

from pathlib import Path

import duckdb
import psycopg
import pytest

from dalgo_assets.warehouse import warehouse_resources
from tests.ingestion.embedded_support import (
    embedded_env,  # noqa: F401 (fixture)
    failure_message,
    faker_connection,
    loaded,
    postgres_warehouse,
    sync,
    write_org,
)
from tests.support.postgres import PostgresServer


def test_faker_into_duckdb_full_refresh_and_incremental(embedded_env: Path) -> None:  # noqa: F811
    spec = write_org(embedded_env / "orgs", "acme", faker_connection(count=20))
    first = sync(spec)
    assert first.success
    assert loaded(first) == {
        "users": {"rows_loaded": 20, "table": "raw_faker.users", "sync_mode": "incremental"},
        "products": {"rows_loaded": 20, "table": "raw_faker.products", "sync_mode": "full_refresh"},
    }
    path = warehouse_resources(spec)["warehouse"].duckdb_path

    def query(sql: str) -> list[tuple]:
        with duckdb.connect(path, read_only=True) as db:
            return db.sql(sql).fetchall()

    assert query("select count(*), count(distinct id) from raw_faker.users") == [(20, 20)]
    assert query("select count(*) from raw_faker.products") == [(20,)]
    types = dict(query("select column_name, data_type from information_schema.columns where table_name = 'users'"))
    assert types["id"] == "BIGINT" and types["age"] == "BIGINT"
    assert types["updated_at"] == "TIMESTAMP WITH TIME ZONE" and types["address"] == "JSON"
    assert {"_airbyte_raw_id", "_airbyte_extracted_at", "_airbyte_meta"} <= set(types)
    # the dbt demo's columns are there
    assert {"name", "email", "gender", "nationality", "occupation", "created_at"} <= set(types)
    # state is kept for the incremental stream only, keyed by organization and connection
    states = query("select org, connection, stream from raw_faker._dalgo_airbyte_state")
    assert states == [("acme", "faker", "users")]

    # second sync: faker resumes from the saved state and has nothing new; full refresh replaces products
    second = sync(spec)
    assert second.success
    assert loaded(second)["users"]["rows_loaded"] == 0
    assert loaded(second)["products"]["rows_loaded"] == 20
    assert query("select count(*), count(distinct id) from raw_faker.users") == [(20, 20)]
    assert query("select count(*) from raw_faker.products") == [(20,)]

    # the source now has 10 more users and re-emits the old ones, newer: one row per id, the latest wins
    before = dict(query("select id, updated_at from raw_faker.users"))
    spec = write_org(embedded_env / "orgs", "acme", faker_connection(count=30, always_updated=True))
    third = sync(spec)
    assert third.success
    assert loaded(third)["users"]["rows_loaded"] == 30
    assert query("select count(*), count(distinct id), min(id), max(id) from raw_faker.users") == [(30, 30, 1, 30)]
    after = dict(query("select id, updated_at from raw_faker.users"))
    assert all(after[i] >= before[i] for i in before)


def test_faker_into_postgres_subset_and_failed_sync_keeps_previous_rows(
    embedded_env: Path,  # noqa: F811
    postgres: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warehouse = postgres_warehouse(postgres, "pgorg", monkeypatch)
    connection = faker_connection(
        count=25,
        always_updated=True,
        streams=[
            {"name": "users", "sync_mode": "incremental"},
            {"name": "purchases", "sync_mode": "incremental"},
            {"name": "products", "sync_mode": "full_refresh"},
        ],
    )
    spec = write_org(embedded_env / "orgs", "pgorg", connection, warehouse)
    dsn = postgres.dsn("pgorg", "pgorg", "s3cret")

    def query(sql: str) -> list[tuple]:
        with psycopg.connect(dsn) as db:
            return db.execute(sql).fetchall()

    first = sync(spec)
    assert first.success
    assert {s: m["rows_loaded"] for s, m in loaded(first).items()} == {
        "users": 25,
        "purchases": 25,
        "products": 25,
    }
    assert query("select count(*), count(distinct id) from raw_faker.users") == [(25, 25)]
    assert query("select count(*) from raw_faker.purchases") == [(25,)]
    types = dict(query("select column_name, data_type from information_schema.columns where table_name = 'users'"))
    assert types["id"] == "bigint" and types["address"] == "jsonb"
    assert types["updated_at"] == "timestamp with time zone"
    products = dict(
        query("select column_name, data_type from information_schema.columns where table_name = 'products'")
    )
    assert products["price"] == "numeric" and products["year"] == "bigint"

    # a subset reads and loads only the selected stream
    state_before = query("select stream, state from raw_faker._dalgo_airbyte_state order by stream")
    users_before = query("select _airbyte_raw_id from raw_faker.users order by id")
    subset = sync(spec, ["products"])
    assert subset.success
    assert set(loaded(subset)) == {"products"}
    assert query("select _airbyte_raw_id from raw_faker.users order by id") == users_before
    assert query("select stream, state from raw_faker._dalgo_airbyte_state order by stream") == state_before

    # a sync that fails while loading keeps every row and state of the last successful sync
    query("select 1")
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("alter table raw_faker.users add constraint no_new_rows check (age < 0) not valid")
    purchases_before = query("select _airbyte_raw_id from raw_faker.purchases order by id")
    products_before = query("select _airbyte_raw_id from raw_faker.products order by id")
    failed = sync(spec)
    message = failure_message(failed)
    assert "organization 'pgorg', connection 'faker'" in message and "no_new_rows" in message
    assert query("select _airbyte_raw_id from raw_faker.users order by id") == users_before
    assert query("select _airbyte_raw_id from raw_faker.purchases order by id") == purchases_before
    assert query("select _airbyte_raw_id from raw_faker.products order by id") == products_before
    assert query("select stream, state from raw_faker._dalgo_airbyte_state order by stream") == state_before
