"""Every name the spec accepts becomes a Dagster name that loads: an accepted API change can never break
its organization's code location (streams named ``*9`` or ``C\u00d7`` once did)."""

from __future__ import annotations

import dagster as dg
import pytest
from pydantic import ValidationError

from dalgo_assets.definitions import build_org_definitions
from dalgo_core.spec import OrgSpec

LONGEST_NAME = "a" * 63
STREAMS = ["a-b", "9x", "_x", "A" * 128, "camelCase", "with_digits_123"]


def _spec(streams: list[str]) -> OrgSpec:
    return OrgSpec.model_validate(
        {
            "slug": "z" * 40,
            "name": "Edge",
            "connections": [
                {
                    "name": LONGEST_NAME,
                    "source": {"connector": "source-faker", "config": {}},
                    "streams": [{"name": s} for s in streams],
                }
            ],
            "pipelines": [
                {"name": LONGEST_NAME, "assets": ["*/*"], "schedule": {"cron": "0 2 * * *"}},
                {"name": "b" * 63, "assets": [f"{LONGEST_NAME}/*"], "freshness": {"max_lag_minutes": 60}},
            ],
        }
    )


def test_the_longest_and_oddest_accepted_names_load(dalgo_env) -> None:
    defs = build_org_definitions(_spec(STREAMS))
    dg.Definitions.validate_loadable(defs)
    keys = {k.path[-1] for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == set(STREAMS)


@pytest.mark.parametrize("stream", ["*9", "C\u00d7", "a b", "-a", "a/b", "", "é"])
def test_names_that_could_not_load_are_refused_by_the_spec(stream: str) -> None:
    with pytest.raises(ValidationError, match="streams"):
        _spec([stream])


def test_streams_that_would_share_a_table_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"differ only in case\): Users, users"):
        _spec(["users", "Users"])
