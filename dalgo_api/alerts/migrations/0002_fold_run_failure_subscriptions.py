"""Run-failure email subscriptions become alerts: an organization where someone subscribed gets a
``failed_runs`` rule (``run_failed``, by email) in its spec, and its members who had not subscribed get
that rule's email turned off, so the same people are emailed as before (and everyone's inbox has it)."""

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

RULE = "failed_runs"


def fold(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    from dalgo_core.spec import AlertRuleSpec, SpecError, load_org_spec, write_org_spec

    subscription = apps.get_model("runs", "Subscription")
    member = apps.get_model("orgs", "OrgUser")
    preference = apps.get_model("alerts", "NotificationPreference")
    subscribed: dict = {}
    for sub in subscription.objects.select_related("org"):
        subscribed.setdefault(sub.org, set()).add(sub.user_id)
    for org, users in subscribed.items():
        try:
            spec = load_org_spec(org.slug)
        except SpecError:
            continue  # a spec that cannot be read: nothing to add the rule to
        if all(rule.name != RULE for rule in spec.alerts):
            spec.alerts.append(AlertRuleSpec(name=RULE, kind="run_failed"))
            write_org_spec(spec)
        for other in member.objects.filter(org=org).exclude(user_id__in=users):
            preference.objects.get_or_create(
                user_id=other.user_id, org=org, rule=RULE, defaults={"email": False, "inbox": True}
            )


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0001_initial"),
        ("runs", "0002_idempotency_keys"),
        ("orgs", "0002_retiredslug"),
    ]
    operations = [migrations.RunPython(fold, migrations.RunPython.noop)]
