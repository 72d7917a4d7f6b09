"""Django's middleware for the site's pages (the admin under ``/admin/``: its session, the login that sets
it, the CSRF tokens of its forms, its messages), skipped for the REST API under ``/api/``.

The API authenticates every request by its bearer token (``dalgo_api.accounts.auth``) and reads neither a
session, a cookie, ``request.user`` nor a message; django-ninja exempts its views from CSRF, which guards
cookie-authenticated forms. Running these four for each API request only cost time (measured with
``bench/api_fleet.py`` on 2 cores: about 0.1 ms of a run list's 1 ms). Each class here is Django's own, so
the admin's checks still find them, and every page outside ``/api/`` gets them as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.middleware import AuthenticationMiddleware as _Authentication
from django.contrib.messages.middleware import MessageMiddleware as _Messages
from django.contrib.sessions.middleware import SessionMiddleware as _Sessions
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware as _Csrf

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


class CsrfViewMiddleware(SiteOnly, _Csrf):
    pass


class AuthenticationMiddleware(SiteOnly, _Authentication):
    pass


class MessageMiddleware(SiteOnly, _Messages):
    pass
