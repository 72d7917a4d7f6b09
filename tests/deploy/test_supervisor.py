"""``dalgo serve``'s supervisor with real processes: restart what dies, stop everything by PID, even a
process that ignores SIGTERM (as gRPC code servers do here) and even after the supervisor itself died."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from dalgo_ops.processes import ProcessSpec, Supervisor, start_time, stop_from_pid_files

IGNORES_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
PLAIN = "import time; time.sleep(600)"


def spec(name: str, code: str, *, stop_signal: int = signal.SIGTERM, **extra: object) -> ProcessSpec:
    return ProcessSpec(
        name, [sys.executable, "-c", code], dict(os.environ), Path.cwd(), stop_signal=stop_signal, **extra
    )


def gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_process_that_dies_is_restarted_and_all_stop_by_pid(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, restart_delay=0, log=lambda _: None)
    stubborn = supervisor.start(spec("code-server-a", IGNORES_TERM, stop_signal=signal.SIGKILL))
    plain = supervisor.start(spec("webserver", PLAIN))
    first = stubborn.proc.pid
    os.kill(first, signal.SIGKILL)
    stubborn.proc.wait(10)

    assert supervisor.check() == ["code-server-a"]
    restarted = supervisor.managed["code-server-a"]
    assert restarted.proc.pid != first and restarted.restarts == 1 and restarted.proc.poll() is None
    assert (tmp_path / "pids" / "code-server-a.pid").read_text().split()[0] == str(restarted.proc.pid)
    assert supervisor.check() == []  # nothing else died

    supervisor.stop_all(grace=30)
    assert restarted.proc.returncode == -signal.SIGKILL  # a code server is killed, it ignores SIGTERM
    assert plain.proc.returncode == -signal.SIGTERM  # the others get the chance to stop cleanly
    assert not list((tmp_path / "pids").glob("*.pid"))


def test_leftovers_of_a_dead_supervisor_are_stopped_from_pid_files(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, log=lambda _: None)
    pids = [
        supervisor.start(spec("code-server-b", IGNORES_TERM, stop_signal=signal.SIGKILL)).proc.pid,
        supervisor.start(spec("daemon", PLAIN)).proc.pid,
    ]
    del supervisor  # as if `dalgo serve` had been killed -9

    assert stop_from_pid_files(tmp_path, grace=10) == ["code-server-b", "daemon"]
    deadline = time.time() + 10
    while not all(gone(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.1)
    assert all(gone(pid) for pid in pids)
    assert stop_from_pid_files(tmp_path) == []


def test_a_pid_file_naming_a_reused_pid_signals_nothing(tmp_path: Path) -> None:
    """The PID of a process the supervisor started, now held by another process (here: the same PID
    with another start time in the file), is left alone."""
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        (tmp_path / "pids").mkdir()
        started = start_time(bystander.pid)
        assert started is not None
        (tmp_path / "pids" / "daemon.pid").write_text(f"{bystander.pid} {int(signal.SIGKILL)} {started + 1}\n")
        assert stop_from_pid_files(tmp_path, grace=1) == []
        assert bystander.poll() is None and not (tmp_path / "pids" / "daemon.pid").exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_a_process_that_cannot_start_is_named(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, log=lambda _: None)
    supervisor.start(spec("api", "raise SystemExit(3)", ready=lambda: False))
    with pytest.raises(RuntimeError, match=r"api exited with code 3 while starting; see .*api\.log"):
        supervisor.wait_ready(["api"], timeout=30)
    supervisor.stop_all()


def test_a_second_start_on_the_same_state_folder_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    """Two ``dalgo up`` on one state folder would stop each other's processes and fight for the ports:
    the second is refused with the running supervisor's pid, and starts once that one is gone."""
    from dalgo_ops.serve import AlreadyRunning, ServeConfig, running_supervisor, serve

    first = subprocess.Popen([sys.executable, "-c", PLAIN])
    try:
        (tmp_path / "supervisor.pid").write_text(f"{first.pid} {start_time(first.pid)}\n")
        assert running_supervisor(tmp_path) == first.pid
        with pytest.raises(AlreadyRunning, match=f"supervisor pid {first.pid}"):
            serve(ServeConfig(postgres_url="", run_dir=tmp_path))
    finally:
        first.kill()
        first.wait()
    assert running_supervisor(tmp_path) is None  # a dead supervisor's file is no obstacle
