"""Where an organization's dbt projects live, and their manifests, prepared once.

Definitions never run dbt: ``prepare_projects`` (called by ``dalgo prepare`` / ``dalgo workspace`` and
by the API when a spec changes) checks out git projects, writes the organization's dbt profile and runs
``dbt deps`` and ``dbt parse`` into the organization's own state folder, but only when a fingerprint of
the project's files, the profile and dbt's version changed. Loading a code location then only reads the
manifest JSON.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson

from dalgo_core.spec import DbtProjectSpec, OrgSpec
from dalgo_core.warehouse.profiles import PROFILE_NAME, render_profiles, write_profiles

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


def project_dir(spec: OrgSpec, project: DbtProjectSpec) -> Path:
    """The dbt project's folder: a local path (relative to the spec file) or its git checkout."""
    if project.path is not None:
        path = Path(project.path).expanduser()
        return path if path.is_absolute() else (spec.folder / path).resolve()
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
    from dbt.version import __version__ as dbt_version

    digest = hashlib.sha256(f"{dbt_version}\n{profile_text}".encode())
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in sorted(files):
            path = Path(root, name)
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def dbt_executable() -> str:
    """dbt from the platform's own environment, even when that environment is not on PATH."""
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


def _dbt(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([dbt_executable(), *args], cwd=cwd, env=env, capture_output=True, text=True)


def _dbt_errors(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return "\n".join((errors or lines)[-15:])


def git_sync(spec: OrgSpec, project: DbtProjectSpec) -> str:
    """Clone or update a git project at its ref; return git's output."""
    assert project.git is not None
    checkout = project_state_dir(spec, project) / "checkout"
    if not (checkout / ".git").exists():
        checkout.parent.mkdir(parents=True, exist_ok=True)
        cmds = [["git", "clone", "--quiet", project.git.url, str(checkout)]]
    else:
        cmds = [["git", "-C", str(checkout), "fetch", "--quiet", "origin"]]
    cmds.append(["git", "-C", str(checkout), "checkout", "--quiet", project.git.ref])
    cmds.append(["git", "-C", str(checkout), "pull", "--ff-only", "--quiet", "origin", project.git.ref])
    output = []
    for cmd in cmds:
        result = subprocess.run(cmd, capture_output=True, text=True)
        output.append(f"$ {' '.join(cmd)}\n{result.stdout}{result.stderr}")
        # a detached ref (tag or commit) has nothing to pull
        if result.returncode != 0 and cmd[3] != "pull":
            raise DbtProjectError(
                f"organization '{spec.slug}', dbt project '{project.name}': git failed: {result.stderr.strip()}"
            )
    return "\n".join(output)


def dbt_env(prepared: PreparedProject, profiles: Path) -> dict[str, str]:
    """The environment of a dbt command run outside a Dagster dbt step: the org's profile, and its
    artifacts in the org's state folder (never in the project, which several orgs may share)."""
    return {
        **os.environ,
        "DBT_PROFILES_DIR": str(profiles),
        "DBT_TARGET_PATH": str(prepared.target_dir),
        "DBT_LOG_PATH": str(prepared.target_dir),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def prepare_project(spec: OrgSpec, project: DbtProjectSpec, *, force: bool = False) -> PreparedProject:
    """Make sure the project's manifest is current; run ``dbt deps`` and ``dbt parse`` only if not."""
    where = f"organization '{spec.slug}' ({spec.spec_path}), dbt project '{project.name}'"
    if project.git is not None:
        git_sync(spec, project)
    prepared = located_project(spec, project)
    if not (prepared.project_dir / "dbt_project.yml").is_file():
        raise DbtProjectError(f"{where}: no dbt_project.yml in {prepared.project_dir}")
    profiles = write_profiles(spec)
    fingerprint = _fingerprint(prepared.project_dir, render_profiles(spec))
    stamp = prepared.target_dir / FINGERPRINT_FILE
    if not force and prepared.manifest_path.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return prepared
    prepared.target_dir.mkdir(parents=True, exist_ok=True)
    env = dbt_env(prepared, profiles)
    common = ["--profile", PROFILE_NAME]
    if (prepared.project_dir / "packages.yml").exists() or (prepared.project_dir / "dependencies.yml").exists():
        deps = _dbt(["deps", "--quiet"], prepared.project_dir, env)
        if deps.returncode != 0:
            raise DbtProjectError(f"{where}: dbt deps failed:\n{_dbt_errors(deps.stdout + deps.stderr)}")
    parse = _dbt(["parse", "--quiet", *common], prepared.project_dir, env)
    if parse.returncode != 0 or not prepared.manifest_path.exists():
        stamp.unlink(missing_ok=True)
        raise DbtProjectError(f"{where}: dbt parse failed:\n{_dbt_errors(parse.stdout + parse.stderr)}")
    stamp.write_text(fingerprint)
    return prepared


def prepare_projects(spec: OrgSpec, *, force: bool = False) -> list[PreparedProject]:
    return [prepare_project(spec, p, force=force) for p in spec.dbt_projects]


def read_manifest(spec: OrgSpec, project: DbtProjectSpec) -> tuple[PreparedProject, dict]:
    """The prepared manifest, for definition loading: never runs dbt."""
    prepared = located_project(spec, project)
    where = f"organization '{spec.slug}' ({spec.spec_path}), dbt project '{project.name}'"
    if not (prepared.project_dir / "dbt_project.yml").is_file():
        raise DbtProjectError(f"{where}: no dbt_project.yml in {prepared.project_dir}")
    try:
        return prepared, orjson.loads(prepared.manifest_path.read_bytes())
    except FileNotFoundError:
        raise DbtProjectError(f"{where}: its manifest is not prepared; run `dalgo prepare {spec.slug}`") from None
