"""How gunicorn runs the API (``dalgo_ops/gunicorn_conf.py``), read by gunicorn itself as ``dalgo serve``,
the compose file and the Helm chart start it, from the environment they give it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dalgo_ops.gunicorn_conf import setting
from dalgo_ops.naming import API_COMMAND, GUNICORN_CONF, WSGI_APP
from dalgo_ops.serve import gunicorn_argv, http_ok
from tests.support.orgs import REPO
from tests.support.postgres import free_port

READ_CONFIG = """
import sys
from gunicorn.app.wsgiapp import WSGIApplication
sys.argv = sys.argv[1:]
cfg = WSGIApplication().cfg  # gunicorn's own reading of its command line and config file; no app import
print(cfg.worker_class_str, cfg.workers, cfg.threads, cfg.timeout)
"""


def gunicorn_reads(argv: list[str], **env: str) -> tuple[str, int, int, int]:
    """(worker class, workers, threads, timeout) as gunicorn reads ``argv`` (its arguments) in ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DALGO_API_")}
    done = subprocess.run(
        [sys.executable, "-c", READ_CONFIG, *argv], cwd=REPO, env={**clean, **env}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    kind, workers, threads, timeout = done.stdout.split()
    return kind, int(workers), int(threads), int(timeout)


def test_production_runs_one_sync_worker_per_core_and_one_more() -> None:
    kind, workers, threads, timeout = gunicorn_reads(["gunicorn", *API_COMMAND.split()[1:]])
    assert (kind, workers, threads) == ("sync", len(os.sched_getaffinity(0)) + 1, 1)
    # longer than a change that prepares a dbt project (900 s) and reloads its location (300 s)
    assert timeout >= 1500


def test_operators_set_workers_threads_and_timeout() -> None:
    argv = ["gunicorn", "--config", GUNICORN_CONF, WSGI_APP]
    got = gunicorn_reads(argv, DALGO_API_WORKERS="5", DALGO_API_THREADS="1", DALGO_API_TIMEOUT_SECONDS="600")
    assert got == ("sync", 5, 1, 600)
    # more than one thread: gunicorn's threaded worker
    assert gunicorn_reads(argv, DALGO_API_WORKERS="1", DALGO_API_THREADS="4")[:3] == ("gthread", 1, 4)


def test_dalgo_serve_starts_gunicorn_with_the_config_and_its_overrides() -> None:
    assert gunicorn_reads(gunicorn_argv("127.0.0.1:0"))[0] == "sync"
    # what dalgo up passes (one person trying the platform): one worker of four threads
    assert gunicorn_reads(gunicorn_argv("127.0.0.1:0", workers=1, threads=4))[:3] == ("gthread", 1, 4)


@pytest.mark.parametrize("value", ["0", "-2", "three", "2.5"])
def test_a_bad_setting_names_the_variable(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DALGO_API_WORKERS", value)
    with pytest.raises(ValueError, match=f"DALGO_API_WORKERS must be a positive integer, not '{value}'"):
        setting("DALGO_API_WORKERS", 3)


BODY_LIMIT = 16_384  # the API's request size limit here (``DALGO_API_MAX_BODY_BYTES``)


@pytest.fixture
def one_sync_worker(dalgo_env: Path) -> Iterator[int]:
    """The API as ``dalgo serve`` starts it (``gunicorn_argv``), with one sync worker; its port."""
    port = free_port()
    log = dalgo_env / "gunicorn.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dalgo_api.settings", "DALGO_API_MAX_BODY_BYTES": str(BODY_LIMIT)}
    with log.open("wb") as out:
        server = subprocess.Popen(
            gunicorn_argv(f"127.0.0.1:{port}", workers=1), cwd=REPO, env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 60
        while not http_ok(f"http://127.0.0.1:{port}/api/health"):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answer(conn: socket.socket) -> bytes:
    """Everything the server sent on ``conn`` up to its end of the connection."""
    chunks = []
    while chunk := conn.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


HEALTH = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def test_a_sync_worker_takes_the_next_client_while_the_last_one_keeps_its_connection(one_sync_worker: int) -> None:
    """gunicorn's own close waits up to 2 s for the client to close its end; the worker answers no one
    meanwhile. A client that read its answer and holds the connection (a slow network, a busy machine)
    must not hold the worker."""
    address = ("127.0.0.1", one_sync_worker)
    with socket.create_connection(address) as slow:
        slow.sendall(HEALTH)
        assert _answer(slow).startswith(b"HTTP/1.1 200 OK")
        # the slow client keeps its end open; the next one is answered well before 2 s
        with socket.create_connection(address, timeout=1.5) as nxt:
            nxt.sendall(HEALTH)
            assert _answer(nxt).startswith(b"HTTP/1.1 200 OK")


def test_an_upload_refused_before_its_body_is_read_still_gets_its_answer(one_sync_worker: int) -> None:
    """The API refuses a body over its limit from the ``Content-Length`` alone (413), without reading it.
    Closing with that body unread would make the kernel reset the connection, and the client lose the
    answer: such a connection keeps gunicorn's lingering close."""
    body = b"x" * (3 * BODY_LIMIT)  # within what gunicorn's lingering close drains (64 KiB)
    head = b"POST /api/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", one_sync_worker), timeout=10) as conn:
            conn.sendall(head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            assert _answer(conn).startswith(b"HTTP/1.1 413")
