"""Seed the permission slugs added to ``roles.csv`` with alerts, notifications and the audit log, and with
sources and connections as a product (``can_sync_connection``, ``can_add_connector``)."""

from django.db import migrations

from dalgo_api.accounts.roles import migrate_roles


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_seed_roles")]
    operations = [migrations.RunPython(migrate_roles, migrations.RunPython.noop)]
