"""The API's one error type; ``dalgo_api.api`` turns it (and every other failure) into
``{"detail": "...", "errors": [...]}``. ``json_error`` gives the same body where no ninja operation runs
(the request guard middleware, the login lockout)."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse


class ApiError(Exception):
    """An error the caller can act on: its HTTP status, a sentence, optional per-field errors, and for
    a passing condition (Dagster restarting, a code location loading) the seconds after which to ask
    again (the answer's ``Retry-After``)."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
        *,
        retry_after: int | None = None,
    ):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []
        self.retry_after = retry_after


def not_found(what: str, ident: object) -> ApiError:
    """404 for anything missing *or* outside the caller's organization (the same answer for both)."""
    return ApiError(404, f"{what} '{ident}' not found")


def conflict(detail: str) -> ApiError:
    return ApiError(409, detail)


def error_body(detail: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The API's error format: a sentence and the per-field errors (``field``, ``message``)."""
    return {"detail": detail, "errors": errors or []}


def json_error(status: int, detail: str, errors: list[dict[str, Any]] | None = None) -> JsonResponse:
    return JsonResponse(error_body(detail, errors), status=status)
