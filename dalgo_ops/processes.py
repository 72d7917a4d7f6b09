"""A small process supervisor: start, watch, restart and stop the platform's processes by PID.

Each process gets its own session (process group), a PID file (PID, stop signal and the process's start
time, its identity) and a log file under the run folder, so ``dalgo serve stop`` can stop everything
even when the supervisor itself died, and never signals a process that merely reuses a PID. Processes are stopped by
signalling their own process group (their workers go with them): SIGTERM and a grace period for the
webserver, the daemon and gunicorn; SIGKILL straight away for gRPC code servers, which ignore SIGTERM
when started from a background shell (they inherit SIG_IGN).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dalgo_core.pids import alive


@dataclass
class ProcessSpec:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    stop_signal: int = signal.SIGTERM
    restart: bool = True
    ready: Callable[[], bool] | None = field(default=None, repr=False)


@dataclass
class Managed:
    spec: ProcessSpec
    proc: subprocess.Popen
    started: float
    restarts: int = 0


def start_time(pid: int) -> int | None:
    """When the process started (clock ticks since boot, from /proc): with the PID, its identity, so a
    PID the kernel gave to another process since is never signalled."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def signal_group(pid: int, sig: int) -> None:
    """Signal the process group led by ``pid`` (the process and its children), or the PID alone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            os.kill(pid, sig)


def stop_pids(pids: dict[int, int], grace: float = 20.0) -> None:
    """Stop ``{pid: signal}``: signal each, wait up to ``grace`` seconds, then SIGKILL what is left."""
    for pid, sig in pids.items():
        signal_group(pid, sig)
    deadline = time.time() + grace
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.2)
    for pid in pids:
        if alive(pid):
            signal_group(pid, signal.SIGKILL)


class Supervisor:
    """Owns the processes of one ``dalgo serve``; its state is the run folder (PID and log files)."""

    def __init__(self, run_dir: Path, *, restart_delay: float = 5.0, log: Callable[[str], None] = print):
        self.run_dir = run_dir
        self.pid_dir = run_dir / "pids"
        self.log_dir = run_dir / "logs"
        self.restart_delay = restart_delay
        self.log = log
        self.managed: dict[str, Managed] = {}
        self._died_at: dict[str, float] = {}
        for folder in (self.pid_dir, self.log_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def start(self, spec: ProcessSpec) -> Managed:
        with open(self.log_dir / f"{spec.name}.log", "ab") as out:
            proc = subprocess.Popen(
                spec.argv,
                env=spec.env,
                cwd=spec.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        started = start_time(proc.pid) or 0
        (self.pid_dir / f"{spec.name}.pid").write_text(f"{proc.pid} {int(spec.stop_signal)} {started}\n")
        previous = self.managed.get(spec.name)
        managed = Managed(spec, proc, time.time(), restarts=previous.restarts + 1 if previous else 0)
        self.managed[spec.name] = managed
        return managed

    def wait_ready(self, names: list[str], timeout: float = 180.0) -> None:
        """Wait until every named process answers its readiness check; raise naming the ones that do not."""
        pending = [n for n in names if self.managed[n].spec.ready is not None]

        def all_ready() -> bool:
            for name in list(pending):
                managed = self.managed[name]
                if managed.proc.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with code {managed.proc.returncode} while starting; "
                        f"see {self.log_dir / (name + '.log')}"
                    )
                if managed.spec.ready():
                    pending.remove(name)
            return not pending

        self.wait_until(all_ready, lambda: ", ".join(pending), timeout)

    def wait_until(self, done: Callable[[], bool], what: str | Callable[[], str], timeout: float = 180.0) -> None:
        """Poll ``done`` until it holds; raise a TimeoutError naming ``what`` did not get ready."""
        deadline = time.time() + timeout
        while not done():
            if time.time() > deadline:
                name = what() if callable(what) else what
                raise TimeoutError(f"not ready after {timeout:.0f} s: {name} (logs in {self.log_dir})")
            time.sleep(0.3)

    def check(self) -> list[str]:
        """Restart processes that died (after ``restart_delay``); return the names restarted."""
        restarted = []
        now = time.time()
        for name, managed in list(self.managed.items()):
            if managed.proc.poll() is None or not managed.spec.restart:
                continue
            died = self._died_at.setdefault(name, now)
            if now - died < self.restart_delay:
                continue
            self.log(f"{name} exited with code {managed.proc.returncode}; restarting it")
            signal_group(managed.proc.pid, signal.SIGKILL)  # its orphaned children, if any
            self.start(managed.spec)
            del self._died_at[name]
            restarted.append(name)
        return restarted

    def stop(self, name: str, grace: float = 20.0) -> None:
        """Stop one process for good (it is no longer wanted): by its stop signal, then SIGKILL."""
        managed = self.managed.pop(name)
        self._died_at.pop(name, None)
        stop_pids({managed.proc.pid: managed.spec.stop_signal}, grace)
        with contextlib.suppress(subprocess.TimeoutExpired):
            managed.proc.wait(1)
        (self.pid_dir / f"{name}.pid").unlink(missing_ok=True)

    def stop_all(self, grace: float = 20.0) -> None:
        pids = {m.proc.pid: m.spec.stop_signal for m in self.managed.values()}
        stop_pids(pids, grace)
        for managed in self.managed.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                managed.proc.wait(1)
        for pidfile in self.pid_dir.glob("*.pid"):
            pidfile.unlink(missing_ok=True)


def stop_from_pid_files(run_dir: Path, grace: float = 20.0) -> list[str]:
    """Stop the processes a (possibly dead) supervisor left PID files for; return their names. A PID
    whose process started at another time than the file says is another process now: left alone."""
    pid_dir = run_dir / "pids"
    found: dict[int, int] = {}
    names = []
    for pidfile in sorted(pid_dir.glob("*.pid")):
        try:
            pid, sig, started = (int(x) for x in pidfile.read_text().split())
        except ValueError:  # unreadable, or written by an older supervisor without a start time
            pidfile.unlink()
            continue
        if alive(pid) and start_time(pid) == started:
            found[pid] = sig
            names.append(pidfile.stem)
        pidfile.unlink()
    stop_pids(found, grace)
    return names
