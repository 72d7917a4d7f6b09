"""An organization's Dagster definitions, composed from its spec.

Ingestion streams, dbt models (with their tests as checks), the org's resources and its automation
are built here; every asset key starts with the organization's slug and every job carries the
``dalgo/org`` run tag, so organizations share one Dagster instance without colliding.
"""

from __future__ import annotations

import dagster as dg

from dalgo_assets.automation import build_automation
from dalgo_assets.ingestion import build_ingestion_definitions
from dalgo_assets.transform.assets import build_dbt_definitions, load_projects, project_relations
from dalgo_assets.transform.maintenance import maintenance_jobs
from dalgo_assets.warehouse import warehouse_resources
from dalgo_assets.warehouse.writers import run_executor
from dalgo_core.names import ORG_TAG, org_job_name
from dalgo_core.spec import OrgSpec, load_org_spec


def build_org_definitions(spec: OrgSpec) -> dg.Definitions:
    ingestion = build_ingestion_definitions(spec)
    projects = load_projects(spec)
    relations = {**ingestion.relations, **project_relations(spec.slug, projects)}
    dbt = build_dbt_definitions(spec, projects, relations)
    automation = build_automation(spec, [*ingestion.assets, *dbt.assets])
    everything = dg.define_asset_job(
        org_job_name(spec.slug),
        selection=dg.AssetSelection.key_prefixes([spec.slug]),
        tags={ORG_TAG: spec.slug},
        description=f"Every asset of {spec.name}",
    )
    return dg.Definitions(
        assets=automation.assets,
        jobs=[everything, *automation.jobs, *maintenance_jobs(spec), *ingestion.jobs],
        schedules=automation.schedules,
        sensors=automation.sensors,
        resources={**warehouse_resources(spec), **ingestion.resources, **dbt.resources},
        executor=run_executor(spec),
        metadata={ORG_TAG: spec.slug, "dalgo/org_name": spec.name},
    )


def org_definitions(slug: str) -> dg.Definitions:
    """Load one organization's spec and build its definitions (what its code location serves)."""
    return build_org_definitions(load_org_spec(slug))
