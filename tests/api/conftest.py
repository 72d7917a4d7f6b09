"""Fixtures for the Django API tests.

pytest-django's ``db`` gives each test the session's test database (SQLite in memory by default;
``test_postgres_backend.py`` re-runs this whole folder on the ``postgres`` fixture's server, so every
test here runs on both) in a transaction rolled back at its end, and empties ``mail.outbox``; specs are
written under ``dalgo_env``'s tmp folders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from dalgo_api.accounts import auth
from dalgo_api.accounts.models import ApiToken, Role, User
from dalgo_api.accounts.roles import ROLE_SLUGS
from dalgo_api.orgs import services
from dalgo_api.orgs.models import Invitation, Org, OrgUser

PASSWORD = "c0rrect-Horse-battery"


@pytest.fixture
def db(db: None, dalgo_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pytest-django's ``db``, with the organizations' specs and state under ``dalgo_env``. Each test's
    database is new, so the API process starts it remembering nothing of the last one's (callers,
    memberships, role permissions, the access generation it last read), as a new process would."""
    auth._forget_here()
    monkeypatch.setattr(auth, "_followed", {"generation": None, "next_look": 0.0})
    return dalgo_env


class Api:
    """A JSON client for ``/api/``: ``api.get(path, token=..., org=...)`` returns the response."""

    def __init__(self) -> None:
        self.client = Client()

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        org: str | None = None,
        raw: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if org:
            headers["x-dalgo-org"] = org
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        kwargs = {"content_type": "application/json", "headers": headers}
        if data is not None:
            kwargs["data"] = data
        return getattr(self.client, method.lower())(path, **kwargs)

    def get(self, path: str, **kw: Any):
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any):
        return self.call("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any):
        return self.call("PUT", path, body, **kw)

    def delete(self, path: str, **kw: Any):
        return self.call("DELETE", path, **kw)


@pytest.fixture
def api(db: Path) -> Api:
    return Api()


def make_user(email: str, *, superuser: bool = False) -> User:
    if superuser:
        return User.objects.create_superuser(email, PASSWORD)
    return User.objects.create_user(email, PASSWORD)


def token_for(user: User) -> str:
    return ApiToken.issue(user)[1]


@dataclass
class OrgWorld:
    """An organization with one member per role (tokens ready), a spare Account Manager, a target
    member to act on and a pending invitation."""

    org: Org
    tokens: dict[str, str] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    target: User | None = None
    invitation: Invitation | None = None

    @property
    def slug(self) -> str:
        return self.org.slug


def build_world(name: str) -> OrgWorld:
    org = services.create_org(name)
    world = OrgWorld(org=org)
    prefix = org.slug.replace("_", "-")  # a valid email domain
    for role in ROLE_SLUGS:
        user = make_user(f"{role}@{prefix}.example.org", superuser=role == Role.SUPER_ADMIN)
        services.add_member(org, user, Role.objects.get(slug=role))
        world.users[role], world.tokens[role] = user, token_for(user)
    spare = make_user(f"manager2@{prefix}.example.org")
    services.add_member(org, spare, Role.objects.get(slug=Role.ACCOUNT_MANAGER))
    world.target = make_user(f"target@{prefix}.example.org")
    services.add_member(org, world.target, Role.objects.get(slug="analyst"))
    world.invitation = services.invite(
        org, f"invited@{prefix}.example.org", Role.objects.get(slug="guest"), world.users["account-manager"]
    )
    return world


@pytest.fixture
def world(db: Path) -> OrgWorld:
    return build_world("Org A")


@pytest.fixture
def other_world(world: OrgWorld) -> OrgWorld:
    return build_world("Org B")


def member_count(org: Org) -> int:
    return OrgUser.objects.filter(org=org).count()
