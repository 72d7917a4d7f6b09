"""dbt's own source freshness: on a source the organization builds (here an ingestion stream) it becomes
that asset's freshness target; on a source nothing builds, the models reading it carry a warning."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from dalgo_assets.automation.conditions import KeepFresh
from dalgo_assets.automation.dbt_sources import WARNING_METADATA
from dalgo_assets.definitions import build_org_definitions
from dalgo_core.dbt_projects import prepare_projects
from dalgo_core.spec import load_org_spec
from tests.support.orgs import write_dbt_project, write_spec

SLUG = "srcfresh"
SOURCES = """version: 2
sources:
  - name: faker
    schema: raw
    freshness: {warn_after: {count: 1, period: hour}, error_after: {count: 2, period: hour}}
    tables: [{name: users}]
  - name: crm
    schema: crm
    freshness: {warn_after: {count: 1, period: day}}
    tables: [{name: contacts}]
"""


def test_dbt_source_freshness_is_kept_where_the_org_builds_the_source_and_warned_where_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DALGO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DALGO_ORGS_DIR", str(tmp_path / "orgs"))
    project = write_dbt_project(
        tmp_path / "projects",
        "reports",
        {
            "models/sources.yml": SOURCES,
            "models/users_count.sql": "select count(*) as n from {{ source('faker', 'users') }}\n",
            "models/contacts_count.sql": "select count(*) as n from {{ source('crm', 'contacts') }}\n",
        },
    )
    connection = {
        "name": "faker",
        "source": {"connector": "source-faker", "config": {"count": 5}},
        "destination_schema": "raw",
        "streams": [{"name": "users"}],
    }
    spec = {"slug": SLUG, "name": "Sources", "connections": [connection]}
    write_spec(tmp_path / "orgs", SLUG, {**spec, "dbt_projects": [{"name": "reports", "path": str(project)}]})
    prepare_projects(load_org_spec(SLUG))

    defs = build_org_definitions(load_org_spec(SLUG))
    specs = {s.key: s for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition) for s in a.specs}
    users = specs[dg.AssetKey([SLUG, "faker", "users"])]
    assert users.freshness_policy == dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=2), warn_window=timedelta(hours=1)
    )
    assert isinstance(users.automation_condition, KeepFresh) and users.automation_condition.own
    warning = specs[dg.AssetKey([SLUG, "reports", "contacts_count"])].metadata[WARNING_METADATA]
    assert "crm.contacts" in warning and "nothing in the organization builds it" in warning
    assert WARNING_METADATA not in specs[dg.AssetKey([SLUG, "reports", "users_count"])].metadata
