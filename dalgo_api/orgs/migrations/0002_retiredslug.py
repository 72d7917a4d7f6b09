from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("orgs", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="RetiredSlug",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("slug", models.CharField(max_length=40, unique=True)),
                ("retired_at", models.DateTimeField(auto_now_add=True)),
            ],
        ),
    ]
