"""Run-failure subscriptions and their sent markers are gone: run failures are alerts
(``alerts.0002_fold_run_failure_subscriptions`` carried the subscriptions over)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0002_idempotency_keys"),
        ("alerts", "0002_fold_run_failure_subscriptions"),
    ]
    operations = [
        migrations.DeleteModel(name="NotifiedRun"),
        migrations.DeleteModel(name="Subscription"),
    ]
