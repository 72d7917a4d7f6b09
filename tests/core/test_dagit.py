"""Dagit itself: the webserver loads one code location per organization, a broken one on its own."""

from __future__ import annotations

import time
from pathlib import Path

from dalgo_core.code_locations import write_workspace
from dalgo_core.dbt_projects import prepare_organizations as prepare
from dalgo_core.spec import list_org_slugs
from tests.support.dagster import Webserver, dagster_env
from tests.support.orgs import copy_demo_org, write_spec

LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message causes { message } } } } } } }"""
ASSETS = "{ assetNodes { assetKey { path } dependencyKeys { path } } }"


def test_webserver_loads_every_org_as_its_own_location(dalgo_env: Path) -> None:
    orgs = dalgo_env / "orgs"
    copy_demo_org(orgs, "demo_ngo")
    copy_demo_org(orgs, "partner_ngo")
    write_spec(orgs, "broken_org", {"slug": "broken_org", "name": "Broken", "warehouse": {"type": "oracle"}})
    problems = prepare(list_org_slugs())
    assert set(problems) == {"broken_org"}
    workspace = dalgo_env / "workspace.yaml"
    assert write_workspace(workspace) == ["broken_org", "demo_ngo", "partner_ngo"]

    server = Webserver(workspace, dagster_env(dalgo_env / "dagster"), dalgo_env)
    try:
        server.wait_ready()
        deadline = time.time() + 240
        while True:
            entries = {e["name"]: e for e in server.graphql(LOCATIONS)["workspaceOrError"]["locationEntries"]}
            if all(e["loadStatus"] == "LOADED" for e in entries.values()) or time.time() > deadline:
                break
            time.sleep(1)
        assert set(entries) == {"org_demo_ngo", "org_partner_ngo", "org_broken_org"}
        kinds = {name: e["locationOrLoadError"]["__typename"] for name, e in entries.items()}
        assert kinds == {
            "org_demo_ngo": "RepositoryLocation",
            "org_partner_ngo": "RepositoryLocation",
            "org_broken_org": "PythonError",
        }
        load_error = entries["org_broken_org"]["locationOrLoadError"]
        error = " ".join([load_error["message"], *(c["message"] for c in load_error["causes"])])
        assert "organization 'broken_org'" in error and "warehouse" in error and "oracle" in error

        nodes = {"/".join(n["assetKey"]["path"]): n for n in server.graphql(ASSETS)["assetNodes"]}
        assert all(key.split("/")[0] in {"demo_ngo", "partner_ngo"} for key in nodes)
        segments = nodes["demo_ngo/analytics/customer_segments"]
        assert ["demo_ngo", "sales", "customers"] in [d["path"] for d in segments["dependencyKeys"]]
        assert "partner_ngo/sales/customers" in nodes
    finally:
        server.stop()
