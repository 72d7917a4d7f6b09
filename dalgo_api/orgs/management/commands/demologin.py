"""``manage.py demologin <org> <email>``: a demo user, Account Manager of ``<org>``, with a generated
password kept (0600) in the platform folder, so every start of ``dalgo up`` prints the same login.
Development only: ``dalgo up`` runs it for the demo organization, ``dalgo serve`` never does."""

import json
import os
import secrets

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dalgo_api.accounts.models import Role, User
from dalgo_api.orgs import services
from dalgo_api.orgs.models import Org
from dalgo_core import layout


class Command(BaseCommand):
    help = "Create (or show) the demo user of an organization and print its login"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("org", help="slug of the organization")
        parser.add_argument("email")

    def handle(self, *args, org: str, email: str, **options) -> None:
        organization = Org.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"no organization '{org}' (manage.py adoptorgs adopts the organizations folder)")
        email = email.strip().lower()
        kept = layout.platform_dir() / "demo-login.json"
        try:
            login = json.loads(kept.read_text())
        except (FileNotFoundError, ValueError):
            login = {}
        user = User.objects.filter(email=email).first()
        password = login.get("password") if login.get("email") == email else None
        if user is None or not password or not user.check_password(password):
            password = secrets.token_urlsafe(12)
            if user is None:
                user = User.objects.create_user(email, password)
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
            kept.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump({"email": email, "password": password}, out)
        services.add_member(organization, user, Role.objects.get(slug=Role.ACCOUNT_MANAGER))
        self.stdout.write(f"demo login: {email} / {password} (Account Manager of {organization.slug})")
