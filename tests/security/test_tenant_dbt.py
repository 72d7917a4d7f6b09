"""A tenant's own dbt code, run by the platform as it runs every dbt project (``dbt parse`` when the
project is added, ``dbt build`` in a Dagster run): it gets none of the platform's environment, reads
no file of the platform or of another organization, and its errors keep dbt's cause with no secret."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from dalgo_assets.definitions import build_org_definitions
from dalgo_core import layout, sandbox, secret_store
from dalgo_core.dbt_projects import DbtProjectError, prepare_projects
from dalgo_core.spec import load_org_spec
from dalgo_core.warehouse.connect import read_warehouse
from tests.support.orgs import write_dbt_project, write_spec

SECRET = "platform-secret-6b1f0c"

pytestmark = pytest.mark.skipif(sandbox.mode() != "bwrap", reason="the sandbox is off on this machine")


@pytest.fixture
def platform(dalgo_env: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A platform holding a secret in its environment, a secrets key, and a victim organization."""
    for name in ("DAGSTER_PG_PASSWORD", "DALGO_API_SECRET_KEY", "DALGO_TEST_PLATFORM_SECRET"):
        monkeypatch.setenv(name, SECRET)
    secret_store.write_secret("victim", "warehouse_password", "victim-password")
    victim = layout.org_root("victim")
    victim.mkdir(parents=True, exist_ok=True)
    import duckdb

    with duckdb.connect(str(victim / "warehouse.duckdb")) as conn:
        conn.execute("create table donors as select 'victim donor' as name")
    return {
        "key": layout.secrets_key_file(),
        "victim_wh": victim / "warehouse.duckdb",
        "victim_secret": secret_store.secret_path("victim", "warehouse_password"),
    }


def _tenant(dalgo_env: Path, files: dict[str, str]) -> str:
    project = write_dbt_project(dalgo_env / "projects", "evil", files)
    write_spec(
        dalgo_env / "orgs",
        "tenant",
        {"slug": "tenant", "name": "Tenant", "dbt_projects": [{"name": "evil", "path": str(project)}]},
    )
    return "tenant"


@pytest.mark.parametrize("name", ["DAGSTER_PG_PASSWORD", "DALGO_API_SECRET_KEY", "DALGO_TEST_PLATFORM_SECRET"])
def test_parse_sees_no_platform_variable_and_its_error_keeps_dbts_cause(dalgo_env, platform, name):
    model = "{{ exceptions.raise_compiler_error('leak=' ~ env_var('" + name + "', 'unset')) }}\nselect 1\n"
    slug = _tenant(dalgo_env, {"models/leak.sql": model})
    with pytest.raises(DbtProjectError) as caught:
        prepare_projects(load_org_spec(slug))
    message = str(caught.value)
    assert "leak=unset" in message  # dbt's own cause, as the model raised it
    assert SECRET not in message and "\x1b[" not in message and "Traceback" not in message


def test_a_symlink_committed_in_the_project_reads_nothing_outside(dalgo_env, platform):
    project = write_dbt_project(dalgo_env / "projects", "evil", {"models/ok.sql": "select 1 as id\n"})
    (project / "models" / "stolen.sql").symlink_to(platform["victim_secret"])
    (project / "seeds").mkdir(exist_ok=True)
    (project / "seeds" / "key.csv").symlink_to(platform["key"])
    write_spec(
        dalgo_env / "orgs",
        "tenant",
        {"slug": "tenant", "name": "Tenant", "dbt_projects": [{"name": "evil", "path": str(project)}]},
    )
    try:
        prepare_projects(load_org_spec("tenant"))
    except DbtProjectError as exc:
        assert "fernet:" not in str(exc) and platform["key"].read_text() not in str(exc)
    manifest = layout.org_root("tenant") / "dbt" / "evil" / "target" / "manifest.json"
    if manifest.exists():
        text = manifest.read_text()
        assert "fernet:" not in text and platform["key"].read_text() not in text


def test_a_build_reads_no_platform_file_other_warehouse_or_environment(dalgo_env, platform):
    files = {
        # tables: built when the sandboxed build runs, not when a reader looks
        "models/environ.sql": (
            "{{ config(materialized='table') }}\nselect content from read_text('/proc/self/environ')\n"
        ),
        "models/key.sql": "{{ config(materialized='table') }}\n"
        f"select content from read_text('{platform['key']}')\n",
        "models/other_wh.sql": (
            "{{ config(pre_hook=\"attach '" + str(platform["victim_wh"]) + "' as victim (read_only)\") }}\n"
            "select name from victim.donors\n"
        ),
        # Python, run by dbt in the build: replace its own warehouse file by a link to the victim's
        "models/plant.py": (
            "import os\n"
            "def model(dbt, session):\n"
            "    dbt.config(materialized='table')\n"
            "    try:\n"
            f"        os.symlink({str(platform['victim_wh'])!r}, {str(layout.org_root('tenant') / 'planted')!r})\n"
            "        outcome = 'planted'\n"
            "    except OSError as exc:\n"
            "        outcome = exc.strerror\n"
            "    return session.sql(f\"select '{outcome}' as outcome\")\n"
        ),
    }
    slug = _tenant(dalgo_env, files)
    spec = load_org_spec(slug)
    prepare_projects(spec)
    defs = build_org_definitions(spec)
    result = dg.materialize(
        defs.assets,
        resources=defs.resources,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        tags={"dalgo/org": slug},
    )
    import duckdb

    with duckdb.connect(str(layout.org_root(slug) / "warehouse.duckdb"), read_only=True) as conn:
        tables = {r[0] for r in conn.execute("select table_name from information_schema.tables").fetchall()}
        environ = conn.execute("select content from environ").fetchone()[0]
        key = conn.execute("select * from key").fetchall()
        planted = conn.execute("select outcome from plant").fetchall()
    assert SECRET not in environ and "DAGSTER_PG" not in environ and "DALGO_SECRETS_KEY" not in environ
    assert key == []  # the platform's key is no file for tenant code
    assert "other_wh" not in tables  # nor is another organization's warehouse
    assert planted == [("Operation not permitted",)]  # no link for the platform to follow later
    assert not (layout.org_root(slug) / "planted").is_symlink()
    # the platform's own readers run none of the tenant's file access: its views are refused there
    with read_warehouse(load_org_spec(slug)) as conn, pytest.raises(duckdb.PermissionException):
        conn.execute("create temp table probe as select * from read_text('/etc/hostname')")
    output = "\n".join(str(e.message) for e in result.all_events if e.message)
    assert SECRET not in output and platform["key"].read_text() not in output
