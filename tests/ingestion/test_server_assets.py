"""Server ingestion: stream assets built from the spec with no HTTP call, synced through AirbyteWorkspace.

Every test talks HTTP to the stand-in Airbyte server (``tests/support/airbyte_standin.py``) on 127.0.0.1: Airbyte itself
needs Docker, which this machine lacks.
"""

from __future__ import annotations

import socket
from pathlib import Path

import dagster as dg
import pytest

from dalgo_assets.definitions import build_org_definitions
from dalgo_assets.ingestion import build_ingestion_definitions, ingestion_group
from dalgo_core.names import warehouse_pool
from tests.ingestion.test_server_standin import BASIC, FAKER, ORG, basic_auth_env, server_spec, standin
from tests.support.airbyte_standin import StandinAirbyte

__all__ = ["standin"]  # the fixture, shared with the stand-in's own tests

USERS, PURCHASES = dg.AssetKey([ORG, "faker", "users"]), dg.AssetKey([ORG, "faker", "purchases"])


def _materialize(spec, selection=None, instance=None) -> dg.ExecuteInJobResult:
    ingestion = build_ingestion_definitions(spec)
    return dg.materialize(
        ingestion.assets,
        resources=ingestion.resources,
        selection=selection,
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def _failure(result: dg.ExecuteInJobResult) -> str:
    (event,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return event.event_specific_data.error.message


def _connected_spec(standin: StandinAirbyte, monkeypatch: pytest.MonkeyPatch, **faker_fields):
    conn_id = standin.add_connection("faker_in_ui", ["users", "purchases"], schema="raw_faker")
    spec = server_spec(
        standin.url,
        standin.workspace_id,
        auth=basic_auth_env(monkeypatch),
        connections=[{**FAKER, "airbyte_connection_id": conn_id, **faker_fields}],
    )
    return spec, conn_id


def test_definitions_load_without_calling_airbyte(
    dalgo_env: Path, standin: StandinAirbyte, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, conn_id = _connected_spec(standin, monkeypatch)
    standin.calls.clear()

    defs = build_org_definitions(spec)

    assert standin.calls == []
    graph = defs.resolve_asset_graph()
    assert {USERS, PURCHASES} <= set(graph.get_all_asset_keys())
    (assets_def,) = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and USERS in a.keys]
    assert assets_def.keys == {USERS, PURCHASES} and assets_def.can_subset
    assert assets_def.op.pool == warehouse_pool(ORG)  # a DuckDB warehouse: one writer at a time
    users = assets_def.specs_by_key[USERS]
    assert users.group_name == ingestion_group(ORG)
    assert users.tags["dalgo/org"] == ORG
    assert users.kinds == {"airbyte", "duckdb"}
    assert users.metadata["dagster-airbyte/connection_id"] == conn_id


def test_materialize_runs_a_sync_job_and_records_it(
    dalgo_env: Path, standin: StandinAirbyte, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, conn_id = _connected_spec(standin, monkeypatch)
    standin.calls.clear()

    result = _materialize(spec)

    assert result.success
    materialized = {e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert set(materialized) == {USERS, PURCHASES}
    (job_id,) = standin.jobs
    job = standin.jobs[job_id]
    assert job["connectionId"] == conn_id and job["status"] == "succeeded"
    users = materialized[USERS]
    assert users["airbyte/job_id"].value == job_id
    assert users["airbyte/job_status"].value == "succeeded"
    assert users["airbyte/job_rows_synced"].value == job["rowsSynced"] == 2 * standin.records_per_stream
    assert users["airbyte/records_synced"].value == standin.records_per_stream
    calls = [(c["method"], c["path"]) for c in standin.calls]
    assert calls[:3] == [
        ("POST", "/api/v1/connections/get"),
        ("GET", "/api/public/v1/jobs"),
        ("POST", "/api/public/v1/jobs"),
    ]
    # polled until the job was done: pending -> running -> succeeded
    assert calls.count(("GET", f"/api/public/v1/jobs/{job_id}")) == 2


def test_one_stream_selected_still_syncs_the_connection(
    dalgo_env: Path, standin: StandinAirbyte, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, _ = _connected_spec(standin, monkeypatch)
    result = _materialize(spec, selection=[USERS])
    assert result.success
    assert len(standin.jobs) == 1
    assert USERS in {e.asset_key for e in result.get_asset_materialization_events()}


def test_a_failed_job_fails_the_run_with_its_message(
    dalgo_env: Path, standin: StandinAirbyte, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, conn_id = _connected_spec(standin, monkeypatch)
    standin.fail_connection(conn_id, "Source faker: 'count' must be positive")
    instance = dg.DagsterInstance.ephemeral()

    result = _materialize(spec, instance=instance)

    assert not result.success
    message = _failure(result)
    assert "organization 'acme', connection 'faker'" in message
    assert "Airbyte job 1 failed: Source faker: 'count' must be positive" in message
    assert result.get_asset_materialization_events() == []
    # the end of the job's own log is in the run's logs
    logs = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any("Airbyte job 1, last 2 log lines" in m and "ERROR Source faker" in m for m in logs)


def test_secret_file_reference_is_read_at_run_time(dalgo_env: Path, standin: StandinAirbyte) -> None:
    conn_id = standin.add_connection("faker", ["users", "purchases"], schema="raw_faker")
    spec = server_spec(
        standin.url,
        standin.workspace_id,
        auth={"username": BASIC["username"], "password": {"file": "airbyte_password"}},
        connections=[{**FAKER, "airbyte_connection_id": conn_id}],
    )
    ingestion = build_ingestion_definitions(spec)  # the file does not exist yet: loading must not read it
    secret = dalgo_env / "home" / "platform" / "secrets" / ORG / "airbyte_password"
    secret.parent.mkdir(parents=True)
    secret.write_text(BASIC["password"] + "\n")

    result = dg.materialize(ingestion.assets, resources=ingestion.resources, instance=dg.DagsterInstance.ephemeral())

    assert result.success and len(standin.jobs) == 1


def test_a_stream_airbyte_does_not_sync_fails_the_run(
    dalgo_env: Path, standin: StandinAirbyte, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, _ = _connected_spec(standin, monkeypatch, streams=[{"name": "users"}, {"name": "products"}])
    result = _materialize(spec)
    assert not result.success
    assert "does not select stream(s) products" in _failure(result)
    assert "dalgo airbyte plan acme" in _failure(result)


def test_unreachable_server_names_the_organization_and_connection(
    dalgo_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = server_spec(
        f"http://127.0.0.1:{port}",
        "ws-1",
        auth=basic_auth_env(monkeypatch),
        connections=[{**FAKER, "airbyte_connection_id": "c-1"}],
    )
    result = _materialize(spec)
    assert not result.success
    message = _failure(result)
    assert "organization 'acme', connection 'faker'" in message
    assert f"http://127.0.0.1:{port}/api/v1/connections/get failed: ConnectionError" in message


def test_missing_connection_id_loads_and_says_to_apply(
    dalgo_env: Path, standin: StandinAirbyte, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = server_spec(standin.url, standin.workspace_id, auth=basic_auth_env(monkeypatch))
    defs = build_org_definitions(spec)  # the organization's location still loads
    assert USERS in set(defs.resolve_asset_graph().get_all_asset_keys())
    result = _materialize(spec)
    assert not result.success
    message = _failure(result)
    assert "organization 'acme', connection 'faker': no Airbyte connection id" in message
    assert "run `dalgo airbyte apply acme`" in message
    assert standin.calls == []
