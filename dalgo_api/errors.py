"""The API's one error type; ``dalgo_api.api`` turns it (and every other failure) into
``{"detail": "...", "errors": [...]}``."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error the caller can act on: its HTTP status, a sentence, and optional per-field errors."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []


def not_found(what: str, ident: object) -> ApiError:
    """404 for anything missing *or* outside the caller's organization (the same answer for both)."""
    return ApiError(404, f"{what} '{ident}' not found")


def conflict(detail: str) -> ApiError:
    return ApiError(409, detail)
