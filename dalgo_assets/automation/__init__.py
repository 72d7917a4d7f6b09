"""Pipelines: freshness targets that launch runs before data goes stale, and cron schedules."""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg

from dalgo_assets.spec import OrgSpec


@dataclass
class AutomationDefinitions:
    assets: list[dg.AssetsDefinition]
    jobs: list[dg.UnresolvedAssetJobDefinition] = field(default_factory=list)
    schedules: list[dg.ScheduleDefinition] = field(default_factory=list)
    sensors: list[dg.SensorDefinition] = field(default_factory=list)


def build_automation(spec: OrgSpec, assets: list[dg.AssetsDefinition]) -> AutomationDefinitions:
    return AutomationDefinitions(assets=assets)
