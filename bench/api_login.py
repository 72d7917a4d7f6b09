"""Benchmark: login, then current user / memberships under 20 concurrent clients.

Serves the API with gunicorn as ``dalgo serve`` starts it (its workers and threads) on 127.0.0.1 over a
temporary SQLite database, then measures, through the same server and client:

- the baseline: ``GET /api/health`` (no auth, no database);
- the API: every client's user logs in at once (``POST /api/login/``, PBKDF2 password checks), then
  each client alternates ``GET /api/currentuser`` and ``GET /api/users/`` (token lookup, membership and
  permissions queries).

Each client is a process of its own with one keep-alive connection (``_http.run_clients``, as the other
API benchmarks): client threads in one process would queue for its interpreter lock.

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
from pathlib import Path

from _http import QUIET, Client, api_env, api_server, free_port, pct, run_clients, wait_http

from dalgo_ops.serve import gunicorn_argv

REPO = Path(__file__).resolve().parent.parent
CLIENTS = 20
SECONDS = 8.0
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
    cmd = [*gunicorn_argv(f"127.0.0.1:{port}"), *QUIET]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        wait_http(port, "/api/health", timeout=60)
    except RuntimeError:
        proc.send_signal(signal.SIGTERM)
        raise RuntimeError(f"gunicorn did not answer on port {port}: see {log}") from None
    return proc


def log_in_all(port: int) -> tuple[list[str], list[float]]:
    """Every client's user logs in at once (PBKDF2 checks in parallel): their tokens and latencies."""
    tokens: list[str] = [""] * CLIENTS
    latencies: list[float] = [0.0] * CLIENTS

    def login(index: int) -> None:
        body = {"email": f"user{index}@bench.example.org", "password": PASSWORD}
        answer, latencies[index] = Client(port).request("POST", "/api/login/", body)
        tokens[index] = answer["token"]

    threads = [threading.Thread(target=login, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if not all(tokens):
        raise RuntimeError("a login failed")
    return tokens, latencies


def health_call(client: Client) -> float:
    return client.request("GET", "/api/health")[1]


def api_call(tokens: list[str]):
    """Alternately the current user and the users of the caller's organization, as one of the users."""
    state = {"n": 0, "headers": None}

    def call(client: Client) -> float:
        if state["headers"] is None:  # in the client's own process: one user per client process
            state["headers"] = {"Authorization": f"Bearer {tokens[os.getpid() % len(tokens)]}"}
        state["n"] += 1
        path = ("/api/currentuser", "/api/users/")[state["n"] % 2]
        return client.request("GET", path, headers=state["headers"])[1]

    return call


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="dalgo-api-bench-") as tmp:
        root = Path(tmp)
        env = api_env(root)
        prepare(env)
        port = free_port()
        server = start_server(env, port, root / "gunicorn.log")
        try:
            tokens, login_lat = log_in_all(port)
            health_rps, health_lat = run_clients(port, health_call, CLIENTS, SECONDS)
            api_rps, api_lat = run_clients(port, api_call(tokens), CLIENTS, SECONDS)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    print(f"server: {api_server()}, SQLite; {CLIENTS} clients, {SECONDS:g} s per phase; cpus {os.cpu_count()}")
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
