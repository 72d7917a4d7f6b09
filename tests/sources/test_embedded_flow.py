"""Sources and connections through the API, embedded ingestion, real connectors from PyPI, as a frontend
drives them: the catalog, a connector's spec (read by a task), configurations checked before saving,
sources created and discovered, connections choosing streams and modes, syncs and their history with
row counts, a column added to a CSV detected and propagated (one connection) or held for approval (a
paused one), a stream reset and read in full again, and no secret of a source in any answer or log.

One organization (DuckDB) for the module, on the live platform of ``conftest.start_platform``; the
tests run in order, each building on the last: the syncs are few (five runs).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.sources.conftest import Platform, start_platform

ORG = "field_ngo"
SECRET = "s3cr3t-Passw0rd-never-shown"  # an SFTP password of a source-file provider (a secret field)
CSV = "id,name\n1,asha\n2,ravi\n3,mina\n"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, connectors_dir: Path) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("embedded_flow")
    yield from start_platform(root, connectors_dir, {ORG: {"slug": ORG, "name": "Field NGO"}}, {})


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


def synced(platform: Platform, run: dict[str, Any]) -> dict[str, Any]:
    return platform.run(run["run_id"], org=ORG)


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
    assert platform.ok("GET", "/api/sources/connectors", org=ORG)[0]["spec_cached"] is True

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
    # a secret field is checked too, and its value shown nowhere
    sftp = {"storage": "SFTP", "host": "127.0.0.1", "user": "field", "password": SECRET, "port": "1"}
    secret = {"connector": "source-file", "config": {**file_config("/data/people.csv"), "provider": sftp}}
    done = platform.task(platform.ok("POST", "/api/sources/check", secret, org=ORG, status=202), org=ORG)
    assert done["result"]["succeeded"] is False and SECRET not in json.dumps(done)


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
    assert [s["streams"] for s in page["syncs"]] == [[{"stream": "people", "records": 3}]] and page[
        "next_cursor"
    ] is None


def test_a_new_column_is_propagated_or_held_for_approval(platform: Platform, csv_file: Path) -> None:
    csv_file.write_text("id,name,city\n1,asha,Pune\n2,ravi,Delhi\n3,mina,Agra\n4,omar,Leh\n")
    # the paused connection does not sync: the change waits for a person
    held = synced(platform, platform.ok("POST", "/api/connections/sheet_held/sync", org=ORG, status=201))
    assert held["status"] == "FAILURE" and "policy is to pause" in held["error"], held
    changes = platform.ok("GET", "/api/connections/sheet_held/schema-changes", org=ORG)
    assert changes["held"] is True and changes["policy"] == "pause"
    assert [(c["kind"], c["stream"], c["column"]) for c in changes["changes"]] == [("column_added", "people", "city")]
    # the other connection of the same source loads the new column at its next sync (faker syncs beside it)
    keys = ["sheet/people", "faker/users", "faker/products"]
    run = synced(platform, platform.ok("POST", "/api/runs/", {"assets": keys}, org=ORG, status=201))
    assert run["status"] == "SUCCESS", run
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
    discovered = platform.task(platform.ok("POST", "/api/sources/remote_sheet/discover", org=ORG, status=202), org=ORG)
    assert discovered["status"] == "failed"
    answers.append(discovered)
    assert SECRET not in json.dumps(answers)
    spec_text = (platform.root / "orgs" / ORG / "org.yaml").read_text()
    assert SECRET not in spec_text and "file: source_remote_sheet_provider.password" in spec_text
    assert SECRET not in platform.logs()
    with platform.api_db() as db:
        rows = db.execute("select params, coalesce(result, ''), error from tasks_task").fetchall()
    assert rows and SECRET not in json.dumps(rows)
    assert platform.ok("DELETE", "/api/sources/remote_sheet", org=ORG, status=204) is None
    assert platform.call("DELETE", "/api/sources/people_sheet", org=ORG).status_code == 409  # read by connections
