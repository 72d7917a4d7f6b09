"""Benchmark: memory of the production topology with 10, 25 and 50 small organizations loaded.

Generates organizations (DuckDB warehouse, one tiny dbt project of two models, prepared once and its
manifest copied), starts their code servers (``dagster code-server start``) in batches with ``dalgo serve``'s own
process specs, then the webserver and the daemon on a PostgreSQL instance (a throwaway server), and
measures the RSS of each process tree (psutil) once every location is loaded and the daemon has run its
first iterations. The baseline, measured in the same run, is a code server serving an empty
``Definitions``. Organizations are added 10 -> 25 -> 50 (the webserver and daemon restart each time).

Prints a table; the last line is the memory per organization (its code server plus the webserver's
and daemon's growth per organization) as a ratio of the bare code server, and how many organizations a
24 GiB host holds after the fixed processes and a reserve for concurrent run workers.
Run with no arguments: ``.venv/bin/python bench/memory.py`` (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.postgres import PostgresServer, free_port, free_port_range  # noqa: E402

STEPS = (10, 25, 50)
BATCH = 5
HOST_BYTES = 24 * 1024**3
MB = 1024**2
SETTLE_SECONDS = 20
LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
MODELS = {
    "models/stg_people.sql": "select 1 as id, 'a' as name union all select 2, 'b'\n",
    "models/people.sql": "select id, upper(name) as name from {{ ref('stg_people') }}\n",
}


def tree_rss(pid: int) -> int:
    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return total


def write_org(orgs: Path, slug: str, project: Path) -> None:
    folder = orgs / slug
    folder.mkdir(parents=True)
    spec = {
        "slug": slug,
        "name": slug,
        "warehouse": {"type": "duckdb"},
        "dbt_projects": [{"name": "tiny", "path": str(project)}],
    }
    (folder / "org.yaml").write_text(yaml.safe_dump(spec))


def prepare_orgs(slugs: list[str], home: Path) -> None:
    """Parse the tiny project once, then give every organization a copy of the prepared state."""
    from dalgo_core.dbt_projects import prepare_organizations as prepare

    first, rest = slugs[0], slugs[1:]
    if not (home / first).exists():
        problems = prepare([first])
        if problems:
            raise SystemExit(f"prepare failed: {problems}")
    for slug in rest:
        if not (home / slug).exists():
            shutil.copytree(home / first, home / slug)


def wait_loaded(url: str, count: int, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            response = requests.post(f"{url}/graphql", json={"query": LOCATIONS}, timeout=30)
            entries = response.json()["data"]["workspaceOrError"]["locationEntries"]
            if len(entries) == count and all(e["loadStatus"] == "LOADED" for e in entries):
                return
        except (requests.RequestException, KeyError, TypeError, ValueError):
            pass
        time.sleep(2)
    raise TimeoutError(f"{count} locations not loaded in {timeout:.0f} s")


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="dalgo-memory-"))
    orgs, home = root / "orgs", root / "home"
    orgs.mkdir()
    os.environ.update(
        {
            "DALGO_ORGS_DIR": str(orgs),
            "DALGO_HOME": str(home),
            "DAGSTER_HOME": str(root / "dagster"),
            "DAGSTER_DISABLE_TELEMETRY": "1",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
    )
    from dalgo_core.code_locations import code_servers, write_workspace
    from dalgo_ops.instance import write_postgres_instance
    from dalgo_ops.processes import ProcessSpec, Supervisor, stop_pids
    from dalgo_ops.serve import (
        BIN,
        ServeConfig,
        code_server,
        daemon,
        grpc_ok,
        process_env,
        webserver,
    )

    project = root / "tiny"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        yaml.safe_dump({"name": "tiny", "version": "1.0.0", "config-version": 2, "profile": "dalgo"})
    )
    for rel, text in MODELS.items():
        (project / rel).write_text(text)
    (root / "empty_defs.py").write_text("import dagster as dg\n\ndefs = dg.Definitions()\n")

    postgres = PostgresServer().start()
    supervisor = Supervisor(root / "run", log=lambda m: print(m, flush=True))
    try:
        dsn = postgres.create_database("dagster", owner="dagster", password="bench")
        config = ServeConfig(
            postgres_url=dsn,
            webserver_port=free_port(),
            grpc_base_port=free_port_range(max(STEPS)),
            run_dir=root / "run",
        )
        write_postgres_instance(config.dagster_home)
        env = process_env(config)

        base_port = free_port()
        bare = supervisor.start(
            ProcessSpec(
                "bare",
                [
                    str(BIN / "dagster"),
                    "api",
                    "grpc",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(base_port),
                    "-f",
                    str(root / "empty_defs.py"),
                    "-a",
                    "defs",
                ],
                env,
                root,
                ready=lambda: grpc_ok("127.0.0.1", base_port),
            )
        )
        supervisor.wait_ready(["bare"])
        time.sleep(3)
        baseline = tree_rss(bare.proc.pid)
        print(f"bare code server (empty Definitions): {baseline / MB:.0f} MB", flush=True)

        results = []
        slugs: list[str] = []
        for step in STEPS:
            new = [f"org_{i:03d}" for i in range(len(slugs), step)]
            for slug in new:
                write_org(orgs, slug, project)
            slugs += new
            prepare_orgs(slugs, home)
            write_workspace(config.workspace, grpc_base_port=config.grpc_base_port)
            ports = code_servers(config.workspace)
            for first in range(0, len(new), BATCH):
                batch = [code_server(config, env, s, ports[s]) for s in new[first : first + BATCH]]
                for spec in batch:
                    supervisor.start(spec)
                supervisor.wait_ready([s.name for s in batch], timeout=600)
            for name in ("webserver", "daemon"):
                if name in supervisor.managed:
                    stop_pids({supervisor.managed.pop(name).proc.pid: 15})
            supervisor.start(webserver(config, env))
            supervisor.start(daemon(config, env))
            supervisor.wait_ready(["webserver"], timeout=600)
            wait_loaded(config.webserver_url, len(slugs))
            time.sleep(SETTLE_SECONDS)  # the daemon loads the workspace and runs its first sensor ticks
            servers = [tree_rss(supervisor.managed[f"code-server-{s}"].proc.pid) for s in slugs]
            row = {
                "orgs": step,
                "code_server": statistics.mean(servers),
                "code_server_max": max(servers),
                "webserver": tree_rss(supervisor.managed["webserver"].proc.pid),
                "daemon": tree_rss(supervisor.managed["daemon"].proc.pid),
            }
            row["total"] = sum(servers) + row["webserver"] + row["daemon"]
            results.append(row)
            print(
                f"{step:>3} orgs: code server mean {row['code_server'] / MB:.0f} MB (max "
                f"{row['code_server_max'] / MB:.0f}), webserver {row['webserver'] / MB:.0f} MB, daemon "
                f"{row['daemon'] / MB:.0f} MB, total {row['total'] / MB:.0f} MB",
                flush=True,
            )
    finally:
        supervisor.stop_all(grace=10)
        postgres.destroy()
        shutil.rmtree(root, ignore_errors=True)

    first, last = results[0], results[-1]
    shared_growth = ((last["webserver"] + last["daemon"]) - (first["webserver"] + first["daemon"])) / (
        last["orgs"] - first["orgs"]
    )
    per_org = statistics.mean(r["code_server"] for r in results) + shared_growth
    fixed = first["webserver"] + first["daemon"] - shared_growth * first["orgs"]
    reserve = 6 * last["code_server"] + 1024 * MB  # 6 concurrent run workers, PostgreSQL and the API
    holds = int((HOST_BYTES - fixed - reserve) / per_org)
    print(
        f"webserver+daemon grow {shared_growth / MB:.1f} MB per org; fixed {fixed / MB:.0f} MB; "
        f"reserve {reserve / MB:.0f} MB (6 run workers, PostgreSQL, API)"
    )
    per_step = "/".join(f"{r['total'] / MB / r['orgs']:.0f}" for r in results)
    print(
        f"memory per org {per_org / baseline:.2f}x of a bare code server: {per_org / MB:.0f} MB/org "
        f"(10/25/50 orgs: {per_step} MB/org in total), 24 GiB holds ~{holds} orgs"
    )


if __name__ == "__main__":
    main()
