"""WSGI entry point (``gunicorn dalgo_api.wsgi``): each worker opens Dagster's instance as it starts."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dalgo_api.settings")
application = get_wsgi_application()

from dalgo_api.bridge import open_in_background  # noqa: E402 (Django is set up first)

open_in_background()
