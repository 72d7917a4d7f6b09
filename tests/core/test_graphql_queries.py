"""Every GraphQL operation the API's bridge and the supervisor send is valid against the Dagster
webserver's own schema (so a query that names a field Dagster does not have fails here, not at 503)."""

from __future__ import annotations

import pytest
from dagster_graphql.schema import create_schema
from graphql import parse, validate

from dalgo_api.bridge import assets, locations
from dalgo_ops import runs, webserver

OPERATIONS = {
    f"{module.__name__}.{name}": value
    for module in (assets, locations, runs, webserver)
    for name, value in vars(module).items()
    if name.isupper() and isinstance(value, str) and value.lstrip().startswith(("query", "mutation", "{"))
}


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_operation_is_valid_against_dagsters_schema(name: str) -> None:
    assert len(OPERATIONS) >= 6
    assert validate(create_schema().graphql_schema, parse(OPERATIONS[name])) == []
