"""Starting tasks and recording what their worker does.

``start`` saves the task and, once the request's transaction commits, starts its worker: a detached
process (``settings.TASK_WORKER``, by default ``python -m dalgo_ops.tasks <id>``) that does the work and
writes its progress, result or error on the task's row, so any API process (several gunicorn workers,
several hosts on one database) answers the frontend's polls. No API worker waits for the task. The
task's input is sealed with the secrets key: it may hold the secrets of a configuration to check.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from dalgo_api.tasks.models import Task
from dalgo_core import layout, secret_store
from dalgo_core.pids import alive

logger = logging.getLogger(__name__)

# a queued task whose worker never claimed it (it could not start) fails after this long
UNCLAIMED_SECONDS = 120


def start(org: Any, user: Any, kind: str, subject: str, params: dict[str, Any]) -> Task:
    """Save a task and start its worker when the transaction commits."""
    task = Task.objects.create(
        org=org,
        created_by=user,
        kind=kind,
        subject=subject[:200],
        params=secret_store.seal(json.dumps(params)),
    )
    transaction.on_commit(lambda: spawn(task))
    return task


def spawn(task: Task) -> None:
    """Start the task's worker, detached from this process's session (a gunicorn restart does not end
    it); a worker that cannot start fails the task."""
    log_dir = layout.run_dir() / "tasks"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / f"{task.id}.log", "ab") as log:
            proc = subprocess.Popen(
                [*settings.TASK_WORKER, str(task.id)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
    except OSError as exc:
        logger.error("task %s: its worker cannot start: %s", task.id, exc)
        fail(task, f"the task's worker cannot start: {exc}")
        return
    threading.Thread(target=proc.wait, name=f"task-{task.id}", daemon=True).start()  # reaped when it ends


# --- the worker's side ------------------------------------------------------------------------------


def claim(task_id: str) -> Task:
    """The task, now running in this process."""
    task = Task.objects.select_related("org", "created_by").get(pk=task_id)
    task.status, task.host, task.pid = Task.RUNNING, socket.gethostname(), os.getpid()
    task.save(update_fields=["status", "host", "pid", "updated_at"])
    return task


def params(task: Task) -> dict[str, Any]:
    return json.loads(secret_store.reveal(task.params)) if task.params else {}


def report(task: Task, message: str) -> None:
    task.progress = [*task.progress, {"at": datetime.now(UTC).isoformat(), "message": message}]
    task.save(update_fields=["progress", "updated_at"])


def succeed(task: Task, result: Any) -> None:
    task.status, task.result, task.params = Task.SUCCEEDED, result, ""
    task.save(update_fields=["status", "result", "params", "updated_at"])


def fail(task: Task, error: str) -> None:
    task.status, task.error, task.params = Task.FAILED, error, ""  # its input is not kept
    task.save(update_fields=["status", "error", "params", "updated_at"])


def check_worker(task: Task) -> Task:
    """A task whose worker is gone without finishing it is failed (read on every poll)."""
    if task.finished:
        return task
    if task.status == Task.RUNNING and task.pid and task.host == socket.gethostname() and not alive(task.pid):
        fail(task, "the task's worker stopped before it finished; start the task again")
    elif task.status == Task.QUEUED and task.created_at < datetime.now(UTC) - timedelta(seconds=UNCLAIMED_SECONDS):
        fail(task, "the task's worker did not start; start the task again")
    return task
