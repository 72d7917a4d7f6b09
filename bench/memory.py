"""Benchmark: memory of the production topology with 5, 10 and 20 copies of the demo organization loaded.

Copies the demo organization (two dbt projects, an embedded faker connection, a freshness pipeline and a
cron pipeline; prepared once, its manifests copied), starts the fork server and the organizations' code
servers in batches with ``dalgo serve``'s own process specs (each ``dalgo-fork code-server start``: the
proxy the fork server forks, and the ``dagster api grpc`` child the proxy starts), then the webserver and
the daemon on a PostgreSQL instance (a throwaway server; no run is ever dequeued, so the automation sensors
tick but launch nothing), and measures each process once every location is loaded and the daemon has run
its first ticks (each code server has then evaluated its automation sensor). The baselines, measured in
the same run: a bare code server (``dagster code-server start``: a proxy and its child) and a bare
``dagster api grpc``, both serving an empty ``Definitions``.

Memory is PSS (proportional set size): a page several processes map counts a share in each, so the sum
over processes is what the host gives them; RSS counts every shared page in full in each process (the
libraries, and what a forked proxy shares with the fork server). Per organization it reports its code
server's PSS (``dalgo-fork``, the proxy, the child), RSS and USS. The last line is the memory per
organization (its code server plus the webserver's, daemon's and fork server's growth per organization)
as a ratio of the bare code server, how many organizations a 24 GiB host holds after the fixed processes
and a reserve for concurrent run workers, and what 200 organizations need.
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
from tests.support.processes import code_server_processes  # noqa: E402

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


def memory(procs: list[psutil.Process]) -> dict[str, int]:
    """RSS, PSS and USS summed over ``procs`` (PSS shares out the pages several processes map: a forked
    process's pages shared with the fork server, the libraries every process maps)."""
    out = {"rss": 0, "pss": 0, "uss": 0}
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            info = proc.memory_full_info()
            out["rss"] += info.rss
            out["pss"] += info.pss
            out["uss"] += info.uss
    return out


def server_memory(requester: int, port: int) -> dict[str, int]:
    """An organization's code server: ``dalgo-fork`` (what supervisord runs) and the proxy the fork server
    forked for it (it listens on the organization's port), then the server that loads the definitions
    (``dagster api grpc``, forked too, with the ``dalgo-fork-python`` the proxy started it by); or, for a
    bare code server, the proxy and its child."""
    procs = code_server_processes(port)
    proxy, server = procs[0], procs[1:]
    front = [proxy] if requester == proxy.pid else [psutil.Process(requester), proxy]
    whole, rest = memory([*front, *server]), memory(server)
    return {**whole, "proxy_pss": whole["pss"] - rest["pss"], "child_rss": rest["rss"], "child_pss": rest["pss"]}


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
    from dalgo_ops.processes import ProcessSpec, Supervisor
    from dalgo_ops.serve import (
        BIN,
        FORK_SERVER,
        ServeConfig,
        code_server,
        daemon,
        fork_server,
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
        supervisor.boot(env)

        def pid(name: str) -> int:
            return int(supervisor.state(name)["pid"])

        empty = ["-f", str(root / "empty_defs.py"), "-a", "defs"]
        for name, command in (("bare-child", ["api", "grpc"]), ("bare-pair", ["code-server", "start"])):
            port = free_port()
            argv = [str(BIN / "dagster"), *command, "-h", "127.0.0.1", "-p", str(port), *empty]
            ready = functools.partial(grpc_ok, "127.0.0.1", port)
            supervisor.start(ProcessSpec(name, argv, env, root, ready=ready))
        supervisor.wait_ready(["bare-child", "bare-pair"])
        time.sleep(3)
        bare_child = memory([psutil.Process(pid("bare-child"))])
        argv = supervisor.managed["bare-pair"].argv
        bare = server_memory(pid("bare-pair"), int(argv[argv.index("-p") + 1]))
        print(
            f"bare code server (empty Definitions): {bare['pss'] / MB:.0f} MB PSS, {bare['rss'] / MB:.0f} MB RSS "
            f"(proxy {bare['proxy_pss'] / MB:.0f} MB PSS, child {bare['child_pss'] / MB:.0f} MB PSS); a bare "
            f"dagster api grpc alone {bare_child['pss'] / MB:.0f} MB PSS",
            flush=True,
        )
        supervisor.start(fork_server(config, env))  # the organizations' code servers fork from it
        supervisor.wait_ready([FORK_SERVER])

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
                    supervisor.stop(name)
            supervisor.start(webserver(config, env))
            supervisor.start(daemon(config, env))
            supervisor.wait_ready(["webserver"], timeout=600)
            wait_loaded(config.webserver_url, len(slugs))
            time.sleep(SETTLE_SECONDS)  # the daemon loads the workspace and runs its first sensor ticks
            servers = [server_memory(pid(f"code-server-{s}"), ports[s]) for s in slugs]
            row = {k: statistics.mean(s[k] for s in servers) for k in servers[0]}
            row.update(
                orgs=step,
                pss_max=max(s["pss"] for s in servers),
                webserver=tree_rss(pid("webserver")),
                daemon=tree_rss(pid("daemon")),
                fork_server=memory([psutil.Process(pid(FORK_SERVER))])["pss"],
            )
            row["total"] = sum(s["pss"] for s in servers) + row["webserver"] + row["daemon"] + row["fork_server"]
            results.append(row)
            print(
                f"{step:>3} orgs: code server mean {row['pss'] / MB:.0f} MB PSS (max {row['pss_max'] / MB:.0f}; "
                f"{row['rss'] / MB:.0f} MB RSS, {row['uss'] / MB:.0f} MB USS; dalgo-fork and the forked proxy "
                f"{row['proxy_pss'] / MB:.0f} MB PSS, its server {row['child_pss'] / MB:.0f} MB PSS, "
                f"{row['child_rss'] / MB:.0f} MB RSS), fork server {row['fork_server'] / MB:.0f} MB, webserver "
                f"{row['webserver'] / MB:.0f} MB, daemon {row['daemon'] / MB:.0f} MB, total {row['total'] / MB:.0f} MB",
                flush=True,
            )
    finally:
        supervisor.stop_all(grace=10)
        postgres.destroy()
        shutil.rmtree(root, ignore_errors=True)

    first, last = results[0], results[-1]
    shared = [r["webserver"] + r["daemon"] + r["fork_server"] for r in results]
    shared_growth = (shared[-1] - shared[0]) / (last["orgs"] - first["orgs"])
    fixed = shared[0] - shared_growth * first["orgs"]
    reserve = 6 * last["child_rss"] + 1024 * MB  # 6 concurrent run workers, PostgreSQL and the API

    def fleet(server: float) -> tuple[float, int, float]:
        """(memory per org, organizations a 24 GiB host holds, GiB that 200 organizations need)."""
        per_org = server + shared_growth
        return per_org, int((HOST_BYTES - fixed - reserve) / per_org), (fixed + reserve + FLEET * per_org) / 1024**3

    per_org, holds, need = fleet(statistics.mean(r["pss"] for r in results))
    print(
        f"webserver+daemon+fork server grow {shared_growth / MB:.1f} MB per org; fixed {fixed / MB:.0f} MB; "
        f"reserve {reserve / MB:.0f} MB (6 run workers, PostgreSQL, API)"
    )
    per_step = "/".join(f"{r['total'] / MB / r['orgs']:.0f}" for r in results)
    server = statistics.mean(r["child_pss"] for r in results)
    steps = "/".join(str(s) for s in STEPS)
    print(
        f"memory per org {per_org / bare['pss']:.2f}x of a bare code server's PSS: {per_org / MB:.0f} MB/org "
        f"({steps} orgs: {per_step} MB/org in total), 24 GiB holds ~{holds} orgs, {FLEET} orgs need {need:.1f} GiB "
        f"(target 110 MB/org; the server that loads the definitions {server / MB:.0f} MB PSS, "
        f"{server / bare_child['pss']:.2f}x a bare dagster api grpc)"
    )


if __name__ == "__main__":
    main()
