"""Tenant code (dbt, Airbyte connectors, git) runs here: confined to its organization, never with the
platform's environment. See ``run`` for what the sandbox holds."""

from dalgo_core.sandbox.policy import POLICY_ENV, Endpoint, Policy, current_policy
from dalgo_core.sandbox.runner import SandboxUnavailable, mode, require, run, sandboxed, status

__all__ = [
    "POLICY_ENV",
    "Endpoint",
    "Policy",
    "SandboxUnavailable",
    "current_policy",
    "mode",
    "require",
    "run",
    "sandboxed",
    "status",
]
