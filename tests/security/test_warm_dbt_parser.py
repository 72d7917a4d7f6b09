"""The warm dbt parser an API change uses (``dalgo_core.dbt_parser``): the manifest a cold ``dbt parse``
writes, one parser per organization that stays warm across its projects, in that organization's sandbox
with none of the platform's environment, reading no other organization, and stopped when it hangs or
idles."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import orjson
import pytest

from dalgo_core import dbt_parser, dbt_projects, layout, pids, sandbox
from dalgo_core.dbt_projects import DbtProjectError, located_project, prepare_projects, preparing_beside
from dalgo_core.sandbox.tenant import org_policy
from dalgo_core.spec import load_org_spec
from tests.support.orgs import write_dbt_project, write_spec

pytestmark = pytest.mark.skipif(sandbox.mode() != "bwrap", reason="the sandbox is off on this machine")

SECRET = "platform-secret-4d2a91"
MODEL = "{{ config(materialized='table', meta={'seen': env_var('DALGO_API_SECRET_KEY', 'unset')}) }}\nselect 1 as id\n"


@pytest.fixture(autouse=True)
def _projects_root(dalgo_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Local projects where an operator keeps them: ``projects/<slug>/`` is each tenant's own."""
    monkeypatch.setenv(dbt_projects.LOCAL_ROOT_ENV, str(dalgo_env / "projects"))


# two project macros documented with doc(): one in its description, one in its argument's only
DOCUMENTED = {
    "models/c.sql": "select {{ cents('1') }} as c, {{ halve('4') }} as h\n",
    "macros/cents.sql": "{% macro cents(dollars) %}({{ dollars }} * 100){% endmacro %}\n",
    "macros/halve.sql": "{% macro halve(x) %}({{ x }} / 2){% endmacro %}\n",
    "macros/docs.md": (
        "{% docs cents_doc %}Cents from dollars.{% enddocs %}\n"
        "{% docs dollars_doc %}The amount, in dollars.{% enddocs %}\n"
    ),
    "macros/schema.yml": (
        "version: 2\nmacros:\n  - name: cents\n    description: '{{ doc(\"cents_doc\") }}'\n"
        "  - name: halve\n    description: Half of it.\n"
        "    arguments:\n      - name: x\n        type: string\n        description: '{{ doc(\"dollars_doc\") }}'\n"
    ),
}


def _org(dalgo_env: Path, slug: str, projects: dict[str, dict[str, str]]) -> None:
    entries = []
    for name, files in projects.items():
        folder = write_dbt_project(dalgo_env / "projects" / slug, name, files)
        entries.append({"name": name, "path": str(folder)})
    write_spec(dalgo_env / "orgs", slug, {"slug": slug, "name": slug.title(), "dbt_projects": entries})


def _prepare_through_the_api_path(slug: str) -> None:
    with preparing_beside(load_org_spec(slug)) as wait:
        wait()


def _manifest(slug: str, project: str) -> dict:
    spec = load_org_spec(slug)
    prepared = located_project(spec, next(p for p in spec.dbt_projects if p.name == project))
    return orjson.loads(prepared.manifest_path.read_bytes())


def _nodes(slug: str, project: str) -> dict[str, tuple[str, dict]]:
    manifest = _manifest(slug, project)
    return {k: (n["checksum"]["checksum"], n["config"]["meta"]) for k, n in manifest["nodes"].items()}


def _macro_docs(slug: str, project: str) -> dict[str, tuple[str, list[str]]]:
    """Each macro's description and its arguments' descriptions, rendered."""
    macros = _manifest(slug, project)["macros"].items()
    return {k: (m["description"], [a["description"] for a in m["arguments"]]) for k, m in macros}


def _macro_calls(slug: str, project: str) -> dict[str, list[str]]:
    """Which macros each macro calls: what dbt reads from every macro's parsed Jinja."""
    return {k: m["depends_on"]["macros"] for k, m in _manifest(slug, project)["macros"].items()}


def test_one_warm_parser_per_organization_writes_the_manifests_a_cold_parse_writes(dalgo_env, monkeypatch):
    monkeypatch.setenv("DALGO_API_SECRET_KEY", SECRET)
    _org(dalgo_env, "tenant", {"one": {"models/a.sql": MODEL}})
    _prepare_through_the_api_path("tenant")
    pid = dbt_parser.running_pid("tenant")
    assert pid is not None
    warm = _nodes("tenant", "one")
    assert warm == {"model.one.a": (warm["model.one.a"][0], {"seen": "unset"})}  # no platform variable

    # a second project of the organization: the same parser, already warm
    warm_calls = _macro_calls("tenant", "one")
    _org(
        dalgo_env,
        "tenant",
        {"one": {"models/a.sql": MODEL}, "two": {"models/b.sql": "select 2 as id\n"}, "three": DOCUMENTED},
    )
    with monkeypatch.context() as no_cold_parse:
        no_cold_parse.setattr(dbt_projects, "run_dbt", lambda *a: pytest.fail(f"parsed cold: {a}"))
        _prepare_through_the_api_path("tenant")
    assert dbt_parser.running_pid("tenant") == pid
    assert set(_nodes("tenant", "two")) == {"model.two.b"}

    assert _macro_calls("tenant", "two") == warm_calls  # dbt's and the adapter's, parsed once by this parser
    warm_docs = _macro_docs("tenant", "three")
    # a project macro documented with doc(): rendered; dbt's own, without Jinja, as they are
    assert warm_docs["macro.three.cents"] == ("Cents from dollars.", [])
    assert warm_docs["macro.three.halve"] == ("Half of it.", ["The amount, in dollars."])
    prepare_projects(load_org_spec("tenant"), force=True)  # cold, the way every other path parses
    assert _nodes("tenant", "one") == warm
    assert _macro_calls("tenant", "one") == warm_calls
    assert _macro_docs("tenant", "three") == warm_docs


def test_a_warm_parser_reads_no_other_organization(dalgo_env):
    _org(dalgo_env, "victim", {"secret": {"models/s.sql": "select 'victim' as name\n"}})
    _org(dalgo_env, "tenant", {"one": {"models/a.sql": "select 1 as id\n"}})
    _prepare_through_the_api_path("tenant")
    tenant, victim = load_org_spec("tenant"), load_org_spec("victim")
    target = layout.org_root("tenant") / "stolen"
    env = {"DBT_PROFILES_DIR": str(layout.org_root("tenant")), "DBT_TARGET_PATH": str(target)}
    policy = org_policy(tenant, read_only=dbt_projects._parser_reads(tenant), warehouse=False)
    victim_dir = located_project(victim, victim.dbt_projects[0]).project_dir
    assert not dbt_parser.parse(policy, "duckdb", victim_dir, env, ["parse"], 60)
    assert not target.exists()
    assert dbt_parser.running_pid("tenant") is not None  # the refusal stopped nothing


def test_a_project_that_fails_to_parse_says_why_as_a_cold_parse_does(dalgo_env):
    _org(dalgo_env, "tenant", {"one": {"models/a.sql": "{{ exceptions.raise_compiler_error('broken on purpose') }}"}})
    with pytest.raises(DbtProjectError, match="broken on purpose"):
        _prepare_through_the_api_path("tenant")


def test_a_parse_that_hangs_is_stopped_with_its_parser(dalgo_env, monkeypatch):
    monkeypatch.setattr(dbt_projects, "DBT_TIMEOUT_SECONDS", 8)
    hang = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\nselect 1 as id\n"
    _org(dalgo_env, "tenant", {"one": {"models/a.sql": "select 1 as id\n"}})
    _prepare_through_the_api_path("tenant")
    pid = dbt_parser.running_pid("tenant")
    _org(dalgo_env, "tenant", {"one": {"models/a.sql": hang}})
    with pytest.raises(DbtProjectError, match="timed out after 8s"):
        _prepare_through_the_api_path("tenant")
    assert pid is not None and dbt_parser.running_pid("tenant") is None
    folder = str(layout.org_root("tenant") / dbt_parser.client.SOCKET_FOLDER)
    deadline = time.monotonic() + 10
    while _processes_with(folder) and time.monotonic() < deadline:  # the sandbox, and python inside it
        time.sleep(0.1)
    assert _processes_with(folder) == []


def _processes_with(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and pids.alive(int(proc.name)) and text in (proc / "cmdline").read_text():
                found.append(int(proc.name))
    return found


def test_an_idle_parser_exits_and_the_next_change_starts_another(dalgo_env, monkeypatch):
    monkeypatch.setenv(dbt_parser.client.IDLE_ENV, "1")
    _org(dalgo_env, "tenant", {"one": {"models/a.sql": "select 1 as id\n"}})
    _prepare_through_the_api_path("tenant")
    first = dbt_parser.running_pid("tenant")
    deadline = time.monotonic() + 30
    while dbt_parser.running_pid("tenant") is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert dbt_parser.running_pid("tenant") is None
    assert not (layout.org_root("tenant") / dbt_parser.client.SOCKET_FOLDER / "dbt-parser.sock").exists()
    _org(dalgo_env, "tenant", {"one": {"models/a.sql": "select 2 as id\n"}})
    _prepare_through_the_api_path("tenant")
    assert dbt_parser.running_pid("tenant") not in (None, first)


def test_deleting_the_organization_stops_its_parser(dalgo_env):
    from dalgo_api.specs.store import delete_org_spec

    _org(dalgo_env, "tenant", {"one": {"models/a.sql": "select 1 as id\n"}})
    _prepare_through_the_api_path("tenant")
    assert dbt_parser.running_pid("tenant") is not None
    delete_org_spec("tenant")
    assert dbt_parser.running_pid("tenant") is None
