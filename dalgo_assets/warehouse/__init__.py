"""An organization's warehouse: its dbt profile and the Dagster resource that connects to it.

The names are resolved lazily (PEP 562) so that reading profiles (as the API does when it prepares dbt
projects) does not import Dagster.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "dbt_profile": "profiles",
    "secret_env_names": "profiles",
    "write_profiles": "profiles",
    "WarehouseResource": "resources",
    "warehouse_resources": "resources",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(name)
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
