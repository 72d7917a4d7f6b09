"""The role/permission matrix as data: ``roles.csv`` (one row per permission slug, one column per role).

The file is derived from Dalgo's five-role seed (BI-only slugs removed, platform slugs for assets, runs,
logs, flags and organizations added). A migration loads it, ``manage.py seed_roles`` re-syncs it, the
tests read it, and ``ROLES.md`` is generated from it, so the four cannot drift apart.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

MATRIX_FILE = Path(__file__).with_name("roles.csv")


@dataclass(frozen=True)
class RoleDef:
    slug: str
    name: str
    level: int
    description: str


ROLES: tuple[RoleDef, ...] = (
    RoleDef("super-admin", "Super Admin", 5, "platform staff: everything, in every organization"),
    RoleDef("account-manager", "Account Manager", 4, "runs the organization: users, warehouse, pipelines"),
    RoleDef("pipeline-manager", "Pipeline Manager", 3, "runs and edits pipelines, connections and sources"),
    RoleDef("analyst", "Analyst", 2, "reads everything and works with transforms (dbt)"),
    RoleDef("guest", "Guest", 1, "reads only"),
)
ROLE_SLUGS = tuple(r.slug for r in ROLES)
# Roles that can be given through the API: Super Admin is platform staff (``is_superuser``).
ASSIGNABLE_ROLES = tuple(s for s in ROLE_SLUGS if s != "super-admin")


@cache
def load_matrix(path: Path = MATRIX_FILE) -> dict[str, frozenset[str]]:
    """``{role slug: permission slugs}`` read from the CSV, checked for unknown roles and bad cells."""
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    if header[0] != "permission" or sorted(header[1:]) != sorted(ROLE_SLUGS):
        raise ValueError(f"{path}: the header must be 'permission' then the roles {', '.join(ROLE_SLUGS)}")
    granted: dict[str, set[str]] = {role: set() for role in header[1:]}
    seen: set[str] = set()
    for lineno, row in enumerate(body, start=2):
        slug, cells = row[0], row[1:]
        if slug in seen:
            raise ValueError(f"{path}:{lineno}: permission '{slug}' listed twice")
        seen.add(slug)
        if len(cells) != len(header) - 1 or any(c not in {"0", "1"} for c in cells):
            raise ValueError(f"{path}:{lineno}: '{slug}' needs a 0 or 1 for each of {len(header) - 1} roles")
        for role, cell in zip(header[1:], cells, strict=True):
            if cell == "1":
                granted[role].add(slug)
    return {role: frozenset(slugs) for role, slugs in granted.items()}


def all_permissions() -> list[str]:
    with MATRIX_FILE.open(newline="") as f:
        return [row[0] for row in list(csv.reader(f))[1:]]


def permission_name(slug: str) -> str:
    return slug.replace("can_", "can ").replace("_", " ")


def sync_roles(role_model: Any, permission_model: Any) -> None:
    """Make the Role/Permission tables equal to the CSV (idempotent; used by the migration and
    ``seed_roles``; takes the model classes so a migration can pass its historical models)."""
    matrix = load_matrix()
    perms = {}
    for slug in all_permissions():
        perms[slug], _ = permission_model.objects.update_or_create(slug=slug, defaults={"name": permission_name(slug)})
    permission_model.objects.exclude(slug__in=list(perms)).delete()
    for role in ROLES:
        obj, _ = role_model.objects.update_or_create(slug=role.slug, defaults={"name": role.name, "level": role.level})
        obj.permissions.set([perms[s] for s in sorted(matrix[role.slug])])


def migrate_roles(apps: Any, schema_editor: Any) -> None:
    """A data migration's step: the tables equal to the CSV as it is now (0002 seeded the first slugs; a
    migration per later batch of slugs seeds those)."""
    sync_roles(apps.get_model("accounts", "Role"), apps.get_model("accounts", "Permission"))


Endpoint = tuple[str, str, "tuple[str, ...] | None"]


def markdown_matrix(endpoints: list[Endpoint] | None = None) -> str:
    """The matrix as the Markdown of ``ROLES.md`` (``manage.py seed_roles --write-markdown`` writes
    it), with the endpoints ``(METHOD, path, permissions)`` and the roles that may call each."""
    matrix = load_matrix()
    lines = [
        "# Roles and permissions",
        "",
        "Generated from `dalgo_api/accounts/roles.csv` by `python manage.py seed_roles --write-markdown`;",
        "a test fails when this file and the CSV disagree. Every API endpoint declares the slugs it needs",
        "(`has_permission([...])` in the routers); a missing slug gives 403, an object of another",
        "organization 404. Super Admin is platform staff (`is_superuser`) and holds its permissions in",
        "every organization; the other roles come from the membership in the organization named by the",
        "`x-dalgo-org` header.",
        "",
        "| role | level | meaning |",
        "|---|---|---|",
        *(f"| {r.name} (`{r.slug}`) | {r.level} | {r.description} |" for r in ROLES),
        "",
        "| permission | " + " | ".join(r.name for r in ROLES) + " |",
        "|---|" + "---|" * len(ROLES),
    ]
    for slug in all_permissions():
        cells = " | ".join("x" if slug in matrix[r.slug] else "·" for r in ROLES)
        lines.append(f"| `{slug}` | {cells} |")
    if endpoints:
        lines += [
            "",
            "## Endpoints",
            "",
            "| endpoint | permissions | " + " | ".join(r.name for r in ROLES) + " |",
            "|---|---|" + "---|" * len(ROLES),
        ]
        for method, path, perms in endpoints:
            if perms is None:
                needs, cells = "none (no token)", " | ".join("x" for _ in ROLES)
            else:
                needs = ", ".join(f"`{p}`" for p in perms) or "a valid token"
                cells = " | ".join("x" if set(perms) <= matrix[r.slug] else "·" for r in ROLES)
            lines.append(f"| `{method} {path}` | {needs} | {cells} |")
    return "\n".join(lines) + "\n"
