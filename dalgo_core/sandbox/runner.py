"""Run one call of tenant code (dbt, an Airbyte connector, git) under a policy.

``DALGO_SANDBOX`` chooses how:

- ``bwrap`` (the default): bubblewrap. A new mount namespace holding only the system's programs and
  libraries, the platform's Python environment (read-only), the policy's read-only inputs and the
  organization's root (writable); its own network, pid, ipc and uts namespaces; a new user namespace
  without capabilities; an empty ``/tmp``; the environment cleared and rebuilt from the policy; a
  system-call filter refusing symbolic links and FIFOs (``seccomp``). The platform's state, the secrets key, the API
  and Dagster databases and every other organization are not there to be named. The network is the
  policy's endpoints and the egress proxy, nothing else (not Dagit, not the API, not Dagster's database).
- ``off``: for development on a machine without bubblewrap, and only when set explicitly: the
  environment is still scrubbed, but files and network are the platform's. ``dalgo up`` and
  ``dalgo serve`` say so when they start.

With ``bwrap`` and no working bubblewrap, tenant code does not run (``SandboxUnavailable``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from dalgo_core.sandbox.policy import Policy
from dalgo_core.sandbox.relay import PROXY_PORT, Relays
from dalgo_core.sandbox.seccomp import tenant_filter

MODE_ENV = "DALGO_SANDBOX"
_FORWARD = Path(__file__).with_name("forward.py")
_INSIDE = "/run/dalgo"
_FILTER_FD = 9  # the descriptor bubblewrap reads its system-call filter from (``_with_filter``)
# Only what programs need to start: never the whole of /etc (it holds the host's credentials).
_ETC = (
    "ssl",
    "ca-certificates",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "alternatives",
    "nsswitch.conf",
    "gitconfig",
    "mime.types",
)


class SandboxUnavailable(RuntimeError):
    """Tenant code cannot run: the sandbox is required and does not work on this host."""


def mode() -> str:
    value = os.environ.get(MODE_ENV, "bwrap").strip().lower()
    if value not in ("bwrap", "off"):
        raise SandboxUnavailable(f"{MODE_ENV}={value!r}: use 'bwrap' (the default) or 'off' (development only)")
    return value


def _filter_file(folder: Path) -> Path:
    """The sandbox's system-call filter, written in ``folder`` for bubblewrap to read."""
    path = folder / "seccomp.bpf"
    path.write_bytes(tenant_filter())
    return path


def _with_filter(filter_file: Path, bwrap_args: list[str]) -> list[str]:
    """``bwrap_args`` started with ``filter_file`` open on ``_FILTER_FD`` for its ``--seccomp``: through
    ``sh``, so every caller's own ``subprocess`` call (which closes other descriptors) passes it."""
    return ["/bin/sh", "-c", f'exec "$@" {_FILTER_FD}<"$0"', str(filter_file), *bwrap_args]


@functools.cache
def _bwrap_works() -> str | None:
    """None if bubblewrap runs here with its system-call filter, otherwise why not."""
    exe = shutil.which("bwrap")
    if not exe:
        return "bubblewrap is not installed (Debian: apt-get install bubblewrap)"
    with tempfile.TemporaryDirectory(prefix="dalgo-sandbox-") as tmp:
        try:
            filter_file = _filter_file(Path(tmp))
        except RuntimeError as exc:  # seccomp.Unsupported
            return str(exc)
        args = [exe, "--unshare-all", "--unshare-user", "--die-with-parent", "--seccomp", str(_FILTER_FD)]
        probe = subprocess.run(
            _with_filter(filter_file, [*args, "--ro-bind", "/", "/", "true"]), capture_output=True, text=True
        )
    if probe.returncode == 0:
        return None
    return f"bubblewrap cannot create namespaces or load its system-call filter here: {probe.stderr.strip()}"


def status() -> str:
    """One line for the start of ``dalgo up`` / ``dalgo serve``: how tenant code runs."""
    if mode() == "off":
        return (
            f"WARNING: {MODE_ENV}=off: tenant code (dbt, connectors, git) runs WITHOUT a sandbox; for development only"
        )
    problem = _bwrap_works()
    if problem:
        return f"ERROR: tenant code will not run: {problem}; install it, or set {MODE_ENV}=off for development"
    return "tenant code runs sandboxed (bubblewrap)"


def require() -> None:
    if mode() == "bwrap" and (problem := _bwrap_works()):
        raise SandboxUnavailable(
            f"tenant code is not run without its sandbox: {problem} (or set {MODE_ENV}=off, for development only)"
        )


def _system_binds() -> list[str]:
    args: list[str] = []
    for top in ("usr", "bin", "sbin", "lib", "lib64", "lib32"):
        path = Path("/", top)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in _ETC:
        if Path("/etc", name).exists():
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    # The Python the platform runs on, and its environment (dbt, adapters, connectors' own live elsewhere).
    # An environment reached through a symbolic link is shown at its real path too: its scripts (dbt's)
    # name the interpreter by the path it was installed at.
    prefixes = (sys.base_prefix, sys.prefix)
    for path in dict.fromkeys(p for prefix in prefixes for p in (prefix, os.path.realpath(prefix))):
        if not path.startswith("/usr/"):
            args += ["--ro-bind", path, path]
    return args


def _hosts_file(folder: Path, names: dict[str, str]) -> Path:
    path = folder / "hosts"
    lines = ["127.0.0.1 localhost", *(f"{ip} {host}" for host, ip in names.items())]
    path.write_text("\n".join(lines) + "\n")
    path.with_name("passwd").write_text("root:x:0:0::/tmp:/bin/sh\nnobody:x:65534:65534::/tmp:/bin/sh\n")
    path.with_name("group").write_text("root:x:0:\nnogroup:x:65534:\n")
    return path


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def endpoint_address(policy: Policy, index: int) -> str:
    """The loopback address inside the sandbox where endpoint ``index`` listens."""
    host = policy.endpoints[index].host
    return host if _is_ip(host) and host.startswith("127.") else f"127.0.1.{index + 1}"


@contextlib.contextmanager
def sandboxed(policy: Policy, argv: Sequence[str], env: dict[str, str] | None = None) -> Iterator[list[str]]:
    """The command line that runs ``argv`` under ``policy``; relays live until the block ends. Raises
    ``egress.Unreachable`` first if an endpoint (a host the tenant gave) is one the platform does not
    reach for it (``Policy.check_endpoints``)."""
    require()
    policy.check_endpoints()
    if mode() == "off":
        yield list(argv)
        return
    with tempfile.TemporaryDirectory(prefix="dalgo-sandbox-") as tmp:
        folder = Path(tmp)
        os.chmod(folder, 0o700)
        relays = Relays(folder)
        routes: list[list[Any]] = []
        names: dict[str, str] = {}
        for i, endpoint in enumerate(policy.endpoints):
            address = endpoint_address(policy, i)
            routes.append([address, endpoint.port, f"{_INSIDE}/endpoint-{i}"])
            relays.endpoint(i, endpoint.host, endpoint.port)
            if not _is_ip(endpoint.host):
                names[endpoint.host] = address
        if policy.egress:
            relays.egress()
            routes.append(["127.0.0.1", PROXY_PORT, f"{_INSIDE}/egress"])
        hosts = _hosts_file(folder, names)
        filter_file = _filter_file(folder)
        args = [
            "bwrap",
            "--unshare-all",
            "--unshare-user",
            "--die-with-parent",
            "--new-session",
            "--seccomp",
            str(_FILTER_FD),
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
            "--tmpfs",
            "/run",
            *_system_binds(),
            "--ro-bind",
            str(hosts),
            "/etc/hosts",
            "--ro-bind",
            str(folder / "passwd"),
            "/etc/passwd",
            "--ro-bind",
            str(folder / "group"),
            "/etc/group",
        ]
        for path in policy.read_only:
            args += ["--ro-bind", path, path]
        Path(policy.root).mkdir(parents=True, exist_ok=True)
        args += ["--bind", policy.root, policy.root]
        if routes:
            args += ["--bind", str(folder), _INSIDE, "--ro-bind", str(_FORWARD), f"{_INSIDE}/forward.py"]
        args += ["--chdir", policy.cwd or policy.root, "--clearenv"]
        for name, value in (env if env is not None else policy.environment()).items():
            args += ["--setenv", name, value]
        if policy.egress:
            proxy = f"http://127.0.0.1:{PROXY_PORT}"
            for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
                args += ["--setenv", name, proxy]
            args += [
                "--setenv",
                "NO_PROXY",
                ",".join(["localhost", *names]),
                "--setenv",
                "no_proxy",
                ",".join(["localhost", *names]),
            ]
        args.append("--")
        if routes:
            args += [sys.executable, "-S", "-I", f"{_INSIDE}/forward.py", json.dumps(routes)]
        args += list(argv)
        try:
            yield _with_filter(filter_file, args)
        finally:
            relays.close()


def run(
    policy: Policy, argv: Sequence[str], *, timeout: float | None = None, **kwargs: Any
) -> subprocess.CompletedProcess:
    """``subprocess.run`` of ``argv`` under ``policy`` (scrubbed environment even with the sandbox off)."""
    env = policy.environment()
    with sandboxed(policy, argv, env) as args:
        return subprocess.run(
            args,
            env=env if mode() == "off" else {"PATH": env["PATH"]},
            cwd=policy.cwd or policy.root,
            timeout=timeout,
            **kwargs,
        )
