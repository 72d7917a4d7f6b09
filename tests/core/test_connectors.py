"""The Dagster-free connector pieces: a configuration against its connector's spec (validation that
names fields and never echoes a value, secret fields found at any depth), schema changes and what each
policy does with them, the curated catalog, and named sources in the organization spec."""

from __future__ import annotations

import csv

import pytest
import yaml

from dalgo_core.connectors import catalog, changes
from dalgo_core.connectors import config as configs
from dalgo_core.names import (
    SCHEMA_CHANGE_METADATA,
    SCHEMA_CHANGE_STREAMS_ADDED_METADATA,
    SCHEMA_CHANGE_SUMMARY_METADATA,
)
from dalgo_core.spec import ConnectionSpec, SpecError, dump_org_spec, parse_org_spec

SPEC = {
    "connectionSpecification": {
        "type": "object",
        "required": ["url", "provider"],
        "properties": {
            "url": {"type": "string"},
            "count": {"type": "integer", "minimum": 1},
            "api_key": {"type": "string", "airbyte_secret": True},
            "provider": {
                "type": "object",
                "oneOf": [
                    {"properties": {"storage": {"const": "local"}}, "required": ["storage"]},
                    {
                        "properties": {
                            "storage": {"const": "SFTP"},
                            "password": {"type": "string", "airbyte_secret": True},
                        },
                        "required": ["storage"],
                    },
                ],
            },
        },
    }
}


def test_secret_fields_are_found_in_nested_objects_and_their_alternatives() -> None:
    assert configs.secret_paths(SPEC) == ["api_key", "provider.password"]
    config = {"url": "x", "api_key": "k3y", "provider": {"storage": "SFTP", "password": "pw"}}
    plain, secrets = configs.split_secrets(config, configs.secret_paths(SPEC))
    assert plain == {"url": "x", "provider": {"storage": "SFTP"}} and secrets == {
        "api_key": "k3y",
        "provider.password": "pw",
    }
    assert configs.fill(plain, secrets) == config and "password" in config["provider"]  # the input is not changed


def test_validation_names_each_field_and_never_echoes_a_value() -> None:
    secret = "hunter2-secret-value"
    problems = configs.validate(SPEC, {"count": 0, "api_key": 12345, "provider": {"storage": secret}})
    assert {p["field"] for p in problems} == {"config.url", "config.count", "config.api_key", "config.provider"}
    assert secret not in str(problems) and "12345" not in str(problems)
    assert {p["field"]: p["message"] for p in problems}["config.url"] == "is required"
    assert configs.validate(SPEC, {"url": "x", "provider": {"storage": "local"}}) == []


STREAMS = {
    "people": {
        "name": "people",
        "json_schema": {"properties": {"id": {"type": "integer"}, "name": {"type": "string"}}},
    },
    "sites": {"name": "sites", "json_schema": {"properties": {"id": {"type": "integer"}}}},
}


def _changed() -> dict:
    people = {"properties": {"id": {"type": "string"}, "city": {"type": "string"}}}  # id retyped, name gone, city new
    return {"people": {"name": "people", "json_schema": people}, "visits": {"name": "visits", "json_schema": {}}}


def test_changes_of_a_source_are_streams_and_columns_added_removed_or_retyped() -> None:
    applied = changes.AppliedCatalog.from_discovered(STREAMS, ["people"])
    found = {(c.kind, c.stream, c.column) for c in changes.diff(applied, _changed(), ["people"])}
    assert found == {
        ("stream_added", "visits", None),
        ("stream_removed", "sites", None),
        ("column_added", "people", "city"),
        ("column_removed", "people", "name"),
        ("column_retyped", "people", "id"),
    }
    retyped = next(c for c in changes.diff(applied, _changed(), ["people"]) if c.kind == "column_retyped")
    assert retyped.describe() == "stream 'people': column 'id' changed type from integer to string"
    assert changes.diff(applied, STREAMS, ["people"]) == []


@pytest.mark.parametrize(
    ("policy", "held", "columns_applied", "pending"),
    [
        ("ignore", False, False, 5),
        ("pause", True, False, 5),
        ("propagate_columns", False, True, 2),  # the added and the removed stream wait
        ("propagate_fully", False, True, 0),  # the removed stream is dropped; the added one is the platform's to add
    ],
)
def test_each_policy(policy: str, held: bool, columns_applied: bool, pending: int) -> None:
    applied = changes.AppliedCatalog.from_discovered(STREAMS, ["people", "sites"])
    outcome = changes.apply_policy(policy, applied, _changed(), ["people", "sites"])
    assert outcome.held is held and len(outcome.pending) == pending
    assert ("city" in outcome.applied.streams["people"]["properties"]) is columns_applied
    assert outcome.skipped == (["sites"] if policy == "propagate_fully" else [])
    assert outcome.adding == (["visits"] if policy == "propagate_fully" else [])


def test_what_a_sync_reports_per_stream() -> None:
    """Per stream of the connection: its own waiting changes and the connection's added streams; every
    change on every stream when held; under propagate_fully nothing waits and the added stream is named."""
    connection = ConnectionSpec.model_validate(
        {"name": "sheet", "source": {"connector": "source-file"}, "streams": [{"name": "people"}, {"name": "sites"}]}
    )
    applied = changes.AppliedCatalog.from_discovered(STREAMS, ["people", "sites"])
    discovered = {**STREAMS, "people": _changed()["people"], "visits": {"name": "visits", "json_schema": {}}}

    def observed(policy: str) -> dict:
        return changes.observations(connection, changes.apply_policy(policy, applied, discovered, ["people", "sites"]))

    ignoring = observed("ignore")
    assert ignoring["people"][SCHEMA_CHANGE_METADATA] == ignoring["sites"][SCHEMA_CHANGE_METADATA] == "pending"
    assert "column 'city' added" in ignoring["people"][SCHEMA_CHANGE_SUMMARY_METADATA]
    assert ignoring["sites"][SCHEMA_CHANGE_SUMMARY_METADATA] == "stream 'visits' added"
    assert observed("propagate_columns")["sites"][SCHEMA_CHANGE_SUMMARY_METADATA] == "stream 'visits' added"
    assert "column 'city' added" in observed("pause")["sites"][SCHEMA_CHANGE_SUMMARY_METADATA]  # held: all wait
    fully = observed("propagate_fully")
    assert (
        fully["people"]
        == fully["sites"]
        == {
            SCHEMA_CHANGE_METADATA: "resolved",
            SCHEMA_CHANGE_STREAMS_ADDED_METADATA: ["visits"],
        }
    )
    assert changes.approved(connection)["people"] == {SCHEMA_CHANGE_METADATA: "resolved"}


def test_the_catalogs_of_a_connection_are_kept_in_its_organizations_root(dalgo_env) -> None:
    assert changes.load_applied("acme", "sheet") is None
    changes.save_applied("acme", "sheet", changes.AppliedCatalog.from_discovered(STREAMS, ["people"]))
    changes.save_discovered("acme", "sheet", _changed())
    assert changes.load_applied("acme", "sheet").known == ["people", "sites"]
    assert set(changes.load_discovered("acme", "sheet").streams) == {"people", "visits"}
    changes.forget("acme", "sheet")
    assert changes.load_discovered("acme", "sheet") is None


def test_the_curated_catalog_pins_a_version_of_each_connector() -> None:
    with catalog.CURATED_FILE.open() as handle:
        rows = list(csv.DictReader(handle))
    names = [c.connector for c in catalog.curated()]
    assert len(names) == len(set(names)) == len(rows) >= 12
    assert {"source-file", "source-google-sheets", "source-commcare", "source-surveycto", "source-faker"} <= set(names)
    assert all(c.version and c.pypi_package == f"airbyte-{c.connector}" for c in catalog.curated())


def test_a_connection_reads_a_named_source_written_once() -> None:
    data = {
        "slug": "acme",
        "name": "Acme",
        "sources": [{"name": "sheet", "connector": "source-file", "config": {"url": "/f.csv"}}],
        "connections": [
            {"name": "a", "source_name": "sheet", "streams": [{"name": "f"}], "destination_schema": "raw_a"},
            {"name": "b", "source_name": "sheet", "streams": [{"name": "f"}], "destination_schema": "raw_b"},
        ],
    }
    spec = parse_org_spec(data, org="acme", path="org.yaml")
    assert spec.connections[1].source.config == {"url": "/f.csv"}
    dumped = yaml.safe_load(dump_org_spec(spec))
    assert all("source" not in c for c in dumped["connections"]) and len(dumped["sources"]) == 1
    assert parse_org_spec(dumped, org="acme", path="org.yaml") == spec
    with pytest.raises(SpecError, match="no source 'sheet' in sources"):
        parse_org_spec({**data, "sources": []}, org="acme", path="org.yaml")
