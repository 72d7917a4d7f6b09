"""Shared fixtures: a throwaway PostgreSQL server and isolated Dalgo state folders; the API's Django
settings for pytest-django.

pytest-django gives the tests that ask for ``db`` (tests/api, tests/security) one test database per
session (per xdist worker), migrated, each test in a transaction rolled back at its end, and emails in
``mail.outbox`` (emptied before each test); every other test is refused the database. The database is
SQLite in memory unless ``DALGO_API_DATABASE_URL`` says otherwise (tests/api/test_postgres_backend.py
re-runs tests/api on PostgreSQL that way).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import django
import pytest
from django.conf import settings

from tests.support.postgres import PostgresServer

REPO = Path(__file__).resolve().parent.parent

# The API reads its settings from the environment once, when Django starts (here, before pytest-django
# finds them configured); the environment is restored afterwards, so the processes tests start do not
# inherit these test values.
_TEST_ENV = {
    "DJANGO_SETTINGS_MODULE": "dalgo_api.settings",
    "DALGO_API_DATABASE_URL": "sqlite:///:memory:",
    "DALGO_API_SIGNUP_CODE": "let-me-in",
    "DALGO_API_SECRET_KEY": "tests-only-" + "k" * 40,
}
_saved = {name: os.environ.get(name) for name in _TEST_ENV}
os.environ.update({name: os.environ.get(name) or value for name, value in _TEST_ENV.items()})
django.setup()
for _name, _value in _saved.items():
    if _value is None:
        os.environ.pop(_name, None)
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server per test session (per xdist worker), listening on 127.0.0.1."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def dalgo_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fresh DALGO_HOME, DALGO_ORGS_DIR and DAGSTER_HOME under tmp_path; returns tmp_path."""
    for name, sub in (("DALGO_HOME", "home"), ("DALGO_ORGS_DIR", "orgs"), ("DAGSTER_HOME", "dagster")):
        (tmp_path / sub).mkdir()
        monkeypatch.setenv(name, str(tmp_path / sub))
    return tmp_path


@pytest.fixture(autouse=True, scope="session")
def _quiet_env() -> None:
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    # Tests keep their dbt projects in tmp folders: local projects may live anywhere but inside another
    # organization or the platform's state (tests/security narrows this to what an operator would set).
    os.environ.setdefault("DALGO_DBT_PROJECTS_DIR", "/")
    # A warm dbt parser an API change started lives for a test, not the five minutes a user gets.
    os.environ.setdefault("DALGO_DBT_PARSER_IDLE_SECONDS", "20")
    # No Dagster unless a test starts one (and points the API at it): never a webserver that happens to
    # listen on the default port of the machine running the tests.
    os.environ.setdefault("DALGO_DAGSTER_URL", "http://127.0.0.1:9")
    # The test machine's databases (the ``postgres`` fixture, warehouses and database sources) listen on
    # 127.0.0.1, as an operator's tenant databases would in a network it allows (dalgo_core.egress); the
    # tests of the rule itself (tests/security) take this away.
    os.environ.setdefault("DALGO_PRIVATE_NETWORKS", "127.0.0.1/32")


# The longest modules, longest first (measured with ``--durations``). ``scripts/test`` runs a module on one
# xdist worker (``--dist loadfile``); xdist's own order puts the modules with the fewest tests last, so a
# module of a few long tests (a daemon keeping a target fresh for minutes) ran alone on one worker at the
# end while the other idled. With ``--no-loadscope-reorder`` the workers take modules in this order.
LONGEST_MODULES = (
    "tests/deploy/test_serve.py",
    "tests/deploy/test_up.py",
    "tests/deploy/test_kubernetes_live.py",
    "tests/sources/test_flows.py",
    "tests/automation/test_daemon.py",
    "tests/core/test_dbt_assets.py",
    "tests/api/test_postgres_backend.py",
    "tests/ingestion/test_several_connections.py",
    "tests/ingestion/test_dlt_sources.py",
    "tests/ingestion/test_embedded.py",
    "tests/ingestion/test_schema_changes.py",
)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first; every other test keeps its place (a stable sort: pytest-django's order
    of database tests and each module's own order stay)."""
    rank = {module: i for i, module in enumerate(LONGEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    """Each test leaves the process's handling of SIGTERM and SIGINT as it found it. Dagster's in-process
    execution (``dg.materialize``) maps SIGTERM to SIGINT's handler and leaves it so: in a test process
    started with SIGINT ignored (a background job), SIGTERM stayed ignored afterwards, every process a
    later test started inherited that, and the Kubelet stand-in's pods outlived their SIGTERM."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return (yield)
    finally:
        for sig, handler in saved.items():
            if handler is not None and signal.getsignal(sig) is not handler:
                signal.signal(sig, handler)
