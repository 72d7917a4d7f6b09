"""Installing Airbyte's Python source connectors from PyPI, each into its own virtual environment.

A connector pins its own airbyte-cdk, pydantic, requests... which conflict with the platform's pins,
so each ``airbyte-<connector>`` package (or an operator's own package) gets a venv of its own under
``$DALGO_CONNECTORS_DIR`` (default ``$DALGO_HOME/platform/connectors``), named ``<connector>-<version>``
(``latest`` when the spec gives no version: installed once, then kept until the folder is removed;
``<package>-<version>`` for an operator's package). Installs happen at run time, on first use, never while
definitions load; a file lock makes concurrent runs (and the API's tasks) wait for one install instead of
racing.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dalgo_core import layout

INSTALLED_MARKER = ".dalgo-installed"
INSTALL_TIMEOUT_SECONDS = 900


class ConnectorInstallError(Exception):
    """The connector's package could not be installed (unknown package, version, or no registry)."""


def connectors_dir(override: str | None = None) -> Path:
    if override:
        return Path(override).expanduser().absolute()
    return layout.connectors_dir()


def package_name(connector: str) -> str:
    """The PyPI package of an Airbyte connector: ``source-faker`` -> ``airbyte-source-faker``."""
    return f"airbyte-{connector}"


def find_uv() -> str:
    """``uv`` beside the running interpreter (the project's venv), else on PATH."""
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("uv")
    if not found:
        raise ConnectorInstallError("'uv' is not installed beside the Python interpreter nor on PATH")
    return found


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(cmd: list[str], what: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}  # uv must not target our venv
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_SECONDS, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        raise ConnectorInstallError(f"{what} timed out after {INSTALL_TIMEOUT_SECONDS}s") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise ConnectorInstallError(f"{what} failed: {tail}")


def venv_dir(connector: str, version: str | None = None, package: str | None = None, root: str | None = None) -> Path:
    """Where the connector's venv lives (whether installed or not)."""
    own = package and package != package_name(connector)
    return connectors_dir(root) / f"{package if own else connector}-{version or 'latest'}"


def installed_version(
    connector: str, version: str | None = None, package: str | None = None, root: str | None = None
) -> str | None:
    """The version of the connector's package installed in its venv (None if not installed)."""
    from importlib.metadata import distributions

    venv = venv_dir(connector, version, package, root)
    if not (venv / INSTALLED_MARKER).exists():
        return None
    wanted = (package or package_name(connector)).lower().replace("_", "-")
    for dist in distributions(path=[str(p) for p in venv.glob("lib/python*/site-packages")]):
        if (dist.metadata["Name"] or "").lower().replace("_", "-") == wanted:
            return dist.version
    return None


def ensure_connector(
    connector: str, version: str | None = None, root: str | None = None, package: str | None = None
) -> Path:
    """The connector's executable, installing ``<package>[==version]`` (by default
    ``airbyte-<connector>``) first if needed."""
    venv = venv_dir(connector, version, package, root)
    executable = venv / "bin" / connector
    if (venv / INSTALLED_MARKER).exists():
        return executable
    with _file_lock(venv.with_name(venv.name + ".lock")):
        if (venv / INSTALLED_MARKER).exists():  # another run installed it while we waited
            return executable
        shutil.rmtree(venv, ignore_errors=True)  # a half-done earlier attempt
        requirement = (package or package_name(connector)) + (f"=={version}" if version else "")
        uv = find_uv()
        try:
            # the platform's own interpreter as the base: no Python download, a version the CDK supports
            _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], f"creating a venv for {connector}")
            _run(
                [
                    uv,
                    "pip",
                    "install",
                    "--quiet",
                    "--python",
                    str(venv / "bin" / "python"),
                    requirement,
                ],
                f"installing {requirement} from PyPI",
            )
        except ConnectorInstallError:
            shutil.rmtree(venv, ignore_errors=True)
            raise
        if not executable.exists():
            shutil.rmtree(venv, ignore_errors=True)
            raise ConnectorInstallError(f"{requirement} installed no '{connector}' command")
        (venv / INSTALLED_MARKER).write_text(requirement + "\n")
    return executable
