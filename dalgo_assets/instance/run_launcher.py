"""The run launcher of the one-host topology (``dalgo serve``): Dagster's ``DefaultRunLauncher`` whose run
workers the daemon's run monitoring can check.

A code server starts each run worker as a local subprocess, and the worker reports its pid in the
engine event ``Started process for run (pid: N).``. The daemon's run monitoring calls
``check_run_worker_health`` for every STARTED run: a worker that is gone, a zombie, or whose pid now
belongs to another process fails the run, even when its code server cannot report the death (hung,
stopped, or killed with it). Run retries then re-execute it.

The pid is only checked when the run's code server is on this host (its ``dagster/grpc_info`` tag names a
loopback address or a socket). Otherwise the worker lives elsewhere (a container, a pod) and the answer
is RUNNING: Dagster's run monitoring fails a run on any other status, including UNKNOWN.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

import psutil
from dagster import DagsterEventType, DagsterInstance, DagsterRun, DefaultRunLauncher

# no public equivalent: the result type of the run launcher's check_run_worker_health
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus  # noqa: TID251

from dalgo_core.names import GRPC_INFO_TAG

STARTED_PREFIX = "Started process for run (pid: "
# psutil's create time derives from the boot time in whole seconds: allow that much disagreement.
CLOCK_SLACK_SECONDS = 2.0
# A run worker is a multiprocessing child of its code server, or `dagster api execute_run`.
WORKER_MARKERS = ("--multiprocessing-fork", "execute_run")


@dataclass(frozen=True)
class WorkerRecord:
    """The run worker a run reported: its pid and when it reported it."""

    pid: int
    reported_at: float


def local_code_server(run: DagsterRun) -> bool:
    """True when the run's code server (hence its worker) is on this host: a loopback address or a socket."""
    raw = run.tags.get(GRPC_INFO_TAG)
    if not raw:
        return False
    info = json.loads(raw)
    if info.get("socket"):
        return True
    host = str(info.get("host") or "")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def worker_record(instance: DagsterInstance, run_id: str) -> WorkerRecord | None:
    """The latest ``Started process for run (pid: N).`` engine event of the run."""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ENGINE_EVENT, ascending=False).records
    for record in records:
        entry = record.event_log_entry
        if not entry.message.startswith(STARTED_PREFIX):
            continue
        pid = entry.get_dagster_event().engine_event_data.metadata.get("pid")
        if pid is not None:
            return WorkerRecord(int(pid.value), entry.timestamp)
    return None


def worker_problem(worker: WorkerRecord) -> str | None:
    """Why the run worker is not running (gone, zombie, pid reused), or None if it is (or cannot be told)."""
    try:
        proc = psutil.Process(worker.pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return f"the run worker (pid {worker.pid}) has exited (a zombie its code server has not reaped)"
        if proc.create_time() > worker.reported_at + CLOCK_SLACK_SECONDS:
            return f"the run worker (pid {worker.pid}) has exited: its pid belongs to a process started later"
        cmdline = " ".join(proc.cmdline())
    except psutil.NoSuchProcess:
        return f"the run worker (pid {worker.pid}) has exited"
    except psutil.AccessDenied:
        return None  # another user's process: not ours to judge
    if not any(marker in cmdline for marker in WORKER_MARKERS):
        return f"the run worker (pid {worker.pid}) has exited: its pid now runs '{cmdline[:200]}'"
    return None


class OneHostRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` plus the worker health check Dagster's run monitoring uses."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        if not local_code_server(run):
            return CheckRunHealthResult(WorkerStatus.RUNNING, "the run worker is on another host: not checked")
        worker = worker_record(self._instance, run.run_id)
        if worker is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "the run worker has not reported its pid yet")
        problem = worker_problem(worker)
        if problem:
            return CheckRunHealthResult(WorkerStatus.FAILED, problem, run_worker_id=str(worker.pid))
        return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(worker.pid))

    def get_run_worker_debug_info(self, run: DagsterRun, include_container_logs: bool | None = True) -> str | None:
        worker = worker_record(self._instance, run.run_id)
        if worker is None:
            return None
        where = run.tags.get(GRPC_INFO_TAG, "{}")
        return f"Run worker pid {worker.pid}, launched by the code server {where}."
