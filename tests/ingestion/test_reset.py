"""A reset of a connection or of some of its streams: their tables and connector state dropped, the next
sync a full one. ``dalgo reset`` runs the organization's reset job in process (DuckDB; on PostgreSQL,
where the views on a table go with it, in test_schema_changes.py). The sync after the reset also
rebuilds a table whose values DuckDB cannot cast to the catalog's type (sharing this test's syncs)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dalgo_assets.warehouse import warehouse_resources
from dalgo_ops.cli import main as dalgo
from tests.ingestion.embedded_support import (
    embedded_env,  # noqa: F401 (fixture)
    faker_connection,
    loaded,
    run_log,
    sync,
    write_org,
)


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
    assert query("select stream from raw_faker._dalgo_airbyte_state") == [("users",)]  # incremental

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

    # products' price retyped by hand and holding a value no DOUBLE holds: the sync rebuilds that table
    with duckdb.connect(path) as db:
        db.execute("alter table raw_faker.products alter column price type varchar")
        db.execute("update raw_faker.products set price = 'n/a' where id = 1")
    instance = dg.DagsterInstance.ephemeral()
    again = sync(spec, instance=instance)
    assert again.success and loaded(again)["users"]["rows_loaded"] == 12  # a full sync
    assert query("select count(*), count(distinct id) from raw_faker.users") == [(12, 12)]
    log = run_log(instance, again)
    rebuilt = [m for m in log if m.startswith("table raw_faker.products: column 'price' changed type from VARCHAR")]
    assert rebuilt and "to DOUBLE: its values cannot be cast (1 value of price cannot be cast to DOUBLE)" in rebuilt[0]
    assert "the table is rebuilt" in rebuilt[0] and "stream 'products' synced in full" in rebuilt[0], log
    assert query(
        "select data_type from information_schema.columns where table_name = 'products' and column_name = 'price'"
    ) == [("DOUBLE",)]
    assert query("select count(*), count(price) from raw_faker.products") == [(12, 12)]

    assert dalgo(["reset", "acme", "faker"]) == 0
    out = capsys.readouterr().out
    assert "dropped raw_faker.users" in out and "dropped raw_faker.products" in out, out
    assert tables() == {"_dalgo_airbyte_state"}
    assert dalgo(["reset", "acme", "faker"]) == 0  # nothing left: says so, and succeeds
    assert "nothing to drop" in capsys.readouterr().out
