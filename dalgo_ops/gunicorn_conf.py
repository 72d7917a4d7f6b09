"""How gunicorn serves the API (``gunicorn -c python:dalgo_ops.gunicorn_conf dalgo_api.wsgi:application``):
the one place ``dalgo serve``, ``dalgo up``, the compose file, the Helm chart and the API benchmarks take it
from. Read from the environment as gunicorn starts:

- ``DALGO_API_WORKERS``: worker processes; by default one more than the cores this process may use;
- ``DALGO_API_THREADS``: requests a worker serves at once; 1 by default.

With one thread a worker is gunicorn's sync worker: it takes a connection only when it is free, so requests
wait in one queue, the listening socket's, and the next free worker takes the oldest. That is what keeps the
slowest answers close to the median when many clients read runs and logs at once: a request's work is
Python (Dagster's storage reads, Django), which a worker's threads cannot share (the interpreter lock), and
a threaded worker keeps each keep-alive connection it accepted, so a worker holding more of them answers
all of them later. Measured with ``bench/api_fleet.py`` on 2 cores (20 clients): 2 threaded workers of
4 threads answered one client's requests in 8 ms on average and another's in 31 ms; 3 sync workers answer
every client alike. A sync worker answers with ``Connection: close`` and reads a request at once, as
gunicorn's sync worker does: behind a proxy that buffers (nginx, a Kubernetes ingress), as deploy/README.md
puts it.

One more worker than cores keeps the cores busy while a worker waits on PostgreSQL; more only add switches
between processes (5 workers on 2 cores: the log page's p99 86 ms against 54 with 3). ``dalgo up`` (one person
trying the platform) runs one worker of 4 threads instead (gunicorn then uses its threaded worker).

A sync worker closes a connection as soon as its answer is written (``post_request`` below), unless the
client sent more than the request it answered. gunicorn's own close after ``Connection: close`` lingers
until the client closes its end (up to 2 s), so that data still arriving cannot reset the connection
before the client read its answer; a worker lingering waits on the client's network and scheduling, and
answers no one meanwhile. Measured with ``bench/api_fleet.py``'s seeding and log-page clients at 20
organizations, the two alternated three times in one run: 513-577 req/s lingering, 573-654 closing at once.

A sync worker serves one request to its end, and gunicorn restarts a worker silent for ``timeout`` seconds,
so the timeout is longer than the longest request the API answers: a change that prepares a dbt project
(at most 900 s, ``dalgo_core.dbt_projects``) and reloads the organization's location (300 s), or undoes a
refused change with a second reload.
"""

from __future__ import annotations

import os
import socket
from typing import Any


def setting(name: str, default: int) -> int:
    """A positive integer from the environment, else ``default``."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


def default_workers() -> int:
    """One more than the cores this process may run on."""
    return len(os.sched_getaffinity(0)) + 1


workers = setting("DALGO_API_WORKERS", default_workers())
threads = setting("DALGO_API_THREADS", 1)
timeout = setting("DALGO_API_TIMEOUT_SECONDS", 1800)
graceful_timeout = 20


def post_request(worker: Any, req: Any, environ: dict[str, Any], resp: Any) -> None:
    """gunicorn's hook after each answer: a sync worker closes the connection at once when the client
    sent nothing more than the request (its body read to the end, nothing waiting in the socket), as
    gunicorn did before its lingering close. A request whose body was not all read, a chunked one, or
    a client that already sent more, keeps gunicorn's lingering close: closing on unread data would make
    the kernel reset the connection, and the client could lose its answer."""
    from gunicorn.http.body import LengthReader
    from gunicorn.workers.sync import SyncWorker

    if not isinstance(worker, SyncWorker) or resp is None or not resp.headers_sent:
        return  # a threaded worker keeps its connections alive; an unanswered request gets gunicorn's error page
    reader = getattr(req.body, "reader", None)
    if not isinstance(reader, LengthReader) or reader.length:
        return
    sock = resp.sock
    timeout = sock.gettimeout()
    try:
        sock.setblocking(False)
        more = sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        more = b""
    except OSError:
        return  # the client is gone: gunicorn's close handles it
    if more:
        sock.settimeout(timeout)
        return
    sock.close()  # gunicorn's lingering close then finds it closed and returns
