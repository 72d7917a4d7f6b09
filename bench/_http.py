"""What the HTTP benchmarks share: a keep-alive client timing each request, waiting for a server,
percentiles, a free loopback port. Imported by the bench scripts (``bench/`` is on their path)."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# gunicorn flags of the API benchmarks beside ``dalgo serve``'s: keep-alive clients, no access log
QUIET = ["--keep-alive", "30", "--log-level", "warning"]


def api_server() -> str:
    """How ``dalgo serve`` runs the API here (``dalgo_ops.gunicorn_conf``), as the benchmarks print it."""
    from dalgo_ops import gunicorn_conf

    kind = "sync" if gunicorn_conf.threads == 1 else f"gthread x {gunicorn_conf.threads} threads"
    return f"gunicorn {gunicorn_conf.workers} {kind} workers"


def api_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment of a benchmark's API: its state, organizations and SQLite database under ``root``."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dalgo_api.settings",
        "DALGO_HOME": str(root / "home"),
        "DALGO_ORGS_DIR": str(root / "orgs"),
        "DALGO_WORKSPACE_FILE": str(root / "workspace.yaml"),
        "DALGO_API_DATABASE_URL": f"sqlite:///{root / 'api.sqlite3'}",
        "DALGO_API_SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
        "DALGO_API_LOG_LEVEL": "WARNING",
        **extra,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, path: str, timeout: float = 240) -> None:
    """Return once ``GET path`` answers below 500; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"nothing answered {path} on port {port}")


def pct(values: list[float], q: int) -> float:
    """The q-th percentile of latencies in seconds, in milliseconds."""
    if len(values) < 2:
        return values[0] * 1000
    return statistics.quantiles(values, n=100)[q - 1] * 1000


class Client:
    """One keep-alive connection, as a browser or frontend server holds, re-opened when the server
    closed an idle one."""

    def __init__(self, port: int, timeout: float = 60):
        self.port = port
        self.timeout = timeout
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def _send(self, method: str, path: str, data: str | None, headers: dict) -> http.client.HTTPResponse:
        self.conn.request(method, path, body=data, headers=headers)
        return self.conn.getresponse()

    def request(
        self, method: str, path: str, body: dict | None = None, headers: dict | None = None
    ) -> tuple[Any, float]:
        """The decoded 2xx JSON answer and the seconds it took; raises on any other status."""
        data = json.dumps(body) if body is not None else None
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        start = time.perf_counter()
        try:
            response = self._send(method, path, data, hdrs)
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            start = time.perf_counter()
            response = self._send(method, path, data, hdrs)
        payload = response.read()
        elapsed = time.perf_counter() - start
        if not 200 <= response.status < 300:
            raise RuntimeError(f"{method} {path}: {response.status} {payload[:300]!r}")
        return json.loads(payload), elapsed


# Seconds of load before and after a phase's measured window, not counted: the 20 clients' simultaneous
# first requests, and the clients that finished their window exiting (a Python process's teardown) while
# the others' last requests were still answered, made most of a phase's slowest 1% (bench/api_fleet.py's
# log pages: 36 of 44 fell in the first 0.2 s or the last 30 ms of an 8 s phase).
RAMP_SECONDS = 0.5


def run_clients(port: int, call: Callable[[Client], float], clients: int, seconds: float) -> tuple[float, list[float]]:
    """``call(client)`` (returning a request's seconds) in ``clients`` client processes; the requests
    started within a window of ``seconds`` are counted, the load running ``RAMP_SECONDS`` before and
    after it (the steady state a server sees from clients that come and go, not a harness's start and end).

    Each client is its own process with one keep-alive connection, as independent browsers are: client
    threads in one process would queue for its interpreter lock and add that wait to every latency.
    Each warms up with one call before the clock starts. Returns (requests/s, latencies)."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(clients + 1)
    results = ctx.Queue()

    def client_process() -> None:
        client = Client(port)
        latencies: list[float] = []
        try:
            call(client)
            barrier.wait()
            begin = time.monotonic() + RAMP_SECONDS
            end = begin + seconds
            while (started := time.monotonic()) < end + RAMP_SECONDS:
                took = call(client)
                if begin <= started < end:
                    latencies.append(took)
            results.put((latencies, None))
        except BaseException as exc:  # reported by the parent
            barrier.abort()
            results.put((latencies, repr(exc)))

    procs = [ctx.Process(target=client_process, daemon=True) for _ in range(clients)]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=120)
    collected = [results.get(timeout=seconds + 120) for _ in procs]
    for proc in procs:
        proc.join()
    errors = [error for _, error in collected if error]
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed: {errors[0]}")
    latencies = [lat for own, _ in collected for lat in own]
    return len(latencies) / seconds, latencies


def stop_all(procs: list[subprocess.Popen]) -> None:
    """SIGTERM the servers a benchmark started, the last started first; kill one still running after 30 s."""
    for proc in reversed(procs):
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def print_phases(results: dict[str, tuple[float, list[float]]]) -> None:
    """One line per phase: throughput and latency percentiles."""
    for name, (rps, lat) in results.items():
        print(f"{name}: {rps:.0f} req/s p50 {pct(lat, 50):.1f} ms p99 {pct(lat, 99):.1f} ms ({len(lat)} requests)")
