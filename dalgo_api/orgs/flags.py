"""Feature flags: global values, overridden per organization (the organization's value wins)."""

from __future__ import annotations

from dalgo_api.orgs.models import FeatureFlag, Org

FEATURE_FLAGS: dict[str, str] = {
    "DATA_QUALITY": "Elementary data quality reports",
    "USAGE_DASHBOARD": "Superset usage dashboard for the organization",
    "EMBED_SUPERSET": "Embed Superset dashboards",
    "LOG_SUMMARIZATION": "Summarize logs using AI",
    "AI_DATA_ANALYSIS": "Data analysis using AI",
    "DATA_STATISTICS": "Detailed data statistics in explore",
}


class UnknownFlag(ValueError):
    def __init__(self, name: str):
        super().__init__(f"unknown feature flag '{name}'; known flags: {', '.join(FEATURE_FLAGS)}")


def set_flag(name: str, enabled: bool, org: Org | None = None) -> FeatureFlag:
    """Enable or disable a flag globally (``org=None``) or for one organization."""
    if name not in FEATURE_FLAGS:
        raise UnknownFlag(name)
    flag, _ = FeatureFlag.objects.update_or_create(org=org, name=name, defaults={"enabled": enabled})
    return flag


def flags_for(org: Org | None) -> dict[str, bool]:
    """Every known flag's effective value for an organization: its own value, else the global one,
    else off."""
    values = dict.fromkeys(FEATURE_FLAGS, False)
    rows = FeatureFlag.objects.filter(org__isnull=True)
    if org is not None:
        rows = rows | FeatureFlag.objects.filter(org=org)
    for flag in sorted(rows, key=lambda f: f.org_id is not None):  # globals first, org values win
        if flag.name in values:
            values[flag.name] = flag.enabled
    return values
