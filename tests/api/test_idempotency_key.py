"""``POST /api/runs/`` with an ``Idempotency-Key`` header, Dagster down: a key that cannot be one is a 400
naming the header, before anything is launched; a key reused with another body is a 422; a retry while
the first request is still launching answers 409; a retry of a recorded launch answers 201 with that run
even though Dagster cannot be read; keys are per organization and expire after 24 hours; concurrent
requests with one key launch once.
(Launching with keys on a real Dagster: tests/api_dagster/test_runs_on_dagster.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from dalgo_api.runs import idempotency
from dalgo_api.runs.models import IdempotencyKey
from dalgo_api.specs import store as specs
from dalgo_core.spec import PipelineSpec
from tests.api.conftest import Api, OrgWorld

BODY = {"assets": ["people/people"]}


def post(api: Api, world: OrgWorld, key: str, body: dict = BODY):
    return api.call(
        "POST",
        "/api/runs/",
        body,
        token=world.tokens["pipeline-manager"],
        org=world.slug,
        headers={"Idempotency-Key": key},
    )


def claimed(world: OrgWorld, key: str, *, run_id: str = "", ago: timedelta = timedelta(0), body: dict = BODY):
    """The key as a request that claimed it ``ago`` left it (launching, or with its run)."""
    return IdempotencyKey.objects.create(
        org=world.org,
        key=key,
        body_hash=idempotency.body_hash(body),
        launch_id="0" * 32,
        run_id=run_id,
        claimed_at=timezone.now() - ago,
    )


@pytest.mark.parametrize(
    ("key", "problem"),
    [("k" * 256, "at most 255 characters"), ("a\x01b", "control characters"), ("tab\there", "control"), ("", "empty")],
)
def test_a_key_that_cannot_be_one_is_400_naming_the_header(api: Api, world: OrgWorld, key: str, problem: str):
    response = post(api, world, key)
    assert response.status_code == 400, response.content
    body = response.json()
    assert "Idempotency-Key" in body["detail"] and problem in body["detail"]
    assert body["errors"][0]["field"] == "header.Idempotency-Key"
    assert not IdempotencyKey.objects.exists()


def test_a_launch_that_fails_does_not_use_up_its_key(api: Api, world: OrgWorld):
    response = post(api, world, "k" * 255)
    assert response.status_code == 503, response.content  # Dagster down: nothing launched
    assert not IdempotencyKey.objects.exists()


def test_the_same_key_with_another_body_is_422(api: Api, world: OrgWorld):
    claimed(world, "order-1", run_id="abc")
    response = post(api, world, "order-1", {"assets": ["people/other"]})
    assert response.status_code == 422, response.content
    assert "Idempotency-Key" in response.json()["detail"] and "different request body" in response.json()["detail"]
    assert response.json()["errors"][0]["field"] == "header.Idempotency-Key"


def test_a_retry_while_the_first_request_launches_is_409(api: Api, world: OrgWorld, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DALGO_API_IDEMPOTENCY_WAIT_SECONDS", "0.5")
    claimed(world, "order-1")
    response = post(api, world, "order-1")
    assert response.status_code == 409, response.content  # not 503: it did not try to launch
    assert "still launching" in response.json()["detail"] and "Idempotency-Key" in response.json()["detail"]


def test_a_retry_of_a_launched_run_is_201_even_when_dagster_cannot_be_read(
    api: Api, world: OrgWorld, other_world: OrgWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "a-file" / "dagster"))  # the storage cannot be opened
    row = claimed(world, "order-1", run_id="abc123", ago=timedelta(hours=23))
    response = post(api, world, "order-1")
    assert response.status_code == 201, response.content
    run = response.json()
    assert run["run_id"] == "abc123" and run["status"] == "QUEUED" and run["assets"] == ["people/people"]
    assert run["created_at"].startswith(row.claimed_at.isoformat()[:19])
    assert run["user"] == f"pipeline-manager@{world.slug.replace('_', '-')}.example.org"

    # another organization's identical key is its own: it launches (Dagster down: 503), no replay
    other = post(api, other_world, "order-1")
    assert other.status_code == 503, other.content


def test_a_key_expires_after_24_hours(api: Api, world: OrgWorld):
    claimed(world, "order-1", run_id="abc123", ago=timedelta(hours=24, minutes=1))
    response = post(api, world, "order-1", {"assets": ["people/other"]})
    assert response.status_code == 503, response.content  # a new key: launched (Dagster down), no 422
    assert not IdempotencyKey.objects.filter(run_id="abc123").exists()


def with_pipeline(world: OrgWorld, name: str) -> None:
    spec = specs.load_spec(world.slug)
    spec.pipelines.append(PipelineSpec(name=name, assets=["people/*"]))
    specs.save_spec(spec)


def run_pipeline(api: Api, world: OrgWorld, name: str, key: str):
    token = world.tokens["pipeline-manager"]
    path = f"/api/pipelines/{name}/runs"
    return api.call("POST", path, token=token, org=world.slug, headers={"Idempotency-Key": key})


def test_a_pipeline_run_checks_its_key_like_an_asset_run(api: Api, world: OrgWorld):
    """``POST /api/pipelines/{name}/runs`` takes the same header: a bad key is a 400 before any launch,
    a launch that fails does not use up its key, and the key space is the organization's: a key of an
    asset run or of another pipeline is 422."""
    with_pipeline(world, "nightly")
    with_pipeline(world, "hourly")
    bad = run_pipeline(api, world, "nightly", "k" * 256)
    assert bad.status_code == 400, bad.content
    assert "Idempotency-Key" in bad.json()["detail"] and bad.json()["errors"][0]["field"] == "header.Idempotency-Key"

    down = run_pipeline(api, world, "nightly", "nightly-1")
    assert down.status_code == 503, down.content  # Dagster down: nothing launched, the key is free
    assert not IdempotencyKey.objects.exists()

    claimed(world, "order-1", run_id="abc")  # an asset run's key
    reused = run_pipeline(api, world, "nightly", "order-1")
    assert reused.status_code == 422 and "different request body" in reused.json()["detail"], reused.content
    claimed(world, "nightly-2", run_id="def", body={"pipeline": "hourly"})
    other = run_pipeline(api, world, "nightly", "nightly-2")
    assert other.status_code == 422, other.content


def test_a_retry_of_a_launched_pipeline_run_is_201_even_when_dagster_cannot_be_read(
    api: Api, world: OrgWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    with_pipeline(world, "nightly")
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "a-file" / "dagster"))  # the storage cannot be opened
    claimed(world, "nightly-1", run_id="abc123", body={"pipeline": "nightly"})
    response = run_pipeline(api, world, "nightly", "nightly-1")
    assert response.status_code == 201, response.content
    run = response.json()
    assert run["run_id"] == "abc123" and run["status"] == "QUEUED" and run["pipeline"] == "nightly"
    assert run["job"].endswith("nightly") and run["assets"] is None


CONCURRENT = """
import threading, time
import django
django.setup()
from django.core.management import call_command
from django.db import connection
from dalgo_api.orgs.models import Org
from dalgo_api.runs import idempotency

call_command("migrate", verbosity=0)
org = Org.objects.create(slug="acme", name="Acme")
launched, answers, ready = [], [], threading.Barrier(4)

def launch(launch_id):  # Dagster's side: launching takes a while
    launched.append(launch_id)
    time.sleep(0.5)
    return f"run-{len(launched)}"

def request():
    ready.wait()
    try:
        answers.append(idempotency.launch_once(org, "order-1", "body", launch)[0])
    finally:
        connection.close()

threads = [threading.Thread(target=request) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len(launched), sorted(answers))
"""


def test_concurrent_requests_with_one_key_launch_once(tmp_path: Path):
    """Four requests at once with one key, each on its own connection to a SQLite file (committed, as
    in production): one launches, the others wait for its run."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dalgo_api.settings",
        "DALGO_API_DATABASE_URL": f"sqlite:///{tmp_path / 'api.sqlite3'}",
        "DALGO_HOME": str(tmp_path),
    }
    done = subprocess.run([sys.executable, "-c", CONCURRENT], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[-2] == "1 ['run-1', 'run-1', 'run-1', 'run-1']", done.stdout
