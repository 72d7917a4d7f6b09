"""One connector call of an organization outside a sync: ``spec``, ``check`` or ``discover``.

Each installs the connector if needed (minutes, the first time), then runs it in the organization's
sandbox like a sync does (``ConnectorProcess``: its root writable, the connector's environment
read-only, the internet through the egress proxy). ``progress`` receives one sentence per step, for the
API's task that polls it. Nothing here keeps a configuration: the config file lives in a private folder
of the organization's root that is wiped when the call ends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dalgo_core import layout
from dalgo_core.connectors.install import ConnectorInstallError, ensure_connector, venv_dir
from dalgo_core.connectors.protocol import ConnectorError, ConnectorProcess, LogFn
from dalgo_core.sandbox import Policy

Progress = Callable[[str], None]


def _quiet(message: str) -> None:
    pass


def connector_policy(org: str) -> Policy:
    """The sandbox of an organization's connectors: its root, nothing else of the platform's."""
    return Policy(org=org, root=str(layout.org_root(org)))


@dataclass(frozen=True)
class Connector:
    """What to install and run: the command, its version and the package that provides it."""

    connector: str
    version: str | None = None
    package: str | None = None

    def install(self, progress: Progress = _quiet, root: str | None = None) -> Path:
        """The connector's executable, installed first if needed (``ConnectorInstallError``)."""
        if not (venv_dir(self.connector, self.version, self.package, root) / "bin" / self.connector).exists():
            requirement = (self.package or f"airbyte-{self.connector}") + (f"=={self.version}" if self.version else "")
            progress(f"installing {requirement} from PyPI (the first time takes a few minutes)")
        return ensure_connector(self.connector, self.version, root, self.package)

    def process(self, org: str, config: Mapping[str, Any], progress: Progress = _quiet) -> ConnectorProcess:
        executable = self.install(progress)
        log: LogFn = lambda level, message: None  # noqa: E731 - a connector's LOG lines are not progress
        return ConnectorProcess(executable, config, connector_policy(org), log)


def read_spec(org: str, connector: Connector, progress: Progress = _quiet) -> dict[str, Any]:
    """The connector's specification, run in the organization's sandbox."""
    with connector.process(org, {}, progress) as proc:
        progress(f"reading the specification of {connector.connector}")
        return proc.spec()


@dataclass(frozen=True)
class CheckResult:
    succeeded: bool
    message: str


def check(org: str, connector: Connector, config: Mapping[str, Any], progress: Progress = _quiet) -> CheckResult:
    """The connector's own connection check of a configuration; its message when it fails."""
    with connector.process(org, config, progress) as proc:
        progress(f"checking the configuration with {connector.connector}")
        try:
            proc.check()
        except ConnectorError as exc:
            return CheckResult(False, str(exc))
    return CheckResult(True, "the connection check succeeded")


def discover(
    org: str, connector: Connector, config: Mapping[str, Any], progress: Progress = _quiet
) -> dict[str, dict[str, Any]]:
    """The source's streams by name, as the connector's ``discover`` gives them."""
    with connector.process(org, config, progress) as proc:
        progress(f"discovering the streams of {connector.connector}")
        return proc.discover()


__all__ = [
    "CheckResult",
    "Connector",
    "ConnectorError",
    "ConnectorInstallError",
    "check",
    "connector_policy",
    "discover",
    "read_spec",
]
