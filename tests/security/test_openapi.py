"""The API against its own OpenAPI document (``/api/openapi.json``), with schemathesis: generated valid
and invalid requests to every operation, through the real Django WSGI application and a real test
database, as a Pipeline Manager and separately as an Account Manager of one organization, with Dagster
down. Every answer must be no server error, a status the operation declares, and a body that matches
the declared schema.

Left out, so that the run stays meaningful (each would end the caller's access for the operations after
it): ``POST /api/logout/`` (revokes the caller's token), ``PUT``/``DELETE /api/users/{user_id}`` (may
demote or remove the caller itself), ``DELETE /api/organizations/{slug}`` (deletes the organization).
Operations that reach Dagster answer the 503 they declare. ``DALGO_OPENAPI_EXAMPLES`` (default 5) sets the
examples per operation and role, for a longer run by hand.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import OrgWorld

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXCLUDED = [
    ("POST", "/api/logout/"),
    ("PUT", "/api/users/{user_id}"),
    ("DELETE", "/api/users/{user_id}"),
    ("DELETE", "/api/organizations/{slug}"),
]
CONFIG = {
    "phases": {"examples": {"enabled": False}, "coverage": {"enabled": True}, "stateful": {"enabled": False}},
    "generation": {"mode": "all"},
    # Dagster is down: its 503 is an answer, allowed only where the operation declares it
    # (status_code_conformance); every other 5xx is a server error
    "checks": {"not_a_server_error": {"expected-statuses": ["2XX", "3XX", "4XX", "503"]}},
}


def _schema() -> schemathesis.BaseSchema:
    """The document as the running application serves it, minus ``EXCLUDED``."""
    from dalgo_api.wsgi import application

    config = schemathesis.Config.from_dict(CONFIG)
    loaded = schemathesis.openapi.from_wsgi("/api/openapi.json", application, config=config)
    for method, path in EXCLUDED:
        loaded = loaded.exclude(method=method, path=path)
    return loaded


schema = _schema()


@pytest.fixture(autouse=True)
def _one_connection() -> Iterator[None]:
    """Requests run in this thread on the test database's connection, inside the test's transaction:
    as with Django's test client, nothing closes the connection at the end of a request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture(params=["pipeline-manager", "account-manager"])
def role(request: pytest.FixtureRequest) -> str:
    return request.param


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("DALGO_OPENAPI_EXAMPLES", "5")),
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_is_declared(case: schemathesis.Case, world: OrgWorld, role: str, dagster_down: None) -> None:
    headers = {"Authorization": f"Bearer {world.tokens[role]}", "x-dalgo-org": world.slug}
    case.call_and_validate(headers=headers, checks=CHECKS)
