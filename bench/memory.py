"""Benchmark: memory of the production topology with 5, 10 and 20 copies of the demo organization loaded.

Copies the demo organization (two dbt projects, an embedded faker connection, a freshness pipeline and a
cron pipeline; prepared once, its manifests copied), starts their code servers (``dagster code-server
start``, each a proxy and its ``dagster api grpc`` child) in batches with ``dalgo serve``'s own process
specs, then the webserver and the daemon on a PostgreSQL instance (a throwaway server; no run is ever
dequeued, so the automation sensors tick but launch nothing), and measures each process once every
location is loaded and the daemon has run its first ticks (each code server has then evaluated its
automation sensor). The baselines, measured in the same run: a bare code server (a proxy and its child)
and a bare ``dagster api grpc`` child, both serving an empty ``Definitions``.

Per organization it reports the pair's RSS, the child's RSS, USS and PSS and the proxy's RSS (RSS counts
the pages of the shared libraries every process maps; PSS shares them out). The last line is the memory
per organization (its pair plus the webserver's and daemon's growth per organization) as a ratio of the
bare pair, how many organizations a 24 GiB host holds after the fixed processes and a reserve for
concurrent run workers, and what 200 organizations need, by pair and by child alone.
Run with no arguments: ``.venv/bin/python bench/memory.py`` (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import contextlib
import functools
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

STEPS = (5, 10, 20)
BATCH = 5
FLEET = 200
HOST_BYTES = 24 * 1024**3
MB = 1024**2
SETTLE_SECONDS = 20
LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
DEMO = REPO / "orgs" / "demo_ngo" / "org.yaml"


def tree_rss(pid: int) -> int:
    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return total


def server_memory(pid: int) -> dict[str, int]:
    """A code server's pair: its RSS, the proxy's own RSS and its ``dagster api grpc`` child's RSS, USS, PSS."""
    proxy = psutil.Process(pid)
    out = {"pair": tree_rss(pid), "proxy": proxy.memory_info().rss, "child": 0, "child_uss": 0, "child_pss": 0}
    for child in proxy.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            info = child.memory_full_info()
            out["child"] += info.rss
            out["child_uss"] += info.uss
            out["child_pss"] += info.pss
    return out


def write_org(orgs: Path, slug: str) -> None:
    """A copy of the demo organization under another slug (its dbt projects are shared, as paths)."""
    folder = orgs / slug
    folder.mkdir(parents=True)
    spec = {**yaml.safe_load(DEMO.read_text()), "slug": slug, "name": slug}
    (folder / "org.yaml").write_text(yaml.safe_dump(spec))


def prepare_orgs(slugs: list[str], home: Path) -> None:
    """Parse the demo's dbt projects once, then give every organization a copy of the prepared state."""
    from dalgo_core.dbt_projects import prepare_organizations as prepare

    state = home / "orgs"  # each organization's root under DALGO_HOME
    first, rest = slugs[0], slugs[1:]
    if not (state / first).exists():
        problems = prepare([first])
        if problems:
            raise SystemExit(f"prepare failed: {problems}")
    for slug in rest:
        if not (state / slug).exists():
            shutil.copytree(state / first, state / slug)


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

    shutil.copytree(REPO / "dbt_projects", root / "dbt_projects")  # where the demo's paths point
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
        instance_yaml = write_postgres_instance(config.dagster_home)
        # the automation sensors request runs of the never-materialized demo assets: none is dequeued
        text = instance_yaml.read_text()
        instance_yaml.write_text(text.replace("max_concurrent_runs: 6", "max_concurrent_runs: 0"))
        env = process_env(config)

        empty = ["-f", str(root / "empty_defs.py"), "-a", "defs"]
        for name, command in (("bare-child", ["api", "grpc"]), ("bare-pair", ["code-server", "start"])):
            port = free_port()
            argv = [str(BIN / "dagster"), *command, "-h", "127.0.0.1", "-p", str(port), *empty]
            ready = functools.partial(grpc_ok, "127.0.0.1", port)
            supervisor.start(ProcessSpec(name, argv, env, root, ready=ready))
        supervisor.wait_ready(["bare-child", "bare-pair"])
        time.sleep(3)
        bare_child = tree_rss(supervisor.managed["bare-child"].proc.pid)
        bare = server_memory(supervisor.managed["bare-pair"].proc.pid)
        print(
            f"bare code server (empty Definitions): {bare['pair'] / MB:.0f} MB (proxy {bare['proxy'] / MB:.0f} MB, "
            f"child {bare['child'] / MB:.0f} MB); a bare dagster api grpc alone {bare_child / MB:.0f} MB",
            flush=True,
        )

        results = []
        slugs: list[str] = []
        for step in STEPS:
            new = [f"org_{i:03d}" for i in range(len(slugs), step)]
            for slug in new:
                write_org(orgs, slug)
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
            servers = [server_memory(supervisor.managed[f"code-server-{s}"].proc.pid) for s in slugs]
            row = {k: statistics.mean(s[k] for s in servers) for k in servers[0]}
            row.update(
                orgs=step,
                pair_max=max(s["pair"] for s in servers),
                webserver=tree_rss(supervisor.managed["webserver"].proc.pid),
                daemon=tree_rss(supervisor.managed["daemon"].proc.pid),
            )
            row["total"] = sum(s["pair"] for s in servers) + row["webserver"] + row["daemon"]
            results.append(row)
            print(
                f"{step:>3} orgs: code server mean {row['pair'] / MB:.0f} MB (max {row['pair_max'] / MB:.0f}; "
                f"proxy {row['proxy'] / MB:.0f} MB, child {row['child'] / MB:.0f} MB RSS, "
                f"{row['child_uss'] / MB:.0f} MB USS, {row['child_pss'] / MB:.0f} MB PSS), webserver "
                f"{row['webserver'] / MB:.0f} MB, daemon {row['daemon'] / MB:.0f} MB, total {row['total'] / MB:.0f} MB",
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
    fixed = first["webserver"] + first["daemon"] - shared_growth * first["orgs"]

    def fleet(server: float) -> tuple[float, int, float]:
        """(memory per org, organizations a 24 GiB host holds, GiB that 200 organizations need)."""
        per_org = server + shared_growth
        reserve = 6 * last["child"] + 1024 * MB  # 6 concurrent run workers, PostgreSQL and the API
        return per_org, int((HOST_BYTES - fixed - reserve) / per_org), (fixed + reserve + FLEET * per_org) / 1024**3

    per_org, holds, need = fleet(statistics.mean(r["pair"] for r in results))
    child_org, child_holds, child_need = fleet(statistics.mean(r["child"] for r in results))
    pss_org = statistics.mean(r["child_pss"] for r in results)
    print(
        f"webserver+daemon grow {shared_growth / MB:.1f} MB per org; fixed {fixed / MB:.0f} MB; "
        f"reserve {(6 * last['child'] + 1024 * MB) / MB:.0f} MB (6 run workers, PostgreSQL, API)"
    )
    per_step = "/".join(f"{r['total'] / MB / r['orgs']:.0f}" for r in results)
    steps = "/".join(str(s) for s in STEPS)
    print(
        f"memory per org {per_org / bare['pair']:.2f}x of a bare code server: {per_org / MB:.0f} MB/org "
        f"({steps} orgs: {per_step} MB/org in total), 24 GiB holds ~{holds} orgs, {FLEET} orgs need "
        f"{need:.1f} GiB; the child alone {child_org / MB:.0f} MB/org ({child_org / bare_child:.2f}x a bare "
        f"dagster api grpc, {pss_org / MB:.0f} MB PSS): ~{child_holds} orgs, {FLEET} need {child_need:.1f} GiB"
    )


if __name__ == "__main__":
    main()
