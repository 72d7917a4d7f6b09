"""WSGI entry point (``gunicorn dalgo_api.wsgi``): each worker opens Dagster's instance as it starts and
reads every organization's newest runs, then leaves what starting loaded out of the garbage collector's
full collections."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dalgo_api.settings")
application = get_wsgi_application()

from dalgo_api.bridge import open_in_background  # noqa: E402 (Django is set up first)


def freeze_startup() -> None:
    """Move every object alive once started (Django's, Dagster's and their imports': about 300,000) to
    the collector's permanent generation. A full collection walked them all: 140 ms alone, 300 ms under
    load, during which every request thread of the worker waited (the API's slowest answers)."""
    gc.collect()
    gc.freeze()


def after_opening() -> None:
    from dalgo_api.runs.services import keep_recent_runs

    keep_recent_runs()
    freeze_startup()


open_in_background(then=after_opening)
