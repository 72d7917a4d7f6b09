"""End to end: a real ``dagster-daemon`` keeps the demo organization's short target fresh by itself.

The organization is a copy of ``orgs/demo_ngo`` (its source-faker connection run by the embedded
Airbyte connector, its two dbt projects ``sales`` and ``analytics``, DuckDB warehouse) with two changes:
faker produces fewer records (the runs are shorter, the graph is the same) and the only pipeline is a
short freshness target, ``analytics/*`` at most ``LAG_MINUTES`` old, with ``expected_run_minutes`` the
time one automation run of its chain takes here (the nightly cron pipeline is left out: no run but the
sensor's may appear). Nothing ever materialized, so the first run is requested at once.

Nobody launches anything: the org's automation sensor (every 5 s) requests the runs, the daemon's run
queue launches them, and the FreshnessDaemon (every 5 s) records fresh / stale. After the first
success, ``WINDOWS`` more successful runs must follow, each before the previous materialization went
stale, so the target is kept for ``WINDOWS`` lag windows in a row; meanwhile no run fails, the
FreshnessDaemon never records FAIL for an analytics model, and every run holds the whole upstream
chain (the faker streams and the sales models the analytics project reads), nothing else.
"""

from __future__ import annotations

import itertools
import shutil
import time
from pathlib import Path

import dagster as dg
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.events import DagsterEventType
from dagster._core.instance.utils import RUNLESS_RUN_ID
from dagster._core.storage.dagster_run import DagsterRunStatus, RunRecord, RunsFilter

from dalgo_assets.definitions import build_org_definitions
from dalgo_core.code_locations import write_workspace
from dalgo_core.dbt_projects import prepare_projects
from dalgo_core.names import ORG_TAG, automation_sensor_name
from dalgo_core.spec import OrgSpec, load_org_spec
from tests.ingestion.embedded_support import embedded_env  # noqa: F401 (fixture: shared connector venvs)
from tests.support.dagster import Daemon, dagster_env
from tests.support.orgs import REPO, copy_demo_org, write_spec

SLUG = "demo_ngo"
FAKER_COUNT = 50
LAG_MINUTES = 5
# how long one automation run of the chain may take (run launch, faker sync, both dbt builds in their step
# subprocesses): about 1 min on this 2-core machine when it is moderately loaded, up to 3.5 min beside the
# rest of the suite. Requested half a minute after each refresh, a run may take up to 4.5 min before the
# target goes stale (and each window lasts about as long as a run, not a minute more).
EXPECTED_RUN_MINUTES = 4.5
WINDOWS = 2
STARTUP_SECONDS = 600  # daemon, code server, connector install on a cold cache, first run
WINDOW_SECONDS = LAG_MINUTES * 60 + 120  # a refresh per window, with room for a loaded machine


def _write_short_target_demo(orgs: Path) -> OrgSpec:
    spec = copy_demo_org(orgs, SLUG)
    spec["connections"][0]["source"]["config"]["count"] = FAKER_COUNT
    freshness = {"max_lag_minutes": LAG_MINUTES, "expected_run_minutes": EXPECTED_RUN_MINUTES}
    spec["pipelines"] = [{"name": "fresh_analytics", "assets": ["analytics/*"], "freshness": freshness}]
    write_spec(orgs, SLUG, spec)
    loaded = load_org_spec(SLUG, orgs)
    prepare_projects(loaded)
    return loaded


def _chain_of_analytics(spec: OrgSpec) -> tuple[set[dg.AssetKey], set[dg.AssetKey]]:
    """The analytics models, and every materializable asset a run keeping them fresh must hold."""
    graph = build_org_definitions(spec).resolve_asset_graph()
    targets = dg.AssetSelection.key_prefixes([SLUG, "analytics"])
    chain = {k for k in targets.upstream().resolve(graph) if graph.get(k).is_materializable}
    return targets.resolve(graph), chain


def _org_runs(instance: dg.DagsterInstance, daemon: Daemon) -> list[RunRecord]:
    assert daemon.proc.poll() is None, daemon.output()[-3000:]
    runs = instance.get_run_records(RunsFilter(tags={ORG_TAG: SLUG}))
    failed = [r for r in runs if r.dagster_run.status == DagsterRunStatus.FAILURE]
    assert not failed, f"run {failed[0].dagster_run.run_id} failed:\n{daemon.output()[-3000:]}"
    return runs


def _wait_for_successes(instance: dg.DagsterInstance, daemon: Daemon, wanted: int, timeout: float) -> list[RunRecord]:
    """The org's successful runs once there are ``wanted`` of them; no run may fail meanwhile."""
    deadline = time.time() + timeout
    succeeded: list[RunRecord] = []
    while time.time() < deadline:
        runs = _org_runs(instance, daemon)
        succeeded = [r for r in runs if r.dagster_run.status == DagsterRunStatus.SUCCESS]
        if len(succeeded) >= wanted:
            return succeeded
        time.sleep(3)
    raise AssertionError(f"{len(succeeded)} runs succeeded, {wanted} wanted:\n{daemon.output()[-3000:]}")


def _freshness_changes(instance: dg.DagsterInstance, keys: set[dg.AssetKey]) -> list[tuple[float, dg.AssetKey, str]]:
    changes = []
    for entry in instance.all_logs(RUNLESS_RUN_ID, of_type=DagsterEventType.FRESHNESS_STATE_CHANGE):
        data = entry.get_dagster_event().event_specific_data
        if data.key in keys:  # type: ignore[union-attr]
            changes.append((data.state_change_timestamp, data.key, data.new_state))  # type: ignore[union-attr]
    return sorted(changes, key=lambda c: c[0])


def test_daemon_keeps_the_demo_short_target_fresh(embedded_env: Path) -> None:  # noqa: F811
    orgs, dagster_home = embedded_env / "orgs", embedded_env / "dagster"
    spec = _write_short_target_demo(orgs)
    targets, chain = _chain_of_analytics(spec)
    assert {k.path[1] for k in chain} == {"faker", "sales", "analytics"}  # ingestion and both dbt projects
    workspace = embedded_env / "workspace.yaml"
    write_workspace(workspace, orgs)
    shutil.copy(REPO / "deploy" / "dagster" / "dagster.yaml", dagster_home / "dagster.yaml")
    env = dagster_env(dagster_home, FRESHNESS_DAEMON_INTERVAL_SECONDS="5", DALGO_AUTOMATION_INTERVAL_SECONDS="5")
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    daemon = Daemon(workspace, env, embedded_env)
    try:
        # starting the daemon and the code server, and the first run from nothing, are not what is tested...
        first = _wait_for_successes(instance, daemon, 1, STARTUP_SECONDS)
        # ...then each window must end with a refresh nobody launched, before the target goes stale
        _wait_for_successes(instance, daemon, 1 + WINDOWS, WINDOWS * WINDOW_SECONDS)
        checked_until = time.time()
        runs = _org_runs(instance, daemon)
    finally:
        daemon.stop()

    assert all(r.dagster_run.tags.get("dagster/sensor_name") == automation_sensor_name(SLUG) for r in runs)
    assert all(set(r.dagster_run.asset_selection or ()) == chain for r in runs)
    for key in targets:  # each model: never older than the lag from its first materialization on
        records = instance.fetch_materializations(key, limit=100, ascending=True).records
        times = [r.timestamp for r in records if r.timestamp <= checked_until]
        assert len(times) >= 1 + WINDOWS, (key, times)
        ages = [b - a for a, b in itertools.pairwise([*times, checked_until])]
        assert max(ages) < LAG_MINUTES * 60, (key, ages)
    # the FreshnessDaemon saw every analytics model fresh from the first success on
    first_success = min(r.end_time or 0 for r in first)
    changes = _freshness_changes(instance, targets)
    assert {key for _, key, _ in changes} == targets, "the FreshnessDaemon recorded no state for a target"
    stale = [c for c in changes if first_success < c[0] <= checked_until and c[2] == FreshnessState.FAIL]
    assert not stale, changes
