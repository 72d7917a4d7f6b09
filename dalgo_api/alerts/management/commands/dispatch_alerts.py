"""``manage.py dispatch_alerts [--loop] [--interval SECONDS]``: send the alerts of every organization's
rules from what Dagster recorded (``dalgo_api.alerts.dispatcher``). ``dalgo up`` and ``dalgo serve`` run
it with ``--loop``."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from dalgo_api.alerts.dispatcher import dispatch_once, interval_seconds
from dalgo_api.errors import ApiError


class Command(BaseCommand):
    help = "Send alerts (email, inbox, webhooks) for what Dagster recorded since the previous pass"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loop", action="store_true", help="keep passing, every --interval seconds")
        parser.add_argument("--interval", type=float, default=None, help="default $DALGO_ALERTS_INTERVAL_SECONDS or 5")

    def handle(self, *args, loop: bool, interval: float | None, **options) -> None:
        pause = interval if interval is not None else interval_seconds()
        while True:
            started = time.monotonic()
            more = False
            close_old_connections()  # a database restarted since the last pass: connect again
            try:
                report = dispatch_once()
                more = report.more
                if report.alerts or report.recoveries or not loop:
                    self.stdout.write(
                        f"{report.signals} signal(s): {report.alerts} alert(s), {report.recoveries} recovery(ies), "
                        f"{report.emails} email(s), {report.delivered} webhook post(s)"
                    )
            except ApiError as exc:  # Dagster unavailable: the next pass starts where this one would have
                self.stderr.write(exc.detail)
                if not loop:
                    raise SystemExit(1) from exc
            if not loop:
                return
            if not more:
                time.sleep(max(0.0, pause - (time.monotonic() - started)))
