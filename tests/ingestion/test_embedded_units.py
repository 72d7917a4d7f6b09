"""Embedded ingestion without a connector: definitions, typing, merge semantics, state, BigQuery SQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dalgo_assets.ingestion import ingestion_group
from dalgo_assets.ingestion.embedded import build_embedded_ingestion, sql
from dalgo_assets.ingestion.embedded.bigquery import _inline, bigquery_schema, commit_script
from dalgo_assets.ingestion.embedded.schema import (
    INTEGER,
    JSON,
    NUMBER,
    STRING,
    TIMESTAMP,
    TIMESTAMP_TZ,
    RowBuilder,
    StreamTable,
    column_kind,
    columns_from_schema,
)
from dalgo_assets.ingestion.embedded.state import GLOBAL_KEY, StateTracker, state_input
from dalgo_assets.ingestion.embedded.sync import plan_stream
from dalgo_core.connectors.config import resolved
from dalgo_core.names import warehouse_pool
from dalgo_core.spec import StreamSpec
from tests.ingestion.embedded_support import faker_connection, write_org

SCHEMA = {
    "properties": {
        "id": {"type": "integer"},
        "Name": {"type": ["null", "string"]},
        "score": {"type": "number"},
        "n": {"type": "number", "airbyte_type": "integer"},
        "seen_at": {"type": "string", "format": "date-time"},
        "local_at": {"type": "string", "format": "date-time", "airbyte_type": "timestamp_without_timezone"},
        "address": {"type": "object", "properties": {}},
        "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    }
}


def _table(sync_mode: str = "incremental") -> StreamTable:
    return StreamTable(
        stream="people",
        schema="raw",
        table="people",
        columns=columns_from_schema(SCHEMA),
        sync_mode=sync_mode,
        primary_key=("id",),
        cursor="seen_at",
    )


def test_definitions_load_without_installing_anything(dalgo_env: Path) -> None:
    spec = write_org(dalgo_env / "orgs", "acme", faker_connection(connector="source-not-installed-anywhere"))
    (asset,) = build_embedded_ingestion(spec).assets
    assert asset.can_subset
    assert asset.op.pool == warehouse_pool("acme")  # a DuckDB warehouse: one writer at a time
    users = dg.AssetKey(["acme", "faker", "users"])
    assert set(asset.keys) == {users, dg.AssetKey(["acme", "faker", "products"])}
    spec_of_users = next(s for s in asset.specs if s.key == users)
    assert spec_of_users.group_name == ingestion_group("acme")
    assert spec_of_users.kinds == {"airbyte", "duckdb"}
    assert spec_of_users.tags["dalgo/org"] == "acme"
    assert spec_of_users.metadata["dagster/table_name"] == "raw_faker.users"
    assert not (dalgo_env / "home" / "connectors").exists()


def test_column_kinds_follow_the_json_schema() -> None:
    kinds = {c.name: c.kind for c in columns_from_schema(SCHEMA)}
    assert kinds == {
        "id": INTEGER,
        "name": STRING,  # lower-cased, nullable
        "score": NUMBER,
        "n": INTEGER,
        "seen_at": TIMESTAMP_TZ,
        "local_at": TIMESTAMP,
        "address": JSON,
        "either": JSON,
    }
    assert column_kind({"type": ["integer", "number"]}) == NUMBER


def test_values_that_do_not_fit_are_nulled_and_recorded() -> None:
    row = RowBuilder(_table(), json_as_text=True).row(
        {"id": "12", "Name": 5, "score": "x", "seen_at": "2024-01-02T03:04:05", "address": {"a": 1}},
        1_700_000_000_000,
    )
    values = dict(zip(_table().column_names, row, strict=True))
    assert values["id"] == 12 and values["name"] == "5" and values["score"] is None
    assert values["seen_at"] == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)  # naive: taken as UTC
    assert values["address"] == '{"a":1}'
    assert values["_airbyte_extracted_at"] == datetime.fromtimestamp(1_700_000_000, UTC)
    assert '"field":"score"' in values["_airbyte_meta"] and "DESTINATION_TYPECAST_ERROR" in values["_airbyte_meta"]


def test_incremental_merge_keeps_the_latest_cursor_per_key() -> None:
    t = StreamTable(
        "s",
        "raw",
        "s",
        columns_from_schema(
            {"properties": {"id": {"type": "integer"}, "v": {"type": "string"}, "c": {"type": "integer"}}}
        ),
        "incremental",
        ("id",),
        "c",
    )
    db = duckdb.connect()
    for statement in sql.create_final_table(sql.DUCKDB, t):
        db.execute(statement.replace('"raw"."s"', '"s"'))
    cols = "id, v, c, _airbyte_raw_id, _airbyte_extracted_at, _airbyte_meta"

    def insert(table: str, *rows: tuple[int, str, int]) -> None:
        values = ", ".join(f"({i}, '{v}', {c}, 'x', now(), '{{}}')" for i, v, c in rows)
        db.execute(f"insert into {table} ({cols}) values {values}")

    insert("s", (1, "old", 5), (2, "kept", 9))
    db.execute("create temp table stg as select * from s where 1 = 0")
    insert("stg", (1, "new", 6), (1, "newest", 7), (2, "stale", 3), (3, "added", 1))
    for statement in sql.merge_statements(sql.DUCKDB, t, "stg"):
        db.execute(statement.replace('"raw"."s"', '"s"'))
    assert db.sql("select id, v from s order by id").fetchall() == [
        (1, "newest"),
        (2, "kept"),
        (3, "added"),
    ]


def test_full_refresh_replaces_in_one_statement_pair() -> None:
    delete, insert = sql.merge_statements(sql.POSTGRES, _table("full_refresh"), "stg")
    assert delete.startswith('delete from "raw"."people"') and insert.startswith('insert into "raw"."people"')


def test_plan_uses_discovered_cursor_and_key() -> None:
    discovered = {
        "name": "people",
        "json_schema": SCHEMA,
        "supported_sync_modes": ["full_refresh", "incremental"],
        "source_defined_cursor": True,
        "default_cursor_field": ["seen_at"],
        "source_defined_primary_key": [["id"]],
    }
    table, entry = plan_stream(StreamSpec(name="people", sync_mode="incremental"), discovered, "raw")
    assert (table.cursor, table.primary_key, table.table) == ("seen_at", ("id",), "people")
    assert entry["destination_sync_mode"] == "append_dedup" and entry["cursor_field"] == ["seen_at"]
    with pytest.raises(ValueError, match="does not support incremental"):
        plan_stream(
            StreamSpec(name="people", sync_mode="incremental"),
            {**discovered, "supported_sync_modes": ["full_refresh"]},
            "raw",
        )


def test_secrets_fill_dotted_config_paths(monkeypatch: pytest.MonkeyPatch, dalgo_env: Path) -> None:
    monkeypatch.setenv("ACME_TOKEN", "t0k3n")
    connection = faker_connection(config={"credentials": {"kind": "token"}})
    connection["source"]["secrets"] = {"credentials.token": {"env": "ACME_TOKEN"}}
    spec = write_org(dalgo_env / "orgs", "acme", connection)
    config = resolved("acme", spec.connections[0].source)
    assert config == {"credentials": {"kind": "token", "token": "t0k3n"}}
    assert "token" not in spec.connections[0].source.config["credentials"]  # the spec is not modified


def test_state_keeps_the_latest_message_per_stream() -> None:
    tracker = StateTracker()
    for n in (1, 2):
        tracker.observe(
            {
                "type": "STATE",
                "state": {
                    "type": "STREAM",
                    "sourceStats": {"recordCount": 1},
                    "stream": {"stream_descriptor": {"name": "users"}, "stream_state": {"n": n}},
                },
            }
        )
    tracker.observe({"type": "STATE", "state": {"type": "GLOBAL", "global": {"shared_state": {}}}})
    saved = tracker.serialized(["users"])
    assert set(saved) == {"users", GLOBAL_KEY}
    (users, _) = sorted(saved.items(), key=lambda kv: kv[0] == GLOBAL_KEY)
    assert '"n":2' in users[1] and "sourceStats" not in users[1]
    assert [m["type"] for m in state_input(saved, ["users"])] == ["GLOBAL", "STREAM"]
    assert state_input(saved, []) == [{"type": "GLOBAL", "global": {"shared_state": {}}}]


def test_bigquery_sql_is_one_transaction_with_quoted_names() -> None:
    table = _table()
    assert ("seen_at", "TIMESTAMP") in bigquery_schema(table) and ("address", "JSON") in bigquery_schema(table)
    statements = sql.merge_statements(sql.BIGQUERY, table, "`p.raw._dalgo_stg_people`")
    assert statements[0].startswith("delete from `raw`.`people` as f where exists")
    _, insert = sql.save_state(sql.BIGQUERY, "raw")
    inlined = _inline(insert, ("acme", "faker", "people", '{"it\'s":1}'))
    assert "'acme', 'faker', 'people', '{\"it\\'s\":1}'" in inlined
    script = commit_script([*statements, inlined])
    assert script.startswith("BEGIN TRANSACTION;") and script.endswith("COMMIT TRANSACTION;")
