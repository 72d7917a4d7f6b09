"""Where an organization's dbt projects live, and their manifests, prepared once.

Definitions never run dbt: ``prepare_projects`` (called by ``dalgo prepare`` / ``dalgo workspace`` and
by the API when a spec changes) checks out git projects, writes the organization's dbt profile and runs
``dbt deps`` and ``dbt parse`` into the organization's own state folder, but only when a fingerprint of
the project's files, the profile and dbt's version changed. Loading a code location then only reads the
manifest JSON.

Preparing holds the organization's manifests lock (a file in the platform's folder, out of tenant code's
reach) exclusively, and reading a manifest holds it shared: a code location that loads while its
manifests are prepared waits for them instead of reading half of them. That lets the API reload a
location while dbt parses (``preparing_beside``): the code server imports beside dbt, and reads the
manifest as soon as it is written.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import orjson

from dalgo_core import dbt_parser, git, layout, sandbox, settings
from dalgo_core.redact import tenant_error
from dalgo_core.sandbox.tenant import org_policy
from dalgo_core.spec import DbtProjectSpec, OrgSpec, SpecError, load_org_spec
from dalgo_core.warehouse.profiles import PROFILE_NAME, profiles_dir, render_profiles, write_profiles

LOCAL_ROOT_ENV = "DALGO_DBT_PROJECTS_DIR"
DBT_TIMEOUT_SECONDS = 900

FINGERPRINT_FILE = "dalgo_fingerprint"
_SKIP_DIRS = {"target", "dbt_packages", "logs", ".git", "__pycache__", ".venv"}


class DbtProjectError(Exception):
    """A dbt project that cannot be used, naming the organization, project and what is wrong."""


@dataclass(frozen=True)
class PreparedProject:
    name: str
    project_dir: Path
    target_dir: Path

    @property
    def manifest_path(self) -> Path:
        return self.target_dir / "manifest.json"


def project_state_dir(spec: OrgSpec, project: DbtProjectSpec) -> Path:
    return spec.state_dir() / "dbt" / project.name


def local_projects_root() -> Path:
    """Where local dbt projects may live: ``$DALGO_DBT_PROJECTS_DIR``, by default ``dbt_projects/`` beside
    the organizations folder. An organization's own folder (``orgs/<slug>/``) is allowed too."""
    value = os.environ.get(LOCAL_ROOT_ENV)
    return (Path(value).expanduser() if value else settings.orgs_dir().parent / "dbt_projects").resolve()


def local_path(spec: OrgSpec, text: str) -> Path:
    """A local dbt project's folder, refused (``DbtProjectError``) unless it lies under the operator's
    projects root or the organization's own folder, and inside no other organization nor the platform's
    state (symlinks resolved)."""
    path = Path(text).expanduser()
    path = (path if path.is_absolute() else spec.folder / path).resolve()
    own = spec.folder.resolve()
    orgs = settings.orgs_dir().resolve()

    def under(root: Path) -> bool:
        return path == root or root in path.parents

    if under(settings.home_dir().resolve()) or (under(orgs) and not under(own)):
        raise DbtProjectError(f"dbt project path '{text}' lies inside another organization or the platform's state")
    if not (under(own) or under(local_projects_root())):
        raise DbtProjectError(
            f"dbt project path '{text}' is outside the folders local projects may use "
            f"({local_projects_root()}, or the organization's own folder); use a git URL"
        )
    return path


def tenant_projects_root(spec: OrgSpec) -> Path:
    """Where a tenant may point a local dbt project through the API: its own folder of the operator's
    projects root (``$DALGO_DBT_PROJECTS_DIR/<slug>/``). Projects elsewhere under that root are the
    operator's to assign in the organization files (two organizations may share one there)."""
    return local_projects_root() / spec.slug


def check_tenant_location(spec: OrgSpec, project: DbtProjectSpec, current: DbtProjectSpec | None = None) -> None:
    """Refuse (``DbtProjectError``) a local folder or ``file://`` repository a tenant names outside its
    own folders: ``tenant_projects_root`` or the organization's own folder. A location the project
    already had (set by an operator) may stay."""
    if project.path is not None:
        text, field = project.path, "path"
    elif project.git is not None and git.url_scheme(project.git.url) == "file":
        text, field = project.git.url.removeprefix("file://"), "git.url"
    else:
        return
    if current is not None and (current.path, current.git) == (project.path, project.git):
        return
    try:
        path = local_path(spec, text)
    except DbtProjectError as exc:
        raise DbtProjectError(f"{field}: {exc}") from None
    own = [tenant_projects_root(spec).resolve(), spec.folder.resolve()]
    if not any(path == root or root in path.parents for root in own):
        raise DbtProjectError(
            f"{field}: '{text}' is not one of this organization's folders ({own[0]}/...); use a git URL"
        )


def project_dir(spec: OrgSpec, project: DbtProjectSpec) -> Path:
    """The dbt project's folder: a local path (checked, see ``local_path``) or its git checkout."""
    if project.path is not None:
        return local_path(spec, project.path)
    assert project.git is not None
    checkout = project_state_dir(spec, project) / "checkout"
    return checkout / project.git.subdir if project.git.subdir else checkout


def located_project(spec: OrgSpec, project: DbtProjectSpec) -> PreparedProject:
    return PreparedProject(
        name=project.name,
        project_dir=project_dir(spec, project),
        target_dir=project_state_dir(spec, project) / "target",
    )


def _fingerprint(folder: Path, profile_text: str) -> str:
    # dbt-core's version from its distribution's metadata: importing ``dbt.version`` costs an API
    # process 0.3 s at its first dbt change (it imports much of dbt)
    digest = hashlib.sha256(f"{importlib.metadata.version('dbt-core')}\n{profile_text}".encode())
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in sorted(files):
            path = Path(root, name)
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def dbt_executable() -> str:
    """``dalgo-dbt`` (dbt under the run's sandbox policy) from the platform's own environment."""
    beside = Path(sys.executable).with_name("dalgo-dbt")
    return str(beside) if beside.exists() else "dalgo-dbt"


def _real_dbt() -> str:
    return str(Path(sys.executable).with_name("dbt"))


def _dbt(spec: OrgSpec, args: list[str], prepared: PreparedProject, env: dict[str, str], *, egress: bool = False):
    """One dbt command of tenant code, sandboxed, with the organization's profile and nothing else."""
    policy = org_policy(
        spec, read_only=[prepared.project_dir], cwd=prepared.project_dir, egress=egress, warehouse=False
    )
    policy = sandbox.Policy(**{**policy.__dict__, "setenv": env})
    try:
        return sandbox.run(policy, [_real_dbt(), *args], capture_output=True, text=True, timeout=DBT_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise DbtProjectError(f"dbt {args[0]} timed out after {DBT_TIMEOUT_SECONDS}s") from None
    except sandbox.SandboxUnavailable as exc:
        raise DbtProjectError(str(exc)) from None


def _git_source(spec: OrgSpec, url: str) -> tuple[list[str], list[Path]]:
    """git options and the folders the clone must read: a ``file://`` repository is a local path like
    any other (``local_path``), and git may read it only then."""
    if git.url_scheme(url) != "file":
        return [], []
    return ["-c", "protocol.file.allow=always"], [local_path(spec, url.removeprefix("file://"))]


def git_sync(spec: OrgSpec, project: DbtProjectSpec) -> str:
    """Clone or update a git project at its ref, sandboxed in the organization's root; return git's output."""
    assert project.git is not None
    where = f"organization '{spec.slug}', dbt project '{project.name}'"
    try:
        url = git.check_url(project.git.url)
        extra, sources = _git_source(spec, url)
    except (ValueError, DbtProjectError) as exc:
        raise DbtProjectError(f"{where}: {exc}") from None
    checkout = project_state_dir(spec, project) / "checkout"
    base = ["git", *git.CONFIG, *extra]
    if not (checkout / ".git").exists():
        checkout.parent.mkdir(parents=True, exist_ok=True)
        cmds = [[*base, "clone", "--quiet", "--no-recurse-submodules", "--", url, str(checkout)]]
    else:
        cmds = [[*base, "-C", str(checkout), "fetch", "--quiet", "origin"]]
    cmds.append([*base, "-C", str(checkout), "checkout", "--quiet", project.git.ref, "--"])
    cmds.append([*base, "-C", str(checkout), "pull", "--ff-only", "--quiet", "origin", project.git.ref])
    policy = org_policy(spec, read_only=sources, warehouse=False, egress=not sources)
    policy = sandbox.Policy(**{**policy.__dict__, "setenv": git.ENV, "cwd": str(checkout.parent)})
    output = []
    for cmd in cmds:
        try:
            result = sandbox.run(policy, cmd, capture_output=True, text=True, timeout=git.TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            raise DbtProjectError(f"{where}: git timed out after {git.TIMEOUT_SECONDS}s") from None
        except sandbox.SandboxUnavailable as exc:
            raise DbtProjectError(f"{where}: {exc}") from None
        shown = " ".join(c for c in cmd if c not in git.CONFIG and c not in extra)
        output.append(f"$ {shown}\n{result.stdout}{result.stderr}")
        # a detached ref (tag or commit) has nothing to pull
        if result.returncode != 0 and "pull" not in cmd:
            raise DbtProjectError(f"{where}: git failed: {tenant_error(result.stderr)}")
    return "\n".join(output)


def dbt_env(prepared: PreparedProject, profiles: Path) -> dict[str, str]:
    """dbt's own variables for a command run outside a Dagster dbt step: the org's profile, and its
    artifacts in the org's root (never in the project, which several orgs may share). Nothing else of
    the platform's environment reaches tenant dbt."""
    return {
        "DBT_PROFILES_DIR": str(profiles),
        "DBT_TARGET_PATH": str(prepared.target_dir),
        "DBT_LOG_PATH": str(prepared.target_dir),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_PARTIAL_PARSE": "true",
    }


def run_dbt(spec: OrgSpec, prepared: PreparedProject, *args: str) -> subprocess.CompletedProcess[str]:
    """A dbt chore (deps, clean, parse) of the project, sandboxed; ``deps`` may reach the package hub."""
    env = dbt_env(prepared, profiles_dir(spec))
    return _dbt(spec, [*args, "--profile", PROFILE_NAME], prepared, env, egress=args[:1] == ("deps",))


def _prepare(spec: OrgSpec, project: DbtProjectSpec, force: bool, *, warm: bool = False) -> PreparedProject:
    where = f"organization '{spec.slug}' ({spec.spec_path}), dbt project '{project.name}'"
    if project.git is not None:
        git_sync(spec, project)
    prepared = located_project(spec, project)
    if not (prepared.project_dir / "dbt_project.yml").is_file():
        raise DbtProjectError(f"{where}: no dbt_project.yml in the project's folder")
    write_profiles(spec)
    fingerprint = _fingerprint(prepared.project_dir, render_profiles(spec))
    stamp = layout.no_links(prepared.target_dir / FINGERPRINT_FILE)
    if not force and prepared.manifest_path.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return prepared
    prepared.target_dir.mkdir(parents=True, exist_ok=True)
    if (prepared.project_dir / "packages.yml").exists() or (prepared.project_dir / "dependencies.yml").exists():
        deps = run_dbt(spec, prepared, "deps", "--quiet")
        if deps.returncode != 0:
            raise DbtProjectError(f"{where}: dbt deps failed:\n{tenant_error(deps.stdout + deps.stderr)}")
    if not (warm and _parse_warm(spec, prepared) and prepared.manifest_path.exists()):
        parse = run_dbt(spec, prepared, "parse", "--quiet")
        if parse.returncode != 0 or not prepared.manifest_path.exists():
            stamp.unlink(missing_ok=True)
            raise DbtProjectError(f"{where}: dbt parse failed:\n{tenant_error(parse.stdout + parse.stderr)}")
    stamp.write_text(fingerprint)
    return prepared


def _parser_reads(spec: OrgSpec) -> list[Path]:
    """What the organization's warm parser may read: its folder, its folder of the projects root, and the
    folders of projects an operator assigned elsewhere (the organization's root is its writable place)."""
    folders = [spec.folder.resolve(), tenant_projects_root(spec).resolve()]
    for project in spec.dbt_projects:
        with contextlib.suppress(DbtProjectError):
            folders.append(project_dir(spec, project))
    roots = [*folders, layout.org_root(spec.slug).resolve()]
    return [f for f in dict.fromkeys(folders) if not any(r != f and r in f.parents for r in roots)]


def _parse_warm(spec: OrgSpec, prepared: PreparedProject) -> bool:
    """``dbt parse`` of the project in the organization's warm parser (``dalgo_core.dbt_parser``)."""
    policy = org_policy(spec, read_only=_parser_reads(spec), warehouse=False)
    env = replace(policy, setenv=dbt_env(prepared, profiles_dir(spec))).environment()
    args = ["parse", "--quiet", "--profile", PROFILE_NAME]
    try:
        return dbt_parser.parse(policy, spec.warehouse.type, prepared.project_dir, env, args, DBT_TIMEOUT_SECONDS)
    except TimeoutError:
        raise DbtProjectError(f"dbt parse timed out after {DBT_TIMEOUT_SECONDS}s") from None


def _manifests_lock(slug: str) -> Path:
    return layout.lock_file(f"{slug}.manifests")


@contextlib.contextmanager
def _locked(slug: str, how: int) -> Iterator[None]:
    with _manifests_lock(slug).open("a") as handle:
        fcntl.flock(handle, how)  # released when the file closes
        yield


def prepare_project(spec: OrgSpec, project: DbtProjectSpec, *, force: bool = False) -> PreparedProject:
    """Make sure the project's manifest is current; run ``dbt deps`` and ``dbt parse`` only if not."""
    with _locked(spec.slug, fcntl.LOCK_EX):
        return _prepare(spec, project, force)


def prepare_projects(spec: OrgSpec, *, force: bool = False) -> list[PreparedProject]:
    with _locked(spec.slug, fcntl.LOCK_EX):
        return [_prepare(spec, p, force) for p in spec.dbt_projects]


@contextlib.contextmanager
def preparing_beside(spec: OrgSpec) -> Iterator[Callable[[], list[PreparedProject]]]:
    """Prepare the organization's manifests in a thread, the lock taken before this returns: whatever
    runs in the ``with`` block (a reload of the code location) reads them once they are ready. Yields
    the way to wait for them: it returns the prepared projects or raises the ``DbtProjectError``."""
    handle = _manifests_lock(spec.slug).open("a")
    fcntl.flock(handle, fcntl.LOCK_EX)
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            outcome["projects"] = [_prepare(spec, p, False, warm=True) for p in spec.dbt_projects]
        except Exception as exc:  # handed to the waiting caller
            outcome["error"] = exc
        finally:
            handle.close()  # the lock goes with it

    thread = threading.Thread(target=work, name=f"prepare-{spec.slug}", daemon=True)
    thread.start()

    def wait() -> list[PreparedProject]:
        thread.join()
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        return outcome["projects"]  # type: ignore[return-value]

    try:
        yield wait
    finally:
        thread.join()


# What a manifest holds that definitions never read (dagster-dbt reads nodes, sources, the maps and the
# semantic layer): dbt's macros are most of a small project's manifest (every adapter macro), and a code
# server keeps its manifests for its life
UNUSED_MANIFEST_KEYS = ("macros", "docs", "disabled")


def read_manifest(spec: OrgSpec, project: DbtProjectSpec) -> tuple[PreparedProject, dict]:
    """The prepared manifest, for definition loading, without what definitions never read: never runs dbt."""
    prepared = located_project(spec, project)
    where = f"organization '{spec.slug}' ({spec.spec_path}), dbt project '{project.name}'"
    if not (prepared.project_dir / "dbt_project.yml").is_file():
        raise DbtProjectError(f"{where}: no dbt_project.yml in the project's folder")
    try:
        with _locked(spec.slug, fcntl.LOCK_SH):  # not while the manifests are being prepared
            manifest = orjson.loads(layout.read_org_file(prepared.manifest_path, max_bytes=None))
    except FileNotFoundError:
        raise DbtProjectError(f"{where}: its manifest is not prepared; run `dalgo prepare {spec.slug}`") from None
    for key in UNUSED_MANIFEST_KEYS:
        manifest.pop(key, None)
    return prepared, manifest


def prepare_organizations(slugs: list[str], *, force: bool = False) -> dict[str, str]:
    """Prepare each organization's dbt manifests; return the problems by organization (never raises)."""
    problems: dict[str, str] = {}
    for slug in slugs:
        try:
            prepare_projects(load_org_spec(slug), force=force)
        except (SpecError, DbtProjectError) as exc:
            problems[slug] = str(exc)
    return problems
