"""``manage.py create-system-orguser``: the platform's own user (``DALGO_API_SYSTEM_USER_EMAIL``), to
which runs started by schedules and freshness policies are attributed. It cannot log in. Idempotent."""

from django.conf import settings
from django.core.management.base import BaseCommand

from dalgo_api.accounts.models import User


class Command(BaseCommand):
    help = "Create the system user (idempotent)"

    def handle(self, *args, **options) -> None:
        user, created = User.objects.get_or_create(
            email=settings.SYSTEM_USER_EMAIL, defaults={"first_name": "Dalgo", "last_name": "System"}
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        self.stdout.write(f"system user {user.email} {'created' if created else 'already exists'}")
