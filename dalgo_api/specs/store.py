"""The only place the API writes organization specs and the Dagster workspace.

Everything goes through ``dalgo_core.spec`` (no Dagster import): creating an organization writes
``$DALGO_ORGS_DIR/<slug>/org.yaml`` (a DuckDB warehouse, nothing else yet) and regenerates the workspace
so Dagster gets a code location for it; deleting removes the folder, its secrets and its location.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from django.conf import settings

from dalgo_core import dbt_parser, layout, secret_store
from dalgo_core.code_locations import code_servers, grpc_base_port, write_workspace
from dalgo_core.names import SLUG_PATTERN
from dalgo_core.spec import (
    OrgSpec,
    load_org_spec,
    org_spec_path,
    write_org_spec,
)

SLUG_MAX = 40


def workspace_file() -> Path:
    """``DALGO_WORKSPACE_FILE``, else the one ``dalgo up`` runs on (``$DALGO_HOME/platform/run``)."""
    if settings.WORKSPACE_FILE:
        return Path(settings.WORKSPACE_FILE)
    return layout.run_dir() / "workspace.yaml"


def regenerate_workspace() -> list[str]:
    """Rewrite the workspace the webserver and the daemon read: module entries, or under ``dalgo serve``
    long-lived code servers (each organization keeps its port; ``dalgo serve`` starts a new one's)."""
    return write_workspace(workspace_file(), grpc_base_port=grpc_base_port())


def code_server_port(slug: str) -> int | None:
    """The port of the organization's long-lived code server (under ``dalgo serve``), if it has one."""
    return code_servers(workspace_file()).get(slug)


def slugify_name(name: str, taken: set[str]) -> str:
    """A slug matching ``SLUG_PATTERN`` derived from a name ("Demo NGO" -> demo_ngo), unique among
    ``taken`` and the spec folders already on disk."""
    base = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "org"
    if not base[0].isalpha():
        base = f"org_{base}"
    base = base[:SLUG_MAX].rstrip("_")  # a slug ends in a letter or digit: it names DNS labels too
    slug, n = base, 1
    while slug in taken or org_spec_path(slug).parent.exists():
        n += 1
        suffix = f"_{n}"
        slug = base[: SLUG_MAX - len(suffix)] + suffix
    assert re.match(SLUG_PATTERN, slug), slug
    return slug


def create_org_spec(slug: str, name: str) -> OrgSpec:
    spec = OrgSpec(slug=slug, name=name)
    write_org_spec(spec)
    regenerate_workspace()
    return spec


def load_spec(slug: str) -> OrgSpec:
    return load_org_spec(slug)


def update_org_spec(slug: str, **fields: object) -> OrgSpec:
    """Set top-level fields of the organization's spec (its name, its warehouse) and write it."""
    spec = load_org_spec(slug).model_copy(update=fields)
    write_org_spec(spec)
    return spec


def delete_org_spec(slug: str) -> None:
    """Remove the organization's folder, its secrets and its generated state, then its code location."""
    dbt_parser.stop(slug)
    shutil.rmtree(org_spec_path(slug).parent, ignore_errors=True)
    shutil.rmtree(layout.org_root(slug), ignore_errors=True)
    secret_store.delete_org_secrets(slug)
    regenerate_workspace()


def save_spec(spec: OrgSpec) -> OrgSpec:
    """Validate a whole changed spec again (names unique, cross-field rules) and write it atomically;
    raises ``SpecError`` naming the organization and fields. Used by the connection, dbt project and
    pipeline endpoints."""
    from dalgo_core.spec import parse_org_spec

    path = org_spec_path(spec.slug)
    checked = parse_org_spec(spec.model_dump(mode="json", by_alias=True, exclude_none=True), org=spec.slug, path=path)
    write_org_spec(checked)
    return checked
