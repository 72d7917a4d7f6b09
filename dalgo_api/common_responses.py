"""The error answers each operation declares in the OpenAPI document (``/api/openapi.json``).

Every error body is ``ErrorOut``. An operation declares the statuses only it answers in its decorator,
``response={200: X, **errors(409)}``; ``declare_common_errors`` then adds to every operation the ones its
auth, method and parameters imply:

- 400: always (a NUL byte in the path or query, malformed JSON, a missing ``x-dalgo-org``...);
- 401: a token is required; 403: a permission is; 404: an organization (or an object in it) is named;
- 413: the method carries a body (POST, PUT, PATCH); 422: the operation has a body or query to validate.

``ROUTER_ERRORS`` holds the statuses of routers whose decorators do not declare them yet: 409 where the
organization's spec is read or changed, 422 where a change is refused after validation, 503 where Dagster
or the warehouse must answer.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from ninja import Schema

if TYPE_CHECKING:
    from ninja import NinjaAPI
    from ninja.operation import Operation


class FieldError(Schema):
    field: str
    message: str


class ErrorOut(Schema):
    """Every error answer: a sentence saying what is wrong, and each offending field."""

    detail: str
    errors: list[FieldError]


def errors(*statuses: int) -> dict[int, type[ErrorOut]]:
    """``{status: ErrorOut}`` for an operation's ``response``."""
    return dict.fromkeys(statuses, ErrorOut)


BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_SPEC = {409}  # the organization's spec cannot be used, or the change conflicts with it
_DAGSTER = {409, 503}  # ... and Dagster must answer (503 when it cannot be reached or serves no location yet)
_CHANGE = {409, 422, 503}  # a spec change Dagster must load (refused with 422 if it cannot)
# "METHOD /api/path" patterns (fnmatch) -> statuses, for the routers listed
ROUTER_ERRORS: list[tuple[str, set[int]]] = [
    ("POST /api/organizations/", {409}),  # the slug is taken
    ("PUT /api/organizations/flags/*", {409}),  # a concurrent first write of the flag
    ("* /api/organizations/warehouse*", _SPEC),
    ("PUT /api/organizations/{slug}", _SPEC),
    ("GET /api/connections/*/syncs", _DAGSTER),
    ("GET /api/connections/*", _SPEC),
    ("* /api/connections/*", _CHANGE),
    ("GET /api/sources/*", _SPEC),
    ("* /api/sources/*", _CHANGE),
    ("GET /api/dbt/*", _SPEC),
    ("* /api/dbt/*", _CHANGE),
    ("GET /api/pipelines/*", _DAGSTER),
    ("* /api/pipelines/*", _CHANGE),
    ("* /api/assets/*", _DAGSTER),
    ("GET /api/runs/*/output/*", {409, 422, 503}),  # 422: a file_key that is not one
    ("* /api/runs/*", _DAGSTER),
    ("* /api/warehouse/*", {409, 422, 503}),  # data statistics: 503 when the warehouse cannot be read
    ("GET /api/alerts/*", _SPEC),
    ("* /api/alerts/*", {409, 422}),  # rules are written to the spec without a reload: Dagster is not asked
    ("* /api/notifications/*", _SPEC),  # the choices name the spec's rules
]


def implied_statuses(op: Operation, method: str, path: str) -> set[int]:
    """The error statuses an operation answers by its auth, method and parameters (module docstring)."""
    from dalgo_api.accounts.auth import PermissionAuth, TokenAuth

    statuses = {400}
    tokens = [a for a in op.auth_callbacks if isinstance(a, TokenAuth)]
    if tokens:
        statuses.add(401)
    perm = next((a for a in tokens if isinstance(a, PermissionAuth)), None)
    if perm is not None:
        statuses.add(403)
        if perm.org_scoped or perm.lookup is not None:
            statuses.add(404)
    if "{" in path:
        statuses.add(404)
    if method in BODY_METHODS:
        statuses.add(413)
    if any(m.__ninja_param_source__ != "path" for m in op.models):
        statuses.add(422)
    for pattern, extra in ROUTER_ERRORS:
        if fnmatchcase(f"{method} {path}", pattern):
            statuses |= extra
            break
    return statuses


def declare_common_errors(api: NinjaAPI, full_path: Any) -> None:
    """Add ``implied_statuses`` to every operation's responses (declared ones are kept);
    ``full_path(bound_router, path)`` gives an operation's ``/api/...`` path."""
    for bound in api._get_bound_routers():
        for path, view in bound.path_operations.items():
            route = full_path(bound, path)
            for op in view.operations:
                statuses = set().union(*(implied_statuses(op, m, route) for m in op.methods))
                for status in sorted(statuses):
                    op.response_models.setdefault(status, op._create_response_model(ErrorOut))
