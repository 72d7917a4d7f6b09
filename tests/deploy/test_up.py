"""The README's first command, as a new user meets it: ``./scripts/up`` in a clean clone with no state
folder installs and brings up the whole platform (Dagster's storage created once, before any process).
On that one running platform: every location loads and the printed demo login works; the README's API
section runs command by command and its run of the demo organization succeeds, summarized on the
console; an operator sees the demo's lineage and that run's steps in Dagit, in a browser, and the
product frontend calls the API from its own origin; an organization's first hour through the API is
live with no restart (issue 13's sequence, which test_serve.py runs on the production topology). Then
SIGTERM ends the run in flight and every process, nothing tracked by git has changed, the next start
works, and four more fresh starts (Dagster's storage and the API's database removed each time) load
with no corruption.

The tests share the platform and run in this order (one xdist worker runs a module); the last one stops
it. The platform runs with two operator settings the README documents: ``file`` git URLs (the first
hour's git project is a local repository) and a 5-second automation tick (its freshness step)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import requests
from playwright.sync_api import expect

from tests.deploy.live_changes import Platform, first_hour_of_an_organization
from tests.deploy.topology import REPO
from tests.deploy.up_platform import ROOT_TOKEN, Up, run_state
from tests.support.browser import browser

LOGIN = re.compile(r"demo login: (\S+) / (\S+) ")
TERMINAL = {"succeeded", "failed", "cancelled"}


def _readme_block(heading: str) -> str:
    """The first ```bash block of a README section."""
    section = (REPO / "README.md").read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```bash\n", 1)[1].split("```", 1)[0]


def _git_status(clone: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout


def _login(up: Up, email: str, password: str) -> dict[str, str]:
    token = requests.post(f"{up.api}/api/login/", json={"email": email, "password": password}, timeout=30)
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['token']}", "x-dalgo-org": "demo_ngo"}


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """``./scripts/up`` of a clean clone with no state folder, started once for the module."""
    clone = tmp_path_factory.mktemp("first-start") / "dalgo"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    assert not (clone / ".dalgo").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "DALGO_", "VIRTUAL_ENV"))}
    env |= {"DAGSTER_DISABLE_TELEMETRY": "1", "DALGO_GIT_SCHEMES": "https,ssh,file"}
    env["DALGO_AUTOMATION_INTERVAL_SECONDS"] = "5"
    platform = Up(clone, env)
    platform.first_output = platform.start()
    yield platform
    if platform.proc is not None and platform.proc.poll() is None:
        platform.stop()


def test_the_first_start_loads_every_location_and_prints_a_working_login(up: Up) -> None:
    assert up.locations() == {"org_demo_ngo": "LOADED"}
    headers = _login(up, *LOGIN.search(up.first_output).groups())
    assets = requests.get(f"{up.api}/api/assets/", headers=headers, timeout=60).json()
    assert {"faker/users", "analytics/daily_revenue"} <= {a["key"] for a in assets}
    docs = requests.get(f"{up.api}/api/docs", timeout=30)
    assert docs.status_code == 200 and "cdn." not in docs.text  # Swagger UI from the API itself
    # the organization's pools exist before the daemon's first queue pass: its first runs (the automation's
    # and a user's) wait for each other instead of both opening the DuckDB file; every step that writes it
    # (the faker sync, both dbt projects' builds) takes the warehouse's one pool
    query = "{ instance { concurrencyLimits { concurrencyKey slotCount } } }"
    limits = requests.post(f"{up.web}/graphql", json={"query": query}, timeout=60).json()
    pools = {p["concurrencyKey"]: p["slotCount"] for p in limits["data"]["instance"]["concurrencyLimits"]}
    assert pools == {"warehouse/demo_ngo": 1}


def test_the_readme_api_section_runs_as_written_and_its_run_succeeds(up: Up) -> None:
    """The README's API commands as written (only the ports are the test's): its own user, a token, the
    lineage, and a run of everything the demo builds, which succeeds and is summarized on the console."""
    script = _readme_block("The API").replace("127.0.0.1:8000", f"127.0.0.1:{up.ports['api']}")
    done = subprocess.run(
        ["bash", "-euxo", "pipefail", "-c", script + '\nprintf \'\\nRUN=%s\\nTOKEN=%s\\n\' "$RUN" "$TOKEN"\n'],
        cwd=up.clone,
        env=up.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run_id = re.findall(r"^RUN=(\S+)$", done.stdout, re.M)[-1]
    token = re.findall(r"^TOKEN=(\S+)$", done.stdout, re.M)[-1]
    headers = {"Authorization": f"Bearer {token}", "x-dalgo-org": "demo_ngo"}
    deadline = time.time() + 900
    while (state := run_state(up, run_id, headers)) not in TERMINAL:
        assert time.time() < deadline, state
        time.sleep(2)
    assert state == "succeeded", requests.get(f"{up.api}/api/runs/{run_id}", headers=headers, timeout=60).text
    up.readme_run = run_id
    summary = re.compile(rf"run {run_id[:8]} of demo_ngo \(.*\) success in \d+ s")
    deadline = time.time() + 60
    while not summary.search(console := up.output()) and time.time() < deadline:
        time.sleep(1)
    assert summary.search(console), console[-3000:]
    assert " - DEBUG - " not in console and '"type": "RECORD"' not in console  # summaries, not events


def test_an_operator_sees_the_lineage_and_the_run_in_dagit(up: Up) -> None:
    """Dagit as the README sends an operator to it, in a browser: the lineage of the demo's last model
    runs from the faker streams through both dbt projects, its dbt tests shown as passed checks; the run
    the README launched through the API shows its three steps succeeded. The pages load from Dagit alone
    (nothing from the internet), raise no script error and ask the operator for nothing."""
    assert up.readme_run, "the README's run did not succeed (the test before)"
    with browser() as visit:
        page = visit.page
        page.goto(f"{up.web}/assets/demo_ngo/analytics/daily_revenue?view=lineage&lineageScope=upstream&lineageDepth=5")
        # the graph is drawn first, each node's latest events and checks after (Loading...): wait for the
        # checks of the four dbt models upstream of and including daily_revenue
        expect(page.get_by_text(re.compile(r"^\d+ / \d+ Passed$"))).to_have_count(4, timeout=120_000)
        lineage = page.inner_text("#root")
        for node in ("daily_revenue", "orders", "stg_products", "stg_purchases", "products", "purchases"):
            assert f"\n{node}\n" in lineage, (node, lineage[:3000])
        for group in ("demo_ngo_ingestion", "demo_ngo_sales", "demo_ngo_analytics"):
            assert group in lineage, (group, lineage[:3000])
        assert re.search(r"Asset checks\n(\d+) / \1 Passed", lineage), lineage[:3000]
        assert "Failed" not in lineage

        page.goto(f"{up.web}/runs/{up.readme_run}")
        page.get_by_text("Succeeded (3)").wait_for()
        run = page.inner_text("#root")
        assert "Success" in run and "Errored (0)" in run, run[:3000]
        for step in ("demo_ngo__airbyte__faker", "demo_ngo__sales", "demo_ngo__analytics"):
            assert step in run, (step, run[:3000])

    assert visit.hosts == {up.web}, visit.hosts
    assert not visit.errors, visit.errors
    # what Dagit asks before it shows its "Join the Dagster community" dialog: never (nux off in dagster.yaml)
    nux = requests.post(f"{up.web}/graphql", json={"query": "{ shouldShowNux }"}, timeout=60).json()
    assert nux == {"data": {"shouldShowNux": False}}


def test_the_api_docs_work_in_a_browser_with_no_internet(up: Up) -> None:
    """``/api/docs`` (the README's link) draws every area's operations from the API's own files."""
    with browser() as visit:
        visit.page.goto(f"{up.api}/api/docs")
        visit.page.get_by_text("/api/runs/{run_id}/logs").first.wait_for()
        docs = visit.page.inner_text("body")
    for operation in ("/api/login/", "/api/organizations/warehouse", "/api/connections/", "/api/pipelines/"):
        assert operation in docs, operation
    assert visit.hosts == {up.api}, visit.hosts
    assert not visit.errors, visit.errors


FRONTEND_CALLS = """async ([api, email, password]) => {
  try {
    const login = await fetch(`${api}/api/login/`, {method: "POST", headers: {"content-type": "application/json"},
                                                     body: JSON.stringify({email, password})});
    const headers = {"Authorization": `Bearer ${(await login.json()).token}`, "x-dalgo-org": "demo_ngo"};
    const assets = await (await fetch(`${api}/api/assets/`, {headers})).json();
    const missing = await fetch(`${api}/api/runs/not-a-run`, {headers});
    return {keys: assets.map((a) => a.key), missing: missing.status, detail: (await missing.json()).detail};
  } catch (error) {
    return {blocked: String(error)};
  }
}"""


def test_the_product_frontend_calls_the_api_from_its_own_origin(up: Up) -> None:
    """A page of the product frontend (its default origin, http://127.0.0.1:3001, served here by the
    browser itself) logs in, lists the demo's assets and reads a 404's reason, across origins; a page of
    any other origin (Dagit's own included) cannot read the API's answers."""
    login = [up.api, *LOGIN.search(up.first_output).groups()]
    with browser() as visit:
        page = visit.page
        # a page the browser serves itself has no address, so Chromium's Local Network Access would keep it
        # from the API on 127.0.0.1; a frontend served from the API's own address space needs no permission
        page.context.grant_permissions(["local-network-access"])
        for origin in ("http://127.0.0.1:3001", up.web, "http://127.0.0.1:3999"):
            page.route(f"{origin}/", lambda route: route.fulfill(content_type="text/html", body="<p>frontend</p>"))
            page.goto(f"{origin}/")
            visit.console.clear()
            answers = page.evaluate(FRONTEND_CALLS, login)
            if origin == "http://127.0.0.1:3001":
                assert {"faker/users", "analytics/daily_revenue"} <= set(answers.get("keys", [])), answers
                assert answers["missing"] == 404 and "not-a-run" in answers["detail"], answers
            else:
                assert answers == {"blocked": "TypeError: Failed to fetch"}, (origin, answers)
                assert any("No 'Access-Control-Allow-Origin' header" in m for m in visit.console), visit.console


def test_an_organizations_first_hour_is_live_with_no_restart(up: Up) -> None:
    root = json.loads(up.manage("shell", "-c", ROOT_TOKEN).strip().splitlines()[-1])
    projects = up.clone / "dbt_projects"  # the default root of local dbt projects
    slug = first_hour_of_an_organization(Platform(up.api, up.web, root["token"], projects))
    assert f"of {slug}" in up.output()  # its runs summarized on the console
    shutil.rmtree(projects / slug)  # the operator's copies of the tenant's projects


def test_sigterm_ends_the_run_in_flight_and_every_start_after_works(up: Up) -> None:
    email, password = LOGIN.search(up.first_output).groups()
    left = up.stop()
    assert not left, f"still running after SIGTERM: {left}"
    assert _git_status(up.clone) == "", "dalgo up changed or left files git tracks"

    again = up.start()  # the second start, on the storage the first one made
    try:
        assert up.locations() == {"org_demo_ngo": "LOADED"}
        assert LOGIN.search(again).groups() == (email, password)  # the same demo login
        # a run in flight when SIGTERM comes is ended and marked so, never left running unowned
        headers = _login(up, email, password)
        assets = requests.get(f"{up.api}/api/assets/", headers=headers, timeout=60).json()
        selection = [a["key"] for a in assets if a["materializable"]]  # long enough to be in flight
        launched = requests.post(f"{up.api}/api/runs/", json={"assets": selection}, headers=headers, timeout=300)
        in_flight = launched.json()["run_id"]
        deadline = time.time() + 300
        while (state := run_state(up, in_flight, headers)) == "queued":
            assert time.time() < deadline
            time.sleep(0.5)
        assert state == "running", state
    finally:
        assert not up.stop()
    instance = dg.DagsterInstance.from_config(str(up.clone / ".dalgo" / "platform" / "dagster"))
    assert instance.get_run_by_id(in_flight).status == dg.DagsterRunStatus.CANCELED
    assert "ending 1 run(s) in progress" in up.output()
    instance.dispose()

    for _ in range(4):  # fresh starts: Dagster's storage and the API's database made again each time
        shutil.rmtree(up.clone / ".dalgo" / "platform" / "dagster")
        (up.clone / ".dalgo" / "platform" / "api.sqlite3").unlink()
        up.start()
        try:
            assert up.locations() == {"org_demo_ngo": "LOADED"}
        finally:
            assert not up.stop()
