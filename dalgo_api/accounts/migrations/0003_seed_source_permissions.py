"""Seed the permissions added with sources and connections as a product (``can_sync_connection``,
``can_add_connector``): the role/permission tables made equal to ``roles.csv`` again."""

from django.db import migrations


def load(apps, schema_editor):
    from dalgo_api.accounts.roles import sync_roles

    sync_roles(apps.get_model("accounts", "Role"), apps.get_model("accounts", "Permission"))


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_seed_roles")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
