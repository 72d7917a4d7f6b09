"""``manage.py seed_roles``: make the Role/Permission tables equal to ``roles.csv`` (idempotent);
``--write-markdown`` regenerates ``dalgo_api/ROLES.md`` from the same file."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandParser

from dalgo_api.accounts.models import Permission, Role
from dalgo_api.accounts.roles import ROLES, load_matrix, markdown_matrix, sync_roles

ROLES_MD = Path(__file__).resolve().parents[3] / "ROLES.md"


class Command(BaseCommand):
    help = "Load roles and their permissions from dalgo_api/accounts/roles.csv"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--write-markdown", action="store_true", help=f"also write {ROLES_MD.name}")

    def handle(self, *args, **options) -> None:
        sync_roles(Role, Permission)
        matrix = load_matrix()
        counts = ", ".join(f"{r.slug} {len(matrix[r.slug])}" for r in ROLES)
        self.stdout.write(f"roles synced: {counts} permissions")
        if options["write_markdown"]:
            from dalgo_api.api import operations

            ROLES_MD.write_text(markdown_matrix(operations()))
            self.stdout.write(f"wrote {ROLES_MD}")
