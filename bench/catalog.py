"""Benchmark: the connector catalog and a cached connector spec under 20 concurrent clients.

Serves the API with gunicorn (gthread workers) on 127.0.0.1 over a temporary SQLite database, reads the
spec of source-file once the way a frontend does (``GET .../spec`` answers 202 with a task; its worker
installs the connector from PyPI into a temporary folder and runs its ``spec`` in the sandbox; polled to
the end), then measures, through the same server and clients:

- the baseline: ``GET /api/health`` (no auth, no database);
- the API: each client alternates ``GET /api/sources/connectors`` (the catalog, whether each spec is
  cached) and ``GET /api/sources/connectors/source-file/spec`` (the cached spec, 20-odd KB of JSON
  schema), as an Account Manager.

Prints the first spec read, requests/s and p50/p99 latencies; the last line is the API's throughput as
a ratio of the baseline's, with its p99. Run with no arguments: ``.venv/bin/python bench/catalog.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _http import QUIET, Client, api_env, free_port, pct, run_clients, wait_http

from dalgo_ops.serve import gunicorn_argv

REPO = Path(__file__).resolve().parent.parent
CLIENTS = 20
SECONDS = 8.0
WORKERS = 3
THREADS = 4
PASSWORD = "Bench-pass-2024"
EMAIL = "manager@bench.example.org"
SPEC = "/api/sources/connectors/source-file/spec"


def prepare(env: dict[str, str]) -> None:
    """Migrate, then one organization and its Account Manager."""
    python = str(REPO / ".venv" / "bin" / "python")
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
    subprocess.run(
        [python, "manage.py", "createorganduser", "Bench NGO", EMAIL, "--password", PASSWORD],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )


def read_spec_once(client: Client, headers: dict[str, str]) -> float:
    """Seconds from the first ``GET .../spec`` to the spec answered (install, spec, cache)."""
    start = time.monotonic()
    task, _ = client.request("GET", SPEC, headers=headers)
    while task.get("status") not in ("succeeded", "failed"):
        time.sleep(0.5)
        task, _ = client.request("GET", task["poll"], headers=headers)
    if task["status"] != "succeeded":
        raise RuntimeError(f"reading the spec failed: {task['error']}")
    body, _ = client.request("GET", SPEC, headers=headers)
    assert "connection_specification" in body, body
    return time.monotonic() - start


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="dalgo-catalog-bench-") as tmp:
        root = Path(tmp)
        # no Dagster: the catalog does not need it
        env = api_env(root, DALGO_CONNECTORS_DIR=str(root / "connectors"), DALGO_DAGSTER_URL="http://127.0.0.1:9")
        prepare(env)
        port = free_port()
        log = root / "gunicorn.log"
        cmd = [*gunicorn_argv(f"127.0.0.1:{port}", WORKERS, THREADS), *QUIET]
        server = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
        try:
            wait_http(port, "/api/health", timeout=60)
            login, _ = Client(port).request("POST", "/api/login/", {"email": EMAIL, "password": PASSWORD})
            headers = {"Authorization": f"Bearer {login['token']}", "x-dalgo-org": "bench_ngo"}
            first = read_spec_once(Client(port, timeout=900), headers)

            def health(client: Client) -> float:
                return client.request("GET", "/api/health")[1]

            turn = [0]

            def catalog(client: Client) -> float:
                turn[0] += 1  # each client process alternates on its own copy
                path = "/api/sources/connectors" if turn[0] % 2 else SPEC
                return client.request("GET", path, headers=headers)[1]

            health_rps, health_lat = run_clients(port, health, CLIENTS, SECONDS)
            api_rps, api_lat = run_clients(port, catalog, CLIENTS, SECONDS)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    print(
        f"server: gunicorn {WORKERS} gthread workers x {THREADS} threads, SQLite; "
        f"{CLIENTS} client processes, {SECONDS:g} s per phase; cpus {os.cpu_count()}; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print(f"first spec read (install source-file, run its spec, cache): {first:.1f} s")
    print(f"health: {health_rps:.0f} req/s p50 {pct(health_lat, 50):.1f} ms p99 {pct(health_lat, 99):.1f} ms")
    print(f"catalog+spec: {api_rps:.0f} req/s p50 {pct(api_lat, 50):.1f} ms p99 {pct(api_lat, 99):.1f} ms")
    print(
        f"catalog ratio {api_rps / health_rps:.2f}: catalog+cached spec {api_rps:.0f} req/s "
        f"p50 {pct(api_lat, 50):.0f} ms p99 {pct(api_lat, 99):.0f} ms, health {health_rps:.0f} req/s "
        f"p99 {pct(health_lat, 99):.0f} ms"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
