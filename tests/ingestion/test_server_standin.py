"""The stand-in Airbyte server, and the fixtures the server-ingestion tests share.

The stand-in replaces Airbyte (which needs Docker) in tests; these tests check that it answers
dagster-airbyte's own workspace loader (pagination, config API shapes, auth) and runs as a program.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from dagster_airbyte import AirbyteWorkspace

from dalgo_core.spec import OrgSpec, load_org_spec, parse_org_spec, write_org_spec
from tests.support.airbyte_standin import StandinAirbyte

ORG = "acme"
FAKER = {
    "name": "faker",
    "source": {"connector": "source-faker", "config": {"count": 100, "seed": 42}},
    "streams": [{"name": "users"}, {"name": "purchases"}],
    "destination_schema": "raw_faker",
}
BASIC = {"username": "airbyte", "password": "s3cret-pw"}


@pytest.fixture
def standin() -> Iterator[StandinAirbyte]:
    """A stand-in with basic auth on a random 127.0.0.1 port, stopped after the test."""
    server = StandinAirbyte(**BASIC).start()
    try:
        yield server
    finally:
        server.stop()


def server_spec(
    url: str,
    workspace_id: str,
    *,
    auth: dict[str, Any] | None = None,
    connections: list[dict[str, Any]] | None = None,
    warehouse: dict[str, Any] | None = None,
) -> OrgSpec:
    """Write an organization in server mode to $DALGO_ORGS_DIR and load it as the platform does."""
    server = {"url": url, "workspace_id": workspace_id, "poll_interval_seconds": 0.01, **(auth or {})}
    data: dict[str, Any] = {
        "slug": ORG,
        "name": "Acme",
        "ingestion": {"mode": "server", "server": server},
        "connections": connections if connections is not None else [FAKER],
    }
    if warehouse:
        data["warehouse"] = warehouse
    write_org_spec(parse_org_spec(data, org=ORG, path="org.yaml"))
    return load_org_spec(ORG)


def basic_auth_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Basic-auth settings for a spec, with the password in an environment variable."""
    monkeypatch.setenv("ACME_AIRBYTE_PASSWORD", BASIC["password"])
    return {"username": BASIC["username"], "password": {"env": "ACME_AIRBYTE_PASSWORD"}}


def test_dagster_airbyte_loads_the_standin_workspace_across_pages() -> None:
    """dagster-airbyte's own loader reads the stand-in: paginated connections, config API, destinations."""
    server = StandinAirbyte(client_id="cid", client_secret="csecret", page_size=1).start()
    try:
        first = server.add_connection("faker", ["users", "purchases"], schema="raw_faker")
        second = server.add_connection("files", ["orders"])
        workspace = AirbyteWorkspace(
            rest_api_base_url=f"{server.url}/api/public/v1",
            configuration_api_base_url=f"{server.url}/api/v1",
            workspace_id=server.workspace_id,
            client_id="cid",
            client_secret="csecret",
        )
        data = workspace.fetch_airbyte_workspace_data()
        tables = {
            (p.connection_id, p.stream_name, p.destination_type) for p in data.to_airbyte_connection_table_props_data()
        }
        assert tables == {
            (first, "users", "duckdb"),
            (first, "purchases", "duckdb"),
            (second, "orders", "duckdb"),
        }
        pages = [c for c in server.calls if c["path"].endswith("/connections") and c["method"] == "GET"]
        assert len(pages) == 2 and pages[1]["query"]["offset"] == "1"
        assert server.calls[0]["path"] == "/api/public/v1/applications/token"
    finally:
        server.stop()


def test_standin_refuses_wrong_credentials(standin: StandinAirbyte) -> None:
    url = f"{standin.url}/api/public/v1/workspaces/{standin.workspace_id}"
    assert requests.get(url, auth=("airbyte", "wrong"), timeout=5).status_code == 401
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, auth=(BASIC["username"], BASIC["password"]), timeout=5).json()["workspaceId"]


def test_standin_runs_as_a_program_and_masks_secrets(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.airbyte_standin", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        line = proc.stdout.readline()  # "stand-in Airbyte listening on http://127.0.0.1:PORT (workspace W)"
        assert "stand-in Airbyte listening on http://127.0.0.1:" in line, line
        url, workspace = line.split()[4], line.split()[-1].rstrip(")")
        created = requests.post(
            f"{url}/api/public/v1/sources",
            json={
                "name": "s",
                "workspaceId": workspace,
                "configuration": {"sourceType": "faker", "api_key": "k"},
            },
            timeout=5,
        ).json()
        assert created["sourceType"] == "faker" and created["configuration"]["api_key"] == "**********"
        calls = requests.get(f"{url}/_calls", timeout=5).json()
        assert [(c["method"], c["path"]) for c in calls] == [("POST", "/api/public/v1/sources")]
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
