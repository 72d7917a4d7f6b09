"""Django settings for the Dalgo API, read from the environment.

- ``DALGO_API_SECRET_KEY``: Django's secret key (when unset, one generated once under ``$DALGO_HOME``).
- ``DALGO_API_DEBUG``: ``1``/``true`` for debug mode.
- ``DALGO_API_DATABASE_URL``: ``postgresql://user:pass@host:port/db`` or ``sqlite:///path``; default a
  SQLite file ``$DALGO_HOME/api.sqlite3``.
- ``DALGO_API_ALLOWED_HOSTS``: comma-separated (default ``127.0.0.1,localhost``).
- ``DALGO_API_HTTPS``: served over HTTPS behind a proxy (secure cookies); ``DALGO_API_CSRF_TRUSTED_ORIGINS``
  for the admin's forms behind that proxy.
- ``DALGO_API_TOKEN_TTL_HOURS``: how long a login token lives (default 12).
- ``DALGO_API_LOGIN_FAILURE_LIMIT`` (default 5) and ``DALGO_API_LOGIN_LOCKOUT_MINUTES`` (default 15): after
  that many failed logins for one email from one address, logins for it from there answer 429 for that
  long (django-axes; ``manage.py axes_reset`` lifts every lockout). ``DALGO_API_PROXY_COUNT``: the number
  of reverse proxies in front of the API that append to ``X-Forwarded-For`` (default 0: the client address
  is the connection's).
- ``DALGO_API_MAX_BODY_BYTES``: the largest request body accepted (default 2621440); larger ones answer 413.
- ``DALGO_API_SIGNUP_CODE``: the code a new user must give to sign up (signup is closed when unset).
- ``DALGO_API_FRONTEND_URL``: the product frontend, base of links sent by email (invitations, password
  resets); default ``http://127.0.0.1:3001`` (Dalgo's webapp beside Dagit on 3000). Its origin may call the
  API from a browser (CORS).
- ``DALGO_API_CORS_ORIGINS``: more origins whose pages may call the API from a browser, comma-separated
  (``https://app.example.org``); none by default.
- ``DALGO_API_EMAIL_*``: ``BACKEND`` (default console), ``HOST``, ``PORT``, ``HOST_USER``,
  ``HOST_PASSWORD``, ``USE_TLS``, ``FROM``; SMTP is used as soon as ``DALGO_API_EMAIL_HOST`` is set.
- ``DALGO_API_TASK_WORKER``: the command that runs one task (connector installs, checks, discovers), its id
  appended; default ``<this Python> -m dalgo_ops.tasks``. The API starts it detached, on its own host.
- ``DALGO_WORKSPACE_FILE``: the Dagster workspace regenerated when organizations change (default
  ``$DALGO_HOME/platform/run/workspace.yaml``, the one ``dalgo up`` runs on).
"""

from __future__ import annotations

import os
import secrets
import shlex
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from corsheaders.defaults import default_headers
from django.core.exceptions import ImproperlyConfigured

from dalgo_core import layout


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def database_from_url(url: str) -> dict[str, Any]:
    """Django's DATABASES entry for a ``postgresql://`` or ``sqlite:///`` URL (parsed by dj-database-url;
    percent-encoded user, password and database name decoded, query parameters as OPTIONS)."""
    try:
        # health checks: a pooled connection broken by a database restart is replaced instead of failing a request
        parsed = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError:  # dj_database_url.UnknownSchemeError among them
        parsed = {"ENGINE": ""}
    if parsed["ENGINE"] == "django.db.backends.postgresql":
        return parsed
    if parsed["ENGINE"] == "django.db.backends.sqlite3":
        name = parsed["NAME"]  # sqlite:///path names /path here, as it always has (not relative)
        return sqlite_database(name if name == ":memory:" or name.startswith("/") else f"/{name}")
    scheme = url.partition("://")[0][:20]
    raise ValueError(f"DALGO_API_DATABASE_URL: unsupported scheme '{scheme}' (postgresql:// or sqlite:///)")


def sqlite_database(name: str) -> dict[str, Any]:
    # persistent connections (one per worker thread) and a busy timeout for concurrent writers
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": name,
        "OPTIONS": {"timeout": 20},
        "CONN_MAX_AGE": 60,
    }


def default_database() -> dict[str, Any]:
    path = layout.api_database()
    path.parent.mkdir(parents=True, exist_ok=True)
    return sqlite_database(str(path))


BASE_DIR = Path(__file__).resolve().parent.parent


def _secret_key() -> str:
    """``DALGO_API_SECRET_KEY``, else one generated once into ``$DALGO_HOME/django-secret.key`` (0600),
    so every worker process signs password-reset links and admin sessions with the same key."""
    if os.environ.get("DALGO_API_SECRET_KEY"):
        return os.environ["DALGO_API_SECRET_KEY"]
    path = layout.api_secret_key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".django-secret.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50))
        try:
            os.link(tmp, path)  # atomic: the first worker's key wins, complete
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = _env_bool("DALGO_API_DEBUG")
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("DALGO_API_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()
]

# Behind HTTPS (a TLS-terminating proxy setting X-Forwarded-Proto): secure cookies for the admin.
HTTPS = _env_bool("DALGO_API_HTTPS")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
if HTTPS:
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^api/health$"]  # the proxy's and orchestrator's health probe
    SECURE_HSTS_SECONDS = int(os.environ.get("DALGO_API_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # HSTS preload is a domain owner's decision, not the platform's
    SILENCED_SYSTEM_CHECKS = ["security.W021"]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("DALGO_API_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # /api/docs from its own static files (Swagger UI), not a CDN: it works offline
    "corsheaders",
    "axes",
    "dalgo_api.accounts",
    "dalgo_api.orgs",
    "dalgo_api.runs",
    "dalgo_api.alerts",
    "dalgo_api.audit",
    "dalgo_api.sources",
    "dalgo_api.tasks",
]

MIDDLEWARE = [
    # first, so that every answer under /api/ (the guard's 413 and 400, django-axes' 429 too) carries the
    # CORS headers a browser frontend needs to read it, and a preflight is answered before anything else
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files (docs, admin) under gunicorn
    # before anything reads the request: 413 for an oversized body, 400 for NUL bytes
    "dalgo_api.middleware.RequestGuardMiddleware",
    # Django's session, user and messages middleware, for the admin's pages only (not under /api/)
    "dalgo_api.site_middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "dalgo_api.site_middleware.AuthenticationMiddleware",
    "dalgo_api.site_middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # every successful change under /api/ goes to the audit log
    "dalgo_api.audit.middleware.AuditMiddleware",
    # last, as django-axes asks: turns a locked-out login into the 429 of AXES_LOCKOUT_CALLABLE
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "dalgo_api.urls"
WSGI_APPLICATION = "dalgo_api.wsgi.application"
ASGI_APPLICATION = "dalgo_api.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

_db_url = os.environ.get("DALGO_API_DATABASE_URL")
DATABASES = {"default": database_from_url(_db_url) if _db_url else default_database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
# django-axes first: it refuses a locked-out login before the password is checked
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = os.environ.get("DALGO_API_STATIC_ROOT", str(layout.static_dir()))

# --- Dalgo ------------------------------------------------------------------------------------------

TOKEN_TTL_HOURS = float(os.environ.get("DALGO_API_TOKEN_TTL_HOURS", "12"))
INVITATION_TTL_DAYS = float(os.environ.get("DALGO_API_INVITATION_TTL_DAYS", "7"))
SIGNUP_CODE = os.environ.get("DALGO_API_SIGNUP_CODE", "")
FRONTEND_URL = os.environ.get("DALGO_API_FRONTEND_URL", "http://127.0.0.1:3001").rstrip("/")  # not Dagit (:3000)


def cors_origins(frontend_url: str, listed: str) -> list[str]:
    """The origins whose pages may call the API from a browser: the frontend's (its URL may have a path),
    then those listed in ``DALGO_API_CORS_ORIGINS``; ``ImproperlyConfigured`` naming one that is not."""
    origins: list[str] = []
    extra = [("DALGO_API_CORS_ORIGINS", o.strip()) for o in listed.split(",") if o.strip()]
    for name, url in [("DALGO_API_FRONTEND_URL", frontend_url.strip()), *extra]:
        origin = _origin(url, path_allowed=name == "DALGO_API_FRONTEND_URL") if url else ""
        if origin is None:
            raise ImproperlyConfigured(f"{name}: {url!r} is not an origin (http(s)://host[:port])")
        if origin and origin not in origins:
            origins.append(origin)
    return origins


def _origin(url: str, *, path_allowed: bool) -> str | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not one)
    except ValueError:
        return None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.query
        or parts.fragment
        or (parts.path.strip("/") and not path_allowed)
    ):
        return None
    return f"{parts.scheme}://{parts.netloc.lower()}"


# A browser frontend served from another origin than the API (Dalgo's webapp) calls it across origins
# (django-cors-headers): its pages may send the headers the API reads and read the answers, errors and
# Retry-After included. The token travels in Authorization, so no cookie is allowed across origins.
CORS_ALLOWED_ORIGINS = cors_origins(FRONTEND_URL, os.environ.get("DALGO_API_CORS_ORIGINS", ""))
CORS_URLS_REGEX = r"^/api/"
CORS_ALLOW_HEADERS = (*default_headers, "x-dalgo-org", "idempotency-key")
CORS_EXPOSE_HEADERS = ["Retry-After"]
CORS_ALLOW_CREDENTIALS = False
WORKSPACE_FILE = os.environ.get("DALGO_WORKSPACE_FILE", "")  # empty: the one dalgo up runs on
SYSTEM_USER_EMAIL = os.environ.get("DALGO_API_SYSTEM_USER_EMAIL", "system@dalgo.local")

# Django's cache in each API process: finished runs, log pages that can no longer change, run lists for a second
# (dalgo_api/runs/cache.py). Only what no longer changes or may be a second old, so processes need no
# shared cache.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "dalgo-default"},
    "runs": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "dalgo-runs",
        "OPTIONS": {"MAX_ENTRIES": 5000},
    },
}

# the worker process of a task (dalgo_api.tasks.services.spawn): the task's id is appended
TASK_WORKER = shlex.split(os.environ.get("DALGO_API_TASK_WORKER", "")) or [sys.executable, "-m", "dalgo_ops.tasks"]

DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DALGO_API_MAX_BODY_BYTES", str(2_621_440)))

# --- login throttling (django-axes, failures kept in its database tables) ---------------------------

AXES_FAILURE_LIMIT = int(os.environ.get("DALGO_API_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("DALGO_API_LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]  # one email from one address
AXES_RESET_ON_SUCCESS = True
# a refused attempt during the lockout neither counts nor extends it: the lock ends on time
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "dalgo_api.accounts.throttling.lockout_response"
AXES_CLIENT_IP_CALLABLE = "dalgo_api.accounts.throttling.client_ip"
AXES_USERNAME_CALLABLE = "dalgo_api.accounts.throttling.login_email"
AXES_DISABLE_ACCESS_LOG = True  # successful logins are not recorded, only failures
AXES_VERBOSE = False
PROXY_COUNT = int(os.environ.get("DALGO_API_PROXY_COUNT", "0"))

# --- email ------------------------------------------------------------------------------------------

EMAIL_HOST = os.environ.get("DALGO_API_EMAIL_HOST", "")
EMAIL_BACKEND = os.environ.get(
    "DALGO_API_EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = int(os.environ.get("DALGO_API_EMAIL_PORT", "587"))
EMAIL_HOST_USER = os.environ.get("DALGO_API_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("DALGO_API_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _env_bool("DALGO_API_EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = os.environ.get("DALGO_API_EMAIL_FROM", "Dalgo <no-reply@dalgo.local>")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "dalgo_api": {"handlers": ["console"], "level": os.environ.get("DALGO_API_LOG_LEVEL", "INFO")},
    },
}
