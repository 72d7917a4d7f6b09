"""Pipelines: freshness targets that launch runs before data goes stale, and cron schedules.

``build_automation`` receives every ingestion and dbt asset of an organization and returns them with
- a ``FreshnessPolicy`` on each asset that has a target (monitoring: fresh / warn / stale),
- an automation condition on each target and on each asset upstream of a target (automatic runs,
  see ``conditions``); every other asset is left without a condition and never runs by itself,
- the ``<slug>_automation`` sensor that evaluates those conditions,
- a job per pipeline and a schedule per pipeline with ``schedule`` (stopped when the pipeline is disabled).

The spec itself refuses a bad cron, timezone, lag or deadline (``dalgo_core.spec``), so an API edit is
refused before any reload. What only the definitions can tell (a selection that matches nothing, a bad
target declared in dbt) is collected and raised together as one ``SpecError`` naming the organization,
its file and the pipeline or dbt model, which fails this organization's code location only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import dagster as dg

from dalgo_assets.automation.conditions import KeepFresh, OrgTargets
from dalgo_assets.automation.dbt_sources import dbt_source_targets, with_warnings
from dalgo_assets.automation.policies import freshness_policy
from dalgo_assets.automation.schedules import pipeline_job, pipeline_schedule
from dalgo_assets.automation.sensors import automation_sensor
from dalgo_assets.automation.targets import (
    FreshnessTarget,
    TargetProblems,
    dbt_targets,
    materializable_keys,
    pipeline_keys,
    spec_targets,
)
from dalgo_core.spec import OrgSpec


@dataclass
class AutomationDefinitions:
    assets: list[dg.AssetsDefinition]
    jobs: list[dg.UnresolvedAssetJobDefinition] = field(default_factory=list)
    schedules: list[dg.ScheduleDefinition] = field(default_factory=list)
    sensors: list[dg.SensorDefinition] = field(default_factory=list)
    targets: list[FreshnessTarget] = field(default_factory=list)


def _dependencies(assets: Iterable[dg.AssetsDefinition]) -> tuple[dict, set[dg.AssetKey]]:
    deps: dict[dg.AssetKey, set[dg.AssetKey]] = {}
    materializable: set[dg.AssetKey] = set()
    for assets_def in assets:
        for key, key_deps in assets_def.asset_deps.items():
            deps[key] = set(key_deps)
        if assets_def.is_materializable:
            materializable.update(assets_def.keys)
    return deps, materializable


def upstream_closure(deps: Mapping[dg.AssetKey, set[dg.AssetKey]], root: dg.AssetKey) -> set[dg.AssetKey]:
    """Every asset ``root`` depends on, directly or not."""
    seen: set[dg.AssetKey] = set()
    stack = list(deps.get(root, ()))
    while stack:
        key = stack.pop()
        if key not in seen:
            seen.add(key)
            stack.extend(deps.get(key, ()))
    return seen


def conditions_for(
    targets: Sequence[FreshnessTarget], assets: Sequence[dg.AssetsDefinition]
) -> dict[dg.AssetKey, dg.AutomationCondition]:
    """Targets and the assets upstream of them get a ``KeepFresh``; nothing else gets a condition.

    Every condition shares the organization's targets and, per asset with a condition, its materializable
    upstream, from which a target's chain (what its refresh pulls into the run) is picked on each tick.
    """
    own: dict[dg.AssetKey, list[FreshnessTarget]] = defaultdict(list)
    serves: dict[dg.AssetKey, list[FreshnessTarget]] = defaultdict(list)
    for target in targets:
        own[target.key].append(target)
    deps, materializable = _dependencies(assets)
    upstream = {key: frozenset(upstream_closure(deps, key) & materializable) for key in own}
    for key, key_targets in own.items():
        for up in upstream[key]:
            serves[up].extend(key_targets)
            if up not in upstream:
                upstream[up] = frozenset(upstream_closure(deps, up) & materializable)
    org = OrgTargets(tuple(targets), upstream)
    return {
        key: KeepFresh(tuple(own.get(key, ())), tuple(serves.get(key, ())), org)
        for key in sorted(own.keys() | serves.keys(), key=lambda k: k.path)
    }


def apply_automation(
    assets: Sequence[dg.AssetsDefinition], targets: Sequence[FreshnessTarget]
) -> tuple[list[dg.AssetsDefinition], dict[dg.AssetKey, dg.AutomationCondition]]:
    """The assets with policies and conditions attached (map_asset_specs keeps keys and deps)."""
    conditions = conditions_for(targets, assets)
    policies: Mapping[dg.AssetKey, dg.FreshnessPolicy] = {
        key: freshness_policy([t for t in targets if t.key == key]) for key in {t.key for t in targets}
    }

    def attach(spec: dg.AssetSpec) -> dg.AssetSpec:
        changes: dict = {}
        if spec.key in conditions:
            changes["automation_condition"] = conditions[spec.key]
        if spec.key in policies:
            changes["freshness_policy"] = policies[spec.key]
        return spec.replace_attributes(**changes) if changes else spec

    mapped = [
        a.map_asset_specs(attach) if a.is_materializable and any(k in conditions for k in a.keys) else a for a in assets
    ]
    return mapped, conditions


def build_automation(spec: OrgSpec, assets: list[dg.AssetsDefinition]) -> AutomationDefinitions:
    """The org's assets with their policies and conditions, plus pipeline jobs, schedules and the sensor.

    Raises ``SpecError`` listing every problem of the org's targets, so that only this org's location fails.
    """
    problems = TargetProblems(spec)
    keys = materializable_keys(assets)
    selections = {p.name: pipeline_keys(spec, p, keys, problems) for p in spec.pipelines}
    source_targets, warnings = dbt_source_targets(spec, assets, problems)
    targets = [*spec_targets(spec, selections, problems), *dbt_targets(spec, assets, problems), *source_targets]
    problems.raise_if_any()

    mapped, conditions = apply_automation(assets, targets)
    mapped = with_warnings(mapped, warnings)
    jobs, schedules = [], []
    for pipeline in spec.pipelines:
        job = pipeline_job(spec, pipeline, selections[pipeline.name])
        jobs.append(job)
        schedule = pipeline_schedule(spec, pipeline, job)
        if schedule is not None:
            schedules.append(schedule)
    sensor = automation_sensor(spec.slug, sorted(conditions, key=lambda k: k.path))
    return AutomationDefinitions(assets=mapped, jobs=jobs, schedules=schedules, sensors=[sensor], targets=targets)
