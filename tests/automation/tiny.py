"""A tiny organization with a real dbt project (a seed and two models), written under a temp folder.

``numbers`` (seed) feeds ``latest`` (a model whose own config declares a freshness target) and
``marts/daily`` (a target declared for the whole ``marts`` folder in dbt_project.yml). ``unused`` reads
the seed but has no target.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dalgo_core.dbt_projects import prepare_projects
from dalgo_core.spec import OrgSpec, load_org_spec
from tests.support.orgs import write_dbt_project, write_spec

PROJECT = "tiny"


def write_tiny_org(
    orgs_dir: Path, projects_dir: Path, slug: str, latest_meta: dict[str, Any], pipelines: list | None = None
) -> OrgSpec:
    """Write the project and the org spec, prepare the manifest (dbt parse), return the loaded spec."""
    meta = "{{ config(meta=" + repr({"dalgo": {"freshness": latest_meta}}) + ") }}\n"
    project = write_dbt_project(
        projects_dir,
        f"{slug}_{PROJECT}",
        {
            "seeds/numbers.csv": "n\n1\n2\n3\n",
            "models/latest.sql": meta + "select max(n) as n, current_timestamp as built_at from {{ ref('numbers') }}\n",
            "models/unused.sql": "select count(*) as c from {{ ref('numbers') }}\n",
            "models/marts/daily.sql": "select * from {{ ref('latest') }}\n",
        },
    )
    config = yaml.safe_load((project / "dbt_project.yml").read_text())
    config["models"] = {config["name"]: {"marts": {"+meta": {"dalgo": {"freshness": {"deadline_cron": "0 9 * * *"}}}}}}
    (project / "dbt_project.yml").write_text(yaml.safe_dump(config))
    write_spec(
        orgs_dir,
        slug,
        {
            "slug": slug,
            "name": f"Tiny {slug}",
            "dbt_projects": [{"name": PROJECT, "path": str(project)}],
            "pipelines": pipelines or [],
        },
    )
    spec = load_org_spec(slug, orgs_dir)
    prepare_projects(spec)
    return spec
