"""Shared fixtures: a throwaway PostgreSQL server and isolated Dalgo state folders."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import PostgresServer

REPO = Path(__file__).resolve().parent.parent


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
    # No Dagster unless a test starts one (and points the API at it): never a webserver that happens to
    # listen on the default port of the machine running the tests.
    os.environ.setdefault("DALGO_DAGSTER_URL", "http://127.0.0.1:9")
