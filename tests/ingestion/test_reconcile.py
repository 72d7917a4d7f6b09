"""Connections as code against the stand-in Airbyte: plan shows the difference, apply makes it so."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from dalgo_assets.ingestion import build_ingestion_definitions
from dalgo_assets.ingestion.server.reconcile import ReconcileError, apply, make_plan
from dalgo_assets.ingestion.server.resource import airbyte_client
from dalgo_assets.ingestion.server.state import state_path
from dalgo_core.spec import load_org_spec
from dalgo_ops.cli import main as dalgo
from tests.ingestion.test_server_standin import FAKER, ORG, basic_auth_env, server_spec, standin
from tests.support.airbyte_standin import StandinAirbyte

__all__ = ["standin"]

POSTGRES = {
    "type": "postgres",
    "host": "db.internal",
    "user": "dalgo",
    "password": {"env": "ACME_WH_PASSWORD"},
    "database": "acme",
    "schema": "analytics",
}
FAKER_WITH_SECRET = {
    **FAKER,
    "source": {**FAKER["source"], "secrets": {"credentials.api_key": {"env": "ACME_FAKER_KEY"}}},
}


@pytest.fixture
def declared(dalgo_env: Path, standin: StandinAirbyte, monkeypatch: pytest.MonkeyPatch):
    """A server-mode organization with a PostgreSQL warehouse and a faker connection holding a secret."""
    monkeypatch.setenv("ACME_WH_PASSWORD", "wh-password-123")
    monkeypatch.setenv("ACME_FAKER_KEY", "faker-key-456")
    return server_spec(
        standin.url,
        standin.workspace_id,
        auth=basic_auth_env(monkeypatch),
        connections=[FAKER_WITH_SECRET],
        warehouse=POSTGRES,
    )


def _respec(standin: StandinAirbyte, monkeypatch: pytest.MonkeyPatch, **faker_fields):
    return server_spec(
        standin.url,
        standin.workspace_id,
        auth=basic_auth_env(monkeypatch),
        connections=[{**FAKER_WITH_SECRET, **faker_fields}],
        warehouse=POSTGRES,
    )


def test_plan_apply_and_a_second_plan_is_empty(declared, standin: StandinAirbyte) -> None:
    legacy = standin.add_connection("legacy", ["orders"])  # made in Airbyte's UI, not declared
    client = airbyte_client(declared)

    plan = make_plan(declared, client)
    text = plan.render()
    assert [c.action for c in plan.changes] == ["create", "create", "create"]
    assert "+ destination acme_warehouse (postgres): create" in text
    assert "+ source faker (source-faker): create" in text
    assert "configuration.password: <secret env:ACME_WH_PASSWORD>" in text
    assert "configuration.credentials.api_key: <secret env:ACME_FAKER_KEY>" in text
    assert "wh-password-123" not in text and "faker-key-456" not in text
    assert "namespaceFormat: raw_faker" in text
    assert "streams.users.syncMode: full_refresh_overwrite" in text
    assert f"? connection legacy ({legacy}) is not in the spec; left alone" in text
    assert "Plan: 3 to create, 0 to update, 0 unchanged." in text

    apply(declared, client, plan)

    (dest,) = [d for d in standin.destinations.values() if d["name"] == "acme_warehouse"]
    assert dest["workspaceId"] == standin.workspace_id and dest["destinationType"] == "postgres"
    assert {k: dest["configuration"][k] for k in ("host", "database", "schema", "username", "password")} == {
        "host": "db.internal",
        "database": "acme",
        "schema": "analytics",
        "username": "dalgo",
        "password": "wh-password-123",
    }
    (source,) = [s for s in standin.sources.values() if s["name"] == "faker"]
    assert source["sourceType"] == "faker"
    assert source["configuration"] == {
        "sourceType": "faker",
        "count": 100,
        "seed": 42,
        "credentials": {"api_key": "faker-key-456"},
    }
    (conn,) = [c for c in standin.connections.values() if c["name"] == "faker"]
    assert (conn["sourceId"], conn["destinationId"]) == (source["sourceId"], dest["destinationId"])
    assert (conn["namespaceDefinition"], conn["namespaceFormat"]) == ("custom_format", "raw_faker")
    assert conn["configurations"]["streams"] == [
        {"name": "users", "syncMode": "full_refresh_overwrite"},
        {"name": "purchases", "syncMode": "full_refresh_overwrite"},
    ]
    assert conn["schedule"] == {"scheduleType": "manual"}
    assert legacy in standin.connections

    again = make_plan(declared, client)
    assert not again.has_changes
    assert "No changes: the workspace matches the spec (3 object(s))." in again.render()

    # the recorded id is what the assets sync, and loading them still calls nothing
    standin.calls.clear()
    ingestion = build_ingestion_definitions(load_org_spec(ORG))
    assert standin.calls == []
    result = dg.materialize(ingestion.assets, resources=ingestion.resources, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    assert [j["connectionId"] for j in standin.jobs.values()] == [conn["connectionId"]]


def test_changing_a_sync_mode_or_config_shows_as_an_update(
    declared, standin: StandinAirbyte, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(declared, airbyte_client(declared))
    changed = _respec(
        standin,
        monkeypatch,
        source={**FAKER_WITH_SECRET["source"], "config": {"count": 500, "seed": 42}},
        streams=[
            {"name": "users", "sync_mode": "incremental", "cursor_field": ["updated_at"]},
            {"name": "purchases"},
        ],
    )
    client = airbyte_client(changed)

    plan = make_plan(changed, client)

    assert [c.action for c in plan.changes] == ["unchanged", "update", "update"]
    source, connection = plan.connections[0].source, plan.connections[0].connection
    assert source.diffs == [("configuration.count", 100, 500)]
    assert connection.diffs == [
        ("streams.users.cursorField", None, ["updated_at"]),
        ("streams.users.syncMode", "full_refresh_overwrite", "incremental_append"),
    ]
    text = plan.render()
    assert "~ connection faker (2 stream(s) into schema raw_faker): update" in text
    assert "streams.users.syncMode: full_refresh_overwrite -> incremental_append" in text

    apply(changed, client, plan)
    (conn,) = standin.connections.values()
    assert conn["configurations"]["streams"][0] == {
        "name": "users",
        "syncMode": "incremental_append",
        "cursorField": ["updated_at"],
    }
    assert len(standin.sources) == len(standin.connections) == 1  # updated in place, nothing duplicated
    assert not make_plan(changed, client).has_changes


def test_a_changed_secret_shows_without_its_value(
    declared, standin: StandinAirbyte, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = airbyte_client(declared)
    apply(declared, client)
    monkeypatch.setenv("ACME_FAKER_KEY", "rotated-key-789")

    plan = make_plan(declared, airbyte_client(declared))

    assert [c.action for c in plan.changes] == ["unchanged", "update", "unchanged"]
    text = plan.render()
    assert "secrets: not the values last applied (configuration.credentials.api_key)" in text
    assert "rotated-key-789" not in text and "faker-key-456" not in text
    apply(declared, client, plan)
    (source,) = standin.sources.values()
    assert source["configuration"]["credentials"]["api_key"] == "rotated-key-789"


def test_a_lost_state_file_does_not_duplicate_anything(declared, standin: StandinAirbyte) -> None:
    client = airbyte_client(declared)
    apply(declared, client)
    state_path(declared).unlink()

    plan = make_plan(declared, client)  # found again by name; secrets cannot be compared, so re-sent

    assert [c.action for c in plan.changes] == ["update", "update", "unchanged"]
    apply(declared, client, plan)
    assert (len(standin.destinations), len(standin.sources), len(standin.connections)) == (1, 1, 1)
    assert not make_plan(declared, client).has_changes


def test_cli_exit_codes_with_client_credentials(
    dalgo_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    server = StandinAirbyte(client_id="dalgo-app", client_secret="app-secret").start()
    monkeypatch.setenv("AB_CLIENT_ID", "dalgo-app")
    monkeypatch.setenv("AB_CLIENT_SECRET", "app-secret")
    auth = {"client_id": {"env": "AB_CLIENT_ID"}, "client_secret": {"env": "AB_CLIENT_SECRET"}}
    try:
        server_spec(server.url, server.workspace_id, auth=auth)
        assert dalgo(["airbyte", "plan", ORG]) == 2
        assert dalgo(["airbyte", "apply", ORG]) == 0
        assert dalgo(["airbyte", "plan", ORG]) == 0
        out = capsys.readouterr().out
        assert "Plan: 3 to create" in out and "Applied." in out and out.rstrip().endswith("(3 object(s)).")
        assert any(c["path"] == "/api/public/v1/applications/token" for c in server.calls)
    finally:
        server.stop()
    assert dalgo(["airbyte", "plan", ORG]) == 1
    err = capsys.readouterr().err
    # client credentials: the first call is the token request, and it cannot connect
    assert f"error: organization 'acme': Airbyte API POST {server.url}/api/public/v1/applications/token failed: " in err
    assert "ConnectionError" in err and "Connection refused" in err


def test_bad_input_names_the_organization_and_connection(
    declared, standin: StandinAirbyte, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    wrong_id = _respec(standin, monkeypatch, airbyte_connection_id="no-such-connection")
    with pytest.raises(
        ReconcileError,
        match="organization 'acme', connection 'faker': airbyte_connection_id "
        "no-such-connection is not a connection of workspace",
    ):
        make_plan(wrong_id, airbyte_client(wrong_id))

    monkeypatch.delenv("ACME_FAKER_KEY")
    _respec(standin, monkeypatch)
    assert dalgo(["airbyte", "plan", ORG]) == 1
    err = capsys.readouterr().err
    assert "organization 'acme', connection 'faker', secret 'credentials.api_key'" in err
    assert "ACME_FAKER_KEY is not set" in err

    assert dalgo(["airbyte", "plan", "nobody"]) == 1
    assert "organization 'nobody'" in capsys.readouterr().err


def test_a_stream_dropped_from_the_spec_is_deselected(
    declared, standin: StandinAirbyte, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(declared, airbyte_client(declared))
    fewer = _respec(standin, monkeypatch, streams=[{"name": "users"}])
    client = airbyte_client(fewer)

    plan = make_plan(fewer, client)

    assert plan.connections[0].connection.diffs == [("streams.purchases.syncMode", "full_refresh_overwrite", None)]
    apply(fewer, client, plan)
    (conn,) = standin.connections.values()
    assert [s["name"] for s in conn["configurations"]["streams"]] == ["users"]
    assert not make_plan(fewer, client).has_changes
