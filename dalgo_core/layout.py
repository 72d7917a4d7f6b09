"""Where the platform keeps its files (placeholder during the move; see the isolation change)."""

from __future__ import annotations

from pathlib import Path

from dalgo_core import settings


def dagster_home() -> Path:
    return settings.home_dir() / "dagster"
