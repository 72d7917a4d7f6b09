"""Where the platform keeps things, from the environment (no Dagster or Django imports).

- ``DALGO_ORGS_DIR``: the organizations folder, one ``<slug>/org.yaml`` each (default ``./orgs``).
- ``DALGO_HOME``: the platform's state (default ``./.dalgo``), laid out by ``dalgo_core.layout``.
"""

from __future__ import annotations

import os
from pathlib import Path


def _dir(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value).expanduser().absolute() if value else default.absolute()


def orgs_dir() -> Path:
    return _dir("DALGO_ORGS_DIR", Path("orgs"))


def home_dir() -> Path:
    return _dir("DALGO_HOME", Path(".dalgo"))
