"""Small synthetic organizations for the automation tests: plain assets through ``build_automation``.

``crm/users`` (an ingestion stream) feeds ``sales/stg_users``, which feeds the marts; ``sales/orphan``
hangs off the stream but no target needs it. Pipelines come from the caller.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from dalgo_assets.automation import AutomationDefinitions, build_automation
from dalgo_core.spec import OrgSpec
from tests.support.simulate import VirtualOrg, finish_run, launch_run, plain_asset

SLUG = "acme"
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday


def key(path: str) -> dg.AssetKey:
    return dg.AssetKey([SLUG, *path.split("/")])


def org_assets() -> list[dg.AssetsDefinition]:
    return [
        plain_asset(SLUG, "crm/users"),
        plain_asset(SLUG, "sales/stg_users", ["crm/users"]),
        plain_asset(SLUG, "sales/mart_a", ["sales/stg_users"]),
        plain_asset(SLUG, "sales/mart_b", ["sales/stg_users"]),
        plain_asset(SLUG, "sales/orphan", ["crm/users"]),
    ]


def org_spec(pipelines: list[dict[str, Any]], **extra: Any) -> OrgSpec:
    return OrgSpec.model_validate({"slug": SLUG, "name": "Acme", "pipelines": pipelines, **extra})


def automation(pipelines: list[dict[str, Any]]) -> AutomationDefinitions:
    return build_automation(org_spec(pipelines), org_assets())


def definitions(pipelines: list[dict[str, Any]]) -> dg.Definitions:
    built = automation(pipelines)
    return dg.Definitions(assets=built.assets, sensors=built.sensors, jobs=built.jobs, schedules=built.schedules)


def virtual_org(
    pipelines: list[dict[str, Any]], run_minutes: float = 5, instance: dg.DagsterInstance | None = None
) -> VirtualOrg:
    return VirtualOrg(
        definitions(pipelines), instance or dg.DagsterInstance.ephemeral(), duration=lambda k, n: run_minutes * 60
    )


def materialize_all(org: VirtualOrg, at: datetime, keys: list[str] | None = None) -> None:
    """Everything (or ``keys``) materialized at ``at``, by a run that took no time."""
    paths = keys or ["crm/users", "sales/stg_users", "sales/mart_a", "sales/mart_b", "sales/orphan"]
    run = launch_run(org.instance, [key(p) for p in paths], at.timestamp(), 0)
    finish_run(org.instance, run)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# For the FreshnessDaemon test: a python file that loads this module's definitions
DEFS_ENV = "DALGO_TEST_AUTOMATION_PIPELINES"


def defs_from_env() -> dg.Definitions:
    import json

    return definitions(json.loads(os.environ[DEFS_ENV]))
