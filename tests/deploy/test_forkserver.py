"""The fork server the code servers of ``dalgo up``/``dalgo serve`` are forked from
(``dalgo_ops.forkserver``): ``dalgo-fork`` behaves as the ``dagster`` command it runs (output, exit status,
signals), an organization's code server is forked from the server, and nothing outlives what it belongs
to: a stopped requester, a killed requester, a killed fork server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from dalgo_ops.forkserver.client import SOCKET_ENV, WAIT_FOR_SERVER_ENV
from dalgo_ops.serve import grpc_ok
from tests.support.orgs import write_spec
from tests.support.postgres import free_port
from tests.support.processes import code_server_processes, listening_process

BIN = Path(sys.executable).parent


def _wait(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def fork_env(dalgo_env: Path) -> dict[str, str]:
    return {**os.environ, SOCKET_ENV: str(dalgo_env / "fork.sock"), "DAGSTER_HOME": ""}


@pytest.fixture
def fork_server(fork_env: dict[str, str], dalgo_env: Path) -> Iterator[psutil.Process]:
    path = Path(fork_env[SOCKET_ENV])
    proc = subprocess.Popen([sys.executable, "-m", "dalgo_ops.forkserver.server", str(path)], env=fork_env)
    _wait(path.exists, "the fork server's socket")
    yield psutil.Process(proc.pid)
    proc.terminate()
    proc.wait(30)


def _fork(env: dict[str, str], *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "dalgo-fork"), *args], env=env, **kwargs)


def test_a_command_runs_forked_with_the_callers_streams_and_exit_status(fork_server, fork_env):
    done = subprocess.run([str(BIN / "dalgo-fork"), "--version"], env=fork_env, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("dagster, version "), done
    wrong = subprocess.run([str(BIN / "dalgo-fork"), "no-such-command"], env=fork_env, capture_output=True, text=True)
    assert wrong.returncode == 2 and "No such command" in wrong.stderr, wrong
    assert fork_server.children() == []  # reaped


def test_without_a_fork_server_dagster_runs_itself(fork_env):
    env = {**fork_env, WAIT_FOR_SERVER_ENV: "0"}
    done = subprocess.run([str(BIN / "dalgo-fork"), "--version"], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("dagster, version "), done


def _code_server(env: dict[str, str], dalgo_env: Path, slug: str) -> tuple[subprocess.Popen, int]:
    write_spec(dalgo_env / "orgs", slug, {"slug": slug, "name": slug.title()})
    port = free_port()
    args = ["code-server", "start", "-h", "127.0.0.1", "-p", str(port), "-m", "dalgo_assets.locations", "-a", slug]
    return _fork(env, *args, "--location-name", f"org_{slug}"), port


def test_a_code_server_and_its_server_are_forked_and_end_with_their_requester(fork_server, fork_env, dalgo_env):
    stopped, stopped_port = _code_server(fork_env, dalgo_env, "alpha")
    killed, killed_port = _code_server(fork_env, dalgo_env, "beta")
    _wait(lambda: grpc_ok("127.0.0.1", stopped_port) and grpc_ok("127.0.0.1", killed_port), "both code servers")
    proxies = [listening_process(stopped_port), listening_process(killed_port)]
    forked = fork_server.children()
    assert all(p in forked for p in proxies)  # Dagster's proxies, forked
    # each proxy started its `python -m dagster api grpc` with dalgo-fork-python: forked too
    servers = [p for p in forked if p not in proxies]
    assert len(servers) == 2 and len(forked) == 4
    for proxy in proxies:
        (python,) = proxy.children()
        assert Path(python.cmdline()[1]).name == "dalgo-fork-python", python.cmdline()

    stopped.send_signal(signal.SIGTERM)  # supervisord stopping the program: the stub forwards it
    assert stopped.wait(60) is not None
    killed.kill()  # no forwarding possible: the fork server sees its requester gone
    killed.wait(10)
    _wait(lambda: fork_server.children() == [], "the fork server's children to end and be reaped")
    assert fork_server.is_running()


def test_a_killed_fork_server_takes_its_code_servers_and_their_requesters_end(fork_server, fork_env, dalgo_env):
    requester, port = _code_server(fork_env, dalgo_env, "alpha")
    _wait(lambda: grpc_ok("127.0.0.1", port), "the code server")
    forked = fork_server.children()  # the proxy and its server
    assert len(forked) == 2
    fork_server.kill()
    assert requester.wait(30) == 1  # a supervisor restarts it (dagster itself, until a fork server is back)
    gone = lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in forked)  # noqa: E731
    _wait(gone, "the proxy and its server")


def test_a_reload_forks_a_new_server_for_the_proxy(fork_server, fork_env, dalgo_env):
    from dagster._grpc.client import DagsterGrpcClient

    requester, port = _code_server(fork_env, dalgo_env, "alpha")
    _wait(lambda: grpc_ok("127.0.0.1", port), "the code server")
    proxy = listening_process(port)
    (before,) = [p for p in fork_server.children() if p != proxy]
    assert before in code_server_processes(port)  # how an operator finds it: the socket its proxy named
    DagsterGrpcClient(port=port, host="127.0.0.1").reload_code(timeout=120)  # what Dagit's Reload sends
    _wait(lambda: not before.is_running() or before.status() == psutil.STATUS_ZOMBIE, "the old server to end")
    _wait(lambda: len(fork_server.children()) == 2, "the new server")
    (after,) = [p for p in fork_server.children() if p != proxy]
    assert after.pid != before.pid and grpc_ok("127.0.0.1", port)
    requester.terminate()
    requester.wait(60)


@pytest.mark.parametrize("line", [b"[1, 2]\n", b'{"argv": "code-server"}\n', b"not json\n"])
def test_a_malformed_request_is_refused_and_the_fork_server_goes_on(fork_server, fork_env, line):
    import socket as sockets

    from dalgo_core import unix_socket

    with unix_socket.connect(Path(fork_env[SOCKET_ENV]), 10) as conn:
        sockets.send_fds(conn, [line], [0, 1, 2])
        assert b'"error"' in conn.recv(4096)
    done = subprocess.run([str(BIN / "dalgo-fork"), "--version"], env=fork_env, capture_output=True, text=True)
    assert done.returncode == 0 and fork_server.is_running(), done
