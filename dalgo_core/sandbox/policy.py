"""What one call of tenant code may see: its organization's root, read-only inputs, named variables and
network endpoints.

A policy travels as JSON in one environment variable, so a library that starts a process itself (dagster-dbt's
``DbtCliResource`` passes ``os.environ`` to its executable) carries it to the ``dalgo-dbt`` wrapper unchanged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from dalgo_core.egress import tenant_address

POLICY_ENV = "DALGO_SANDBOX_POLICY"

# Variables dbt and dagster-dbt set for one invocation: always passed through.
PASSTHROUGH_PREFIXES = ("DBT_",)
PASSTHROUGH = ("DAGSTER_DBT_CLI", "PYTHONUNBUFFERED", "PYTHONLEGACYWINDOWSSTDIO", "TZ")


@dataclass(frozen=True)
class Endpoint:
    """A TCP service tenant code may reach (its warehouse, a database source), by the name it uses."""

    host: str
    port: int


@dataclass(frozen=True)
class Policy:
    org: str
    root: str  # the organization's root: the one writable place
    read_only: tuple[str, ...] = ()  # dbt project, connector environment, files the call reads
    env: tuple[str, ...] = ()  # names copied from the caller's environment (the org's own secrets)
    setenv: Mapping[str, str] = field(default_factory=dict)  # fixed values
    endpoints: tuple[Endpoint, ...] = ()
    egress: bool = False  # internet through the egress proxy (connectors of web APIs, dbt deps, git)
    cwd: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Policy:
        data = json.loads(text)
        data["read_only"] = tuple(data.get("read_only", ()))
        data["env"] = tuple(data.get("env", ()))
        data["endpoints"] = tuple(Endpoint(**e) for e in data.get("endpoints", ()))
        return cls(**data)

    def check_endpoints(self) -> None:
        """Raise ``egress.Unreachable`` for an endpoint the platform does not connect to for the tenant
        (on its own network, or no such host). The relays check again at each connection; this says why
        before anything starts."""
        for endpoint in self.endpoints:
            tenant_address(endpoint.host, endpoint.port)

    def with_env(self, names: Iterable[str]) -> Policy:
        return replace(self, env=tuple(dict.fromkeys((*self.env, *names))))

    def environment(self, source: Mapping[str, str] | None = None) -> dict[str, str]:
        """The whole environment tenant code gets: a fixed base, dbt's own variables, the names the policy
        allows, and its fixed values. Nothing else of the platform's environment."""
        source = os.environ if source is None else source
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp",
            "TMPDIR": "/tmp",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
        }
        for name, value in source.items():
            if name.startswith(PASSTHROUGH_PREFIXES) or name in PASSTHROUGH or name in self.env:
                env[name] = value
        env.update(self.setenv)
        return env


def current_policy() -> Policy | None:
    text = os.environ.get(POLICY_ENV)
    return Policy.from_json(text) if text else None


def existing(paths: Iterable[Path | str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(Path(p)) for p in paths if Path(p).exists()))
