"""Organization folders for tests: copies of the demo, and small orgs with dbt projects written on the spot."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]


def write_spec(orgs_dir: Path, slug: str, spec: dict[str, Any]) -> Path:
    folder = orgs_dir / slug
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "org.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def copy_demo_org(orgs_dir: Path, slug: str = "demo_ngo", **overrides: Any) -> dict[str, Any]:
    """Copy a repo organization (``orgs/``, or the opt-in ``examples/``) into ``orgs_dir``, with absolute
    dbt project paths and top-level overrides."""
    source = REPO / "orgs" / slug
    if not source.exists():
        source = REPO / "examples" / slug
    spec = yaml.safe_load((source / "org.yaml").read_text())
    for project in spec.get("dbt_projects", []):
        if "path" in project:
            project["path"] = str((source / project["path"]).resolve())
    spec.update(overrides)
    write_spec(orgs_dir, spec["slug"], spec)
    return spec


def write_dbt_project(root: Path, name: str, files: dict[str, str]) -> Path:
    """A dbt project named ``name`` under ``root`` with the given files (paths relative to the project)."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dbt_project.yml").write_text(
        yaml.safe_dump({"name": name, "version": "1.0.0", "config-version": 2, "profile": "dalgo"})
    )
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
