"""Every change through the API goes to the audit log: a successful POST, PUT, PATCH or DELETE under
``/api/`` writes one entry (``dalgo_api.audit.services``), whoever made it. Requests that change no
organization's data are left out: logging in and out, tests of a configuration that save nothing, marking
one's own notifications read."""

from __future__ import annotations

import logging
from collections.abc import Callable
from fnmatch import fnmatchcase

from django.http import HttpRequest, HttpResponse

from dalgo_api.audit import services

logger = logging.getLogger(__name__)
CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NOT_CHANGES = (
    "POST /api/login/",
    "POST /api/logout/",
    "POST /api/organizations/warehouse/test",
    "POST /api/alerts/*/test",
    "POST /api/notifications/read",
)


class AuditMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in CHANGING or not request.path.startswith("/api/"):
            return self.get_response(request)
        with services.scope() as current:
            response = self.get_response(request)
            if response.status_code < 400:
                action = services.action(request)
                if not any(fnmatchcase(action, pattern) for pattern in NOT_CHANGES):
                    try:
                        services.record(request, response, current)
                    except Exception:  # the change is made: say the entry is missing, answer as it went
                        logger.exception("the audit log could not record %s", action)
        return response
