"""Fixtures for the API's Dagster half: a real Dagster webserver and daemon (one per test module), the
Django test database, and organizations created through the API.

The module's state (folders, environment, database rows) lives for the whole module: the webserver and
daemon read the organizations folder and the Dagster instance the API writes, so the environment is
set in ``os.environ`` before they start and restored afterwards; the rows are written in one transaction
(pytest-django's database, unblocked for the module) rolled back at its end.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.db import transaction
from pytest_django import DjangoDbBlocker

from tests.api.conftest import PASSWORD, Api
from tests.support.dagster import Daemon, Webserver, dagster_env
from tests.support.orgs import REPO

ROLES = ("super-admin", "account-manager", "pipeline-manager", "analyst", "guest")


@dataclass
class OrgMembers:
    slug: str
    tokens: dict[str, str] = field(default_factory=dict)


@dataclass
class Stack:
    """The module's Dagster (webserver + daemon), its folders, and an API client."""

    root: Path
    webserver: Webserver
    daemon: Daemon
    api: Api
    root_token: str
    orgs: dict[str, OrgMembers] = field(default_factory=dict)

    def projects(self, slug: str) -> Path:
        """The organization's folder of the operator's dbt projects root: where its tenant may point a
        local project through the API."""
        return self.root / "dbt_projects" / slug

    def call(self, method: str, path: str, body=None, *, org: str, role: str = "super-admin"):
        return self.api.call(method, path, body, token=self.orgs[org].tokens[role], org=org)


def create_org_with_members(api: Api, root_token: str, name: str) -> OrgMembers:
    """Create an organization through the API (as a Super Admin) and one member per role."""
    from dalgo_api.accounts.models import ApiToken, Role, User
    from dalgo_api.orgs import services
    from dalgo_api.orgs.models import Org

    response = api.post("/api/organizations/", {"name": name}, token=root_token)
    assert response.status_code == 201, response.content
    slug = response.json()["slug"]
    org = Org.objects.get(slug=slug)
    members = OrgMembers(slug=slug, tokens={"super-admin": root_token})
    for role in ROLES[1:]:
        user = User.objects.create_user(f"{role}@{slug.replace('_', '-')}.example.org", PASSWORD)
        services.add_member(org, user, Role.objects.get(slug=role))
        members.tokens[role] = ApiToken.issue(user)[1]
    return members


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment: None, django_db_blocker: DjangoDbBlocker) -> Iterator[None]:
    """The API's test database, whichever tests of this folder run: the stack writes its rows outside
    pytest-django's per-test transactions, and pytest-django's own ``django_db_setup`` sets up only the
    databases a collected test marks (a module run alone, with no such test, found no tables)."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        databases = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    yield
    with django_db_blocker.unblock():
        teardown_databases(databases, verbosity=0)


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    django_db_setup: None,
    django_db_blocker: DjangoDbBlocker,
) -> Iterator[Stack]:
    """A module may set ``STACK_ENV`` (more environment for the API and Dagster's processes) and define
    ``before_dagster_starts(root, slugs)`` (to write its organizations' projects and specs first)."""
    root = tmp_path_factory.mktemp("dagster_api")
    env_before = dict(os.environ)
    os.environ.update(
        DALGO_HOME=str(root / "home"),
        DALGO_ORGS_DIR=str(root / "orgs"),
        DAGSTER_HOME=str(root / "dagster"),
        DALGO_DBT_PROJECTS_DIR=str(root / "dbt_projects"),
        DAGSTER_DISABLE_TELEMETRY="1",
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        **getattr(request.module, "STACK_ENV", {}),
    )
    for sub in ("home", "orgs", "dagster"):
        (root / sub).mkdir()
    shutil.copy(REPO / "deploy" / "dagster" / "dagster.yaml", root / "dagster" / "dagster.yaml")
    webserver = daemon = None
    # the module's rows: written in one transaction, rolled back after its last test
    with django_db_blocker.unblock(), transaction.atomic():
        try:
            from dalgo_api.accounts.models import ApiToken, User
            from dalgo_api.specs.store import workspace_file

            root_user = User.objects.create_superuser("root@platform.example.org", PASSWORD)
            api = Api()
            root_token = ApiToken.issue(root_user)[1]
            orgs = {}
            for name in ("Org A", "Org B"):
                members = create_org_with_members(api, root_token, name)
                orgs[members.slug] = members
            workspace = workspace_file()  # written by the API when it created the organizations
            assert workspace.exists()
            prepare = getattr(request.module, "before_dagster_starts", None)
            if prepare is not None:
                prepare(root, sorted(orgs))
            env = dagster_env(root / "dagster")
            webserver = Webserver(workspace, env, root)
            webserver.wait_ready()
            os.environ["DALGO_DAGSTER_URL"] = webserver.url  # the bridge reads it on every call
            daemon = Daemon(workspace, env, root)  # after the webserver created the storage
            yield Stack(root, webserver, daemon, api, root_token, orgs)
        finally:
            for process in (daemon, webserver):
                if process is not None:
                    process.stop()
            transaction.set_rollback(True)
            os.environ.clear()
            os.environ.update(env_before)


def wait_for(predicate, timeout: float, interval: float = 1.0, what: str = "condition"):
    """Poll until ``predicate()`` is truthy (returning it) or fail naming ``what``."""
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)
