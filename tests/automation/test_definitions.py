"""What an organization's location carries: policies, conditions, the sensor, schedules, and bad input.

The dbt tests use a real dbt project (parsed once for the module) through ``build_org_definitions``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from dalgo_assets import locations
from dalgo_assets.automation import build_automation
from dalgo_assets.automation.conditions import KeepFresh
from dalgo_assets.definitions import build_org_definitions
from dalgo_assets.transform.assets import LoadedProject, build_dbt_definitions, load_projects, project_relations
from dalgo_core.spec import SpecError, load_org_spec
from tests.automation.synthetic import automation, key
from tests.automation.tiny import PROJECT, write_tiny_org
from tests.support.orgs import write_spec

SLUG = "tinyorg"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tiny org in its own DALGO_HOME / DALGO_ORGS_DIR; its manifest is prepared once."""
    root = tmp_path_factory.mktemp("automation")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DALGO_HOME", str(root / "home"))
        mp.setenv("DALGO_ORGS_DIR", str(root / "orgs"))
        write_tiny_org(root / "orgs", root / "projects", SLUG, {"max_lag_minutes": 90, "expected_run_minutes": 15})
        yield root


def tkey(name: str) -> dg.AssetKey:
    return dg.AssetKey([SLUG, PROJECT, name])


def specs_by_key(defs: dg.Definitions) -> dict[dg.AssetKey, dg.AssetSpec]:
    return {s.key: s for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition) for s in a.specs}


# --- dbt meta targets ------------------------------------------------------------------------------


def test_dbt_meta_targets_become_policies_and_conditions(tiny: Path) -> None:
    defs = build_org_definitions(load_org_spec(SLUG))
    specs = specs_by_key(defs)
    latest = specs[tkey("latest")]
    assert latest.freshness_policy == dg.FreshnessPolicy.time_window(
        fail_window=timedelta(minutes=90), warn_window=timedelta(minutes=75)
    )
    # its own target, and the downstream target (daily) that it feeds
    assert isinstance(latest.automation_condition, KeepFresh)
    assert latest.automation_condition.get_label() == (
        f"keep fresh: at most 90 min old | needed by {SLUG}/{PROJECT}/daily"
    )
    # the marts folder's +meta in dbt_project.yml: a deadline, shown with Dagster's cron policy
    daily = specs[tkey("daily")]
    assert daily.freshness_policy == dg.FreshnessPolicy.cron(
        deadline_cron="0 9 * * *", lower_bound_delta=timedelta(days=1), timezone="UTC"
    )
    # the seed feeds both targets: it follows their conditions; a model no target needs has none
    numbers = specs[tkey("numbers")].automation_condition
    assert isinstance(numbers, KeepFresh) and not numbers.own
    assert {t.key for t in numbers.downstream} == {tkey("latest"), tkey("daily")}
    assert specs[tkey("unused")].automation_condition is None
    assert specs[tkey("unused")].freshness_policy is None
    graph = defs.resolve_asset_graph()
    assert graph.get(tkey("latest")).freshness_policy is not None


def test_sensor_is_on_and_targets_only_the_org(tiny: Path) -> None:
    defs = build_org_definitions(load_org_spec(SLUG))
    (sensor,) = [s for s in defs.sensors or [] if isinstance(s, dg.AutomationConditionSensorDefinition)]
    assert sensor.name == f"{SLUG}_automation"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.run_tags == {"dalgo/org": SLUG, "dalgo/trigger": "automation"}
    targeted = sensor.asset_selection.resolve(defs.resolve_asset_graph())
    assert targeted == {tkey("numbers"), tkey("latest"), tkey("daily")}


def _with_meta(spec_slug: str, model: str, freshness: dict, *, meta: dict | None = None) -> list[LoadedProject]:
    """The org's projects with one model's meta replaced in (a copy of) the prepared manifest."""
    projects = load_projects(load_org_spec(spec_slug))
    manifest = copy.deepcopy(projects[0].manifest)
    node = next(n for n in manifest["nodes"].values() if n["name"] == model)
    node["config"]["meta"] = meta if meta is not None else {"dalgo": {"freshness": freshness}}
    node["meta"] = node["config"]["meta"]
    return [LoadedProject(projects[0].spec, projects[0].prepared, manifest)]


@pytest.mark.parametrize(
    ("freshness", "field", "says"),
    [
        ({"max_lag_minutes": 0}, "max_lag_minutes", "greater than 0"),
        ({"max_lag_minutes": -5}, "max_lag_minutes", "greater than 0"),
        ({"deadline_cron": "0 25 * * *"}, "meta.dalgo.freshness", "not a valid 5-field cron"),
        ({"max_lag_minutes": 30, "expected_run_minutes": 45}, "meta.dalgo.freshness", "smaller than max_lag"),
        ({"max_lag_minutes": 0.5}, "meta.dalgo.freshness", "at least 1"),
    ],
)
def test_bad_dbt_meta_names_org_file_and_model(tiny: Path, freshness: dict, field: str, says: str) -> None:
    spec = load_org_spec(SLUG)
    projects = _with_meta(SLUG, "latest", freshness)
    dbt = build_dbt_definitions(spec, projects, project_relations(SLUG, projects))
    with pytest.raises(SpecError) as raised:
        build_automation(spec, dbt.assets)
    message = str(raised.value)
    assert f"organization '{SLUG}'" in message and str(spec.spec_path) in message
    assert "model 'latest' (models/latest.sql)" in message
    assert field in message and says in message


@pytest.mark.parametrize(
    "meta",
    [
        {"dagster_freshness_policy": {"maximum_lag_minutes": 45}},
        {"dagster": {"freshness_policy": {"maximum_lag_minutes": 45}}},
    ],
)
def test_dagsters_older_dbt_freshness_policy_becomes_a_target(tiny: Path, meta: dict) -> None:
    spec = load_org_spec(SLUG)
    projects = _with_meta(SLUG, "unused", {}, meta=meta)
    dbt = build_dbt_definitions(spec, projects, project_relations(SLUG, projects))
    unused = specs_by_key(dg.Definitions(assets=build_automation(spec, dbt.assets).assets))[tkey("unused")]
    assert unused.freshness_policy is not None
    assert unused.freshness_policy.fail_window.to_timedelta() == timedelta(minutes=45)
    assert isinstance(unused.automation_condition, KeepFresh) and unused.automation_condition.own


def test_dagsters_older_cron_policy_becomes_a_deadline_and_bad_fields_are_named(tiny: Path) -> None:
    spec = load_org_spec(SLUG)
    policy = {"maximum_lag_minutes": 60, "cron_schedule": "0 9 * * *", "cron_schedule_timezone": "Asia/Kolkata"}
    projects = _with_meta(SLUG, "unused", {}, meta={"dagster_freshness_policy": policy})
    dbt = build_dbt_definitions(spec, projects, project_relations(SLUG, projects))
    unused = specs_by_key(dg.Definitions(assets=build_automation(spec, dbt.assets).assets))[tkey("unused")]
    assert unused.freshness_policy.fail_window.to_timedelta() == timedelta(minutes=60)
    label = unused.automation_condition.get_label()
    assert "0 9 * * *" in label and "Asia/Kolkata" in label, label
    projects = _with_meta(SLUG, "unused", {}, meta={"dagster_freshness_policy": {"maximum_lag_minute": 5}})
    dbt = build_dbt_definitions(spec, projects, project_relations(SLUG, projects))
    with pytest.raises(SpecError, match=r"meta\.dagster_freshness_policy"):
        build_automation(spec, dbt.assets)


# --- spec pipelines ---------------------------------------------------------------------------------


def test_pipeline_on_a_missing_asset_fails_that_org_only(tiny: Path) -> None:
    orgs = tiny / "orgs"
    bad = {
        "slug": "broken",
        "name": "Broken",
        "pipelines": [{"name": "dash", "assets": ["sales/customrs"], "freshness": {"max_lag_minutes": 60}}],
    }
    path = write_spec(orgs, "broken", bad)
    with pytest.raises(SpecError) as raised:
        locations.broken  # noqa: B018 - what Dagster's loader does for the location
    assert "organization 'broken'" in str(raised.value) and str(path) in str(raised.value)
    assert "pipelines.dash.assets: 'sales/customrs' matches no asset" in str(raised.value)
    # the other organization's location still loads, its automation intact
    assert any(s.name == f"{SLUG}_automation" for s in getattr(locations, SLUG).sensors or [])


@pytest.mark.parametrize(
    ("freshness", "says"),
    [
        ({"max_lag_minutes": 0}, "pipelines.0.freshness.max_lag_minutes: Input should be greater than 0"),
        ({"max_lag_minutes": -1}, "pipelines.0.freshness.max_lag_minutes: Input should be greater than 0"),
        ({"deadline_cron": "every day at 9"}, "not a valid 5-field cron expression"),
    ],
)
def test_bad_freshness_in_the_spec_names_org_file_and_field(tiny: Path, freshness: dict, says: str) -> None:
    path = write_spec(
        tiny / "orgs",
        "badspec",
        {
            "slug": "badspec",
            "name": "Bad",
            "pipelines": [{"name": "dash", "assets": ["tiny/latest"], "freshness": freshness}],
        },
    )
    with pytest.raises(SpecError) as raised:
        locations.badspec  # noqa: B018
    assert "organization 'badspec'" in str(raised.value) and str(path) in str(raised.value)
    assert says in str(raised.value)


def test_malformed_schedule_cron_is_a_spec_error(tiny: Path) -> None:
    write_spec(
        tiny / "orgs",
        "badcron",
        {
            "slug": "badcron",
            "name": "Bad",
            "pipelines": [{"name": "nightly", "assets": ["tiny/*"], "schedule": {"cron": "61 * * * *"}}],
        },
    )
    with pytest.raises(SpecError, match=r"organization 'badcron'.*pipelines.0.schedule.cron.*not a valid"):
        load_org_spec("badcron")


def test_globs_select_a_segment_and_targets_cover_each_asset() -> None:
    built = automation([{"name": "all_sales", "assets": ["sales/mart_*"], "freshness": {"max_lag_minutes": 120}}])
    assert {t.key for t in built.targets} == {key("sales/mart_a"), key("sales/mart_b")}
    conditions = {s.key: s.automation_condition for a in built.assets for s in a.specs}
    assert conditions[key("sales/orphan")] is None
    assert conditions[key("crm/users")].get_label() == "needed by acme/sales/mart_a, acme/sales/mart_b"


# --- cron pipelines ---------------------------------------------------------------------------------


def test_scheduled_pipeline_runs_its_selection_on_cron() -> None:
    built = automation(
        [
            {"name": "nightly", "assets": ["crm/*", "sales/stg_users"], "schedule": {"cron": "0 2 * * *"}},
            {
                "name": "old",
                "assets": ["sales/mart_a"],
                "schedule": {"cron": "0 3 * * *"},
                "enabled": False,
                "freshness": {"max_lag_minutes": 60},
            },
        ]
    )
    nightly, old = built.schedules
    assert nightly.cron_schedule == "0 2 * * *" and nightly.execution_timezone == "UTC"
    assert nightly.default_status == dg.DefaultScheduleStatus.RUNNING
    assert old.default_status == dg.DefaultScheduleStatus.STOPPED
    defs = dg.Definitions(assets=built.assets, jobs=built.jobs, schedules=built.schedules)
    job = defs.resolve_job_def("acme__nightly")
    assert job.tags["dalgo/org"] == "acme" and job.tags["dalgo/pipeline"] == "nightly"
    assert set(job.asset_layer.selected_asset_keys) == {key("crm/users"), key("sales/stg_users")}
    # the disabled pipeline's freshness target launches nothing
    assert built.targets == []
    assert all(s.automation_condition is None for a in built.assets for s in a.specs)
