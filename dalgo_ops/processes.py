"""The platform's processes under supervisord (Supervisor, http://supervisord.org, from PyPI).

``dalgo serve`` generates supervisord's configuration in the run folder and starts it; each process is a
program of its own (``programs/<name>.conf``: its command, stop signal and grace, its log file rotated at
50 MB, restarted when it dies, with supervisord's back-off when it keeps dying at start), added and
removed over supervisord's XML-RPC socket as organizations come and go. Stopping is supervisord's own:
each program gets its stop signal (SIGTERM and a grace period for the webserver, the daemon and gunicorn;
SIGKILL at once for gRPC code servers, which ignore SIGTERM when started from a background shell), to its
whole process group (its workers go with it), then SIGKILL.

``dalgo serve`` stays the controller above it: the order of the start, the readiness checks, the
organizations the workspace gains or loses, the runs in flight at stop. Beside supervisord's own files, a
PID file per process (PID, stop signal and the process's start time, its identity) lets ``dalgo serve
stop`` (or the next start) stop everything even when ``dalgo serve`` or supervisord itself was killed, and
never signal a process that merely reuses a PID.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from supervisor.xmlrpc import SupervisorTransport

from dalgo_core.pids import alive, start_time

SUPERVISORD = "supervisord"
LOG_MAX_BYTES = "50MB"
LOG_BACKUPS = 5
STOP_GRACE_SECONDS = 20
START_SECONDS = 5  # a program that dies sooner is restarted with a growing delay (supervisord's back-off)
START_RETRIES = 100


@dataclass
class ProcessSpec:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    stop_signal: int = signal.SIGTERM
    restart: bool = True
    ready: Callable[[], bool] | None = field(default=None, repr=False)


def signal_group(pid: int, sig: int) -> None:
    """Signal the process group led by ``pid`` (the process and its children), or the PID alone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            os.kill(pid, sig)


def stop_pids(pids: dict[int, int], grace: float = float(STOP_GRACE_SECONDS)) -> None:
    """Stop ``{pid: signal}``: signal each, wait up to ``grace`` seconds, then SIGKILL what is left."""
    for pid, sig in pids.items():
        signal_group(pid, sig)
    deadline = time.time() + grace
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.2)
    for pid in pids:
        if alive(pid):
            signal_group(pid, signal.SIGKILL)


def _socket_path(run_dir: Path) -> Path:
    """supervisord's socket in the run folder, or (a Unix socket path is at most 107 bytes) in the
    temporary folder under a name derived from the run folder."""
    beside = run_dir / "supervisord.sock"
    if len(str(beside)) < 100:
        return beside
    digest = hashlib.sha256(str(run_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"dalgo-supervisord-{digest}.sock"


def _quote(value: str) -> str:
    return value.replace("%", "%%")  # supervisord expands %(name)s in its configuration


class Supervisor:
    """One ``dalgo serve``'s supervisord: its configuration and state in the run folder."""

    def __init__(self, run_dir: Path, *, log: Callable[[str], None] = print) -> None:
        self.run_dir = run_dir
        self.pid_dir = run_dir / "pids"
        self.log_dir = run_dir / "logs"
        self.programs = run_dir / "programs"
        self.conf = run_dir / "supervisord.conf"
        self.socket = _socket_path(run_dir)
        self.log = log
        self.managed: dict[str, ProcessSpec] = {}
        self._pids: dict[str, int] = {}  # the PID each program had when last seen
        self._fatal: set[str] = set()
        self._restarted: list[str] = []
        self._daemon: subprocess.Popen | None = None
        self._env: dict[str, str] = {}
        for folder in (self.pid_dir, self.log_dir, self.programs):
            folder.mkdir(parents=True, exist_ok=True)

    # --- supervisord itself ------------------------------------------------------------------------

    def boot(self, env: dict[str, str]) -> None:
        """Start supervisord with no program (they are added in order by ``start``); every program
        inherits ``env``."""
        self._env = dict(env)
        for stale in self.programs.glob("*.conf"):
            stale.unlink()
        self.socket.unlink(missing_ok=True)
        self.conf.write_text(
            "[supervisord]\n"
            "nodaemon=true\n"
            f"logfile={_quote(str(self.log_dir / 'supervisord.log'))}\n"
            "logfile_maxbytes=10MB\nlogfile_backups=3\n"
            f"pidfile={_quote(str(self.run_dir / 'supervisord.pid'))}\n"
            f"childlogdir={_quote(str(self.log_dir))}\n"
            "identifier=dalgo\n\n"
            "[unix_http_server]\n"
            f"file={_quote(str(self.socket))}\nchmod=0700\n\n"
            "[supervisorctl]\n"  # `supervisorctl -c <run folder>/supervisord.conf status` for operators
            f"serverurl=unix://{_quote(str(self.socket))}\n\n"
            "[rpcinterface:supervisor]\n"
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
            "[include]\n"
            f"files = {_quote(str(self.programs))}/*.conf\n"
        )
        executable = Path(sys.executable).with_name(SUPERVISORD)
        self._daemon = subprocess.Popen(
            [str(executable), "-c", str(self.conf)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._write_pid(SUPERVISORD, self._daemon.pid, signal.SIGTERM)

        def answers() -> bool:
            if self._daemon is not None and self._daemon.poll() is not None:
                raise RuntimeError(f"supervisord exited at start; see {self.log_dir / 'supervisord.log'}")
            try:
                return self._rpc().supervisor.getState()["statename"] == "RUNNING"
            except (OSError, xmlrpc.client.Fault):
                return False

        self.wait_until(answers, "supervisord", timeout=60)

    def _rpc(self) -> xmlrpc.client.ServerProxy:
        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    # --- programs ----------------------------------------------------------------------------------

    def _program(self, spec: ProcessSpec) -> str:
        """The program's section. It inherits supervisord's environment; what its own adds or changes is
        its ``environment``."""
        extra = {k: v for k, v in spec.env.items() if self._env.get(k) != v}
        if any('"' in v or "\n" in v for v in extra.values()) or any("\n" in a for a in spec.argv):
            raise ValueError(f"{spec.name}: a command or environment value supervisord cannot hold on one line")
        lines = [
            f"[program:{spec.name}]",
            f"command={_quote(shlex.join(spec.argv))}",
            f"directory={_quote(str(spec.cwd))}",
            "autostart=true",
            f"autorestart={'true' if spec.restart else 'false'}",
            f"startsecs={START_SECONDS}",
            f"startretries={START_RETRIES}",
            f"stopsignal={signal.Signals(spec.stop_signal).name.removeprefix('SIG')}",
            f"stopwaitsecs={STOP_GRACE_SECONDS}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={_quote(str(self.log_dir / (spec.name + '.log')))}",
            f"stdout_logfile_maxbytes={LOG_MAX_BYTES}",
            f"stdout_logfile_backups={LOG_BACKUPS}",
        ]
        if extra:
            lines.append("environment=" + ",".join(f'{k}="{_quote(v)}"' for k, v in extra.items()))
        return "\n".join(lines) + "\n"

    def start(self, spec: ProcessSpec) -> None:
        """Add the program to supervisord, which starts it (and restarts it whenever it dies)."""
        (self.programs / f"{spec.name}.conf").write_text(self._program(spec))
        rpc = self._rpc()
        rpc.supervisor.reloadConfig()
        rpc.supervisor.addProcessGroup(spec.name)
        self.managed[spec.name] = spec
        self._fatal.discard(spec.name)
        self._seen(spec.name, rpc.supervisor.getProcessInfo(spec.name))

    def _seen(self, name: str, info: dict) -> None:
        """Remember the program's PID (and its PID file) as supervisord reports it; a new PID for a
        program that had one means supervisord restarted it (it died)."""
        pid = int(info.get("pid") or 0)
        before = self._pids.get(name)
        if pid and before != pid:
            if before:
                self.log(f"{name} exited ({self.last_exit(name)}); supervisord restarted it")
                self._restarted.append(name)
            self._pids[name] = pid
            self._write_pid(name, pid, self.managed[name].stop_signal)

    def _write_pid(self, name: str, pid: int, sig: int) -> None:
        (self.pid_dir / f"{name}.pid").write_text(f"{pid} {int(sig)} {start_time(pid) or 0}\n")

    def last_exit(self, name: str) -> str:
        """How the program last exited, as supervisord logged it (``exit status 3``, ``terminated by
        SIGKILL``); its XML-RPC answers do not say while it backs off."""
        log = self.log_dir / "supervisord.log"
        with contextlib.suppress(OSError):
            lines = log.read_text(errors="replace").splitlines()[-500:]
            for line in reversed(lines):
                if f"exited: {name} (" in line:
                    return line.split(f"exited: {name} (", 1)[1].split(";")[0].rstrip(")")
        return "no exit logged"

    def state(self, name: str) -> dict:
        info = self._rpc().supervisor.getProcessInfo(name)
        self._seen(name, info)
        return info

    def wait_ready(self, names: list[str], timeout: float = 180.0) -> None:
        """Wait until every named process answers its readiness check; raise naming the ones that do not."""
        pending = [n for n in names if self.managed[n].ready is not None]

        def all_ready() -> bool:
            for name in list(pending):
                info = self.state(name)
                if info["statename"] in {"BACKOFF", "FATAL", "EXITED"}:
                    raise RuntimeError(
                        f"{name} exited while starting ({self.last_exit(name)}); see {self.log_dir / (name + '.log')}"
                    )
                ready = self.managed[name].ready
                if info["statename"] in {"STARTING", "RUNNING"} and ready is not None and ready():
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
        """What supervisord did since the last check: the programs it restarted (they died), logged with
        their exit code, and those it gave up on (FATAL). Returns the names restarted."""
        for info in self._rpc().supervisor.getAllProcessInfo():
            name = info["name"]
            if name not in self.managed:
                continue
            if info["statename"] == "FATAL" and name not in self._fatal:
                self._fatal.add(name)
                self.log(f"{name} keeps exiting at start; supervisord gave up (see {self.log_dir / (name + '.log')})")
            self._seen(name, info)
        restarted, self._restarted = self._restarted, []
        return restarted

    def stop(self, name: str) -> None:
        """Stop one program for good (it is no longer wanted): by its stop signal, then SIGKILL."""
        rpc = self._rpc()
        with contextlib.suppress(xmlrpc.client.Fault):  # not running
            rpc.supervisor.stopProcessGroup(name)
        rpc.supervisor.removeProcessGroup(name)
        (self.programs / f"{name}.conf").unlink(missing_ok=True)
        (self.pid_dir / f"{name}.pid").unlink(missing_ok=True)
        self.managed.pop(name, None)
        self._pids.pop(name, None)

    def stop_all(self, grace: float = STOP_GRACE_SECONDS + 30.0) -> None:
        """supervisord stops every program by its own stop signal, then exits; whatever is left (it was
        killed, say) is stopped from the PID files."""
        if self._daemon is not None and self._daemon.poll() is None:
            with contextlib.suppress(OSError, xmlrpc.client.Fault):
                self._rpc().supervisor.shutdown()
            try:
                self._daemon.wait(grace)
            except subprocess.TimeoutExpired:
                signal_group(self._daemon.pid, signal.SIGKILL)
                self._daemon.wait()
        stop_from_pid_files(self.run_dir)
        self.managed.clear()
        self._pids.clear()


def stop_from_pid_files(run_dir: Path, grace: float = float(STOP_GRACE_SECONDS)) -> list[str]:
    """Stop the processes a (possibly dead) ``dalgo serve`` left PID files for: supervisord first (it
    stops its programs), then any program left without it; return their names. A PID whose process
    started at another time than the file says is another process now: left alone."""
    pid_dir = run_dir / "pids"
    found: dict[str, tuple[int, int]] = {}
    for pidfile in sorted(pid_dir.glob("*.pid")):
        try:
            pid, sig, started = (int(x) for x in pidfile.read_text().split())
        except ValueError:  # unreadable, or written by an older supervisor without a start time
            pidfile.unlink()
            continue
        if alive(pid) and start_time(pid) == started:
            found[pidfile.stem] = (pid, sig)
        pidfile.unlink()
    if SUPERVISORD in found:
        stop_pids({found[SUPERVISORD][0]: found[SUPERVISORD][1]}, grace + STOP_GRACE_SECONDS)
    stop_pids({pid: sig for name, (pid, sig) in found.items() if name != SUPERVISORD}, grace)
    return sorted(found)
