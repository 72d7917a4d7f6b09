"""The production topology on one machine (``dalgo serve``, no Docker) and its faults.

PostgreSQL comes from the ``postgres`` fixture; ``dalgo serve`` starts one code server per organization,
the webserver, the daemon and the API under gunicorn. Runs are launched through the API
(``POST /api/runs/``) where the API is what is tested (a run, load), and as an operator does (the
webserver's GraphQL ``launchRun`` of the org's job) in the fault tests, which are about Dagster's own
processes; every run is read back from PostgreSQL.
The tests share one topology and run in order: a run, a killed run worker, a PostgreSQL restart, a dead
code server, then load.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import requests

from tests.deploy.live_changes import Platform, first_hour_of_an_organization, hostile_tenant
from tests.deploy.topology import BIN, ORGS, Topology, start_topology
from tests.support.postgres import PostgresServer

SENSOR_TICKS = """query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) {
  ... on Sensor { sensorState { ticks(limit: 20) { timestamp status } } } } }"""


@pytest.fixture(scope="module")
def topology(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    running = start_topology(tmp_path_factory.mktemp("serve"), postgres)
    try:
        yield running
    finally:
        running.stop()


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def events(topology: Topology, run_id: str) -> Counter:
    rows = topology.sql("select dagster_event_type from event_logs where run_id = %s", run_id)
    return Counter(r[0] for r in rows)


def materialized(topology: Topology, run_id: str) -> set[str]:
    rows = topology.sql(
        "select asset_key from event_logs where run_id = %s and dagster_event_type = 'ASSET_MATERIALIZATION'",
        run_id,
    )
    return {r[0] for r in rows}


def assert_complete_success(topology: Topology, run_id: str, slug: str) -> None:
    """The run succeeded and every one of its events is in PostgreSQL: start, success, both assets."""
    assert topology.sql("select status from runs where run_id = %s", run_id) == [("SUCCESS",)]
    counts = events(topology, run_id)
    assert counts["PIPELINE_START"] == 1 and counts["PIPELINE_SUCCESS"] == 1, counts
    assert counts["ASSET_MATERIALIZATION"] == 2, counts
    assert materialized(topology, run_id) == {f'["{slug}", "tiny", "numbers"]', f'["{slug}", "tiny", "slow"]'}


def test_a_run_succeeds_and_its_events_are_in_postgres(topology: Topology) -> None:
    assert topology.wait_locations_loaded() == {"org_alpha": "LOADED", "org_beta": "LOADED"}
    run_id = topology.launch("alpha")
    assert topology.wait_run(run_id) == "SUCCESS", topology.output()
    tags = {t["key"]: t["value"] for t in topology.run(run_id)["tags"]}
    assert tags["dagster/code_location"] == "org_alpha"  # the per-organization queue limit's key
    assert tags["dalgo/org"] == "alpha"
    assert_complete_success(topology, run_id, "alpha")
    # ...and the dbt models really were built in the organization's own warehouse
    assert topology.sql("select count(*) from analytics.slow", dsn=topology.warehouses["alpha"]) == [(10,)]


def _wait_for_sleeping_worker(topology: Topology, slug: str, timeout: float = 180) -> psutil.Process:
    deadline = time.time() + timeout
    while time.time() < deadline:
        worker = topology.run_worker(slug)
        sleeping = topology.sql(
            "select count(*) from pg_stat_activity where query like '%%pg_sleep%%' and datname = %s",
            f"{slug}_wh",
            dsn=topology.postgres.dsn(),  # a superuser sees every session's query
        )[0][0]
        if worker is not None and sleeping:
            return worker
        time.sleep(0.5)
    raise TimeoutError(f"no run worker of {slug} reached its dbt model:\n{topology.output()}")


def _failure_message(topology: Topology, run_id: str) -> str:
    rows = topology.sql(
        "select event from event_logs where run_id = %s and dagster_event_type = 'PIPELINE_FAILURE'", run_id
    )
    assert len(rows) == 1, rows
    return rows[0][0]


def _retry_of(topology: Topology, run_id: str, timeout: float = 120) -> str:
    deadline = time.time() + timeout
    retries: list[tuple] = []
    while not retries and time.time() < deadline:
        retries = topology.sql("select run_id from run_tags where key = 'dagster/parent_run_id' and value = %s", run_id)
        time.sleep(1)
    assert len(retries) == 1, f"the daemon did not retry the run:\n{topology.output()}"
    return retries[0][0]


def test_every_api_change_is_live_without_a_restart(topology: Topology) -> None:
    """An organization created, changed in every way and deleted through the API (tests/deploy/
    live_changes.py), each change used at once; nothing restarted but what the change is about."""
    processes = ("webserver", "daemon", "api", "code-server-alpha", "code-server-beta")
    before = {name: topology.pid(name) for name in processes}
    platform = Platform(topology.api, topology.webserver, topology.root_token, topology.projects_root)
    slug = first_hour_of_an_organization(platform)
    # its code server is stopped: the daemon, which re-reads the workspace within a minute, can no
    # longer load or run anything of it
    deadline = time.time() + 30
    while (topology.run_dir / "pids" / f"code-server-{slug}.pid").exists():
        assert time.time() < deadline, topology.output()
        time.sleep(0.5)
    assert f"org_{slug}" not in (topology.run_dir / "workspace.yaml").read_text()
    assert {name: topology.pid(name) for name in processes} == before


def test_a_hostile_tenant_reaches_no_platform_secret(topology: Topology) -> None:
    platform = Platform(topology.api, topology.webserver, topology.root_token, topology.projects_root)
    env = topology.env
    secrets = [env["DALGO_API_SECRET_KEY"], "dagster-secret", "api-secret", "alpha-secret", "beta-secret"]
    home = Path(env["DALGO_HOME"])
    files = [home / "platform" / "secrets.key", topology.root / "dagster" / "dagster.yaml", topology.root / "serve.log"]
    hostile_tenant(platform, secrets, files, home)


def test_killed_run_worker_is_failed_by_run_monitoring_and_retried(topology: Topology) -> None:
    """kill -9 of a run worker while its code server is stopped (SIGSTOP), so that only the daemon's run
    monitoring can see the death: it marks the run failed, and run retries re-execute it."""
    warehouse = topology.warehouses["alpha"]
    topology.sql("insert into dalgo_sleep values (120)", dsn=warehouse)
    run_id = topology.launch_job("alpha")
    worker = _wait_for_sleeping_worker(topology, "alpha")
    topology.sql("delete from dalgo_sleep", dsn=warehouse)  # the retry will not sleep
    doomed = [worker, *worker.children(recursive=True)]  # the worker and the dbt process it started
    # the code server (the proxy) and the server under it that launched the worker
    code_servers = [topology.code_server("alpha"), worker.parent()]
    for server in code_servers:
        server.suspend()
    try:
        for proc in doomed:
            proc.kill()
        assert topology.wait_run(run_id, timeout=120) == "FAILURE", topology.output()
        assert worker.status() == psutil.STATUS_ZOMBIE  # its code server never saw it die
    finally:
        for server in code_servers:
            server.resume()

    message = _failure_message(topology, run_id)
    assert "Detected run worker status FAILED" in message, message  # the daemon's run monitoring
    assert f"the run worker (pid {worker.pid}) has exited" in message, message

    retry_id = _retry_of(topology, run_id)
    assert topology.wait_run(retry_id) == "SUCCESS", topology.output()
    assert topology.sql("select count(*) from analytics.slow", dsn=warehouse) == [(10,)]


def _statuses(calls: list[tuple[str, dict[str, str]]]) -> Counter:
    """The statuses of ``GET url`` with its headers for each call, 16 at a time: every gunicorn worker
    answers some."""
    with ThreadPoolExecutor(16) as pool:
        return Counter(pool.map(lambda c: requests.get(c[0], headers=c[1], timeout=60).status_code, calls))


def _current_user_calls(topology: Topology, token: str) -> list[tuple[str, dict[str, str]]]:
    return [(f"{topology.api}/api/currentuser", {"Authorization": f"Bearer {token}"})] * 40


def _api_statuses(topology: Topology, token: str) -> Counter:
    """One round of API requests, all at once: 40 ``currentuser`` (Django's database, on every gunicorn
    worker thread), and for each organization its runs (Dagster's storage, read by the API) and its
    assets (the webserver's GraphQL, its pooled storage)."""
    calls = _current_user_calls(topology, token)
    member = {"Authorization": f"Bearer {topology.operator_token}"}
    for slug in ORGS:
        calls += [(f"{topology.api}/api/{path}/", {**member, "x-dalgo-org": slug}) for path in ("runs", "assets")]
    return _statuses(calls)


def test_postgres_restart_while_idle_api_and_daemon_recover(topology: Topology) -> None:
    """After a restart, every pooled connection is dead (Django's persistent ones, the webserver's
    SQLAlchemy pools): they are tested before use and replaced, so not one API request fails, and the
    daemon runs what is launched next, all without restarting any process."""
    token = topology.token("restart@example.org")
    assert _api_statuses(topology, token) == Counter({200: 44})  # every pool holds connections now
    pids = {name: topology.pid(name) for name in ("api", "daemon", "webserver")}
    topology.postgres.restart()

    assert _api_statuses(topology, token) == Counter({200: 44})
    run_id = topology.launch("beta")  # POST /api/runs/ answers 201 (the webserver writes the run)
    assert topology.wait_run(run_id) == "SUCCESS", topology.output()  # the daemon dequeued it
    assert_complete_success(topology, run_id, "beta")
    # recovered by themselves: the supervisor restarted none of them
    assert {name: topology.pid(name) for name in pids} == pids
    assert all(psutil.pid_exists(pid) for pid in pids.values())


def test_a_logout_applies_in_every_api_worker(topology: Topology) -> None:
    """Each API worker remembers the callers it checked (a minute at most). A logout answered by one
    worker counts the change in the access generation, in PostgreSQL; the other workers look at it once
    a second and forget the token: none answers it after that."""
    token = topology.token("logout@example.org")
    assert _statuses(_current_user_calls(topology, token)) == Counter({200: 40})  # every worker remembers it
    logout = requests.post(f"{topology.api}/api/logout/", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert logout.status_code == 200
    time.sleep(2)  # the other workers' next look at the generation, with a second to spare
    assert _statuses(_current_user_calls(topology, token)) == Counter({401: 40})


def _supervisorctl(topology: Topology, *args: str) -> str:
    conf = topology.run_dir / "supervisord.conf"
    done = subprocess.run([str(BIN / "supervisorctl"), "-c", str(conf), *args], capture_output=True, text=True)
    return done.stdout + done.stderr


def _assets(topology: Topology, slug: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {topology.operator_token}", "x-dalgo-org": slug}
    return requests.get(f"{topology.api}/api/assets/", headers=headers, timeout=60)


def test_one_organizations_code_server_down_others_go_on(topology: Topology) -> None:
    """An operator stops alpha's code server (supervisord's own control): beta runs and its sensor ticks
    meanwhile. Started again, alpha serves runs; killed, supervisord brings it back by itself."""
    alpha = topology.pid("code-server-alpha")
    assert "stopped" in _supervisorctl(topology, "stop", "code-server-alpha")
    killed_at = time.time()
    assert not alive(alpha), "the code server survived its stop"

    # once the webserver notices, alpha's assets say its location is loading (never an empty list)
    deadline = time.time() + 90
    while (assets := _assets(topology, "alpha")).status_code == 200 and time.time() < deadline:
        time.sleep(1)
    assert assets.status_code == 503, assets.text
    assert "Dagster is loading its code location" in assets.json()["detail"], assets.text
    assert assets.headers["Retry-After"] == "5"
    assert _assets(topology, "beta").status_code == 200

    run_id = topology.launch_job("beta")
    assert "STOPPED" in _supervisorctl(topology, "status", "code-server-alpha"), "alpha came back too soon"
    assert topology.wait_run(run_id) == "SUCCESS", topology.output()
    assert_complete_success(topology, run_id, "beta")

    selector = {
        "repositoryLocationName": "org_beta",
        "repositoryName": "__repository__",
        "sensorName": "beta_automation",
    }
    deadline = time.time() + 90
    later: list[dict] = []
    while not later and time.time() < deadline:
        ticks = topology.graphql(SENSOR_TICKS, {"s": selector})["sensorOrError"]["sensorState"]["ticks"]
        later = [t for t in ticks if t["timestamp"] > killed_at and t["status"] in {"SKIPPED", "SUCCESS"}]
        time.sleep(1)
    assert later, "beta's automation sensor stopped ticking when alpha's code server died"

    assert "started" in _supervisorctl(topology, "start", "code-server-alpha")
    topology.wait_location_reloaded("org_alpha", after=killed_at)
    run_id = topology.launch_job("alpha")
    assert topology.wait_run(run_id) == "SUCCESS", topology.output()

    # a code server that dies is restarted by supervisord; its location loads again
    again = topology.pid("code-server-alpha")
    os.killpg(again, signal.SIGKILL)
    killed_at = time.time()
    deadline = time.time() + 120
    while topology.pid("code-server-alpha") == again and time.time() < deadline:
        time.sleep(0.5)
    assert topology.pid("code-server-alpha") != again, topology.output()
    topology.wait_location_reloaded("org_alpha", after=killed_at)


LOAD_SECONDS = float(os.environ.get("DALGO_LOAD_SECONDS", "60"))
CLIENTS = 50


def test_load_50_api_clients_no_5xx_and_no_run_or_event_lost(topology: Topology) -> None:
    """50 concurrent clients on loopback for ``DALGO_LOAD_SECONDS`` (60 s) while four runs execute: a
    fifth list the organizations' runs (Dagster's PostgreSQL storage), a fifth ask for health, the rest
    for their user. No 5xx, no failed request, every run succeeds with all its events."""
    assert topology.wait_locations_loaded() == {"org_alpha": "LOADED", "org_beta": "LOADED"}
    tokens = [topology.token(f"load{i}@example.org") for i in range(5)]
    runs = {topology.launch(slug): slug for slug in ("alpha", "beta", "alpha", "beta")}
    statuses: Counter = Counter()
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.time() + LOAD_SECONDS

    def request_of(i: int) -> tuple[str, dict[str, str]]:
        if i % 5 == 0:
            return "/api/health", {}
        if i % 5 == 1:
            org = ("alpha", "beta")[i % 2]
            return "/api/runs/?limit=20", {"Authorization": f"Bearer {topology.operator_token}", "x-dalgo-org": org}
        return "/api/currentuser", {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}

    def client(i: int) -> None:
        session = requests.Session()
        path, headers = request_of(i)
        local: Counter = Counter()
        while time.time() < stop_at:
            try:
                local[session.get(f"{topology.api}{path}", headers=headers, timeout=30).status_code] += 1
            except requests.RequestException as exc:
                with lock:
                    errors.append(repr(exc))
        with lock:
            statuses.update(local)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:5]
    assert statuses and all(code < 500 for code in statuses), statuses
    assert set(statuses) == {200}, statuses

    for run_id, slug in runs.items():
        assert topology.wait_run(run_id, timeout=300) == "SUCCESS", topology.output()
        assert_complete_success(topology, run_id, slug)
    assert topology.sql("select count(*) from runs where run_id = any(%s)", list(runs)) == [(4,)]


def test_serve_stop_leaves_no_process(topology: Topology, tmp_path: Path) -> None:
    pids = [int(p.read_text().split()[0]) for p in (topology.run_dir / "pids").glob("*.pid")]
    # supervisord, the fork server, two code servers, webserver, daemon, API, alert dispatcher
    assert len(pids) == 8
    # and what they started: the proxies the fork server forked, their children, gunicorn's workers
    pids += [c.pid for p in pids for c in psutil.Process(p).children(recursive=True)]
    topology.stop()
    assert not [p for p in pids if alive(p)]
    assert not list((topology.run_dir / "pids").glob("*.pid"))
