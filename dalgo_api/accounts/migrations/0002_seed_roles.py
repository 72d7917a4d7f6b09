"""Load the role/permission matrix from ``roles.csv`` (``manage.py seed_roles`` re-syncs it later)."""

from django.db import migrations

from dalgo_api.accounts.roles import migrate_roles


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(migrate_roles, migrations.RunPython.noop)]
