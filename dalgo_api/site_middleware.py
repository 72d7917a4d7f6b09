"""Django's middleware for the site's pages (the admin under ``/admin/``: its session, the login that sets
it, its messages), skipped for the REST API under ``/api/``.

The API authenticates every request by its bearer token (``dalgo_api.accounts.auth``) and reads neither a
session, ``request.user`` nor a message. Running these three for each API request only cost time (measured
with ``bench/api_fleet.py`` on 2 cores: about 0.1 ms of a run list's 1 ms). Each class here is Django's own,
so the admin's checks still find them, and every page outside ``/api/`` gets them as before. Django's CSRF
middleware stays as it is for every path (``check --deploy`` asks for it by name; django-ninja exempts its
views, whose callers send a token, not a cookie).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.middleware import AuthenticationMiddleware as _Authentication
from django.contrib.messages.middleware import MessageMiddleware as _Messages
from django.contrib.sessions.middleware import SessionMiddleware as _Sessions
from django.http import HttpRequest

API_PREFIX = "/api/"


class SiteOnly:
    """Mixed in before a Django middleware: under ``/api/`` the request passes straight on."""

    get_response: Callable[[HttpRequest], Any]

    def __call__(self, request: HttpRequest) -> Any:
        if request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class SessionMiddleware(SiteOnly, _Sessions):
    pass


class AuthenticationMiddleware(SiteOnly, _Authentication):
    pass


class MessageMiddleware(SiteOnly, _Messages):
    pass
