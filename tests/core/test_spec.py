"""Organization specs: validation errors name the organization, the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from dalgo_core.spec import (
    SpecError,
    list_org_slugs,
    load_alert_rules,
    load_org_spec,
    parse_org_spec,
    write_org_spec,
)
from tests.support.orgs import REPO, write_spec


def test_repo_orgs_are_valid_and_the_opt_in_example_is_on_postgres() -> None:
    # what `dalgo up` loads needs no server; the PostgreSQL example is opt-in (examples/)
    assert list_org_slugs(REPO / "orgs") == ["demo_ngo"]
    assert load_org_spec("demo_ngo", REPO / "orgs").warehouse.type == "duckdb"
    assert list_org_slugs(REPO / "examples") == ["partner_ngo"]
    assert load_org_spec("partner_ngo", REPO / "examples").warehouse.type == "postgres"


def _error(tmp_path: Path, spec: object) -> SpecError:
    path = tmp_path / "acme" / "org.yaml"
    with pytest.raises(SpecError) as exc:
        parse_org_spec(spec, org="acme", path=path)
    message = str(exc.value)
    assert "acme" in message and str(path) in message
    return exc.value


def test_unknown_warehouse_type_names_the_field(tmp_path: Path) -> None:
    err = _error(tmp_path, {"slug": "acme", "name": "Acme", "warehouse": {"type": "snowflake"}})
    assert any(p.startswith("warehouse") and "snowflake" in p for p in err.problems), err.problems


def test_missing_field_names_the_field(tmp_path: Path) -> None:
    err = _error(tmp_path, {"slug": "acme"})
    assert any(p.startswith("name") and "required" in p.lower() for p in err.problems), err.problems


def test_postgres_password_must_be_a_reference(tmp_path: Path) -> None:
    spec = {
        "slug": "acme",
        "name": "Acme",
        "warehouse": {"type": "postgres", "host": "h", "user": "u", "database": "d", "password": "hunter2"},
    }
    err = _error(tmp_path, spec)
    assert any("warehouse.postgres.password" in p for p in err.problems), err.problems
    assert "hunter2" not in str(err)


def test_slug_must_match_folder(tmp_path: Path) -> None:
    err = _error(tmp_path, {"slug": "other", "name": "Acme"})
    assert any("slug" in p and "folder" in p for p in err.problems)


def test_not_yaml_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "acme" / "org.yaml"
    path.parent.mkdir()
    path.write_text("slug: [unclosed")
    with pytest.raises(SpecError, match="not valid YAML") as exc:
        load_org_spec("acme", tmp_path)
    assert exc.value.org == "acme"


def test_bad_cron_and_lag_are_rejected(tmp_path: Path) -> None:
    base = {"slug": "acme", "name": "Acme"}
    err = _error(tmp_path, {**base, "pipelines": [{"name": "p", "assets": ["x/y"], "schedule": {"cron": "99 * *"}}]})
    assert any("pipelines.0.schedule.cron" in p for p in err.problems), err.problems
    err = _error(
        tmp_path, {**base, "pipelines": [{"name": "p", "assets": ["x/y"], "freshness": {"max_lag_minutes": 0}}]}
    )
    assert any("max_lag_minutes" in p for p in err.problems), err.problems


@pytest.mark.parametrize(
    ("pipeline", "field", "says"),
    [
        ({"schedule": {"cron": "0 2 * * *", "timezone": "Mars/Olympus"}}, "schedule.timezone", "'Mars/Olympus' is not"),
        ({"schedule": {"cron": "0 0 30 2 *"}}, "schedule.cron", "February has no day 30"),
        ({"freshness": {"max_lag_minutes": 30, "expected_run_minutes": 30}}, "freshness", "smaller than max_lag"),
        ({"freshness": {"max_lag_minutes": 0.5}}, "freshness", "at least 1"),
        ({"freshness": {"deadline_cron": "0 9,17 * * *", "deadline_max_age_minutes": 600}}, "freshness", "and 480"),
    ],
)
def test_what_a_location_could_not_build_is_refused_by_the_spec(
    tmp_path: Path, pipeline: dict, field: str, says: str
) -> None:
    # refused where the API validates an edit, before any code location reloads
    spec = {"slug": "acme", "name": "Acme", "pipelines": [{"name": "p", "assets": ["x/y"], **pipeline}]}
    err = _error(tmp_path, spec)
    assert any(p.startswith(f"pipelines.0.{field}") and says in p for p in err.problems), err.problems


def test_organization_timezone_and_server_sign_in_are_checked_by_the_spec(tmp_path: Path) -> None:
    err = _error(tmp_path, {"slug": "acme", "name": "Acme", "timezone": "Asia/Nowhere"})
    assert any(p.startswith("timezone") and "'Asia/Nowhere' is not a known IANA timezone" in p for p in err.problems)
    server = {"url": "http://airbyte:8000", "workspace_id": "w"}
    ingestion = {"mode": "server", "server": {**server, "username": "airbyte"}}
    err = _error(tmp_path, {"slug": "acme", "name": "Acme", "ingestion": ingestion})
    assert any(p.startswith("ingestion.server") and "both username and password" in p for p in err.problems)
    secrets = {"password": {"env": "P"}, "client_id": {"env": "I"}, "client_secret": {"env": "S"}}
    both = {**server, "username": "a", **secrets}
    err = _error(tmp_path, {"slug": "acme", "name": "Acme", "ingestion": {"mode": "server", "server": both}})
    assert any("not both" in p for p in err.problems), err.problems


def test_write_then_load_round_trips(tmp_path: Path) -> None:
    spec = parse_org_spec(
        {
            "slug": "acme",
            "name": "Acme",
            "warehouse": {"type": "postgres", "host": "db", "user": "u", "database": "d", "password": {"env": "PW"}},
            "dbt_projects": [{"name": "p1", "git": {"url": "https://example.org/p.git", "ref": "v1"}}],
        },
        org="acme",
        path=tmp_path / "acme" / "org.yaml",
    )
    write_org_spec(spec, tmp_path)
    again = load_org_spec("acme", tmp_path)
    assert again.model_dump() == spec.model_dump()
    assert "PW" in (tmp_path / "acme" / "org.yaml").read_text()


def test_list_skips_folders_without_spec(tmp_path: Path) -> None:
    write_spec(tmp_path, "b_org", {"slug": "b_org", "name": "B"})
    write_spec(tmp_path, "a_org", {"slug": "a_org", "name": "A"})
    (tmp_path / "not_an_org").mkdir()
    assert list_org_slugs(tmp_path) == ["a_org", "b_org"]


def test_alert_rules_are_checked_and_read_even_from_a_broken_spec(tmp_path: Path) -> None:
    base = {"slug": "acme", "name": "Acme"}
    hook = {"format": "slack", "url": {"file": "alert_stale_webhook_0"}}
    rules = [
        {"name": "stale", "kind": "freshness_failed", "assets": ["analytics/*"], "webhooks": [hook]},
        {"name": "broken", "kind": "location_failed", "window_minutes": 1440},
    ]
    err = _error(tmp_path, {**base, "alerts": [{"name": "runs", "kind": "run_failed", "assets": ["x/*"]}]})
    assert any(p.startswith("alerts.0") and "a run_failed rule selects no assets" in p for p in err.problems)
    err = _error(tmp_path, {**base, "alerts": [rules[1], rules[1]]})
    assert any("alert rule name used twice: broken" in p for p in err.problems), err.problems
    err = _error(tmp_path, {**base, "alerts": [{**rules[0], "webhooks": [{"url": "https://hooks.slack.com/x"}]}]})
    assert any(p.startswith("alerts.0.webhooks.0.url") for p in err.problems), err.problems  # a reference only

    # a spec whose other parts do not validate (why its location would not load) still gives its rules
    write_spec(tmp_path, "acme", {**base, "warehouse": {"type": "snowflake"}, "alerts": rules})
    with pytest.raises(SpecError):
        load_org_spec("acme", tmp_path)
    stale, broken = load_alert_rules("acme", tmp_path)
    assert (stale.name, stale.webhooks[0].url.file, broken.kind) == (
        "stale",
        "alert_stale_webhook_0",
        "location_failed",
    )
    assert stale.selects("analytics/daily") and not stale.selects("sales/orders") and broken.selects(None)
    write_spec(tmp_path, "acme", {**base, "alerts": [{"name": "x", "kind": "nonsense"}], "warehouse": 1})
    with pytest.raises(SpecError):
        load_alert_rules("acme", tmp_path)
