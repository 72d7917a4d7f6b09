"""The module every organization's code location loads: ``attribute: <slug>`` builds that org alone.

Dagster's loader calls ``getattr(module, "<slug>")``; the module-level ``__getattr__`` (PEP 562) builds
only the requested organization, so a broken spec or dbt project fails its own location with a clear
message and no other. The load runs with Python's cyclic collector paused (``dalgo_assets.collector``).
"""

from __future__ import annotations

import dagster as dg

from dalgo_assets.collector import collector_paused, freeze_loaded
from dalgo_assets.definitions import org_definitions


def __getattr__(name: str) -> dg.Definitions:
    if name.startswith("__"):
        raise AttributeError(name)
    with collector_paused():
        defs = org_definitions(name)
        defs.get_repository_def()  # resolved once, here: Dagster's loader asks for it next
    freeze_loaded()
    return defs
