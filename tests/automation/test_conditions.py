"""The freshness conditions in Dagster's own evaluation, with a controlled clock.

Every evaluation goes through ``dg.evaluate_automation_conditions`` under ``freeze_time`` (``VirtualOrg``),
on assets mapped by ``build_automation``; runs are recorded in an ephemeral instance like real ones
(planned materializations at launch, materializations or failure at the end).
"""

from __future__ import annotations

import itertools

import dagster as dg

from tests.automation.synthetic import T0, key, materialize_all, minutes, virtual_org
from tests.support.simulate import VirtualOrg, finish_run, launch_run

LAG_60 = {"max_lag_minutes": 60, "expected_run_minutes": 10}
CHAIN_A = {key("crm/users"), key("sales/stg_users"), key("sales/mart_a")}


def dash(freshness: dict, assets: list[str] | None = None) -> dict:
    return {"name": "dash", "assets": assets or ["sales/mart_a"], "freshness": freshness}


def requested_at(org: VirtualOrg, minute: float) -> frozenset[dg.AssetKey]:
    return org.evaluate(T0 + minutes(minute))


def test_fresh_target_and_its_upstream_are_not_requested() -> None:
    org = virtual_org([dash(LAG_60)])
    materialize_all(org, T0)
    for minute in (*range(5, 45, 5), 44):  # at 44, the next tick (4 minutes later) is still before 50
        assert requested_at(org, minute) == frozenset(), f"requested at +{minute} min"


def test_target_approaching_its_lag_is_requested_with_its_upstream_only() -> None:
    org = virtual_org([dash(LAG_60)])
    materialize_all(org, T0)
    assert requested_at(org, 40) == frozenset()
    # at 50 min (lag 60 minus the 10 min the run takes) the target and its whole chain are due;
    # orphan and mart_b hang off the same stream but no target needs them
    assert requested_at(org, 50) == CHAIN_A


def test_the_next_tick_is_taken_into_account() -> None:
    """With ticks 5 minutes apart, the request comes on the last tick before the target is due."""
    org = virtual_org([dash(LAG_60)])
    materialize_all(org, T0)
    assert requested_at(org, 40) == frozenset()
    assert requested_at(org, 46) == CHAIN_A  # 46 + 6 >= 50


def test_run_in_progress_is_not_requested_again() -> None:
    org = virtual_org([dash(LAG_60)], run_minutes=8)
    materialize_all(org, T0)
    assert requested_at(org, 40) == frozenset()
    run = org.tick(T0 + minutes(50))
    assert run is not None and run.keys == CHAIN_A
    for minute in (52, 54, 56):
        assert org.tick(T0 + minutes(minute)) is None, f"duplicate request at +{minute} min"
    org.tick(T0 + minutes(58))  # the run finished at 58: fresh again
    assert [r for r in org.runs if not r.finished] == []
    assert requested_at(org, 60) == frozenset()


def test_failed_run_is_retried_within_the_window() -> None:
    org = virtual_org([dash(LAG_60)])
    materialize_all(org, T0)
    requested_at(org, 45)
    run = launch_run(org.instance, requested_at(org, 50), (T0 + minutes(50)).timestamp(), 120, fails=True)
    finish_run(org.instance, run)  # failed at 52
    assert requested_at(org, 53) == frozenset()  # backing off (a quarter of the 10 min run)
    assert requested_at(org, 55) == CHAIN_A  # retried, still 5 minutes before going stale


def test_two_targets_sharing_an_upstream_cause_one_request_of_it() -> None:
    org = virtual_org([dash(LAG_60), {"name": "ops", "assets": ["sales/mart_b"], "freshness": LAG_60}])
    materialize_all(org, T0)
    requested_at(org, 45)
    assert requested_at(org, 50) == CHAIN_A | {key("sales/mart_b")}


def test_a_target_close_enough_joins_the_run_of_another() -> None:
    """mart_b (lag 100) never gets a run of its own: it joins mart_a's runs, sharing their sync."""
    lag_100 = {"max_lag_minutes": 100, "expected_run_minutes": 10}
    org = virtual_org([dash(LAG_60), {"name": "ops", "assets": ["sales/mart_b"], "freshness": lag_100}])
    for minute in range(0, 6 * 60, 5):
        org.tick(T0 + minutes(minute))
    assert all(key("sales/mart_a") in r.keys for r in org.runs)
    assert sum(key("sales/mart_b") in r.keys for r in org.runs) < len(org.runs)
    assert all(key("sales/orphan") not in r.keys for r in org.runs)
    for target in ("sales/mart_a", "sales/mart_b"):
        times = [r.ends for r in org.runs if key(target) in r.keys and r.finished]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        limit = 60 if target == "sales/mart_a" else 100
        assert max(gaps) < limit * 60, f"{target} went stale"


def test_deadline_target_is_requested_in_time_for_its_deadline() -> None:
    deadline = {"deadline_cron": "0 9 * * *", "deadline_max_age_minutes": 120, "expected_run_minutes": 20}
    org = virtual_org([dash(deadline)], run_minutes=15)
    materialize_all(org, T0 + minutes(5 * 60))  # 05:00, before the 07:00-09:00 window
    launched = []
    for minute in range(6 * 60, 10 * 60, 5):
        run = org.tick(T0 + minutes(minute))
        if run is not None:
            launched.append((minute, run))
    assert [m for m, _ in launched] == [8 * 60 + 35]  # 09:00 - 20 min - the 5 min to the next tick
    ((_, run),) = launched
    assert run.keys == CHAIN_A
    assert run.ends <= (T0 + minutes(9 * 60)).timestamp()


def test_a_target_due_while_its_upstream_runs_for_another_waits_for_that_sync() -> None:
    """mart_b falls due while a run of mart_a's chain (which syncs their shared stream) is in progress.

    It is not requested then (its run would sync the stream a second time), and once that run has
    finished it is requested alone: the stream and staging model the run just refreshed are fresh.
    """
    lag_30 = {"max_lag_minutes": 30, "expected_run_minutes": 10}
    org = virtual_org([dash(LAG_60), {"name": "ops", "assets": ["sales/mart_b"], "freshness": lag_30}], run_minutes=9)
    materialize_all(org, T0)
    materialize_all(org, T0 + minutes(40), ["sales/mart_b"])
    assert org.tick(T0 + minutes(45)) is None
    run = org.tick(T0 + minutes(50))  # mart_a is due; mart_b (10 min old) is not worth joining yet
    assert run is not None and run.keys == CHAIN_A
    assert requested_at(org, 55) == frozenset()  # mart_b due, but its upstream is being synced (until 59)
    assert not run.finished
    after = org.tick(T0 + minutes(60))
    assert run.finished
    assert after is not None and after.keys == {key("sales/mart_b")}
