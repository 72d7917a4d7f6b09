"""Load the role/permission matrix from ``roles.csv`` (``manage.py seed_roles`` re-syncs it later)."""

from django.db import migrations


def load(apps, schema_editor):
    from dalgo_api.accounts.roles import sync_roles

    sync_roles(apps.get_model("accounts", "Role"), apps.get_model("accounts", "Permission"))


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
