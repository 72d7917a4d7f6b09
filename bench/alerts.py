"""How long an alert takes to reach a webhook, against the daemon's own tick interval in the same run.

A real ``dagster-daemon`` (the organization's automation sensor and the FreshnessDaemon every ``TICK``
seconds, its run queue) and the alert dispatcher as ``dalgo serve`` runs it (``manage.py dispatch_alerts
--loop``, a pass every ``TICK`` seconds), on the embedded default (SQLite). The organization has ``TARGETS``
dbt models, each kept at most a minute old by a freshness target, and rules posting freshness failures and
run failures (one-minute windows) to a webhook receiver on 127.0.0.1. Once the automation's first run has
built the models, their SQL is broken: every refresh run fails (run failures) and the models go stale
(freshness failures).

Measured: for each alert received, the time from the event as Dagster recorded it (the run's failure, the
FreshnessDaemon's state change) to its arrival at the receiver; for the freshness alerts also from the
moment the model went stale (its last materialization plus a minute); and the daemon's tick interval, the
median gap between the automation sensor's ticks. Last line: median latency / daemon tick (target <= 1.5x).

    .venv/bin/python bench/alerts.py
"""

from __future__ import annotations

import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TICK = 5  # seconds: the automation sensor, the FreshnessDaemon and the dispatcher
TARGETS = 3
RUN_ALERTS = 2  # run-failure alerts to wait for (one per subject and minute)
TIMEOUT = 600
SLUG = "bench_alerts"


def project_files() -> dict[str, str]:
    files = {"seeds/numbers.csv": "n\n1\n2\n3\n"}
    for i in range(TARGETS):
        files[f"models/latest_{i}.sql"] = f"select max(n) + {i} as n from {{{{ ref('numbers') }}}}\n"
    return files


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="dalgo-bench-alerts-"))
    env = {
        "DALGO_HOME": str(root / "home"),
        "DALGO_ORGS_DIR": str(root / "orgs"),
        "DAGSTER_HOME": str(root / "dagster"),
        "DALGO_DBT_PROJECTS_DIR": str(root / "projects"),
        "DALGO_API_DATABASE_URL": f"sqlite:///{root / 'api.sqlite3'}",
        "DALGO_API_SECRET_KEY": "bench-only-" + "k" * 40,
        "DALGO_WEBHOOK_ALLOW_PRIVATE": "1",  # the receiver listens on 127.0.0.1
        "DALGO_AUTOMATION_INTERVAL_SECONDS": str(TICK),
        "FRESHNESS_DAEMON_INTERVAL_SECONDS": str(TICK),
        "DALGO_ALERTS_INTERVAL_SECONDS": str(TICK),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DJANGO_SETTINGS_MODULE": "dalgo_api.settings",
    }
    os.environ.update(env)
    (root / "dagster").mkdir(parents=True)
    shutil.copy(REPO / "deploy" / "dagster" / "dagster.yaml", root / "dagster" / "dagster.yaml")

    import dagster as dg

    from dalgo_core.code_locations import write_workspace
    from dalgo_core.dbt_projects import prepare_projects
    from dalgo_core.secret_store import write_secret
    from dalgo_core.spec import load_org_spec
    from tests.support.dagster import Daemon, dagster_env
    from tests.support.orgs import write_dbt_project, write_spec
    from tests.support.webhooks import Receiver

    project = write_dbt_project(root / "projects", "tiny", project_files())
    hook = {"format": "json", "url": {"file": "bench_hook"}}
    spec = {
        "slug": SLUG,
        "name": "Bench alerts",
        "dbt_projects": [{"name": "tiny", "path": str(project)}],
        "pipelines": [
            {
                "name": "fresh",
                "assets": ["tiny/latest_*"],
                "freshness": {"max_lag_minutes": 1, "expected_run_minutes": 0.5},
            }
        ],
        "alerts": [
            {"name": "stale", "kind": "freshness_failed", "window_minutes": 1, "email": False, "webhooks": [hook]},
            {"name": "runs", "kind": "run_failed", "window_minutes": 1, "email": False, "webhooks": [hook]},
        ],
    }
    write_spec(root / "orgs", SLUG, spec)
    prepare_projects(load_org_spec(SLUG))
    workspace = root / "workspace.yaml"
    write_workspace(workspace)
    manage = [sys.executable, str(REPO / "manage.py")]
    for command in (["migrate", "-v0"], ["adoptorgs"]):
        subprocess.run([*manage, *command], env={**os.environ}, cwd=REPO, check=True, capture_output=True)

    instance = dg.DagsterInstance.from_config(str(root / "dagster"))
    with Receiver() as hooks:
        write_secret(SLUG, "bench_hook", hooks.url("/hook"))
        daemon = Daemon(workspace, dagster_env(root / "dagster"), root)
        with (root / "dispatcher.log").open("wb") as log:
            dispatcher = subprocess.Popen([*manage, "dispatch_alerts", "--loop"], cwd=REPO, stdout=log, stderr=log)
        try:
            keys = [dg.AssetKey([SLUG, "tiny", f"latest_{i}"]) for i in range(TARGETS)]
            built = wait(lambda: all(latest(instance, k) for k in keys), "the automation's first run", daemon)
            assert built
            for i in range(TARGETS):  # every refresh from now on fails
                broken = "{{ config(materialized='table') }}\nselect cast('not a number' as integer) as n\n"
                (project / "models" / f"latest_{i}.sql").write_text(broken)
            wait(
                lambda: count(hooks, "freshness_failed") >= TARGETS and count(hooks, "run_failed") >= RUN_ALERTS,
                "the alerts",
                daemon,
            )
            ticks = sensor_ticks(instance)
        finally:
            dispatcher.terminate()
            dispatcher.wait(20)
            daemon.stop()
        report(instance, hooks, keys, ticks)
    shutil.rmtree(root, ignore_errors=True)


def wait(done, what: str, daemon) -> object:
    deadline = time.time() + TIMEOUT
    while not (value := done()):
        if time.time() > deadline or daemon.proc.poll() is not None:
            raise SystemExit(f"no {what} within {TIMEOUT} s:\n{daemon.output()[-3000:]}")
        time.sleep(1)
    return value


def latest(instance, key) -> float | None:
    records = instance.fetch_materializations(key, limit=1).records
    return records[0].timestamp if records else None


def count(hooks, kind: str) -> int:
    return sum(1 for r in hooks.received("/hook") if r.body["kind"] == kind and r.body["status"] == "alert")


def sensor_ticks(instance) -> list[float]:
    """The automation sensor's tick times (the daemon's own rhythm for this organization)."""
    from dalgo_core.names import automation_sensor_name

    for state in instance.all_instigator_state():
        if state.name == automation_sensor_name(SLUG):
            ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=200)
            return sorted(t.timestamp for t in ticks)
    return []


def report(instance, hooks, keys, ticks: list[float]) -> None:
    import dagster as dg

    latencies: dict[str, list[float]] = {"freshness_failed": [], "run_failed": []}
    since_stale: list[float] = []
    for received in hooks.received("/hook"):
        body = received.body
        if body["status"] != "alert":
            continue
        latencies[body["kind"]].append(received.at - datetime.fromisoformat(body["occurred_at"]).timestamp())
        if body["kind"] == "freshness_failed":
            key = dg.AssetKey([SLUG, *body["asset"].split("/")])
            built = [r.timestamp for r in instance.fetch_materializations(key, limit=5).records]
            stale_at = max(t for t in built if t < received.at) + 60
            since_stale.append(received.at - stale_at)
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    tick = statistics.median(gaps)
    every = latencies["freshness_failed"] + latencies["run_failed"]
    median = statistics.median(every)
    for kind, values in latencies.items():
        middle, worst = statistics.median(values), max(values)
        print(f"{kind}: {len(values)} alert(s), event->webhook median {middle:.2f} s, max {worst:.2f} s")
    print(
        f"freshness: stale moment->webhook median {statistics.median(since_stale):.2f} s (FreshnessDaemon + dispatcher)"
    )
    print(f"daemon tick (automation sensor, {len(gaps)} gaps): median {tick:.2f} s, configured {TICK} s")
    print(
        f"alerts: event->webhook median {median:.2f} s, max {max(every):.2f} s over {len(every)} alerts; "
        f"daemon tick {tick:.2f} s; ratio={median / tick:.2f}x (max {max(every) / tick:.2f}x; "
        f"{median / TICK:.2f}x of the configured {TICK} s; target <= 1.5x)"
    )


if __name__ == "__main__":
    main()
