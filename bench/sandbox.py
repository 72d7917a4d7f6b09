"""The demo organization's dbt build inside the tenant sandbox (bubblewrap) against the same build outside it.

Copies the demo organization into a temporary state folder, loads its raw tables once with its embedded
source-faker connection (the connector environment is cached in the repository's ``.dalgo``), then runs
``dbt build`` of both its projects (sales, then analytics) the two ways, interleaved, 5 times each:
outside, the plain ``dbt`` with the organization's profile; inside, the same command through
``dalgo_core.sandbox`` with the organization's policy, as the platform runs it. Median of each.

Usage: python bench/sandbox.py     (last line: the figures)
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNS = 5


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="dalgo-bench-sandbox-"))
    os.environ.update(
        DALGO_HOME=str(root / "home"),
        DALGO_ORGS_DIR=str(root / "orgs"),
        DAGSTER_HOME=str(root / "dagster"),
        DALGO_DBT_PROJECTS_DIR=str(REPO / "dbt_projects"),
        DALGO_CONNECTORS_DIR=str(REPO / ".dalgo" / "platform" / "connectors"),
    )
    (root / "dagster").mkdir(parents=True)
    shutil.copytree(REPO / "orgs" / "demo_ngo", root / "orgs" / "demo_ngo")
    # the spec's relative project paths point at the repository's dbt_projects/
    spec_file = root / "orgs" / "demo_ngo" / "org.yaml"
    spec_file.write_text(spec_file.read_text().replace("../../dbt_projects", str(REPO / "dbt_projects")))

    import dagster as dg

    from dalgo_assets.definitions import build_org_definitions
    from dalgo_core import sandbox
    from dalgo_core.dbt_projects import dbt_env, prepare_projects
    from dalgo_core.sandbox.tenant import org_policy
    from dalgo_core.spec import load_org_spec
    from dalgo_core.warehouse.profiles import PROFILE_NAME, profiles_dir

    sandbox.require()
    spec = load_org_spec("demo_ngo")
    prepared = prepare_projects(spec)
    defs = build_org_definitions(spec)
    ingestion = [a for a in defs.assets if "faker" in str(getattr(a, "keys", ""))]
    loaded = dg.materialize(ingestion, resources=defs.resources, instance=dg.DagsterInstance.ephemeral())
    assert loaded.success, "loading the demo's raw tables failed"

    dbt = str(Path(sys.executable).with_name("dbt"))
    commands = []
    for project in prepared:
        env = {**dbt_env(project, profiles_dir(spec)), "DBT_TARGET_PATH": str(project.target_dir.parent / "bench")}
        policy = org_policy(spec, read_only=[project.project_dir], cwd=project.project_dir)
        commands.append((project, env, policy))

    def build(inside: bool) -> float:
        started = time.perf_counter()
        for project, env, policy in commands:
            argv = [dbt, "build", "--quiet", "--profile", PROFILE_NAME]
            if inside:
                done = sandbox.run(sandbox.Policy(**{**policy.__dict__, "setenv": env}), argv, capture_output=True)
            else:
                done = subprocess.run(argv, cwd=project.project_dir, env={**os.environ, **env}, capture_output=True)
            assert done.returncode == 0, done.stdout.decode()[-2000:] + done.stderr.decode()[-2000:]
        return time.perf_counter() - started

    build(False)  # warm the file cache and dbt's partial parse
    outside, inside = [], []
    for _ in range(RUNS):
        outside.append(build(False))
        inside.append(build(True))
    shutil.rmtree(root, ignore_errors=True)
    out, ins = statistics.median(outside), statistics.median(inside)
    print(f"demo dbt build (2 projects), median of {RUNS}: outside the sandbox {out:.2f} s, inside {ins:.2f} s")
    print(f"sandbox/outside={ins / out:.3f}x (target <= 1.1x)")


if __name__ == "__main__":
    main()
