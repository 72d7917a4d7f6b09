"""Bad input to embedded ingestion: each a clear failure naming the organization and the connection."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ingestion.embedded_support import (
    embedded_env,  # noqa: F401 (fixture)
    failure_message,
    faker_connection,
    sync,
    write_org,
)
from tests.support.postgres import free_port

WHERE = "organization 'acme', connection 'faker'"


def test_unknown_connector_fails_to_install(embedded_env: Path) -> None:  # noqa: F811
    connection = faker_connection(connector="source-dalgo-no-such-connector-xyz")
    message = failure_message(sync(write_org(embedded_env / "orgs", "acme", connection)))
    assert WHERE in message
    assert "cannot install connector source-dalgo-no-such-connector-xyz" in message
    assert "airbyte-source-dalgo-no-such-connector-xyz" in message  # the PyPI package it looked for


def test_bad_connector_config_fails_the_check(embedded_env: Path) -> None:  # noqa: F811
    connection = faker_connection(config={"count": "many"})
    message = failure_message(sync(write_org(embedded_env / "orgs", "acme", connection)))
    assert WHERE in message
    assert "source-faker check failed" in message and "'many' is not of type 'integer'" in message


def test_unknown_stream_lists_the_available_ones(embedded_env: Path) -> None:  # noqa: F811
    connection = faker_connection(streams=[{"name": "users"}, {"name": "customers"}])
    message = failure_message(sync(write_org(embedded_env / "orgs", "acme", connection)))
    assert WHERE in message
    assert "no stream 'customers' (available: products, purchases, users)" in message


def test_warehouse_down(embedded_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("ACME_PG_PASSWORD", "x")
    warehouse = {
        "type": "postgres",
        "host": "127.0.0.1",
        "port": free_port(),  # nothing listens here
        "user": "acme",
        "password": {"env": "ACME_PG_PASSWORD"},
        "database": "acme",
    }
    message = failure_message(sync(write_org(embedded_env / "orgs", "acme", faker_connection(), warehouse)))
    assert WHERE in message
    assert "the postgres warehouse is unreachable" in message and "Connection refused" in message


def test_missing_secret_names_the_variable(embedded_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.delenv("ACME_FAKER_SEED", raising=False)
    connection = faker_connection()
    connection["source"]["secrets"] = {"seed": {"env": "ACME_FAKER_SEED"}}
    message = failure_message(sync(write_org(embedded_env / "orgs", "acme", connection)))
    assert WHERE in message and "ACME_FAKER_SEED is not set" in message
