"""Which runs and asset keys count as an organization's: the rules every run id and key a caller sends
is checked against (no Dagster process needed)."""

from __future__ import annotations

from dalgo_api.bridge import absolute_path, relative_key
from dalgo_core.names import location_org


def run_org(tags: dict[str, str]) -> str | None:
    return location_org(tags.get("dagster/code_location", ""))


def belongs_to(slug: str, tags: dict[str, str]) -> bool:
    return run_org(tags) == slug


def test_a_run_belongs_to_the_organization_whose_code_location_it_ran_in():
    assert belongs_to("acme", {"dalgo/org": "acme", "dagster/code_location": "org_acme"})
    # launched from Dagit without Dalgo's tags: still the location's organization
    assert belongs_to("acme", {"dagster/code_location": "org_acme"})
    # anyone launching from Dagit can set dalgo/org: Dagster's location tag decides
    assert not belongs_to("acme", {"dalgo/org": "acme", "dagster/code_location": "org_globex"})
    assert not belongs_to("acme", {"dalgo/org": "acme"})
    assert not belongs_to("acme", {"dagster/code_location": "org_acme_two"})
    assert not belongs_to("acme", {})
    assert run_org({"dagster/code_location": "org_acme_two"}) == "acme_two"
    # a location that is not an organization's (an operator's own) is nobody's
    assert run_org({"dagster/code_location": "ops_tools"}) is None
    assert run_org({"dagster/code_location": "org_"}) is None


def test_asset_keys_are_relative_to_the_organization_and_never_leave_it():
    assert relative_key("acme", ["acme", "sales", "orders"]) == "sales/orders"
    assert relative_key("acme", ["globex", "sales", "orders"]) is None
    assert relative_key("acme", ["acme"]) is None
    assert absolute_path("acme", "sales/orders") == ["acme", "sales", "orders"]
    # a caller cannot climb out of its organization's namespace with a crafted key
    assert absolute_path("acme", "globex/sales")[0] == "acme"
