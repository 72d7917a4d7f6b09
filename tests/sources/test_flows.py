"""Sources and connections through the API, as a frontend drives them, in both ingestion modes.

Embedded (real connectors from PyPI, in the organization's sandbox): the catalog, a connector's spec
(read by a task), configurations checked before saving, sources created and discovered, connections
choosing streams and modes, syncs and their history with row counts, a column added to a CSV detected and
propagated (one connection) or held for approval (a paused one), a stream reset and read in full again;
the platform's own database and files sources through the same endpoints: checked and discovered by tasks,
a database connection synced with its history, a new column applied as its policy says.

With an Airbyte server (the stand-in, running the real connectors for spec, check and discover as Airbyte
runs their images; its sync jobs move no data): a spec read from the server, configurations checked by
it, a source saved on it and discovered, connections applied to it with their schema change policy, syncs
through Dagster with their history, a new CSV column propagated by Airbyte or held (the connection
disabled) until approved, a stream reset by Airbyte.

In both, no secret of a source in any answer or log. One live platform for the module
(``conftest.start_platform``: the API under gunicorn, Dagster's webserver and daemon) with one
organization per mode; the tests run in order, each building on the last, and the syncs are few (eight runs).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from tests.sources.conftest import Platform, start_platform
from tests.support.airbyte_standin import DEFAULT_WORKSPACE, ConnectorRunner, StandinAirbyte
from tests.support.postgres import PostgresServer

ORG = "field_ngo"  # embedded ingestion, DuckDB
HQ = "hq_ngo"  # an Airbyte server
SECRET = "s3cr3t-Passw0rd-never-shown"  # an SFTP password of a source-file provider (a secret field)
CSV = "id,name\n1,asha\n2,ravi\n3,mina\n"
RECORDS = 7  # per stream and sync job, as the stand-in reports them


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the Airbyte server's connectors read files (its storage)."""
    folder = tmp_path_factory.mktemp("airbyte_files")
    (folder / "people.csv").write_text("id,name\n1,asha\n2,ravi\n")
    return folder


@pytest.fixture(scope="module")
def airbyte(files: Path, connectors_dir: Path) -> Iterator[StandinAirbyte]:
    runner = ConnectorRunner(str(files), str(connectors_dir))
    server = StandinAirbyte(records_per_stream=RECORDS, runner=runner).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, connectors_dir: Path, airbyte: StandinAirbyte
) -> Iterator[Platform]:
    server = {"url": airbyte.url, "workspace_id": DEFAULT_WORKSPACE, "poll_interval_seconds": 0.2}
    orgs = {
        ORG: {"slug": ORG, "name": "Field NGO"},
        HQ: {"slug": HQ, "name": "HQ NGO", "ingestion": {"mode": "server", "server": server}},
    }
    yield from start_platform(tmp_path_factory.mktemp("flows"), connectors_dir, orgs, {})


@pytest.fixture(scope="module")
def csv_file(platform: Platform) -> Path:
    """The CSV a field team exported, in the organization's root (where its connectors may read)."""
    path = platform.root / "home" / "orgs" / ORG / "files" / "people.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(CSV)
    return path


def file_config(path: Path | str) -> dict[str, Any]:
    return {"dataset_name": "people", "format": "csv", "url": str(path), "provider": {"storage": "local"}}


def query(platform: Platform, sql: str) -> list[tuple]:
    with duckdb.connect(str(platform.root / "home" / "orgs" / ORG / "warehouse.duckdb"), read_only=True) as db:
        return db.sql(sql).fetchall()


def spec_of(platform: Platform, connector: str) -> dict[str, Any]:
    """A connector's spec as a frontend gets it: a task the first time, then at once."""
    first = platform.call("GET", f"/api/sources/connectors/{connector}/spec", org=ORG)
    if first.status_code == 202:
        done = platform.task(first.json(), org=ORG)
        assert done["status"] == "succeeded", done
        assert any("installing" in p["message"] or "specification" in p["message"] for p in done["progress"])
    return platform.ok("GET", f"/api/sources/connectors/{connector}/spec", org=ORG)


def synced(platform: Platform, run: dict[str, Any], org: str = ORG) -> dict[str, Any]:
    return platform.run(run["run_id"], org=org)


def succeeded(platform: Platform, started: dict[str, Any], org: str = HQ) -> dict[str, Any]:
    done = platform.task(started, org=org)
    assert done["status"] == "succeeded", done
    return done["result"]


def test_the_catalog_and_a_connector_spec(platform: Platform) -> None:
    catalog = {c["connector"]: c for c in platform.ok("GET", "/api/sources/connectors", org=ORG)}
    assert {"source-file", "source-faker", "source-google-sheets", "source-commcare", "source-surveycto"} <= set(
        catalog
    )
    assert catalog["source-file"]["version"] == "0.5.39" and catalog["source-file"]["package"] == "airbyte-source-file"
    assert catalog["source-file"]["documentation_url"] == "https://docs.airbyte.com/integrations/sources/file"
    spec = spec_of(platform, "source-file")
    assert {"dataset_name", "format", "url", "provider"} <= set(spec["connection_specification"]["properties"])
    assert "provider.password" in spec["secret_fields"]
    listed = {c["connector"]: c for c in platform.ok("GET", "/api/sources/connectors", org=ORG)}
    assert listed["source-file"]["spec_cached"] is True

    # an operator's own connector joins the catalog (platform staff only)
    custom = {"connector": "source-field-app", "package": "field-app-airbyte", "version": "1.2.0", "title": "Field app"}
    assert platform.call("POST", "/api/sources/connectors", custom, org=ORG).status_code == 403
    added = platform.call("POST", "/api/sources/connectors", custom, org=ORG, token=platform.tokens["root"])
    assert added.status_code == 201, added.text
    listed = {c["connector"]: c for c in platform.ok("GET", "/api/sources/connectors", org=ORG)}
    assert listed["source-field-app"]["custom"] is True and listed["source-field-app"]["package"] == "field-app-airbyte"


def test_configurations_are_checked_before_saving(platform: Platform, csv_file: Path) -> None:
    # against the connector's spec, at once: the field is named, nothing is echoed
    bad = platform.call(
        "POST", "/api/sources/check", {"connector": "source-file", "config": {"format": "csv"}}, org=ORG
    )
    assert bad.status_code == 422, bad.text
    assert {e["field"] for e in bad.json()["errors"]} >= {"config.url", "config.dataset_name", "config.provider"}
    # the connector's own check, in a task: its message for a file that is not there
    missing = {"connector": "source-file", "config": file_config(csv_file.with_name("nope.csv"))}
    done = platform.task(platform.ok("POST", "/api/sources/check", missing, org=ORG, status=202), org=ORG)
    assert done["status"] == "succeeded" and done["result"]["succeeded"] is False
    assert "nope.csv" in done["result"]["message"]
    good = {"connector": "source-file", "config": file_config(csv_file)}
    done = platform.task(platform.ok("POST", "/api/sources/check", good, org=ORG, status=202), org=ORG)
    assert done["result"] == {"succeeded": True, "message": "the connection check succeeded", "errors": []}


def test_a_source_is_created_and_discovered(platform: Platform, csv_file: Path) -> None:
    body = {"name": "people_sheet", "connector": "source-file", "config": file_config(csv_file)}
    created = platform.ok("POST", "/api/sources/", body, org=ORG, status=201)
    assert created["config"] == file_config(csv_file) and created["version"] == "0.5.39"
    wrong = {**body, "name": "other", "config": {**file_config(csv_file), "format": "xml"}}
    answer = platform.call("POST", "/api/sources/", wrong, org=ORG)
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "config.format", answer.text

    done = platform.task(platform.ok("POST", "/api/sources/people_sheet/discover", org=ORG, status=202), org=ORG)
    assert done["status"] == "succeeded", done
    (stream,) = done["result"]["streams"]
    assert stream["name"] == "people" and "full_refresh" in stream["supported_sync_modes"]
    assert set(stream["json_schema"]["properties"]) == {"id", "name"}


def connection(name: str, policy: str, schema: str) -> dict[str, Any]:
    return {
        "name": name,
        "source_name": "people_sheet",
        "streams": [{"name": "people", "sync_mode": "full_refresh"}],
        "destination_schema": schema,
        "schema_change_policy": policy,
    }


FAKER = {"count": 12, "seed": 3, "parallelism": 1, "always_updated": False}


def test_connections_choose_streams_and_sync_with_history(platform: Platform) -> None:
    platform.ok("POST", "/api/connections/", connection("sheet", "propagate_columns", "raw_sheet"), org=ORG, status=201)
    platform.ok("POST", "/api/connections/", connection("sheet_held", "pause", "raw_held"), org=ORG, status=201)
    spec_of(platform, "source-faker")
    platform.ok(
        "POST", "/api/sources/", {"name": "demo", "connector": "source-faker", "config": FAKER}, org=ORG, status=201
    )
    streams = [{"name": "users", "sync_mode": "incremental"}, {"name": "products", "sync_mode": "full_refresh"}]
    faker = {"name": "faker", "source_name": "demo", "streams": streams, "destination_schema": "raw_faker"}
    platform.ok("POST", "/api/connections/", faker, org=ORG, status=201)

    # the first sync of the three connections, in one run
    keys = ["sheet/people", "sheet_held/people", "faker/users", "faker/products"]
    run = synced(platform, platform.ok("POST", "/api/runs/", {"assets": keys}, org=ORG, status=201))
    assert run["status"] == "SUCCESS", run
    assert query(platform, "select id, name from raw_sheet.people order by id") == [
        (1, "asha"),
        (2, "ravi"),
        (3, "mina"),
    ]

    (sync,) = platform.ok("GET", "/api/connections/faker/syncs", org=ORG)["syncs"]
    assert sync["run_id"] == run["run_id"] and sync["status"] == "SUCCESS" and sync["duration_seconds"] > 0
    assert {s["stream"]: s["records"] for s in sync["streams"]} == {"users": 12, "products": 12}
    assert sync["records"] == 24 and sync["logs"] == f"/api/runs/{run['run_id']}/logs"
    assert platform.ok("GET", sync["logs"], org=ORG)["events"]
    page = platform.ok("GET", "/api/connections/sheet/syncs?limit=1", org=ORG)
    assert [s["streams"] for s in page["syncs"]] == [[{"stream": "people", "records": 3, "records_read": 3}]] and page[
        "next_cursor"
    ] is None


def test_a_new_column_is_propagated_or_held_for_approval(platform: Platform, csv_file: Path) -> None:
    csv_file.write_text("id,name,city\n1,asha,Pune\n2,ravi,Delhi\n3,mina,Agra\n4,omar,Leh\n")
    # the next sync of the three connections: the paused one does not sync, the change waits for a person;
    # the other connection of the same source loads the new column; faker syncs beside them
    keys = ["sheet/people", "sheet_held/people", "faker/users", "faker/products"]
    run = synced(platform, platform.ok("POST", "/api/runs/", {"assets": keys}, org=ORG, status=201))
    assert run["status"] == "FAILURE" and "policy is to pause" in run["error"], run
    changes = platform.ok("GET", "/api/connections/sheet_held/schema-changes", org=ORG)
    assert changes["held"] is True and changes["policy"] == "pause"
    assert [(c["kind"], c["stream"], c["column"]) for c in changes["changes"]] == [("column_added", "people", "city")]
    assert query(platform, "select name, city from raw_sheet.people where id = 4") == [("omar", "Leh")]
    assert platform.ok("GET", "/api/connections/sheet/schema-changes", org=ORG)["changes"] == []
    assert len(platform.ok("GET", "/api/connections/sheet/syncs", org=ORG)["syncs"]) == 2

    # on demand: a refresh finds the same change; approving it lets the paused connection sync (next test)
    refresh = platform.ok("POST", "/api/connections/sheet_held/schema-changes/refresh", org=ORG, status=202)
    found = platform.task(refresh, org=ORG)
    assert [c["description"] for c in found["result"]["changes"]] == ["stream 'people': column 'city' added"]
    approve = platform.ok("POST", "/api/connections/sheet_held/schema-changes/approve", org=ORG, status=202)
    assert platform.task(approve, org=ORG)["status"] == "succeeded"
    after = platform.ok("GET", "/api/connections/sheet_held/schema-changes", org=ORG)
    assert after["held"] is False and after["changes"] == []


def test_a_reset_stream_is_read_in_full_again(platform: Platform) -> None:
    latest = platform.ok("GET", "/api/connections/faker/syncs", org=ORG)["syncs"][0]
    assert {s["stream"]: s["records"] for s in latest["streams"]} == {"users": 0, "products": 12}  # incremental
    body = {"streams": ["users"]}
    reset = synced(platform, platform.ok("POST", "/api/connections/faker/reset", body, org=ORG, status=201))
    assert reset["status"] == "SUCCESS", reset
    # the reset stream, and the approved connection, in one run
    keys = ["faker/users", "faker/products", "sheet_held/people"]
    run = synced(platform, platform.ok("POST", "/api/runs/", {"assets": keys}, org=ORG, status=201))
    assert run["status"] == "SUCCESS", run
    history = platform.ok("GET", "/api/connections/faker/syncs", org=ORG)["syncs"]
    assert len(history) == 3 and history[0]["run_id"] == run["run_id"]
    assert {s["stream"]: s["records"] for s in history[0]["streams"]} == {"users": 12, "products": 12}
    assert query(platform, "select count(*), count(city) from raw_held.people") == [(4, 4)]


def test_secrets_of_a_source_appear_in_no_answer_or_log(platform: Platform, csv_file: Path) -> None:
    sftp = {"storage": "SFTP", "host": "127.0.0.1", "user": "field", "password": SECRET, "port": "1"}
    body = {
        "name": "remote_sheet",
        "connector": "source-file",
        "config": {**file_config("/data/p.csv"), "provider": sftp},
    }
    created = platform.ok("POST", "/api/sources/", body, org=ORG, status=201)
    assert created["secret_fields"] == ["provider.password"] and "password" not in created["config"]["provider"]
    answers = [
        created,
        platform.ok("GET", "/api/sources/", org=ORG),
        platform.ok("GET", "/api/sources/remote_sheet", org=ORG),
    ]
    # a changed configuration without the secret keeps it, and the connector sees it
    update = {"config": {**body["config"], "provider": {k: v for k, v in sftp.items() if k != "password"}}}
    answers.append(platform.ok("PUT", "/api/sources/remote_sheet", update, org=ORG))
    checked = platform.task(platform.ok("POST", "/api/sources/remote_sheet/check", org=ORG, status=202), org=ORG)
    assert checked["result"]["succeeded"] is False
    answers.append(checked)
    assert SECRET not in json.dumps(answers)
    spec_text = (platform.root / "orgs" / ORG / "org.yaml").read_text()
    assert SECRET not in spec_text and "file: source_remote_sheet_provider.password" in spec_text
    assert SECRET not in platform.logs()
    with platform.api_db() as db:
        rows = db.execute("select params, coalesce(result, ''), error from tasks_task").fetchall()
    assert rows and SECRET not in json.dumps(rows)
    assert platform.ok("DELETE", "/api/sources/remote_sheet", org=ORG, status=204) is None
    assert platform.call("DELETE", "/api/sources/people_sheet", org=ORG).status_code == 409  # read by connections


# --- the platform's own sources: a database and files (dlt), through the same API ---------------------

SHOP_PASSWORD = "pg-Flow-Passw0rd-never-shown"


@pytest.fixture(scope="module")
def shop(postgres: PostgresServer) -> dict[str, Any]:
    """A PostgreSQL database of the organization's own (customers; orders with a cursor and a primary key),
    its user made to give its password; the source's configuration."""
    dsn = postgres.create_database("flow_shop", owner="flow_reader", password=SHOP_PASSWORD)
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("create table customers (id integer primary key, name text not null)")
        db.execute("insert into customers values (1, 'asha'), (2, 'ravi'), (3, 'mina')")
        db.execute("create table orders (id bigint primary key, amount numeric(8, 2), updated_at timestamptz not null)")
        db.execute("insert into orders select g, g * 1.5, now() from generate_series(1, 5) g")
    postgres.require_password("flow_reader")
    return {
        "host": postgres.host,
        "port": postgres.port,
        "database": "flow_shop",
        "user": "flow_reader",
        "password": SHOP_PASSWORD,
    }


def test_database_and_files_sources_are_checked_and_discovered(platform: Platform, shop: dict[str, Any]) -> None:
    # a configuration checked by the worker in the sandbox: the database's own message, no secret in it
    wrong = {"connector": "database", "config": {**shop, "password": "wrong-Passw0rd-x"}}
    done = platform.task(platform.ok("POST", "/api/sources/check", wrong, org=ORG, status=202), org=ORG)
    assert done["result"]["succeeded"] is False and "password authentication failed" in done["result"]["message"]
    assert "wrong-Passw0rd-x" not in json.dumps(done)
    good = {"connector": "database", "config": shop}
    done = platform.task(platform.ok("POST", "/api/sources/check", good, org=ORG, status=202), org=ORG)
    assert done["result"]["succeeded"] is True, done
    assert "2 tables" in done["result"]["message"] and "orders" in done["result"]["message"]
    files = {"connector": "files", "config": {"url": ".", "format": "csv"}}
    assert platform.call("POST", "/api/sources/check", files, org=ORG).status_code == 422  # config.url
    files["config"]["url"] = "exports"
    (platform.root / "home" / "orgs" / ORG / "files" / "exports").mkdir(parents=True)
    (platform.root / "home" / "orgs" / ORG / "files" / "exports" / "visits.csv").write_text("id,day\n1,2024-05-01\n")
    done = platform.task(platform.ok("POST", "/api/sources/check", files, org=ORG, status=202), org=ORG)
    assert done["result"] == {"succeeded": True, "message": "1 csv file at exports: visits.csv", "errors": []}

    # saved (its password stored encrypted) and discovered: tables as streams with their columns' own types
    body = {"name": "shop", "connector": "database", "config": shop}
    created = platform.ok("POST", "/api/sources/", body, org=ORG, status=201)
    assert created["secret_fields"] == ["password"] and "password" not in created["config"]
    done = platform.task(platform.ok("POST", "/api/sources/shop/discover", org=ORG, status=202), org=ORG)
    streams = {s["name"]: s for s in done["result"]["streams"]}
    orders = streams["orders"]
    assert set(streams) == {"customers", "orders"} and orders["source_defined_primary_key"] == [["id"]]
    assert {c["name"]: c["type"] for c in orders["columns"]} == {
        "id": "BIGINT",
        "amount": "NUMERIC(8, 2)",
        "updated_at": "TIMESTAMP WITH TIME ZONE",
    }
    assert orders["json_schema"]["properties"]["amount"] == {"type": ["null", "number"]}
    assert orders["cursor_candidates"] == ["updated_at", "id"] and orders["default_cursor_field"] == ["updated_at"]
    assert orders["supported_sync_modes"] == ["full_refresh", "incremental"]


def test_a_database_connection_syncs_with_history_and_schema_changes(
    platform: Platform, shop: dict[str, Any], postgres: PostgresServer
) -> None:
    streams = [
        {"name": "orders", "sync_mode": "incremental", "cursor_field": ["updated_at"], "primary_key": [["id"]]},
        {"name": "customers"},
    ]
    body = {"name": "shop", "source_name": "shop", "streams": streams, "destination_schema": "raw_shop"}
    platform.ok("POST", "/api/connections/", body, org=ORG, status=201)
    first = synced(platform, platform.ok("POST", "/api/connections/shop/sync", org=ORG, status=201))
    assert first["status"] == "SUCCESS", first
    (sync,) = platform.ok("GET", "/api/connections/shop/syncs", org=ORG)["syncs"]
    assert {s["stream"]: s["records"] for s in sync["streams"]} == {"orders": 5, "customers": 3}

    # the source changes: a new customer column is applied by the policy (propagate_columns), said in the
    # run's log; the incremental stream moves the one row inserted
    with psycopg.connect(postgres.dsn("flow_shop"), autocommit=True) as db:
        db.execute("alter table customers add column city text")
        db.execute("update customers set city = 'Pune'")
        db.execute("insert into orders values (6, 9.99, now())")
    second = synced(platform, platform.ok("POST", "/api/connections/shop/sync", org=ORG, status=201))
    assert second["status"] == "SUCCESS", second
    latest = platform.ok("GET", "/api/connections/shop/syncs", org=ORG)["syncs"][0]
    assert {s["stream"]: s["records"] for s in latest["streams"]} == {"orders": 1, "customers": 3}
    logs = json.dumps(platform.ok("GET", f"/api/runs/{second['run_id']}/logs?limit=500", org=ORG))
    assert "schema changes applied (propagate_columns): stream 'customers': column 'city' added" in logs
    changes = platform.ok("GET", "/api/connections/shop/schema-changes", org=ORG)
    assert changes["changes"] == [] and changes["discovered_at"] is not None
    assert query(platform, "select count(*), count(city) from raw_shop.customers") == [(3, 3)]
    assert query(platform, "select count(*) from raw_shop.orders") == [(6,)]

    answers = [platform.ok("GET", "/api/sources/", org=ORG), platform.ok("GET", "/api/connections/shop", org=ORG)]
    assert SHOP_PASSWORD not in json.dumps(answers) and SHOP_PASSWORD not in platform.logs()
    with platform.api_db() as db:
        rows = db.execute("select params, coalesce(result, ''), error from tasks_task").fetchall()
    assert SHOP_PASSWORD not in json.dumps(rows)


# --- with an Airbyte server ----------------------------------------------------------------------------

HQ_SECRET = "sftp-Passw0rd-of-the-hq"


def synced_hq(platform: Platform, run: dict[str, Any]) -> dict[str, Any]:
    return synced(platform, run, HQ)


def test_server_spec_check_and_discover(platform: Platform, airbyte: StandinAirbyte, files: Path) -> None:
    listed = {c["connector"] for c in platform.ok("GET", "/api/sources/connectors", org=HQ)}
    assert {"source-file", "source-faker"} <= listed
    started = platform.ok("GET", "/api/sources/connectors/source-file/spec", org=HQ, status=202)
    succeeded(platform, started)
    spec = platform.ok("GET", "/api/sources/connectors/source-file/spec", org=HQ)
    assert "url" in spec["connection_specification"]["properties"] and "provider.password" in spec["secret_fields"]
    assert any(c["path"].endswith("/source_definition_specifications/get") for c in airbyte.calls)

    missing = {"connector": "source-file", "config": file_config(files / "nope.csv")}
    result = succeeded(platform, platform.ok("POST", "/api/sources/check", missing, org=HQ, status=202))
    assert result["succeeded"] is False and "nope.csv" in result["message"]
    good = {"connector": "source-file", "config": file_config(files / "people.csv")}
    assert succeeded(platform, platform.ok("POST", "/api/sources/check", good, org=HQ, status=202))["succeeded"]

    body = {"name": "people_sheet", **good}
    platform.ok("POST", "/api/sources/", body, org=HQ, status=201)
    (stream,) = succeeded(platform, platform.ok("POST", "/api/sources/people_sheet/discover", org=HQ, status=202))[
        "streams"
    ]
    assert stream["name"] == "people" and set(stream["json_schema"]["properties"]) == {"id", "name"}
    assert [s["name"] for s in airbyte.sources.values()] == ["people_sheet"]  # saved on the server


def hq_connection(name: str, policy: str) -> dict[str, Any]:
    return {
        "name": name,
        "source_name": "people_sheet",
        "streams": [{"name": "people"}],
        "destination_schema": f"raw_{name}",
        "schema_change_policy": policy,
    }


def test_server_connections_are_applied_and_synced(platform: Platform, airbyte: StandinAirbyte) -> None:
    for name, policy in (("sheet", "propagate_columns"), ("sheet_held", "pause")):
        created = platform.ok("POST", "/api/connections/", hq_connection(name, policy), org=HQ, status=201)
        plan = succeeded(platform, created["task"])["plan"]
        assert any(line.startswith(f"+ connection {name}") for line in plan), plan
    behaviors = {c["name"]: c["nonBreakingSchemaUpdatesBehavior"] for c in airbyte.connections.values()}
    assert behaviors == {"sheet": "propagate_columns", "sheet_held": "disable_connection"}
    assert len(airbyte.sources) == 1  # the named source, shared

    keys = ["sheet/people", "sheet_held/people"]
    run = synced_hq(platform, platform.ok("POST", "/api/runs/", {"assets": keys}, org=HQ, status=201))
    assert run["status"] == "SUCCESS", run
    (sync,) = platform.ok("GET", "/api/connections/sheet/syncs", org=HQ)["syncs"]
    assert sync["run_id"] == run["run_id"]
    assert sync["streams"] == [{"stream": "people", "records": RECORDS, "records_read": RECORDS}]


def test_server_a_new_column_is_propagated_by_airbyte_or_held(
    platform: Platform, airbyte: StandinAirbyte, files: Path
) -> None:
    (files / "people.csv").write_text("id,name,city\n1,asha,Pune\n2,ravi,Delhi\n")
    keys = ["sheet/people", "sheet_held/people"]
    run = synced_hq(platform, platform.ok("POST", "/api/runs/", {"assets": keys}, org=HQ, status=201))
    assert run["status"] == "FAILURE" and "Schema changes were detected" in run["error"], run  # the held one
    sheet = next(c for c in airbyte.connections.values() if c["name"] == "sheet")
    assert "city" in sheet["_streams"]["people"]["jsonSchema"]["properties"]  # Airbyte propagated it
    assert platform.ok("GET", "/api/connections/sheet/syncs", org=HQ)["syncs"][0]["streams"] == [
        {"stream": "people", "records": RECORDS, "records_read": RECORDS}
    ]

    refresh = platform.ok("POST", "/api/connections/sheet_held/schema-changes/refresh", org=HQ, status=202)
    found = succeeded(platform, refresh)["changes"]
    assert [c["description"] for c in found] == ["stream 'people': column 'city' added"]
    assert platform.ok("GET", "/api/connections/sheet_held/schema-changes", org=HQ)["held"] is True
    succeeded(platform, platform.ok("POST", "/api/connections/sheet_held/schema-changes/approve", org=HQ, status=202))
    again = synced_hq(platform, platform.ok("POST", "/api/connections/sheet_held/sync", org=HQ, status=201))
    assert again["status"] == "SUCCESS", again


def test_server_a_stream_is_reset_by_airbyte(platform: Platform, airbyte: StandinAirbyte) -> None:
    body = {"streams": ["people"]}
    reset = synced_hq(platform, platform.ok("POST", "/api/connections/sheet/reset", body, org=HQ, status=201))
    assert reset["status"] == "SUCCESS", reset
    (call,) = [c for c in airbyte.calls if c["path"].endswith("/connections/reset/stream")]
    assert [s["streamName"] for s in call["body"]["streams"]] == ["people"]


def test_server_no_secret_in_any_answer_or_log(platform: Platform, airbyte: StandinAirbyte, files: Path) -> None:
    sftp = {"storage": "SFTP", "host": "127.0.0.1", "user": "hq", "password": HQ_SECRET, "port": "1"}
    body = {"name": "remote", "connector": "source-file", "config": {**file_config(files / "p.csv"), "provider": sftp}}
    answers = [platform.ok("POST", "/api/sources/", body, org=HQ, status=201)]
    discovered = platform.task(platform.ok("POST", "/api/sources/remote/discover", org=HQ, status=202), org=HQ)
    assert discovered["status"] == "failed", discovered
    answers += [discovered, platform.ok("GET", "/api/sources/remote", org=HQ)]
    remote = next(s for s in airbyte.sources.values() if s["name"] == "remote")
    assert remote["configuration"]["provider"]["password"] == HQ_SECRET  # the server has it, to run the connector
    assert HQ_SECRET not in json.dumps(answers) and HQ_SECRET not in platform.logs()
    assert HQ_SECRET not in (platform.root / "orgs" / HQ / "org.yaml").read_text()
