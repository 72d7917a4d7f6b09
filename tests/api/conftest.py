"""Fixtures for the Django API tests.

The database is SQLite in memory by default; ``test_postgres_backend.py`` re-runs this whole folder in a
subprocess with ``DALGO_API_DATABASE_URL`` pointing at the ``postgres`` fixture's server, so every test
here runs on both. Each test runs in a transaction rolled back at its end, with specs written under
``dalgo_env``'s tmp folders and emails kept in ``django.core.mail.outbox``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# Settings are read once, at django.setup(); the environment is restored afterwards so other test
# folders (and the processes they start) do not inherit these test values.
_TEST_ENV = {
    "DALGO_API_DATABASE_URL": "sqlite:///:memory:",
    "DALGO_API_SIGNUP_CODE": "let-me-in",
    "DALGO_API_SECRET_KEY": "tests-only-" + "k" * 40,
}
_saved = {name: os.environ.get(name) for name in _TEST_ENV}
for _name, _value in _TEST_ENV.items():
    os.environ.setdefault(_name, _value)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dalgo_api.settings")

import django  # noqa: E402

django.setup()
for _name, _value in _saved.items():
    if _value is None:
        os.environ.pop(_name, None)
    else:
        os.environ[_name] = _value

from django.conf import settings  # noqa: E402
from django.core import mail  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment, teardown_test_environment  # noqa: E402

from dalgo_api.accounts.models import ApiToken, Role, User  # noqa: E402
from dalgo_api.accounts.roles import ROLE_SLUGS  # noqa: E402
from dalgo_api.orgs import services  # noqa: E402
from dalgo_api.orgs.models import Invitation, Org, OrgUser  # noqa: E402

PASSWORD = "c0rrect-Horse-battery"


_test_db_users: list[object] = []  # other folders (tests/security) re-export these fixtures: one database


@pytest.fixture(scope="session")
def django_db() -> Iterator[None]:
    """A fresh test database (migrated, roles seeded by the data migration) for the session."""
    if _test_db_users:
        _test_db_users.append(object())
        yield
        return
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    _test_db_users.append(object())
    try:
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()


@pytest.fixture
def db(django_db: None, dalgo_env: Path) -> Iterator[Path]:
    """One test's database state, rolled back afterwards; specs go under ``dalgo_env``."""
    mail.outbox = []
    atomic = transaction.atomic()
    atomic.__enter__()
    try:
        yield dalgo_env
    finally:
        transaction.set_rollback(True)
        atomic.__exit__(None, None, None)


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
