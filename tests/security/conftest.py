"""A hostile tenant: the API's fixtures (a real Django database, one member per role), plus what the
attacks need to look for damage: a victim organization with a secret, and the platform's own files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.conftest import *  # noqa: F403 - the API's fixtures: api, db, world, other_world, ...


def snapshot(root: Path) -> dict[str, float]:
    """Every path under ``root`` with its modification time: what an attack must leave unchanged."""
    return {str(p.relative_to(root)): p.lstat().st_mtime for p in sorted(root.rglob("*"))}


@pytest.fixture
def dagster_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Dagster: a change that passes validation is answered 503 and undone, one that does not is
    refused first. (What reaches Dagster is tested on the production topology in tests/deploy.)"""
    monkeypatch.setenv("DALGO_DAGSTER_URL", "http://127.0.0.1:9")
