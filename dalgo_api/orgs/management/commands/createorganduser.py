"""``manage.py createorganduser <org> <email> [--role ROLE] [--password PW]``

Adopts the organizations folder first (``adoptorgs``), then creates the organization (with its spec and
code location) unless an organization with that slug or name exists, creates the user unless the email
exists, and makes them a member with the role (default account-manager). ``--role super-admin`` makes
the user platform staff (``is_superuser``). A new user without ``--password`` gets a password-reset email
instead, whose link points at ``DALGO_API_FRONTEND_URL``.
"""

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from dalgo_api.accounts.models import Role, User
from dalgo_api.accounts.passwords import send_reset_email
from dalgo_api.accounts.roles import ROLE_SLUGS
from dalgo_api.errors import ApiError
from dalgo_api.orgs import services
from dalgo_api.orgs.models import Org


class Command(BaseCommand):
    help = "Create an organization and a user who belongs to it"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("org", help="organization name (or the slug of an existing one)")
        parser.add_argument("email")
        parser.add_argument("--role", default=Role.ACCOUNT_MANAGER, choices=ROLE_SLUGS)
        parser.add_argument("--password", help="for a new user; otherwise a reset link is emailed")

    def handle(self, *args, org: str, email: str, role: str, password: str | None, **options) -> None:
        email = email.strip().lower()
        try:
            services.adopt_orgs()
            organization = Org.objects.filter(Q(slug=org) | Q(name=org)).first()
            if organization is None:
                organization = services.create_org(org)
                self.stdout.write(f"created organization {organization.slug} ({organization.name})")
            user = User.objects.filter(email=email).first()
            if user is None:
                user = User.objects.create_user(email, password)
                self.stdout.write(f"created user {email}")
                if not password:
                    send_reset_email(user)
                    self.stdout.write("no --password: a password reset link was emailed")
            if role == Role.SUPER_ADMIN and not user.is_superuser:
                user.is_superuser = user.is_staff = True
                user.save(update_fields=["is_superuser", "is_staff"])
            services.add_member(organization, user, Role.objects.get(slug=role))
        except ApiError as exc:
            raise CommandError(exc.detail) from None
        self.stdout.write(f"{email} is {role} of {organization.slug}")
