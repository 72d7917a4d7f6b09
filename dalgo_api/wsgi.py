"""WSGI entry point (``gunicorn dalgo_api.wsgi``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dalgo_api.settings")
application = get_wsgi_application()
