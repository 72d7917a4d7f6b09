"""dbt models as assets: org-prefixed keys, cross-project lineage, prepared manifests, tests as checks."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from dalgo_assets.definitions import build_org_definitions, org_definitions
from dalgo_core import dbt_projects
from dalgo_core.dbt_projects import DbtProjectError, prepare_projects, preparing_beside
from dalgo_core.spec import load_org_spec, write_org_spec
from tests.support.orgs import copy_demo_org, write_dbt_project, write_spec

SEED = "id,name\n1,asha\n2,ravi\n2,ravi again\n"
MODELS = {
    "seeds/people.csv": SEED,
    "models/people_clean.sql": "select id, upper(name) as name from {{ ref('people') }}\n",
    "models/people_count.sql": "select count(*) as n from {{ ref('people_clean') }}\n",
    "models/schema.yml": (
        "version: 2\nmodels:\n  - name: people_clean\n    columns:\n      - name: id\n"
        "        data_tests: [unique, not_null]\n"
    ),
}


def _small_org(dalgo_env: Path, slug: str = "acme", files: dict[str, str] = MODELS) -> None:
    project = write_dbt_project(dalgo_env / "projects", "people", files)
    write_spec(
        dalgo_env / "orgs",
        slug,
        {"slug": slug, "name": slug.title(), "dbt_projects": [{"name": "people", "path": str(project)}]},
    )


def _check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    evaluations = [
        e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    return {f"{ev.asset_key.to_user_string()}:{ev.check_name}": ev.passed for ev in evaluations}


def test_demo_lineage_is_org_prefixed_and_crosses_projects(dalgo_env: Path) -> None:
    copy_demo_org(dalgo_env / "orgs")
    prepare_projects(load_org_spec("demo_ngo"))
    graph = org_definitions("demo_ngo").resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    assert keys and all(k.path[0] == "demo_ngo" for k in keys)
    # analytics' source `sales_marts.customers` is the sales project's model: one lineage across projects
    assert (
        dg.AssetKey(["demo_ngo", "sales", "customers"])
        in graph.get(dg.AssetKey(["demo_ngo", "analytics", "customer_segments"])).parent_keys
    )
    # staging models read the raw tables, whoever builds them
    stg_users = graph.get(dg.AssetKey(["demo_ngo", "sales", "stg_users"]))
    assert len(stg_users.parent_keys) == 1
    (raw_users,) = stg_users.parent_keys
    assert raw_users.path[0] == "demo_ngo" and raw_users.path[-1] == "users"
    # dbt tests are asset checks
    checks = {c.to_user_string() for c in graph.asset_check_keys}
    assert "demo_ngo/sales/customers:unique_customers_user_id" in checks


def test_source_no_project_builds_stays_external(dalgo_env: Path) -> None:
    files = {
        "models/src.yml": "version: 2\nsources:\n  - name: crm\n    schema: crm\n    tables: [{name: contacts}]\n",
        "models/contacts.sql": "select * from {{ source('crm', 'contacts') }}\n",
    }
    _small_org(dalgo_env, files=files)
    prepare_projects(load_org_spec("acme"))
    graph = org_definitions("acme").resolve_asset_graph()
    external = dg.AssetKey(["acme", "source", "crm", "contacts"])
    assert graph.get(dg.AssetKey(["acme", "people", "contacts"])).parent_keys == {external}
    assert not graph.get(external).is_materializable


def test_manifest_is_prepared_once_and_again_when_the_project_changes(dalgo_env: Path) -> None:
    _small_org(dalgo_env)
    spec = load_org_spec("acme")
    (prepared,) = prepare_projects(spec)
    first = prepared.manifest_path.stat().st_mtime_ns
    prepare_projects(spec)
    assert prepared.manifest_path.stat().st_mtime_ns == first, "nothing changed: dbt parse must not run again"
    # loading definitions never parses either
    org_definitions("acme")
    assert prepared.manifest_path.stat().st_mtime_ns == first
    (Path(dalgo_env / "projects/people/models/extra.sql")).write_text("select 1 as one\n")
    prepare_projects(spec)
    assert prepared.manifest_path.stat().st_mtime_ns != first
    assert (
        dg.AssetKey(["acme", "people", "extra"]) in org_definitions("acme").resolve_asset_graph().get_all_asset_keys()
    )


def _waits_for_a_lock(pid: int) -> bool:
    return any(
        line.split()[1] == "->" and str(pid) in line.split() for line in Path("/proc/locks").read_text().splitlines()
    )


LOAD_KEYS = """
import sys
from dalgo_assets.definitions import org_definitions
graph = org_definitions(sys.argv[1]).resolve_asset_graph()
print(sorted(k.to_user_string() for k in graph.get_all_asset_keys()))
"""


def test_a_location_loading_while_its_manifests_are_prepared_waits_for_them(
    dalgo_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API reloads a location while dbt parses (``preparing_beside``): a code server loading then
    (another process) waits for the new manifest and reads it once written, never a missing or
    half-written one; a parse that fails reaches the caller as dbt's own error."""
    _small_org(dalgo_env)
    spec = load_org_spec("acme")
    parse_may_run = threading.Event()  # dbt parses only once the loader is seen waiting
    real_run_dbt = dbt_projects.run_dbt
    monkeypatch.setattr(dbt_projects, "run_dbt", lambda *a: parse_may_run.wait(300) and real_run_dbt(*a))
    with preparing_beside(spec) as prepared:
        loading = subprocess.Popen(
            [sys.executable, "-c", LOAD_KEYS, "acme"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.time() + 300
        try:
            while not _waits_for_a_lock(loading.pid):  # the kernel's list of blocked flock waiters
                assert loading.poll() is None and time.time() < deadline, loading.communicate()
                time.sleep(0.1)
        finally:
            parse_may_run.set()
        (project,) = prepared()
    out, err = loading.communicate(timeout=300)
    assert loading.returncode == 0, err[-3000:]
    assert "acme/people/people_count" in out and project.manifest_path.exists()

    (dalgo_env / "projects/people/models/bad.sql").write_text("{{ exceptions.raise_compiler_error('boom') }}\n")
    with pytest.raises(DbtProjectError, match=r"dbt parse failed(.|\n)*boom"), preparing_beside(spec) as prepared:
        prepared()


def test_failing_dbt_test_is_a_failed_check_not_a_crash(dalgo_env: Path) -> None:
    """The model is materialized, its failing test is a failed check, and dbt's blocking semantics hold:
    the model's downstream is skipped and the step reports the failed check (not a dbt or Python crash)."""
    _small_org(dalgo_env)
    spec = load_org_spec("acme")
    prepare_projects(spec)
    defs = build_org_definitions(spec)
    result = dg.materialize(
        defs.assets, resources=defs.resources, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"acme/people/people", "acme/people/people_clean"} <= materialized
    assert "acme/people/people_count" not in materialized
    checks = _check_results(result)
    assert checks["acme/people/people_clean:unique_people_clean_id"] is False
    assert checks["acme/people/people_clean:not_null_people_clean_id"] is True
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_failure_data.error.cls_name == "DagsterAssetCheckFailedError"
    assert "unique_people_clean_id" in failure.step_failure_data.error.message


def test_model_error_fails_the_run_naming_org_project_and_model(dalgo_env: Path) -> None:
    _small_org(dalgo_env, files={**MODELS, "models/broken.sql": "select no_such_column from {{ ref('people') }}\n"})
    spec = load_org_spec("acme")
    prepare_projects(spec)
    defs = build_org_definitions(spec)
    result = dg.materialize(
        defs.assets, resources=defs.resources, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.error.message + str(failure.step_failure_data.user_failure_data)
    assert "organization 'acme'" in message and "dbt project 'people'" in message
    assert "model.people.broken" in message


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (None, "no dbt_project.yml"),
        ({"models/bad.sql": "select {{ ref('does_not_exist') }}\n"}, "dbt parse failed"),
    ],
)
def test_broken_dbt_project_is_a_clear_error_for_that_org_only(dalgo_env: Path, files, expected) -> None:
    _small_org(dalgo_env, "good")
    if files is None:
        write_spec(
            dalgo_env / "orgs",
            "broken",
            {
                "slug": "broken",
                "name": "Broken",
                "dbt_projects": [{"name": "gone", "path": str(dalgo_env / "nowhere")}],
            },
        )
    else:
        project = write_dbt_project(dalgo_env / "projects", "bad", files)
        write_spec(
            dalgo_env / "orgs",
            "broken",
            {"slug": "broken", "name": "Broken", "dbt_projects": [{"name": "bad", "path": str(project)}]},
        )
    from dalgo_core.dbt_projects import prepare_organizations as prepare

    problems = prepare(["broken", "good"])
    assert set(problems) == {"broken"}
    assert "organization 'broken'" in problems["broken"] and expected in problems["broken"]
    assert str(dalgo_env / "orgs" / "broken" / "org.yaml") in problems["broken"]
    with pytest.raises(DbtProjectError, match="organization 'broken'"):
        org_definitions("broken")
    assert org_definitions("good").resolve_asset_graph().get_all_asset_keys()


def _materialize_demo(instance: dg.DagsterInstance, selection: str | None = None) -> dg.ExecuteInProcessResult:
    spec = load_org_spec("demo_ngo")
    prepare_projects(spec)
    defs = build_org_definitions(spec)
    return dg.materialize(
        defs.assets,
        resources=defs.resources,
        instance=instance,
        raise_on_error=False,
        tags={"dalgo/org": "demo_ngo"},
        selection=selection,
    )


def test_demo_materializes_end_to_end_on_duckdb(dalgo_env: Path) -> None:
    import duckdb

    copy_demo_org(dalgo_env / "orgs")
    result = _materialize_demo(dg.DagsterInstance.ephemeral())
    assert result.success
    assert all(_check_results(result).values())
    with duckdb.connect(str(dalgo_env / "home" / "orgs" / "demo_ngo" / "warehouse.duckdb"), read_only=True) as conn:
        customers = conn.execute("select count(*) from marts.customers").fetchone()[0]
        users = conn.execute("select count(*) from staging.stg_users").fetchone()[0]
        segments = conn.execute("select sum(customers) from analytics.customer_segments").fetchone()[0]
    assert customers == users > 0
    assert segments == customers


def test_demo_materializes_end_to_end_on_postgres(dalgo_env: Path, postgres, monkeypatch) -> None:
    import psycopg

    postgres.create_database("demo_wh", owner="demo_owner", password="pg-pass-123")
    monkeypatch.setenv("DEMO_WH_PASSWORD", "pg-pass-123")
    copy_demo_org(
        dalgo_env / "orgs",
        warehouse={
            "type": "postgres",
            "host": postgres.host,
            "port": postgres.port,
            "user": "demo_owner",
            "database": "demo_wh",
            "password": {"env": "DEMO_WH_PASSWORD"},
            "schema": "public",
        },
    )
    result = _materialize_demo(dg.DagsterInstance.ephemeral())
    assert result.success
    assert all(_check_results(result).values())
    with psycopg.connect(postgres.dsn("demo_wh")) as conn:
        customers = conn.execute("select count(*) from marts.customers").fetchone()[0]
        users = conn.execute("select count(*) from staging.stg_users").fetchone()[0]
        revenue_days = conn.execute("select count(*) from analytics.daily_revenue").fetchone()[0]
    assert customers == users > 0
    assert revenue_days > 0
    assert os.environ.get("DALGO_SECRET_DEMO_NGO_PASSWORD") is None

    # the same server outside the operator's networks (as the platform's own database on its loopback
    # would be): the loaders and dbt refuse it before connecting, and say why
    monkeypatch.delenv("DALGO_PRIVATE_NETWORKS", raising=False)
    monkeypatch.delenv("DALGO_SANDBOX_ALLOW_PRIVATE", raising=False)
    for selection in (None, "kind:dbt"):  # the loaders first, then dbt alone (its sources loaded above)
        refused = _materialize_demo(dg.DagsterInstance.ephemeral(), selection)
        assert not refused.success
        errors = [e.step_failure_data.error.to_string() for e in refused.all_events if e.is_step_failure]
        assert errors and all(f"{postgres.host}: not a public address" in e for e in errors), errors


def test_location_entry_point_restores_the_garbage_collector(dalgo_env: Path) -> None:
    """``dalgo_assets.locations`` loads with the cyclic collector paused: it must be running again after a
    load, and after a load that fails, or the code server would never collect reference cycles again."""
    import gc

    from dalgo_assets import locations

    _small_org(dalgo_env, "good")
    write_spec(dalgo_env / "orgs", "broken", {"slug": "broken", "name": "Broken", "warehouse": {"type": "oracle"}})
    from dalgo_core.dbt_projects import prepare_organizations as prepare

    prepare(["good"])
    defs = locations.good
    assert gc.isenabled()
    assert dg.AssetKey(["good", "people", "people_count"]) in defs.resolve_asset_graph().get_all_asset_keys()
    assert gc.get_freeze_count() > 0  # what the location keeps is out of later collections
    with pytest.raises(Exception, match="broken"):
        locations.broken  # noqa: B018
    assert gc.isenabled()


def test_location_entry_point_builds_an_organization_once_per_spec(dalgo_env: Path) -> None:
    """Dagster's code server asks ``dalgo_assets.locations`` for the organization four times as it starts:
    each ask gets the same definitions, built once; a changed spec is built again."""
    from dalgo_assets import locations

    _small_org(dalgo_env, "twice")
    from dalgo_core.dbt_projects import prepare_organizations as prepare

    prepare(["twice"])
    first = locations.twice
    assert hasattr(locations, "twice")
    assert locations.twice is first
    spec = load_org_spec("twice")
    spec.name = "Twice renamed"
    write_org_spec(spec)
    again = locations.twice
    assert again is not first
    assert again.metadata["dalgo/org_name"].value == "Twice renamed"
    assert locations.twice is again
