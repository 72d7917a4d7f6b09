"""Which runs and asset keys count as an organization's: the rules every run id and key a caller sends
is checked against (no Dagster process needed)."""

from __future__ import annotations

from dalgo_api.dagster_bridge import absolute_path, belongs_to, relative_key


def test_a_run_belongs_to_the_organization_its_tag_names_else_its_code_location():
    assert belongs_to("acme", {"dalgo/org": "acme", "dagster/code_location": "org_acme"})
    # the tag wins: a run tagged for another organization is not acme's, wherever it ran
    assert not belongs_to("acme", {"dalgo/org": "globex", "dagster/code_location": "org_acme"})
    # a run launched from Dagit without the tag belongs to the location's organization only
    assert belongs_to("acme", {"dagster/code_location": "org_acme"})
    assert not belongs_to("acme", {"dagster/code_location": "org_acme_two"})
    assert not belongs_to("acme", {})


def test_asset_keys_are_relative_to_the_organization_and_never_leave_it():
    assert relative_key("acme", ["acme", "sales", "orders"]) == "sales/orders"
    assert relative_key("acme", ["globex", "sales", "orders"]) is None
    assert relative_key("acme", ["acme"]) is None
    assert absolute_path("acme", "sales/orders") == ["acme", "sales", "orders"]
    # a caller cannot climb out of its organization's namespace with a crafted key
    assert absolute_path("acme", "globex/sales")[0] == "acme"
