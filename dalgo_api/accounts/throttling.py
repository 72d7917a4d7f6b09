"""Login throttling with django-axes (settings ``AXES_*`` in ``dalgo_api.settings``).

``AxesStandaloneBackend`` (first in ``AUTHENTICATION_BACKENDS``) refuses a login for an email that failed
``AXES_FAILURE_LIMIT`` times from the same address within ``AXES_COOLOFF_TIME``, before the password is
checked; axes records each failure through Django's ``user_login_failed`` signal and ``AxesMiddleware``
answers the locked-out request with ``lockout_response``: 429 in the API's error format. A successful
login forgets the failures (``logged_in``).
"""

from __future__ import annotations

import math

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from dalgo_api.accounts.models import User
from dalgo_api.errors import json_error


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address: the connection's, or with ``DALGO_API_PROXY_COUNT`` = n trusted proxies in
    front, the n-th address from the right of ``X-Forwarded-For`` (the ones a client adds itself are to
    its left, so it cannot choose a fresh address to escape its lockout)."""
    count = settings.PROXY_COUNT
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
    if count > 0 and len(forwarded) >= count:
        return forwarded[-count]
    return request.META.get("REMOTE_ADDR")


def login_email(request: HttpRequest, credentials: dict | None) -> str | None:
    """``AXES_USERNAME_CALLABLE``: the email a login attempt names, lower-cased: ``email`` for the API's
    login, ``username`` for the admin's form (Django's signal passes the admin's credentials as given)."""
    credentials = credentials or {}
    email = credentials.get("email") or credentials.get("username") or request.POST.get("username")
    return email.strip().lower() if isinstance(email, str) else None


def logged_in(request: HttpRequest, user: User) -> None:
    """Tell axes of a successful login (``AXES_RESET_ON_SUCCESS`` then forgets the failures). Called
    instead of sending ``user_logged_in``, whose ``update_last_login`` would save the user and so drop
    every process's remembered callers (``auth.forget_authentications``) at each login."""
    AxesProxyHandler.user_logged_in(sender=User, request=request, user=user)


def _retry_after(request: HttpRequest, credentials: dict | None) -> int:
    """Seconds until the lockout of this email from this address ends."""
    cool_off = get_cool_off(request)
    if cool_off is None:
        return 0
    email = get_client_username(request, credentials)
    last = AccessAttempt.objects.filter(username=email, ip_address=getattr(request, "axes_ip_address", None))
    last_at = last.aggregate(at=Max("attempt_time"))["at"]
    if last_at is None:
        return math.ceil(cool_off.total_seconds())
    return max(1, math.ceil((last_at + cool_off - timezone.now()).total_seconds()))


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: 429 saying why and for how long, with ``Retry-After``."""
    seconds = _retry_after(request, credentials)
    limit = settings.AXES_FAILURE_LIMIT
    response = json_error(
        429,
        f"too many failed logins: {limit} failures for this email from this address; "
        f"logins for it are refused for {math.ceil(seconds / 60)} more minute(s)",
    )
    response["Retry-After"] = str(seconds)
    return response
