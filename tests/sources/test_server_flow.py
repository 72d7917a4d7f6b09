"""The same flow with an Airbyte server (the stand-in, running the real connectors for spec, check and
discover as Airbyte runs their images; its sync jobs move no data): the catalog, a spec read from the
server, configurations checked by it, a source saved on it and discovered, connections applied to it with
their schema change policy, syncs through Dagster with their history, a new CSV column propagated by
Airbyte or held (the connection disabled) until approved, a stream reset by Airbyte, and no secret in any
answer or log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sources.conftest import Platform, start_platform
from tests.support.airbyte_standin import DEFAULT_WORKSPACE, ConnectorRunner, StandinAirbyte

ORG = "hq_ngo"
SECRET = "sftp-Passw0rd-of-the-hq"
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
    spec = {"slug": ORG, "name": "HQ NGO", "ingestion": {"mode": "server", "server": server}}
    yield from start_platform(tmp_path_factory.mktemp("server_flow"), connectors_dir, {ORG: spec}, {})


def file_config(path: Path) -> dict[str, Any]:
    return {"dataset_name": "people", "format": "csv", "url": str(path), "provider": {"storage": "local"}}


def succeeded(platform: Platform, started: dict[str, Any]) -> dict[str, Any]:
    done = platform.task(started, org=ORG)
    assert done["status"] == "succeeded", done
    return done["result"]


def synced(platform: Platform, run: dict[str, Any]) -> dict[str, Any]:
    return platform.run(run["run_id"], org=ORG)


def test_spec_check_and_discover_on_the_server(platform: Platform, airbyte: StandinAirbyte, files: Path) -> None:
    listed = {c["connector"] for c in platform.ok("GET", "/api/sources/connectors", org=ORG)}
    assert {"source-file", "source-faker"} <= listed
    started = platform.ok("GET", "/api/sources/connectors/source-file/spec", org=ORG, status=202)
    succeeded(platform, started)
    spec = platform.ok("GET", "/api/sources/connectors/source-file/spec", org=ORG)
    assert "url" in spec["connection_specification"]["properties"] and "provider.password" in spec["secret_fields"]
    assert any(c["path"].endswith("/source_definition_specifications/get") for c in airbyte.calls)

    missing = {"connector": "source-file", "config": file_config(files / "nope.csv")}
    result = succeeded(platform, platform.ok("POST", "/api/sources/check", missing, org=ORG, status=202))
    assert result["succeeded"] is False and "nope.csv" in result["message"]
    good = {"connector": "source-file", "config": file_config(files / "people.csv")}
    assert succeeded(platform, platform.ok("POST", "/api/sources/check", good, org=ORG, status=202))["succeeded"]

    body = {"name": "people_sheet", **good}
    platform.ok("POST", "/api/sources/", body, org=ORG, status=201)
    (stream,) = succeeded(platform, platform.ok("POST", "/api/sources/people_sheet/discover", org=ORG, status=202))[
        "streams"
    ]
    assert stream["name"] == "people" and set(stream["json_schema"]["properties"]) == {"id", "name"}
    assert [s["name"] for s in airbyte.sources.values()] == ["people_sheet"]  # saved on the server


def connection(name: str, policy: str) -> dict[str, Any]:
    return {
        "name": name,
        "source_name": "people_sheet",
        "streams": [{"name": "people"}],
        "destination_schema": f"raw_{name}",
        "schema_change_policy": policy,
    }


def test_connections_are_applied_to_the_server_and_synced(platform: Platform, airbyte: StandinAirbyte) -> None:
    for name, policy in (("sheet", "propagate_columns"), ("sheet_held", "pause")):
        created = platform.ok("POST", "/api/connections/", connection(name, policy), org=ORG, status=201)
        plan = succeeded(platform, created["task"])["plan"]
        assert any(line.startswith(f"+ connection {name}") for line in plan), plan
    behaviors = {c["name"]: c["nonBreakingSchemaUpdatesBehavior"] for c in airbyte.connections.values()}
    assert behaviors == {"sheet": "propagate_columns", "sheet_held": "disable_connection"}
    assert len(airbyte.sources) == 1  # the named source, shared

    keys = ["sheet/people", "sheet_held/people"]
    run = synced(platform, platform.ok("POST", "/api/runs/", {"assets": keys}, org=ORG, status=201))
    assert run["status"] == "SUCCESS", run
    (sync,) = platform.ok("GET", "/api/connections/sheet/syncs", org=ORG)["syncs"]
    assert sync["run_id"] == run["run_id"] and sync["streams"] == [{"stream": "people", "records": RECORDS}]


def test_a_new_column_is_propagated_by_airbyte_or_held(
    platform: Platform, airbyte: StandinAirbyte, files: Path
) -> None:
    (files / "people.csv").write_text("id,name,city\n1,asha,Pune\n2,ravi,Delhi\n")
    held = synced(platform, platform.ok("POST", "/api/connections/sheet_held/sync", org=ORG, status=201))
    assert held["status"] == "FAILURE" and "Schema changes were detected" in held["error"], held
    run = synced(platform, platform.ok("POST", "/api/connections/sheet/sync", org=ORG, status=201))
    assert run["status"] == "SUCCESS", run
    sheet = next(c for c in airbyte.connections.values() if c["name"] == "sheet")
    assert "city" in sheet["_streams"]["people"]["jsonSchema"]["properties"]  # Airbyte propagated it

    refresh = platform.ok("POST", "/api/connections/sheet_held/schema-changes/refresh", org=ORG, status=202)
    found = succeeded(platform, refresh)["changes"]
    assert [c["description"] for c in found] == ["stream 'people': column 'city' added"]
    assert platform.ok("GET", "/api/connections/sheet_held/schema-changes", org=ORG)["held"] is True
    succeeded(platform, platform.ok("POST", "/api/connections/sheet_held/schema-changes/approve", org=ORG, status=202))
    again = synced(platform, platform.ok("POST", "/api/connections/sheet_held/sync", org=ORG, status=201))
    assert again["status"] == "SUCCESS", again


def test_a_stream_is_reset_by_airbyte(platform: Platform, airbyte: StandinAirbyte) -> None:
    body = {"streams": ["people"]}
    reset = synced(platform, platform.ok("POST", "/api/connections/sheet/reset", body, org=ORG, status=201))
    assert reset["status"] == "SUCCESS", reset
    (call,) = [c for c in airbyte.calls if c["path"].endswith("/connections/reset/stream")]
    assert [s["streamName"] for s in call["body"]["streams"]] == ["people"]


def test_no_secret_in_any_answer_or_log(platform: Platform, airbyte: StandinAirbyte, files: Path) -> None:
    sftp = {"storage": "SFTP", "host": "127.0.0.1", "user": "hq", "password": SECRET, "port": "1"}
    body = {"name": "remote", "connector": "source-file", "config": {**file_config(files / "p.csv"), "provider": sftp}}
    answers = [platform.ok("POST", "/api/sources/", body, org=ORG, status=201)]
    discovered = platform.task(platform.ok("POST", "/api/sources/remote/discover", org=ORG, status=202), org=ORG)
    assert discovered["status"] == "failed", discovered
    answers += [discovered, platform.ok("GET", "/api/sources/remote", org=ORG)]
    remote = next(s for s in airbyte.sources.values() if s["name"] == "remote")
    assert remote["configuration"]["provider"]["password"] == SECRET  # the server has it, to run the connector
    assert SECRET not in json.dumps(answers) and SECRET not in platform.logs()
    assert SECRET not in (platform.root / "orgs" / ORG / "org.yaml").read_text()
