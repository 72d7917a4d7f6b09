"""End to end: a real ``dagster-daemon`` keeps an organization's short target fresh by itself.

The organization is the tiny one (a seed and models in a dbt project written under tmp, DuckDB
warehouse): the demo organization's raw tables come from an ingestion connection that it does not
have yet. Its model ``latest`` must be at most 2 minutes old; a refresh is requested 75 s before that.
Nobody launches anything: the org's automation sensor (every 5 s) and the FreshnessDaemon (every 5 s)
must produce at least three successful runs, and after the first one the FreshnessDaemon never finds
the target stale.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.events import DagsterEventType
from dagster._core.instance.utils import RUNLESS_RUN_ID
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter

from dalgo_assets.workspace import write_workspace
from tests.automation.tiny import PROJECT, write_tiny_org
from tests.support.dagster import Daemon, dagster_env
from tests.support.orgs import REPO

SLUG = "keptfresh"
RUNS_WANTED = 3
STARTUP_SECONDS = 600
TIMEOUT_SECONDS = 420


def _wait_for_successes(instance: dg.DagsterInstance, daemon: Daemon, wanted: int, timeout: float) -> list:
    """The org's automation runs once ``wanted`` of them succeeded; no run may fail meanwhile."""
    deadline = time.time() + timeout
    succeeded: list = []
    while time.time() < deadline:
        assert daemon.proc.poll() is None, daemon.output()[-3000:]
        runs = instance.get_run_records(
            RunsFilter(tags={"dalgo/org": SLUG, "dagster/sensor_name": f"{SLUG}_automation"})
        )
        failed = [r for r in runs if r.dagster_run.status == DagsterRunStatus.FAILURE]
        assert not failed, f"run {failed[0].dagster_run.run_id} failed:\n{daemon.output()[-3000:]}"
        succeeded = [r for r in runs if r.dagster_run.status == DagsterRunStatus.SUCCESS]
        if len(succeeded) >= wanted:
            return succeeded
        time.sleep(3)
    raise AssertionError(f"{len(succeeded)} automation runs succeeded, {wanted} wanted:\n{daemon.output()[-3000:]}")


def _freshness_changes(instance: dg.DagsterInstance, key: dg.AssetKey) -> list[tuple[float, FreshnessState]]:
    changes = []
    for entry in instance.all_logs(RUNLESS_RUN_ID, of_type=DagsterEventType.FRESHNESS_STATE_CHANGE):
        data = entry.get_dagster_event().event_specific_data
        if data.key == key:  # type: ignore[union-attr]
            changes.append((data.state_change_timestamp, data.new_state))  # type: ignore[union-attr]
    return sorted(changes)


def test_daemon_keeps_a_short_target_fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, orgs, dagster_home = tmp_path / "home", tmp_path / "orgs", tmp_path / "dagster"
    monkeypatch.setenv("DALGO_HOME", str(home))
    monkeypatch.setenv("DALGO_ORGS_DIR", str(orgs))
    write_tiny_org(orgs, tmp_path / "projects", SLUG, {"max_lag_minutes": 2, "expected_run_minutes": 1.25})
    workspace = tmp_path / "workspace.yaml"
    write_workspace(workspace, orgs)
    dagster_home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster" / "dagster.yaml", dagster_home / "dagster.yaml")
    env = dagster_env(
        dagster_home,
        DALGO_HOME=str(home),
        DALGO_ORGS_DIR=str(orgs),
        FRESHNESS_DAEMON_INTERVAL_SECONDS="5",
        DALGO_AUTOMATION_INTERVAL_SECONDS="5",
    )
    target = dg.AssetKey([SLUG, PROJECT, "latest"])
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    daemon = Daemon(workspace, env, tmp_path)
    try:
        # starting the daemon and its code server is not what is tested: wait for the first run...
        succeeded = _wait_for_successes(instance, daemon, 1, STARTUP_SECONDS)
        # ...then the target must be kept by runs nobody launched, at least RUNS_WANTED in all
        succeeded = _wait_for_successes(instance, daemon, RUNS_WANTED, TIMEOUT_SECONDS)
        checked_until = time.time()
    finally:
        daemon.stop()

    # nobody but the sensor launched runs, each with the org's tag, the target and its seed in one run
    all_runs = instance.get_run_records(RunsFilter(tags={"dalgo/org": SLUG}))
    assert all(r.dagster_run.tags.get("dagster/sensor_name") == f"{SLUG}_automation" for r in all_runs)
    assert all(target in (r.dagster_run.asset_selection or ()) for r in succeeded)
    # the first run materialized the missing target; from then on the FreshnessDaemon never saw it stale
    first_success = min(r.end_time for r in succeeded)
    changes = _freshness_changes(instance, target)
    assert changes, "the FreshnessDaemon recorded no state for the target"
    after = [state for at, state in changes if first_success < at <= checked_until]
    assert FreshnessState.FAIL not in after, changes
    assert instance.get_latest_materialization_event(target) is not None
