"""The same API tests on a real PostgreSQL database: this folder re-run in a subprocess (Django's
database is chosen once per process) with ``DALGO_API_DATABASE_URL`` pointing at the ``postgres``
fixture's server; Django creates and drops its ``test_`` database there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.postgres import AWKWARD_PASSWORD

HERE = Path(__file__).resolve()
REPO = HERE.parents[2]


def test_api_suite_passes_on_postgresql(postgres):
    # nothing of the API's settings leaks in from this process (another test's DJANGO_SETTINGS_MODULE
    # would make pytest-django set Django up before tests/conftest.py gives it the tests' values)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("DALGO_API_", "DJANGO_"))}
    env = {
        **inherited,
        "DALGO_API_DATABASE_URL": postgres.dsn("dalgo_api"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(HERE.parent),
            "-q",
            "-p",
            "no:cacheprovider",
            "-x",
            f"--deselect={HERE.relative_to(REPO)}::test_api_suite_passes_on_postgresql",
            f"--deselect={HERE.relative_to(REPO)}::test_a_password_with_special_characters_connects",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
    assert result.returncode == 0, tail
    assert " passed" in tail, tail


def test_database_url_selects_postgresql():
    from dalgo_api.settings import database_from_url

    db = database_from_url("postgresql://dalgo:p%40ss@db.internal:6432/dalgo_api?sslmode=require")
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["USER"], db["PASSWORD"], db["HOST"], str(db["PORT"]), db["NAME"]) == (
        "dalgo",
        "p@ss",
        "db.internal",
        "6432",
        "dalgo_api",
    )
    assert db["OPTIONS"] == {"sslmode": "require"}
    assert database_from_url("sqlite:///tmp/x.sqlite3")["NAME"] == "/tmp/x.sqlite3"


def test_a_password_with_special_characters_connects(postgres, django_db_blocker):
    """A percent-encoded password in ``DALGO_API_DATABASE_URL`` is the role's password, on a server that
    checks it (a database of its own, not the test database: reached with pytest-django's blocker lifted)."""
    from django.db import OperationalError
    from django.db.utils import ConnectionHandler

    from dalgo_api.settings import database_from_url

    url = postgres.create_database("api_pw", owner="api_pw", password=AWKWARD_PASSWORD)
    postgres.require_password("api_pw")
    for password, connects in ((AWKWARD_PASSWORD, True), ("p@ss", False)):
        connections = ConnectionHandler({"default": database_from_url(postgres.dsn("api_pw", "api_pw", password))})
        try:
            with django_db_blocker.unblock(), connections["default"].cursor() as cursor:
                cursor.execute("select current_user, current_database()")
                assert connects and cursor.fetchone() == ("api_pw", "api_pw")
        except OperationalError as exc:
            assert not connects and "password authentication failed" in str(exc)
        finally:
            connections.close_all()
    assert url == postgres.dsn("api_pw", "api_pw", AWKWARD_PASSWORD)
