"""Issue 13's sequence under ``dalgo up`` (the embedded default: SQLite storage, the same reloadable
code servers as production), with no restart: an organization's first hour through the API
(tests/deploy/live_changes.py; the same sequence runs on the production topology in test_serve.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.deploy.live_changes import Platform, first_hour_of_an_organization
from tests.deploy.topology import BIN, REPO
from tests.deploy.up_platform import ROOT_TOKEN, Up


@pytest.mark.long
def test_an_organizations_first_hour_is_live_under_dalgo_up(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "DALGO_"))},
        "DALGO_HOME": str(tmp_path / "home"),
        "DALGO_ORGS_DIR": str(tmp_path / "orgs"),
        "DALGO_DBT_PROJECTS_DIR": str(tmp_path / "projects"),
        "DALGO_GIT_SCHEMES": "https,ssh,file",  # the sequence's git repository is local
        "DALGO_AUTOMATION_INTERVAL_SECONDS": "5",
        "DALGO_CONNECTORS_DIR": str(tmp_path.parent / "airbyte-connectors"),  # shared with other tests
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    (tmp_path / "orgs").mkdir()
    up = Up(REPO, env, command=(str(BIN / "dalgo"), "up"))
    up.log = tmp_path / "up.log"
    up.start()
    try:
        assert up.locations() == {}
        root = json.loads(up.manage("shell", "-c", ROOT_TOKEN).strip().splitlines()[-1])
        slug = first_hour_of_an_organization(Platform(up.api, up.web, root["token"], tmp_path / "projects"))
        assert "run " in up.output() and f"of {slug}" in up.output()  # its runs summarized on the console
    finally:
        left = up.stop()
    assert not left, f"still running after SIGTERM: {left}"
