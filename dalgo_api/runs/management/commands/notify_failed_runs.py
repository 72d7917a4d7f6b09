"""``manage.py notify_failed_runs [--loop SECONDS] [--lookback-hours H]``: email subscribers about failed
runs (once per run). Run it from cron, or with ``--loop`` as a small long-lived process."""

from __future__ import annotations

import time
from datetime import timedelta

from django.core.management.base import BaseCommand

from dalgo_api.errors import ApiError
from dalgo_api.runs.notifications import notify_failed_runs


class Command(BaseCommand):
    help = "Email subscribed users about their organizations' failed Dagster runs"

    def add_arguments(self, parser) -> None:
        parser.add_argument("--loop", type=float, default=0, help="poll every N seconds (0: once)")
        parser.add_argument("--lookback-hours", type=float, default=24)

    def handle(self, *args, loop: float, lookback_hours: float, **options) -> None:
        lookback = timedelta(hours=lookback_hours)
        while True:
            try:
                count = notify_failed_runs(lookback)
                self.stdout.write(f"notified about {count} failed run(s)")
            except ApiError as exc:  # Dagster unavailable: try again next time
                self.stderr.write(exc.detail)
                if not loop:
                    raise SystemExit(1) from exc
            if not loop:
                return
            time.sleep(loop)
