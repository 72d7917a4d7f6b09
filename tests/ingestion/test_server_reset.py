"""A reset of a server connection is Airbyte's own reset job, through the client, against the stand-in:
every stream with the public API's ``reset`` job, some streams with the configuration API's
``connections/reset/stream`` (the namespaces of the connection's catalog), a failed job failing the run
with Airbyte's message; ``dalgo reset`` runs the same job."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from dalgo_assets.definitions import build_org_definitions
from dalgo_core.names import reset_job_name, reset_run_config
from dalgo_ops.cli import main as dalgo
from tests.ingestion.test_server_assets import _connected_spec
from tests.ingestion.test_server_standin import ORG, standin
from tests.support.airbyte_standin import CONFIG, PUBLIC, StandinAirbyte

__all__ = ["standin"]


def _reset(spec, streams: list[str]) -> tuple[dg.ExecuteInProcessResult, list[str]]:
    job = build_org_definitions(spec).resolve_job_def(reset_job_name(ORG, "faker"))
    instance = dg.DagsterInstance.ephemeral()
    result = job.execute_in_process(
        run_config=reset_run_config(ORG, "faker", streams), instance=instance, raise_on_error=False
    )
    return result, [e.user_message for e in instance.all_logs(result.run_id) if e.user_message]


def _posts(standin: StandinAirbyte) -> list[tuple[str, dict]]:
    return [(c["path"], c["body"]) for c in standin.calls if c["method"] == "POST" and "token" not in c["path"]]


def test_a_reset_of_the_connection_is_airbytes_reset_job(
    dalgo_env: Path, standin: StandinAirbyte, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, conn_id = _connected_spec(standin, monkeypatch)
    standin.calls.clear()
    result, log = _reset(spec, [])
    assert result.success, log
    assert _posts(standin) == [(f"{PUBLIC}/jobs", {"connectionId": conn_id, "jobType": "reset"})]
    (job,) = standin.jobs.values()
    assert job["jobType"] == "reset" and job["status"] == "succeeded"
    assert f"Airbyte reset job {job['jobId']} of connection {conn_id} succeeded: every stream cleared" in log


def test_a_reset_of_some_streams_names_them_and_a_failed_job_fails_the_run(
    dalgo_env: Path, standin: StandinAirbyte, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, conn_id = _connected_spec(standin, monkeypatch)
    standin.calls.clear()
    assert dalgo(["reset", ORG, "faker", "--stream", "users"]) == 0
    assert "users cleared" in capsys.readouterr().out
    streams = [{"streamName": "users", "streamNamespace": None}]
    assert (f"{CONFIG}/connections/reset/stream", {"connectionId": conn_id, "streams": streams}) in _posts(standin)
    (job,) = standin.jobs.values()
    assert job["_streams"] == ["users"] and job["status"] == "succeeded"

    standin.fail_connection(conn_id, "the destination refused the reset")
    result, _ = _reset(spec, ["purchases"])
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "failed: the destination refused the reset" in failure.step_failure_data.error.message

    result, _ = _reset(spec, ["customers"])
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "connection 'faker' has no stream 'customers' (its streams: users, purchases)" in (
        failure.step_failure_data.error.message
    )
