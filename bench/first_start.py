"""How long ``dalgo up`` takes from the command to every location loaded and the API answering, fresh
(no Dagster storage, no API database) and warm (the storage of the previous start), against ``dagster
dev`` on the same organizations (their workspace of module entries) in the same run, fresh and warm.

The organizations are the repository's own (``orgs/``); their dbt manifests are prepared once before
any timing (both sides load the same prepared manifests). Median of ``ROUNDS`` each.

    .venv/bin/python bench/first_start.py
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.postgres import free_port, free_port_range  # noqa: E402

BIN = Path(sys.executable).parent
ROUNDS = 3
LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"


def loaded(web: int, expected: int) -> bool:
    try:
        answer = requests.post(f"http://127.0.0.1:{web}/graphql", json={"query": LOCATIONS}, timeout=5).json()
        entries = answer["data"]["workspaceOrError"]["locationEntries"]
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return False
    return len(entries) == expected and all(e["loadStatus"] == "LOADED" for e in entries)


def api_ok(api: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{api}/api/health", timeout=5).ok
    except requests.RequestException:
        return False


def session_processes(sid: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


def timed_start(argv: list[str], env: dict[str, str], cwd: Path, ready: Callable[[], bool]) -> float:
    """Seconds from the command to ``ready()``; then the command is stopped with SIGTERM, and whatever
    it left running is killed (``dagster dev`` leaves its code server and the runs it started going for
    a minute after SIGTERM), so that no start is timed beside another one's leftovers."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        while not ready():
            if proc.poll() is not None or time.perf_counter() - started > 900:
                raise RuntimeError(f"{argv[0]} did not come up (exit {proc.returncode})")
            time.sleep(0.1)
        return time.perf_counter() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(180)
        for left in session_processes(proc.pid):
            left.kill()
        psutil.wait_procs(session_processes(proc.pid), timeout=30)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="dalgo-bench-first-start-") as tmp:
        root = Path(tmp)
        home = root / "home"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "DALGO_"))},
            "DALGO_HOME": str(home),
            "DALGO_ORGS_DIR": str(REPO / "orgs"),
            "DAGSTER_DISABLE_TELEMETRY": "1",
        }
        workspace = root / "workspace.yaml"
        subprocess.run([str(BIN / "dalgo"), "workspace", "--output", str(workspace)], env=env, check=True)
        expected = workspace.read_text().count("location_name:")
        dev_home = root / "dagster-dev"
        web, api = free_port(), free_port()
        up = [str(BIN / "dalgo"), "up", "--port", str(web), "--api-port", str(api)]
        up += ["--grpc-base-port", str(free_port_range())]
        dev = [str(BIN / "dagster"), "dev", "-w", str(workspace), "-p", str(web)]
        times: dict[str, list[float]] = {k: [] for k in ("up fresh", "up warm", "dev fresh", "dev warm")}
        for _ in range(ROUNDS):
            for folder in (home / "platform" / "dagster", dev_home):
                shutil.rmtree(folder, ignore_errors=True)
            (home / "platform" / "api.sqlite3").unlink(missing_ok=True)
            dev_home.mkdir()
            for kind in ("fresh", "warm"):
                times[f"up {kind}"].append(timed_start(up, env, REPO, lambda: loaded(web, expected) and api_ok(api)))
                times[f"dev {kind}"].append(
                    timed_start(dev, {**env, "DAGSTER_HOME": str(dev_home)}, REPO, lambda: loaded(web, expected))
                )
        median = {k: statistics.median(v) for k, v in times.items()}
        for kind, seconds in median.items():
            print(f"{kind}: {seconds:.1f} s (median of {ROUNDS})", flush=True)
        print(
            f"dalgo up vs dagster dev ({expected} location(s)): fresh {median['up fresh'] / median['dev fresh']:.2f}x "
            f"({median['up fresh']:.1f} s vs {median['dev fresh']:.1f} s), warm "
            f"{median['up warm'] / median['dev warm']:.2f}x ({median['up warm']:.1f} s vs {median['dev warm']:.1f} s)"
        )


if __name__ == "__main__":
    main()
