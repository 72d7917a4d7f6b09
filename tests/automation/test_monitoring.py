"""Monitoring and automation agree: Dagster's real FreshnessDaemon never finds a kept target stale.

A synthetic org is loaded as a code location (in process) and replayed tick by tick with its
automation (``VirtualOrg``); after each tick the FreshnessDaemon's own iteration evaluates the
``FreshnessPolicy`` that ``build_automation`` put on the target, under the same frozen clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget, create_test_daemon_workspace_context, freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._daemon.freshness import FreshnessDaemon

from tests.automation.synthetic import DEFS_ENV, T0, key, minutes, virtual_org
from tests.support.orgs import REPO

PIPELINES = [
    {"name": "dash", "assets": ["sales/mart_a"], "freshness": {"max_lag_minutes": 60, "expected_run_minutes": 10}}
]


@contextmanager
def workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, instance: dg.DagsterInstance
) -> Iterator[WorkspaceProcessContext]:
    monkeypatch.setenv(DEFS_ENV, json.dumps(PIPELINES))
    module = tmp_path / "org_defs.py"
    module.write_text("from tests.automation.synthetic import defs_from_env\n\ndefs = defs_from_env()\n")
    origin = LoadableTargetOrigin(python_file=str(module), attribute="defs", working_directory=str(REPO))
    target = InProcessTestWorkspaceLoadTarget(InProcessCodeLocationOrigin(origin))
    with create_test_daemon_workspace_context(target, instance) as context:
        yield context


def freshness_at(context: WorkspaceProcessContext, instance: dg.DagsterInstance, now: datetime) -> FreshnessState:
    with freeze_time(now):
        list(FreshnessDaemon().run_iteration(context))
    record = instance.get_freshness_state_records([key("sales/mart_a")]).get(key("sales/mart_a"))
    return record.freshness_state if record else FreshnessState.UNKNOWN


def test_freshness_daemon_sees_the_kept_target_fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    org = virtual_org(PIPELINES, run_minutes=8, instance=dg.DagsterInstance.local_temp(str(tmp_path)))
    states = []
    with workspace(tmp_path, monkeypatch, org.instance) as context:
        for minute in range(0, 150, 5):
            now = T0 + minutes(minute)
            org.tick(now)
            states.append(freshness_at(context, org.instance, now))
        assert states[0] == FreshnessState.UNKNOWN  # never materialized: the first run is launched
        assert FreshnessState.FAIL not in states[2:], states
        assert FreshnessState.WARN in states  # the policy warns once a refresh is due
        assert len(org.runs) >= 3
        # and without automation the same policy does go stale: the check above can fail
        last_run_end = max(r.ends for r in org.runs)
        stale_at = datetime.fromtimestamp(last_run_end, T0.tzinfo) + minutes(61)
        assert freshness_at(context, org.instance, stale_at) == FreshnessState.FAIL
