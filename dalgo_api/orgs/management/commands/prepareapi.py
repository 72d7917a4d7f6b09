"""``manage.py prepareapi [--demo ORG EMAIL]``: what ``dalgo up`` and ``dalgo serve`` run before the API
starts, in one process: ``migrate``, ``collectstatic``, ``adoptorgs``, and ``demologin`` when asked.
Idempotent; each step's output is printed."""

from django.core.checks import Tags
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Migrate, collect static files, adopt the organizations folder (and print a demo login)"
    # The models' and database's checks only: the URL checks import every router, a second of each
    # start on the path to the API answering (``manage.py check --deploy`` runs them all, in
    # tests/deploy/test_api_production.py).
    requires_system_checks = [Tags.models, Tags.database]

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--demo", nargs=2, metavar=("ORG", "EMAIL"), help="the demo user's organization and email")

    def handle(self, *args, demo: list[str] | None, **options) -> None:
        call_command("migrate", interactive=False, verbosity=0, stdout=self.stdout)
        call_command("collectstatic", interactive=False, verbosity=0, stdout=self.stdout)
        call_command("adoptorgs", stdout=self.stdout)
        if demo:
            call_command("demologin", *demo, stdout=self.stdout)
