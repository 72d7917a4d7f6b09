"""The one-host run launcher's worker health check, against real processes and a real (SQLite) instance.

The run worker is what a code server starts: a ``multiprocessing`` spawn child, whose pid the run reports
in its ``Started process for run (pid: N).`` engine event. The whole path (daemon, PostgreSQL, a killed
worker) is in ``test_serve.py``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator

import psutil
import pytest
from dagster import DagsterInstance, DagsterRunStatus, instance_for_test
from dagster._core.events import EngineEventData
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._core.test_utils import create_run_for_test

from dalgo_assets.instance.run_launcher import CLOCK_SLACK_SECONDS, OneHostRunLauncher, WorkerRecord, worker_problem

LOCAL = json.dumps({"host": "127.0.0.1", "port": 4000})


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    launcher = {"module": "dalgo_assets.instance.run_launcher", "class": "OneHostRunLauncher"}
    with instance_for_test(overrides={"run_launcher": launcher}) as inst:
        yield inst


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "condition not reached"
        time.sleep(0.05)


def spawn_worker() -> multiprocessing.Process:
    """A process started the way a code server starts a run worker (returned once it runs Python)."""
    proc = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(120,))
    proc.start()
    wait_for(lambda: "--multiprocessing-fork" in psutil.Process(proc.pid).cmdline())
    return proc


@pytest.fixture
def worker() -> Iterator[multiprocessing.Process]:
    proc = spawn_worker()
    try:
        yield proc
    finally:
        if proc.pid and psutil.pid_exists(proc.pid):
            os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)


def started_run(instance: DagsterInstance, pid: int | None, grpc_info: str = LOCAL) -> DagsterRun:
    run = create_run_for_test(instance, status=DagsterRunStatus.STARTED, tags={GRPC_INFO_TAG: grpc_info})
    if pid is not None:
        instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
    return run


def check(instance: DagsterInstance, run: DagsterRun) -> tuple[WorkerStatus, str]:
    result = instance.run_launcher.check_run_worker_health(run)
    return result.status, result.msg or ""


def test_the_instance_loads_the_launcher_and_run_monitoring_can_use_it(instance: DagsterInstance) -> None:
    assert isinstance(instance.run_launcher, OneHostRunLauncher)
    assert instance.run_launcher.supports_check_run_worker_health


def test_a_live_worker_is_running_and_a_killed_one_failed(
    instance: DagsterInstance, worker: multiprocessing.Process
) -> None:
    run = started_run(instance, worker.pid)
    assert check(instance, run) == (WorkerStatus.RUNNING, "")
    assert instance.run_launcher.check_run_worker_health(run).run_worker_id == str(worker.pid)

    os.kill(worker.pid, signal.SIGKILL)  # not reaped yet: its parent (the "code server") does not wait
    wait_for(lambda: psutil.Process(worker.pid).status() == psutil.STATUS_ZOMBIE)
    status, msg = check(instance, run)
    assert status == WorkerStatus.FAILED and "zombie" in msg

    worker.join(10)  # reaped: the pid is gone
    status, msg = check(instance, run)
    assert (status, msg) == (WorkerStatus.FAILED, f"the run worker (pid {worker.pid}) has exited")
    assert f"pid {worker.pid}" in instance.run_launcher.get_run_worker_debug_info(run)


def test_a_reused_pid_is_not_taken_for_the_worker(instance: DagsterInstance) -> None:
    # the pid now belongs to a process that is no run worker (this test process)
    status, msg = check(instance, started_run(instance, os.getpid()))
    assert status == WorkerStatus.FAILED and "its pid now runs" in msg

    # ...or to a process that looks like one but started after the run reported its worker
    later = spawn_worker()
    try:
        assert worker_problem(WorkerRecord(later.pid, time.time())) is None
        problem = worker_problem(WorkerRecord(later.pid, time.time() - CLOCK_SLACK_SECONDS - 60))
        assert problem is not None and "started later" in problem
    finally:
        later.kill()
        later.join(10)


def test_a_worker_on_another_host_is_never_failed(instance: DagsterInstance) -> None:
    gone = psutil.Popen(["true"])
    gone.wait()
    for grpc_info in ({"host": "code-server-alpha", "port": 4000}, {"host": "10.0.3.7", "port": 4000}):
        run = started_run(instance, gone.pid, json.dumps(grpc_info))
        assert check(instance, run)[0] == WorkerStatus.RUNNING  # run monitoring fails any other status
    run = started_run(instance, gone.pid, json.dumps({"host": "localhost", "socket": "/tmp/grpc.sock"}))
    assert check(instance, run)[0] == WorkerStatus.FAILED


def test_a_run_whose_worker_has_not_reported_yet_is_running(instance: DagsterInstance) -> None:
    run = started_run(instance, None)
    instance.report_engine_event("Executing steps using multiprocess executor: parent process (pid: 1)", run)
    assert check(instance, run)[0] == WorkerStatus.RUNNING
