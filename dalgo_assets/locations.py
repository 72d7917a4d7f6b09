"""The module every organization's code location loads: ``attribute: <slug>`` builds that org alone.

Dagster's loader calls ``getattr(module, "<slug>")``; the module-level ``__getattr__`` (PEP 562) builds
only the requested organization, so a broken spec or dbt project fails its own location with a clear
message and no other. The load runs with Python's cyclic collector paused (``dalgo_assets.collector``).

Dagster's code server asks for the attribute four times as it starts (``hasattr`` then ``getattr``, once
to find the target and once to reconstruct the repository): the organization is built once per version
of its spec file, and later asks get the same definitions. (Built four times, the three dropped copies
were cyclic garbage frozen with the rest: never freed.)
"""

from __future__ import annotations

import os

import dagster as dg

from dalgo_assets.collector import collector_paused, freeze_loaded
from dalgo_assets.definitions import org_definitions
from dalgo_core.spec import org_spec_path

_built: dict[str, tuple[tuple[int, int, int], dg.Definitions]] = {}


def _spec_version(slug: str) -> tuple[int, int, int] | None:
    """The spec file's identity: a write replaces the file (``write_org_spec``), changing all three."""
    try:
        found = os.stat(org_spec_path(slug))
    except (OSError, ValueError):
        return None
    return found.st_ino, found.st_mtime_ns, found.st_size


def __getattr__(name: str) -> dg.Definitions:
    if name.startswith("__"):
        raise AttributeError(name)
    version = _spec_version(name)
    if version is not None and name in _built and _built[name][0] == version:
        return _built[name][1]
    with collector_paused():
        defs = org_definitions(name)
        defs.get_repository_def()  # resolved once, here: Dagster's loader asks for it next
    freeze_loaded()
    if version is not None:
        _built[name] = (version, defs)
    return defs
