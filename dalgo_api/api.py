"""The NinjaAPI at ``/api/`` (docs at ``/api/docs``) and the one place errors become JSON.

Every error answer is ``{"detail": "<sentence>", "errors": [{"field": ..., "message": ...}]}``:
400 bad input (malformed JSON, a rule the body breaks, a NUL byte), 401 no or bad token, 403 missing
permission, 404 unknown or other organization's object, 409 conflicting state, 413 body too large,
422 body/path/query that does not validate (each field named), 429 login locked out, 503 Dagster (or
the warehouse) unreachable, or the organization's code location loading or not loading. Validation
errors never echo the input (it may hold a password). Unexpected exceptions are logged and answered 500
without details. The OpenAPI document declares each operation's error statuses
(``dalgo_api.common_responses``).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pydantic
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError

from dalgo_api.accounts.api import router as accounts_router
from dalgo_api.common_responses import declare_common_errors
from dalgo_api.errors import ApiError, error_body
from dalgo_api.orgs.api import invitations, organizations, users
from dalgo_api.renderers import JsonRenderer
from dalgo_core import spec as spec_models
from dalgo_core.spec import SpecError

logger = logging.getLogger(__name__)

api = NinjaAPI(
    title="Dalgo API",
    version="1.0",
    description="An organization's data platform: its users and their roles, its warehouse, sources and "
    "connections, dbt projects, pipelines with their freshness targets or schedules, its assets, runs and "
    "logs, alerts and the audit log. Authenticate with `Authorization: Bearer <token>` from "
    "`POST /api/login/`; name the organization with the `x-dalgo-org` header (a user of one organization "
    "may leave it out).",
    urls_namespace="api",
    renderer=JsonRenderer(),
)


def error_response(request: HttpRequest, status: int, detail: str, errors: list[Any] | None = None) -> HttpResponse:
    return api.create_response(request, error_body(detail, errors), status=status)


def _field(loc: tuple | list) -> str:
    return ".".join(str(p) for p in loc)


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    response = error_response(request, exc.status, exc.detail, exc.errors)
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [
        {
            "field": _field(e.get("loc", ())),
            "message": str(e.get("msg", "invalid")).removeprefix("Value error, "),
        }
        for e in exc.errors
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return error_response(request, 422, f"invalid input: {summary}", errors)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    detail = str(exc)
    if exc.status_code == 400 and detail.startswith("Cannot parse request body"):
        detail = "malformed JSON: the request body cannot be parsed"
    return error_response(request, exc.status_code, detail)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(request, 404, "not found")


@api.exception_handler(SpecError)
def _spec_error(request: HttpRequest, exc: SpecError) -> HttpResponse:
    logger.error("spec problem: %s", exc)
    return error_response(request, 409, f"the organization's spec cannot be used: {exc}")


# The organization spec's models: a view builds them from a body that passed its schema, so their
# rules (two streams naming one table...) are rules the body breaks, not server errors.
SPEC_MODELS = frozenset(
    name
    for name, obj in vars(spec_models).items()
    if isinstance(obj, type) and issubclass(obj, pydantic.BaseModel) and obj.__module__ == spec_models.__name__
)


@api.exception_handler(pydantic.ValidationError)
def _spec_rule(request: HttpRequest, exc: pydantic.ValidationError) -> HttpResponse:
    """400 naming the fields for a spec model's rule; any other model (a response) is a server error."""
    if exc.title not in SPEC_MODELS:
        return _unexpected(request, exc)
    errors = [
        {"field": _field(e["loc"]) or exc.title, "message": str(e["msg"]).removeprefix("Value error, ")}
        for e in exc.errors()
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return error_response(request, 400, f"invalid input: {summary}", errors)


@api.exception_handler(IntegrityError)
def _integrity_error(request: HttpRequest, exc: IntegrityError) -> HttpResponse:
    return error_response(request, 409, "conflict: the change collides with existing data, retry")


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(request, 500, "internal error")


@api.api_operation(["GET", "HEAD"], "/health", auth=None, tags=["platform"])
def health(request: HttpRequest) -> dict[str, str]:
    """Liveness probe (no database access); HEAD too, as uptime monitors send it."""
    return {"status": "ok"}


api.add_router("/", accounts_router)
api.add_router("/organizations", organizations)
api.add_router("/users", users)
api.add_router("/invitations", invitations)
api.add_router("/assets", "dalgo_api.runs.api.assets")
api.add_router("/runs", "dalgo_api.runs.api.runs")
api.add_router("/alerts", "dalgo_api.alerts.api.alerts")
api.add_router("/notifications", "dalgo_api.alerts.api.notifications")
api.add_router("/audit", "dalgo_api.audit.api.audit")
api.add_router("/connections", "dalgo_api.connections.api.connections")
api.add_router("/sources", "dalgo_api.sources.api.sources")
api.add_router("/tasks", "dalgo_api.tasks.api.tasks")
api.add_router("/dbt", "dalgo_api.dbt.api.dbt")
api.add_router("/pipelines", "dalgo_api.pipelines.api.pipelines")
api.add_router("/warehouse", "dalgo_api.explore.api.explore")


def _full_path(bound: Any, path: str) -> str:
    """A bound router's path as ``/api/...`` with ``{name}`` parameters (path converters removed)."""
    full = "/api/" + "/".join(p.strip("/") for p in (bound.prefix, path) if p.strip("/"))
    return re.sub(r"\{\w+:", "{", full) + ("/" if path.endswith("/") and full != "/api/" else "")


# after every router: the error statuses each operation implies (common_responses)
declare_common_errors(api, _full_path)


def operations() -> list[tuple[str, str, tuple[str, ...] | None]]:
    """Every API operation as ``(METHOD, /api/path, permissions)``; ``permissions`` is ``None`` for an
    operation without authentication and ``()`` for one that needs only a valid token. The endpoint
    matrix test and ROLES.md read this, so an endpoint cannot go unchecked."""
    from dalgo_api.accounts.auth import TokenAuth

    found = []
    for bound in api._get_bound_routers():
        for path, view in bound.path_operations.items():
            full = _full_path(bound, path)
            for op in view.operations:
                auths = [a for a in op.auth_callbacks if isinstance(a, TokenAuth)]
                perms = auths[0].permissions if auths else None
                for method in op.methods:
                    found.append((method, full, perms))
    return sorted(found, key=lambda o: (o[1], o[0]))
