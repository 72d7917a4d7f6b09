"""``dalgo serve``'s storage step (``dalgo_ops.storage`` through ``prepare_storage``): the first start
creates and stamps the storage with the organizations' pools, a warm start skips the step, and a storage
the webserver just created always gets its pools, whatever an old stamp says."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from dalgo_ops.instance import write_embedded_instance
from dalgo_ops.serve import READY_STAMP, new_storage, prepare_storage
from tests.support.orgs import REPO


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    home = tmp_path / "dagster"
    write_embedded_instance(home)  # the instance dalgo up writes: its pools' default limit
    values = {"DAGSTER_HOME": str(home), "DALGO_HOME": str(tmp_path / "dalgo"), "DALGO_ORGS_DIR": str(REPO / "orgs")}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_PG")}


def test_a_start_stamps_the_storage_and_a_warm_one_skips_the_step(env: dict[str, str], tmp_path: Path) -> None:
    assert new_storage(env)
    step = prepare_storage(env, tmp_path)
    assert step is not None and "--migrate" in step.proc.args
    step.result("cannot be created")
    assert not new_storage(env)
    stamp = (Path(env["DAGSTER_HOME"]) / READY_STAMP).read_text().splitlines()
    assert stamp[1:] == ["warehouse/demo_ngo"]  # demo_ngo's DuckDB warehouse pool
    with dg.DagsterInstance.get() as instance:
        assert instance.event_log_storage.get_concurrency_keys() == {"warehouse/demo_ngo"}

    assert prepare_storage(env, tmp_path) is None  # warm: this Dagster made it, with these pools

    again = prepare_storage(env, tmp_path, just_created=True)  # a storage the webserver just made
    assert again is not None and "--migrate" not in again.proc.args
    again.result("cannot make the pools")
