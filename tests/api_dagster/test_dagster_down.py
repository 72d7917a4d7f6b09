"""With Dagster's webserver unreachable the API answers 503 with a clear message and changes nothing;
ids it cannot find are 404. No Dagster process is started here."""

from __future__ import annotations

from pathlib import Path

import pytest

from dalgo_api.accounts.models import ApiToken, User
from tests.api.conftest import PASSWORD, Api
from tests.api_dagster.conftest import OrgMembers, create_org_with_members


@pytest.fixture
def down(db: None, dalgo_env: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Api, OrgMembers]:
    monkeypatch.setenv("DALGO_DAGSTER_URL", "http://127.0.0.1:9")  # the discard port: nothing listens
    api = Api()
    root = User.objects.create_superuser("root@down.example.org", PASSWORD)
    return api, create_org_with_members(api, ApiToken.issue(root)[1], "Down NGO")


def test_dagster_down_is_503_and_changes_nothing(down: tuple[Api, OrgMembers], dalgo_env: Path):
    api, org = down
    token = org.tokens["account-manager"]
    spec_before = (dalgo_env / "orgs" / org.slug / "org.yaml").read_text()
    for method, path, body in (
        ("GET", "/api/assets/", None),
        ("POST", "/api/runs/", {"assets": ["sales/orders"]}),
        ("POST", "/api/pipelines/", {"name": "daily", "assets": ["sales/*"], "schedule": {"cron": "0 1 * * *"}}),
        (
            "POST",
            "/api/connections/",
            {"name": "faker", "source": {"connector": "source-faker"}, "streams": [{"name": "users"}]},
        ),
    ):
        response = api.call(method, path, body, token=token, org=org.slug)
        assert response.status_code == 503, (path, response.content)
        assert response.headers["Retry-After"] == "5"  # a client's retry waits a little, not a spin
        detail = response.json()["detail"]
        assert "Dagster is unavailable" in detail and "127.0.0.1:9" in detail
    assert (dalgo_env / "orgs" / org.slug / "org.yaml").read_text() == spec_before


def test_unknown_run_ids_are_404(down: tuple[Api, OrgMembers]):
    api, org = down
    token = org.tokens["guest"]
    for path in ("/api/runs/0000", "/api/runs/0000/logs", "/api/runs/" + "x" * 80):
        response = api.get(path, token=token, org=org.slug)
        assert response.status_code == 404, (path, response.content)
    assert api.get("/api/runs/", token=token, org=org.slug).json() == {"runs": [], "next_cursor": None}
