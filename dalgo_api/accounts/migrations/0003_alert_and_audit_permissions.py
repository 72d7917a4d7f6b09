"""Seed the alert, notification and audit log permission slugs added to ``roles.csv``."""

from django.db import migrations

from dalgo_api.accounts.roles import migrate_roles


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_seed_roles")]
    operations = [migrations.RunPython(migrate_roles, migrations.RunPython.noop)]
