"""The organization's automation sensor: Dagster evaluates its assets' conditions on every tick."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import dagster as dg

from dalgo_core.names import ORG_TAG, TRIGGER_TAG, automation_sensor_name

INTERVAL_ENV = "DALGO_AUTOMATION_INTERVAL_SECONDS"
DEFAULT_INTERVAL_SECONDS = 30


def automation_sensor(slug: str, keys: Sequence[dg.AssetKey]) -> dg.AutomationConditionSensorDefinition:
    """On by default; evaluated in the code location, because the freshness conditions are Dalgo's own.

    It targets the assets that carry a condition (at most 500 for a user-code sensor, Dagster's limit),
    and every run it launches is tagged with the organization.
    """
    with warnings.catch_warnings():  # use_user_code_server is beta: said once here, not on every load
        warnings.simplefilter("ignore", dg.BetaWarning)
        return _sensor(slug, keys)


def _sensor(slug: str, keys: Sequence[dg.AssetKey]) -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        automation_sensor_name(slug),
        target=dg.AssetSelection.assets(*keys) if keys else dg.AssetSelection.key_prefixes([slug]),
        run_tags={ORG_TAG: slug, TRIGGER_TAG: "automation"},
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=int(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL_SECONDS)),
        use_user_code_server=True,
        description="Requests runs that keep the organization's freshness targets fresh",
    )
