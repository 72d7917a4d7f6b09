"""``dalgo serve``'s processes under a real supervisord: restart what dies, stop everything by its own
signal, even a process that ignores SIGTERM (as gRPC code servers do here), and by PID even after
``dalgo serve`` or supervisord itself died."""

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

from dalgo_core.pids import start_time
from dalgo_ops.processes import ProcessSpec, Supervisor, stop_from_pid_files

IGNORES_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
PLAIN = "import time; time.sleep(600)"
# writes how it was asked to stop, so the test sees the signal supervisord sent
SAYS_TERM = (
    "import signal, sys, time; "
    "signal.signal(signal.SIGTERM, lambda *_: (open(sys.argv[1], 'w').write('TERM'), sys.exit(0))); "
    "time.sleep(600)"
)


def spec(name: str, code: str, *args: str, stop_signal: int = signal.SIGTERM, **extra: object) -> ProcessSpec:
    return ProcessSpec(
        name, [sys.executable, "-c", code, *args], dict(os.environ), Path.cwd(), stop_signal=stop_signal, **extra
    )


def gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def wait_for(check, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline
        time.sleep(0.1)


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    said: list[str] = []
    supervisor = Supervisor(tmp_path, log=said.append)
    supervisor.said = said  # type: ignore[attr-defined]
    supervisor.boot(dict(os.environ))
    yield supervisor
    supervisor.stop_all()


def pid_of(supervisor: Supervisor, name: str) -> int:
    return int(supervisor.state(name)["pid"])


def test_a_process_that_dies_is_restarted_and_all_stop_by_their_signals(supervisor: Supervisor, tmp_path: Path) -> None:
    supervisor.start(spec("code-server-a", IGNORES_TERM, stop_signal=signal.SIGKILL))
    supervisor.start(spec("webserver", SAYS_TERM, str(tmp_path / "webserver.stopped")))
    wait_for(lambda: pid_of(supervisor, "code-server-a") and pid_of(supervisor, "webserver"))
    first = pid_of(supervisor, "code-server-a")
    os.kill(first, signal.SIGKILL)

    wait_for(lambda: pid_of(supervisor, "code-server-a") not in (0, first))  # supervisord restarted it
    assert supervisor.check() == ["code-server-a"]
    assert "code-server-a exited (terminated by SIGKILL)" in supervisor.said[-1]  # type: ignore[attr-defined]
    restarted = pid_of(supervisor, "code-server-a")
    assert (tmp_path / "pids" / "code-server-a.pid").read_text().split()[0] == str(restarted)
    assert supervisor.check() == []  # nothing else died
    plain = pid_of(supervisor, "webserver")

    supervisor.stop_all()
    assert gone(restarted) and gone(plain)  # the code server ignores SIGTERM: it got SIGKILL
    assert (tmp_path / "webserver.stopped").read_text() == "TERM"  # the others stop cleanly
    assert not list((tmp_path / "pids").glob("*.pid"))


def test_a_program_removed_is_stopped_and_others_go_on(supervisor: Supervisor) -> None:
    supervisor.start(spec("code-server-a", PLAIN))
    supervisor.start(spec("code-server-b", PLAIN))
    wait_for(lambda: pid_of(supervisor, "code-server-a") and pid_of(supervisor, "code-server-b"))
    a, b = pid_of(supervisor, "code-server-a"), pid_of(supervisor, "code-server-b")
    supervisor.stop("code-server-a")
    assert gone(a) and not gone(b) and list(supervisor.managed) == ["code-server-b"]
    assert not (supervisor.programs / "code-server-a.conf").exists()


@pytest.mark.parametrize("supervisord_too", [False, True])
def test_leftovers_of_a_killed_serve_are_stopped_from_pid_files(tmp_path: Path, supervisord_too: bool) -> None:
    """``dalgo serve`` killed -9 leaves supervisord running its programs; supervisord killed too leaves
    the programs alone. Either way the next start (or ``dalgo serve stop``) stops them from the PID files."""
    first = Supervisor(tmp_path, log=lambda _: None)
    first.boot(dict(os.environ))
    first.start(spec("code-server-b", IGNORES_TERM, stop_signal=signal.SIGKILL))
    first.start(spec("daemon", PLAIN))
    wait_for(lambda: pid_of(first, "code-server-b") and pid_of(first, "daemon"))
    pids = [pid_of(first, "code-server-b"), pid_of(first, "daemon")]
    if supervisord_too:
        os.kill(first._daemon.pid, signal.SIGKILL)  # type: ignore[union-attr]
        first._daemon.wait()  # type: ignore[union-attr]
    # as if `dalgo serve` had been killed -9: nothing of `first` runs its stop

    assert stop_from_pid_files(tmp_path, grace=10) == sorted(
        ["code-server-b", "daemon", *([] if supervisord_too else ["supervisord"])]
    )
    wait_for(lambda: all(gone(pid) for pid in pids), timeout=10)
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


def test_a_process_that_cannot_start_is_named(supervisor: Supervisor) -> None:
    supervisor.start(spec("api", "raise SystemExit(3)", ready=lambda: False))
    with pytest.raises(RuntimeError, match=r"api exited while starting \(exit status 3\); see .*api\.log"):
        supervisor.wait_ready(["api"], timeout=30)


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


def test_a_code_server_under_supervisord_opens_no_dagster_storage(tmp_path: Path) -> None:
    """``dalgo serve`` starts the code servers while Dagster's storage is still being created: one that
    opened the instance of ``DAGSTER_HOME`` would create a second SQLite storage beside it and corrupt
    both. Under supervisord (whose programs inherit its environment, ``DAGSTER_HOME`` included) a code
    server answers and leaves ``DAGSTER_HOME`` empty."""
    from dalgo_ops.serve import ServeConfig, code_server, code_server_name
    from tests.support.postgres import free_port

    home = tmp_path / "dagster"
    home.mkdir()
    config = ServeConfig(postgres_url="", dagster_home=home, run_dir=tmp_path / "run")
    env = {**os.environ, "DAGSTER_HOME": str(home), "DALGO_HOME": str(tmp_path / "dalgo")}
    supervisor = Supervisor(config.run_dir, log=lambda _: None)
    supervisor.boot(env)
    try:
        supervisor.start(code_server(config, env, "demo_ngo", free_port()))
        supervisor.wait_ready([code_server_name("demo_ngo")], timeout=120)  # its child has loaded
        assert list(home.iterdir()) == []
    finally:
        supervisor.stop_all()
