"""``dalgo-dbt``: the dbt executable the platform gives dagster-dbt's ``DbtCliResource``.

dagster-dbt starts its executable with the run worker's environment plus dbt's own variables. This
wrapper runs the real dbt (beside the platform's Python) under the sandbox policy the run put in
``DALGO_SANDBOX_POLICY`` (``WarehouseResource.dbt_environment``), so a model's ``env_var()``, ``ATTACH``
or ``read_csv`` sees only its organization. Without a policy it answers ``--version`` and nothing else.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from dalgo_core.egress import Unreachable
from dalgo_core.sandbox.policy import current_policy
from dalgo_core.sandbox.runner import mode, sandboxed


def real_dbt() -> str:
    return str(Path(sys.executable).with_name("dbt"))


def main() -> None:
    argv = sys.argv[1:]
    policy = current_policy()
    if policy is None:
        if argv == ["--version"]:
            os.execv(real_dbt(), [real_dbt(), *argv])
        sys.exit("dalgo-dbt: no sandbox policy in DALGO_SANDBOX_POLICY: the platform runs tenant dbt only under one")
    cwd = os.getcwd()
    bound = [policy.root, *policy.read_only]
    if any(cwd == p or cwd.startswith(p.rstrip("/") + "/") for p in bound):
        policy = replace(policy, cwd=cwd)
    env = policy.environment()
    try:
        with sandboxed(policy, [real_dbt(), *argv], env) as args:
            proc = subprocess.run(
                args, env=env if mode() == "off" else {"PATH": env["PATH"]}, cwd=policy.cwd or policy.root
            )
    except Unreachable as exc:  # its warehouse's host: on the platform's network, or no such host
        sys.exit(f"dalgo-dbt: the warehouse cannot be reached: {exc}")
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
