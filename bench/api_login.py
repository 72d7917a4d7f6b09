"""Benchmark: login, then current user / memberships under 20 concurrent clients.

Serves the API with gunicorn (gthread workers) on 127.0.0.1 over a temporary SQLite database, then
measures, through the same server and client:

- the baseline: ``GET /api/health`` (no auth, no database);
- the API: each client logs in once (``POST /api/login/``, PBKDF2 password check), then alternates
  ``GET /api/currentuser`` and ``GET /api/users/`` (token lookup, membership and permissions queries).

Prints requests/s and p50/p99 latencies; the last line is the API's throughput as a ratio of the
baseline's. Run with no arguments: ``.venv/bin/python bench/api_login.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _http import QUIET, Client, api_env, free_port, pct, wait_http

from dalgo_ops.serve import gunicorn_argv

REPO = Path(__file__).resolve().parent.parent
CLIENTS = 20
SECONDS = 8.0
WORKERS = 3
THREADS = 4
PASSWORD = "Bench-pass-2024"


def prepare(env: dict[str, str]) -> None:
    """Migrate, create one organization and a member per client."""
    python = str(REPO / ".venv" / "bin" / "python")
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
    script = f"""
from dalgo_api.accounts.models import Role, User
from dalgo_api.orgs import services
org = services.create_org("Bench NGO")
roles = ["account-manager", "pipeline-manager", "analyst", "guest"]
for i in range({CLIENTS}):
    user = User.objects.create_user(f"user{{i}}@bench.example.org", "{PASSWORD}")
    services.add_member(org, user, Role.objects.get(slug=roles[i % len(roles)]))
"""
    subprocess.run([python, "manage.py", "shell", "-c", script], cwd=REPO, env=env, check=True)


def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    cmd = [*gunicorn_argv(f"127.0.0.1:{port}", WORKERS, THREADS), *QUIET]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        wait_http(port, "/api/health", timeout=60)
    except RuntimeError:
        proc.send_signal(signal.SIGTERM)
        raise RuntimeError(f"gunicorn did not answer on port {port}: see {log}") from None
    return proc


def run_clients(port: int, work) -> tuple[float, list[float], list[float]]:
    """Run ``work(client, index, stop_at, latencies, logins)`` in CLIENTS threads; returns
    (requests/s, latencies, login latencies)."""
    latencies: list[float] = []
    logins: list[float] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    stop_at = [0.0]
    # the clock starts when every client has logged in
    barrier = threading.Barrier(CLIENTS + 1, action=lambda: stop_at.__setitem__(0, time.monotonic() + SECONDS))

    def thread(index: int) -> None:
        own, own_logins = [], []
        try:
            client = Client(port)
            setup = work(client, index, None, own, own_logins)  # the login (before the clock)
            barrier.wait()
            work(client, index, stop_at[0], own, own_logins, setup)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()
        with lock:
            latencies.extend(own)
            logins.extend(own_logins)

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.monotonic()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return len(latencies) / (time.monotonic() - started), latencies, logins


def health_work(client, index, stop_at, latencies, logins, setup=None):
    if stop_at is None:
        return None
    while time.monotonic() < stop_at:
        latencies.append(client.request("GET", "/api/health")[1])
    return None


def api_work(client, index, stop_at, latencies, logins, setup=None):
    if stop_at is None:
        body, elapsed = client.request(
            "POST", "/api/login/", {"email": f"user{index}@bench.example.org", "password": PASSWORD}
        )
        logins.append(elapsed)
        return {"Authorization": f"Bearer {body['token']}"}
    paths = ("/api/currentuser", "/api/users/")
    n = 0
    while time.monotonic() < stop_at:
        latencies.append(client.request("GET", paths[n % 2], headers=setup)[1])
        n += 1
    return None


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="dalgo-api-bench-") as tmp:
        root = Path(tmp)
        env = api_env(root)
        prepare(env)
        port = free_port()
        server = start_server(env, port, root / "gunicorn.log")
        try:
            health_rps, health_lat, _ = run_clients(port, health_work)
            api_rps, api_lat, login_lat = run_clients(port, api_work)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    print(
        f"server: gunicorn {WORKERS} gthread workers x {THREADS} threads, SQLite; "
        f"{CLIENTS} clients, {SECONDS:g} s per phase; cpus {os.cpu_count()}"
    )
    print(f"login: {len(login_lat)} logins p50 {pct(login_lat, 50):.0f} ms p99 {pct(login_lat, 99):.0f} ms")
    print(f"health: {health_rps:.0f} req/s p50 {pct(health_lat, 50):.1f} ms p99 {pct(health_lat, 99):.1f} ms")
    print(f"currentuser+users: {api_rps:.0f} req/s p50 {pct(api_lat, 50):.1f} ms p99 {pct(api_lat, 99):.1f} ms")
    print(
        f"api ratio {api_rps / health_rps:.2f}: currentuser+users {api_rps:.0f} req/s "
        f"p50 {pct(api_lat, 50):.0f} ms p99 {pct(api_lat, 99):.0f} ms, health {health_rps:.0f} req/s "
        f"p50 {pct(health_lat, 50):.0f} ms"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
