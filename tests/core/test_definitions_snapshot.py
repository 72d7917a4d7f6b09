"""What each demo organization's code location contains, as a snapshot: a change to either organization's
definitions fails here until it is accepted with ``pytest tests/core/test_definitions_snapshot.py
--snapshot-update`` (the snapshot, ``__snapshots__/test_definitions_snapshot.ambr``, is reviewed like code).

Both organizations are built as their code locations build them (``build_org_definitions``) from the
repository's specs and dbt projects, parsed once for the module; ``partner_ngo``'s PostgreSQL warehouse
is never contacted. The summary is sorted and holds names, keys and settings only: no paths, times or
anything else of the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from dalgo_assets.automation.sensors import INTERVAL_ENV
from dalgo_assets.definitions import build_org_definitions
from dalgo_core.dbt_projects import prepare_projects
from dalgo_core.pools import org_pools
from dalgo_core.spec import load_org_spec
from tests.support.orgs import copy_demo_org

ORGS = ("demo_ngo", "partner_ngo")
SECTIONS = ("assets", "checks", "jobs", "schedules", "sensors", "location")
# metadata worth reading in a snapshot, with the platform's own (dalgo/...); the rest is dbt's manifest,
# code references and column schemas
METADATA_KEYS = ("dagster/table_name", "dagster-dbt/materialization_type")


@pytest.fixture(scope="module")
def definitions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, dg.Definitions]]]:
    root = tmp_path_factory.mktemp("snapshot")
    with pytest.MonkeyPatch.context() as mp:
        for name, sub in (("DALGO_HOME", "home"), ("DALGO_ORGS_DIR", "orgs"), ("DAGSTER_HOME", "dagster")):
            (root / sub).mkdir()
            mp.setenv(name, str(root / sub))
        mp.delenv(INTERVAL_ENV, raising=False)  # the sensor's interval as deployed by default
        for slug in ORGS:
            copy_demo_org(root / "orgs", slug)
        specs = [load_org_spec(slug) for slug in ORGS]
        with ThreadPoolExecutor(len(specs)) as pool:  # one dbt parse per project, the organizations at once
            list(pool.map(prepare_projects, specs))
        yield root, {spec.slug: build_org_definitions(spec) for spec in specs}


def _keys(keys: Any) -> list[str]:
    return sorted(k.to_user_string() for k in keys)


def _minutes(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 60:g} min"


def _policy(policy: dg.FreshnessPolicy | None) -> str | None:
    if policy is None:
        return None
    if hasattr(policy, "fail_window"):
        warn = f", warn after {_minutes(policy.warn_window.to_timedelta())}" if policy.warn_window else ""
        return f"fail after {_minutes(policy.fail_window.to_timedelta())}{warn}"
    return f"by '{policy.deadline_cron}' ({policy.timezone}), at most {_minutes(policy.lower_bound_delta)} old"


def _condition(condition: dg.AutomationCondition | None) -> dict[str, str | None] | None:
    if condition is None:
        return None
    return {"label": condition.get_label(), "description": condition.description}


def _op(node: dg.OpDefinition | dg.GraphDefinition) -> dict[str, Any]:
    return {"name": node.name, "pool": getattr(node, "pool", None), "tags": dict(sorted(node.tags.items()))}


def _metadata(spec: dg.AssetSpec) -> dict[str, str]:
    return {k: str(v) for k, v in sorted(spec.metadata.items()) if k in METADATA_KEYS or k.startswith("dalgo/")}


def _assets(defs: dg.Definitions) -> list[dict[str, Any]]:
    assets = []
    for assets_def in defs.assets or []:
        assert isinstance(assets_def, dg.AssetsDefinition)
        op = assets_def.node_def
        for spec in assets_def.specs:
            assets.append(
                {
                    "key": spec.key.to_user_string(),
                    "deps": _keys(d.asset_key for d in spec.deps),
                    "materializable": assets_def.is_materializable,
                    "group": spec.group_name,
                    "kinds": sorted(spec.kinds),
                    "tags": dict(sorted(spec.tags.items())),
                    "metadata": _metadata(spec),
                    "automation_condition": _condition(spec.automation_condition),
                    "freshness_policy": _policy(spec.freshness_policy),
                    "op": _op(op),
                }
            )
    return sorted(assets, key=lambda a: a["key"])


def _checks(defs: dg.Definitions) -> list[dict[str, Any]]:
    checks = [
        {"key": check.key.to_user_string(), "blocking": check.blocking}
        for assets_def in defs.assets or []
        if isinstance(assets_def, dg.AssetsDefinition)
        for check in assets_def.check_specs
    ]
    return sorted(checks, key=lambda c: c["key"])


def _jobs(defs: dg.Definitions) -> list[dict[str, Any]]:
    repository = defs.get_repository_def()
    jobs = []
    for job in repository.get_all_jobs():
        if job.name.startswith("__"):  # Dagster's implicit job of every asset
            continue
        jobs.append(
            {
                "name": job.name,
                "description": job.description,
                "tags": dict(sorted(job.tags.items())),
                "assets": _keys(job.asset_layer.selected_asset_keys),
                "ops": sorted((_op(node.definition) for node in job.nodes), key=lambda o: o["name"]),
                "executor": job.executor_def.name,
            }
        )
    return sorted(jobs, key=lambda j: j["name"])


def _schedules(defs: dg.Definitions) -> list[dict[str, Any]]:
    schedules = [
        {
            "name": s.name,
            "cron": s.cron_schedule,
            "timezone": s.execution_timezone,
            "job": s.job_name,
            "default_status": s.default_status.value,
            "tags": dict(sorted(s.tags.items())),
        }
        for s in defs.get_repository_def().schedule_defs
    ]
    return sorted(schedules, key=lambda s: s["name"])


def _sensors(defs: dg.Definitions) -> list[dict[str, Any]]:
    graph = defs.resolve_asset_graph()
    sensors = [
        {
            "name": s.name,
            "type": type(s).__name__,
            "description": s.description,
            "default_status": s.default_status.value,
            "minimum_interval_seconds": s.minimum_interval_seconds,
            "run_tags": dict(sorted(getattr(s, "run_tags", {}).items())),
            "targets": _keys(s.asset_selection.resolve(graph)) if s.asset_selection else [],
        }
        for s in defs.get_repository_def().sensor_defs
    ]
    return sorted(sensors, key=lambda s: s["name"])


def _location(defs: dg.Definitions) -> dict[str, Any]:
    return {
        "metadata": {k: str(v.value) for k, v in sorted((defs.metadata or {}).items())},
        "resources": {key: type(resource).__name__ for key, resource in sorted((defs.resources or {}).items())},
        "executor": defs.executor.name if defs.executor else None,
    }


SUMMARIES = {
    "assets": _assets,
    "checks": _checks,
    "jobs": _jobs,
    "schedules": _schedules,
    "sensors": _sensors,
    "location": _location,
}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("slug", ORGS)
def test_demo_organization_definitions(definitions, slug: str, section: str, snapshot) -> None:
    root, built = definitions
    summary = SUMMARIES[section](built[slug])
    machine = [s for s in _strings(summary) if str(root) in s or s.startswith(("/", "~"))]
    assert not machine, f"the snapshot would hold what differs per machine: {machine}"
    assert summary == snapshot


def _pools_by_op(defs: dg.Definitions) -> dict[str, str | None]:
    """Every op of every job of the location, with the pool it takes."""
    return {
        node.definition.name: getattr(node.definition, "pool", None)
        for job in defs.get_repository_def().get_all_jobs()
        for node in job.nodes
    }


def test_every_step_writing_a_duckdb_warehouse_takes_its_one_pool(definitions) -> None:
    """A DuckDB file takes one writing process: every step of ``demo_ngo`` that writes it (the faker
    sync and its reset, both dbt projects' builds and their chores) takes ``warehouse/demo_ngo``, so two
    runs writing it wait for each other; ``partner_ngo``'s PostgreSQL warehouse keeps one pool per dbt
    project and per connection, its syncs and builds running beside each other. The pools the platform
    creates ahead for an organization (``org_pools``) are the ones its steps take."""
    built = definitions[1]
    duckdb = _pools_by_op(built["demo_ngo"])
    assert {"demo_ngo__airbyte__faker", "demo_ngo__faker__reset_op", "demo_ngo__sales", "demo_ngo__analytics"} <= set(
        duckdb
    )
    assert sum(1 for op in duckdb if op.endswith(("__git_pull_op", "__dbt_deps_op", "__dbt_clean_op"))) == 6
    assert set(duckdb.values()) == {"warehouse/demo_ngo"}

    postgres = _pools_by_op(built["partner_ngo"])
    assert postgres["partner_ngo__airbyte__faker"] == postgres["partner_ngo__faker__reset_op"]
    assert postgres["partner_ngo__sales"] == postgres["partner_ngo__sales__dbt_clean_op"]
    assert set(postgres.values()) == {"airbyte/partner_ngo/faker", "dbt/partner_ngo/sales"}
    for slug, pools in (("demo_ngo", duckdb), ("partner_ngo", postgres)):
        assert sorted(org_pools(load_org_spec(slug))) == sorted(set(pools.values()))


# What only runs need, never imported by a process loading definitions (a code server, a run worker
# before its step): dbt-core and its adapters (dbt runs as dalgo-dbt, a subprocess), Dagster's event log
# storage (the automation sensor's tick imports it) and the warehouses' and connectors' clients.
RUN_ONLY = ("dbt.adapters", "dbt.contracts", "dbt_common", "agate", "sqlalchemy", "alembic", "duckdb", "psycopg")
LOAD = """
import json, sys
from dalgo_assets import locations
defs = getattr(locations, sys.argv[1])
manifests = [s.metadata["dagster_dbt/manifest"].manifest for a in defs.assets for s in a.specs
             if "dagster_dbt/manifest" in s.metadata]
print(json.dumps({"assets": len(defs.resolve_asset_graph().get_all_asset_keys()), "modules": sorted(sys.modules),
                  "manifest_keys": sorted({k for m in manifests for k in m})}))
"""


@pytest.mark.parametrize("slug", ORGS)
def test_a_location_loads_without_what_only_runs_need(definitions, slug: str) -> None:
    """A code server keeps its organization's definitions for its life, one per organization: loading
    them (as ``dalgo_assets.locations`` does, in a process of its own) imports neither dbt-core nor
    Dagster's storage nor a warehouse client, and keeps no dbt macros (most of a small project's manifest)."""
    out = subprocess.run([sys.executable, "-c", LOAD, slug], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded["assets"] == len(definitions[1][slug].resolve_asset_graph().get_all_asset_keys())
    assert [m for m in loaded["modules"] if m.startswith(RUN_ONLY)] == []
    assert "nodes" in loaded["manifest_keys"] and "macros" not in loaded["manifest_keys"]
