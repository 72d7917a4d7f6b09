"""dbt projects of others: a tenant names another organization's dbt project (its folder under the
operator's projects root, its organization folder, a relative path, a ``file://`` repository) through
the real API. Refused with a 422 naming the field, before anything is written or parsed."""

from __future__ import annotations

from pathlib import Path

import pytest

from dalgo_core import settings
from dalgo_core.spec import load_org_spec
from tests.api.conftest import Api, OrgWorld
from tests.support.orgs import write_dbt_project

PROJECTS = "/api/dbt/projects/"


@pytest.fixture
def projects_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "dbt_projects"
    monkeypatch.setenv("DALGO_DBT_PROJECTS_DIR", str(root))
    return root


@pytest.fixture
def victims_project(projects_root: Path, other_world: OrgWorld) -> Path:
    return write_dbt_project(projects_root / other_world.slug, "payroll", {"models/salaries.sql": "select 1 as x"})


def _post(api: Api, world: OrgWorld, body: dict):
    return api.post(PROJECTS, body, token=world.tokens["account-manager"], org=world.slug)


def _assert_refused(response, field: str) -> None:
    assert response.status_code == 422, response.content
    assert response.json()["errors"][0]["field"] == field, response.content


def _relative_to_spec(world: OrgWorld, target: Path) -> str:
    folder = settings.orgs_dir() / world.slug
    return str(Path(*[".."] * len(folder.resolve().parts[1:])) / target.resolve().relative_to("/"))


def test_another_organizations_project_folder_is_refused(api: Api, world: OrgWorld, victims_project: Path):
    before = load_org_spec(world.slug).dbt_projects
    _assert_refused(_post(api, world, {"name": "payroll", "path": str(victims_project)}), "path")
    _assert_refused(_post(api, world, {"name": "payroll", "path": _relative_to_spec(world, victims_project)}), "path")
    # a path through the tenant's own folder that climbs out of it
    climbing = f"{victims_project.parent.parent / world.slug}/../{victims_project.parent.name}/payroll"
    _assert_refused(_post(api, world, {"name": "payroll", "path": climbing}), "path")
    assert load_org_spec(world.slug).dbt_projects == before


def test_a_symlink_in_the_tenants_folder_to_another_project_is_refused(
    api: Api, world: OrgWorld, victims_project: Path, projects_root: Path
):
    own = projects_root / world.slug
    own.mkdir(parents=True)
    (own / "mine").symlink_to(victims_project)
    _assert_refused(_post(api, world, {"name": "mine", "path": str(own / "mine")}), "path")


def test_another_organizations_folder_and_the_platforms_state_are_refused(
    api: Api, world: OrgWorld, other_world: OrgWorld
):
    _assert_refused(_post(api, world, {"name": "x", "path": str(settings.orgs_dir() / other_world.slug)}), "path")
    _assert_refused(_post(api, world, {"name": "x", "path": str(settings.home_dir())}), "path")


def test_file_git_urls_are_refused_by_default_and_confined_when_allowed(
    api: Api, world: OrgWorld, victims_project: Path, monkeypatch: pytest.MonkeyPatch
):
    body = {"name": "payroll", "git": {"url": f"file://{victims_project}", "ref": "main"}}
    r = _post(api, world, body)
    assert r.status_code == 422 and "scheme 'file'" in r.content.decode(), r.content
    monkeypatch.setenv("DALGO_GIT_SCHEMES", "https,ssh,file")
    _assert_refused(_post(api, world, body), "git.url")


def test_the_tenants_own_project_folder_passes_the_check(api: Api, world: OrgWorld, projects_root: Path, dagster_down):
    """Its own folder is not refused for where it is: it parses, then Dagster (down here) answers 503
    and the change is undone."""
    own = write_dbt_project(projects_root / world.slug, "mine", {"models/m.sql": "select 1 as x"})
    r = _post(api, world, {"name": "mine", "path": str(own)})
    assert r.status_code == 503, r.content
    assert load_org_spec(world.slug).dbt_projects == []
