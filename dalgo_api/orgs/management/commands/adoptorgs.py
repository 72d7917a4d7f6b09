"""``manage.py adoptorgs``: every organization folder without a database row gets one (``dalgo up`` and
``dalgo serve`` run it at start), so the organizations folder and the API's database never disagree."""

from django.core.management.base import BaseCommand

from dalgo_api.orgs import services


class Command(BaseCommand):
    help = "Adopt the organizations of the organizations folder that the API's database does not know"

    def handle(self, *args, **options) -> None:
        adopted = services.adopt_orgs()
        for org in adopted:
            self.stdout.write(f"adopted organization {org.slug} ({org.name})")
        if not adopted:
            self.stdout.write("every organization folder is known")
