"""The access generation's table and its one row."""

from django.db import migrations, models


def create_row(apps, schema_editor) -> None:  # noqa: ANN001 - Django's migration signature
    apps.get_model("accounts", "AccessGeneration").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_alert_and_audit_permissions")]
    operations = [
        migrations.CreateModel(
            name="AccessGeneration",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("value", models.BigIntegerField(default=0)),
            ],
            options={"verbose_name": "access generation"},
        ),
        migrations.RunPython(create_row, migrations.RunPython.noop),
    ]
