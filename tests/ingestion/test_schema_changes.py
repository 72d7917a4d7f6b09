"""A re-sync after a column's type changed in the connector's catalog: the column is migrated in place
when the warehouse can cast its values, else the stream's table is rebuilt and the stream read in full;
the run's log says which column of which table changed from which type to which, and what was done.

DuckDB: the case as reported, with the real source-file connector (a CSV whose date column the
connection's ``reader_options`` start parsing); DuckDB's rebuild is in test_reset.py (it shares that
test's syncs). PostgreSQL: source-faker, its table left by an older sync with text columns, views (as
dbt builds) on the table kept through both, then dropped with it by a reset.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import psycopg
import pytest

from dalgo_assets.definitions import build_org_definitions
from dalgo_assets.warehouse import warehouse_resources
from dalgo_core import layout
from dalgo_core.names import reset_job_name, reset_run_config
from tests.ingestion.embedded_support import (
    embedded_env,  # noqa: F401 (fixture)
    faker_users_on_postgres,
    loaded,
    run_log,
    sync,
    write_org,
)
from tests.support.postgres import PostgresServer


def failure_of(result: dg.ExecuteInProcessResult) -> str:
    """The failed step's message, for an assertion's explanation."""
    failures = [e for e in result.all_events if e.is_step_failure]
    return str(failures[0].step_failure_data.error.message) if failures else ""


CSV = "id,name,signup\n1,asha,2024-01-05\n2,ravi,2024-02-11\n3,mina,\n"


def file_connection(path: Path, reader_options: dict[str, Any] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"dataset_name": "people", "format": "csv", "url": str(path)}
    config["provider"] = {"storage": "local"}
    if reader_options is not None:
        config["reader_options"] = json.dumps(reader_options)
    return {
        "name": "sheet",
        "source": {"connector": "source-file", "config": config},
        "destination_schema": "raw_sheet",
        "streams": [{"name": "people"}],
    }


def test_duckdb_a_date_column_typed_by_the_connection_is_migrated(
    embedded_env: Path,  # noqa: F811
) -> None:
    csv = layout.org_root("sheets") / "files" / "people.csv"  # the files a connection reads: the org's root
    csv.parent.mkdir(parents=True)
    csv.write_text(CSV)
    orgs = embedded_env / "orgs"
    spec = write_org(orgs, "sheets", file_connection(csv))
    first = sync(spec)
    assert first.success, failure_of(first)
    path = warehouse_resources(spec)["warehouse"].duckdb_path

    def query(sql: str) -> list[tuple]:
        with duckdb.connect(path, read_only=True) as db:
            return db.sql(sql).fetchall()

    def types() -> dict[str, str]:
        return dict(query("select column_name, data_type from information_schema.columns where table_name = 'people'"))

    assert types()["signup"] == "VARCHAR" and types()["id"] == "DOUBLE"

    # the connection now parses the date column: the re-sync migrates it, and says so
    spec = write_org(orgs, "sheets", file_connection(csv, {"parse_dates": ["signup"]}))
    instance = dg.DagsterInstance.ephemeral()
    second = sync(spec, instance=instance)
    assert second.success
    log = run_log(instance, second)
    assert (
        "table raw_sheet.people: column 'signup' changed type from VARCHAR to TIMESTAMPTZ: migrated in place "
        "(ALTER COLUMN ... TYPE, existing values cast)"
    ) in log, log
    assert types()["signup"] == "TIMESTAMP WITH TIME ZONE"
    assert query("select id, signup from raw_sheet.people order by id") == [
        (1.0, datetime(2024, 1, 5, tzinfo=UTC)),
        (2.0, datetime(2024, 2, 11, tzinfo=UTC)),
        (3.0, None),
    ]
    assert loaded(second)["people"]["rows_loaded"] == 3


def test_postgres_a_column_type_change_migrates_with_its_views_or_rebuilds_and_resyncs_in_full(
    embedded_env: Path,  # noqa: F811
    postgres: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec, query, dsn = faker_users_on_postgres(embedded_env / "orgs", postgres, "pgtypes", 15, monkeypatch)

    def types() -> dict[str, str]:
        return dict(query("select column_name, data_type from information_schema.columns where table_name = 'users'"))

    assert sync(spec).success
    # the table as an older sync left it (created_at as text), and a dbt view built on it
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("alter table raw_faker.users alter column created_at type text")
        db.execute("create schema analytics")
        db.execute("create view analytics.signups as select id, created_at from raw_faker.users")
        db.execute("create view analytics.recent as select id from analytics.signups where created_at is not null")
    created_before = query("select id, created_at from raw_faker.users order by id")

    instance = dg.DagsterInstance.ephemeral()
    migrated = sync(spec, instance=instance)
    assert migrated.success, failure_of(migrated)
    assert (
        "table raw_faker.users: column 'created_at' changed type from text to timestamptz: migrated in place "
        "(ALTER COLUMN ... TYPE, existing values cast)"
    ) in run_log(instance, migrated)
    assert types()["created_at"] == "timestamp with time zone"
    assert loaded(migrated)["users"]["rows_loaded"] == 0  # resumed from its state: nothing new
    assert [(i, datetime.fromisoformat(c)) for i, c in created_before] == query(
        "select id, created_at from analytics.signups order by id"
    )
    assert query("select count(*) from analytics.recent") == [(15,)]

    # age retyped to text with a value no bigint holds: rebuilt, its state dropped, read in full again
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("alter table raw_faker.users alter column age type text")
        db.execute("update raw_faker.users set age = 'unknown' where id = 1")
    instance = dg.DagsterInstance.ephemeral()
    rebuilt = sync(spec, instance=instance)
    assert rebuilt.success, failure_of(rebuilt)
    lines = [m for m in run_log(instance, rebuilt) if m.startswith("table raw_faker.users: column 'age'")]
    assert lines and "changed type from text to bigint" in lines[0], run_log(instance, rebuilt)
    assert 'invalid input syntax for type bigint: "unknown"' in lines[0] and "the table is rebuilt" in lines[0]
    assert loaded(rebuilt)["users"]["rows_loaded"] == 15
    assert types()["age"] == "bigint"
    assert query("select count(*), count(distinct id), count(age) from raw_faker.users") == [(15, 15, 15)]
    assert query("select count(*) from analytics.recent") == [(15,)]  # the views stand on the new table
    assert query("select stream from raw_faker._dalgo_airbyte_state") == [("users",)]

    # a reset (the connection's reset job) drops the table with the views on it, and the state
    job = build_org_definitions(spec).resolve_job_def(reset_job_name("pgtypes", "faker"))
    instance = dg.DagsterInstance.ephemeral()
    reset = job.execute_in_process(run_config=reset_run_config("pgtypes", "faker", []), instance=instance)
    assert reset.success
    log = run_log(instance, reset)
    assert {"dropped raw_faker.users", "dropped analytics.signups", "dropped analytics.recent"} <= set(log), log
    assert "dropped the state of stream 'users'" in log
    assert query(
        "select table_schema, table_name from information_schema.tables where table_schema <> 'pg_catalog' "
        "and table_schema <> 'information_schema'"
    ) == [("raw_faker", "_dalgo_airbyte_state")]


def test_bigquery_plans_a_wider_number_in_place_and_rebuilds_anything_else() -> None:
    from dalgo_assets.ingestion.embedded import sql
    from dalgo_assets.ingestion.embedded.bigquery import reconcile_ddl
    from dalgo_assets.ingestion.embedded.schema import DATE, NUMBER, Column, StreamTable

    table = StreamTable("people", "raw", "people", (Column("n", "n", NUMBER), Column("d", "d", DATE)), "full_refresh")
    wider = sql.type_changes(sql.BIGQUERY, table, {"n": "INT64", "d": "DATE"})
    assert wider == [sql.TypeChange("n", "INT64", "FLOAT64")]
    assert reconcile_ddl(table, wider) == (["alter table `raw`.`people` alter column `n` set data type FLOAT64"], False)
    other = sql.type_changes(sql.BIGQUERY, table, {"n": "FLOAT64", "d": "STRING", "_airbyte_raw_id": "STRING"})
    assert other == [sql.TypeChange("d", "STRING", "DATE")]
    assert reconcile_ddl(table, other) == (["drop table if exists `raw`.`people`"], True)
    assert reconcile_ddl(table, []) == ([], False)
