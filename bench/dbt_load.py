"""Definitions load time and peak memory of an organization with 1,000 dbt models, against plain dagster-dbt.

Generates a dbt project (100 staging models over 10 sources, 900 downstream models, tests on each staging
model), prepares its manifest once, then loads definitions in fresh processes: ours (`org_definitions`,
through the org spec, translator and relation index) and plain dagster-dbt (`@dbt_assets` over the same
manifest with the default translator). Each process imports what it needs (plain dagster-dbt: dbt-core
too; ours: what a code server imports, dagster-dbt without dbt-core), times only what happens after its
imports, and reports its own peak RSS. Median of 5 runs each, interleaved; the temporary folder is removed.

Usage: python bench/dbt_load.py     (last line: the figures)
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

MODELS = 1000
STAGING = 100
RUNS = 5

PLAIN = r"""
import json, resource, sys, time
import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject, dbt_assets
import dbt.graph.cli  # imported lazily by dagster-dbt: an import, kept out of the timing in both
project_dir, manifest = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
@dbt_assets(manifest=manifest)
def plain(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    yield from dbt.cli(["build"], context=context).stream()
defs = dg.Definitions(assets=[plain], resources={"dbt": DbtCliResource(project_dir=project_dir)})
repo = defs.get_repository_def()
n = len(repo.asset_graph.get_all_asset_keys())
print(json.dumps({"seconds": time.perf_counter() - t0, "assets": n,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

# what an organization's code server imports: dagster-dbt without dbt-core (dalgo_assets.transform.dbt_integration)
OURS = r"""
import json, resource, sys, time
import dagster as dg
from dalgo_assets import locations
t0 = time.perf_counter()
defs = getattr(locations, sys.argv[1])
repo = defs.get_repository_def()
n = len(repo.asset_graph.get_all_asset_keys())
print(json.dumps({"seconds": time.perf_counter() - t0, "assets": n,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def generate_project(root: Path) -> Path:
    project = root / "dbt_projects" / "big_project"  # the operator's projects root beside orgs/
    (project / "models" / "staging").mkdir(parents=True)
    (project / "models" / "marts").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        yaml.safe_dump(
            {
                "name": "big_project",
                "version": "1.0.0",
                "config-version": 2,
                "profile": "dalgo",
                "models": {"big_project": {"+materialized": "view"}},
            }
        )
    )
    sources = [{"name": "raw", "schema": "raw", "tables": [{"name": f"table_{i}"} for i in range(10)]}]
    schema_models = []
    for i in range(STAGING):
        (project / "models" / "staging" / f"stg_{i}.sql").write_text(
            f"select id, value from {{{{ source('raw', 'table_{i % 10}') }}}}\n"
        )
        schema_models.append({"name": f"stg_{i}", "columns": [{"name": "id", "data_tests": ["not_null"]}]})
    for i in range(MODELS - STAGING):
        a, b = i % STAGING, (i * 7 + 3) % STAGING
        (project / "models" / "marts" / f"mart_{i}.sql").write_text(
            f"select a.id, a.value + b.value as value from {{{{ ref('stg_{a}') }}}} a "
            f"join {{{{ ref('stg_{b}') }}}} b using (id)\n"
        )
    (project / "models" / "schema.yml").write_text(
        yaml.safe_dump({"version": 2, "sources": sources, "models": schema_models})
    )
    return project


def run(code: str, *args: str, env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code, *args], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="dalgo-bench-load-"))
    env = {
        **os.environ,
        "DALGO_HOME": str(root / "home"),
        "DALGO_ORGS_DIR": str(root / "orgs"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    os.environ.update(env)
    project = generate_project(root)
    (root / "orgs" / "big_org").mkdir(parents=True)
    (root / "orgs" / "big_org" / "org.yaml").write_text(
        yaml.safe_dump({"slug": "big_org", "name": "Big Org", "dbt_projects": [{"name": "big", "path": str(project)}]})
    )
    from dalgo_core.dbt_projects import prepare_projects
    from dalgo_core.spec import load_org_spec

    try:
        t = time.perf_counter()
        (prepared,) = prepare_projects(load_org_spec("big_org"))
        parse_s = time.perf_counter() - t
        print(f"prepared {MODELS} models once with dbt parse in {parse_s:.1f} s", flush=True)

        ours, plain = [], []
        for _ in range(RUNS):
            ours.append(run(OURS, "big_org", env=env))
            plain.append(run(PLAIN, str(prepared.project_dir), str(prepared.manifest_path), env=env))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    o_s = statistics.median(r["seconds"] for r in ours)
    p_s = statistics.median(r["seconds"] for r in plain)
    o_mb = max(r["rss_mb"] for r in ours)
    p_mb = max(r["rss_mb"] for r in plain)
    print(f"assets: ours {ours[0]['assets']}, plain {plain[0]['assets']}")
    print(
        f"load ratio {o_s / p_s:.2f}: ours {o_s:.2f} s, plain {p_s:.2f} s (past imports, median of {RUNS}); "
        f"peak RSS ratio {o_mb / p_mb:.2f}: ours {o_mb:.0f} MB, plain {p_mb:.0f} MB; {MODELS} models"
    )


if __name__ == "__main__":
    main()
