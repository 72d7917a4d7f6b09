"""Alert rules as the API writes them: entries of the spec's ``alerts`` (written without reloading the code
location: no Dagster definition is built from them), their webhook URLs stored encrypted in the secrets
backend (``alert_<rule>_webhook_<n>``) and referenced from the spec, never returned."""

from __future__ import annotations

from typing import Any

from dalgo_api.alerts import webhooks
from dalgo_api.alerts.models import Incident, NotificationPreference
from dalgo_api.alerts.schemas import AlertRuleIn
from dalgo_api.errors import ApiError
from dalgo_api.orgs.models import Org
from dalgo_api.specs.changes import SpecSection
from dalgo_core import secret_store
from dalgo_core.spec import AlertRuleSpec, SecretRef, WebhookSpec

SECTION = SpecSection("alerts", "alert rule", reload=False)
SECRET_PREFIX = "alert_"


def secret_name(rule: str, index: int) -> str:
    return f"{SECRET_PREFIX}{rule}_webhook_{index}"


def _bad_url(index: int, problem: str) -> ApiError:
    field = f"body.webhooks.{index}.url"
    return ApiError(422, f"webhooks.{index}.url: {problem}", [{"field": field, "message": problem}])


def to_spec(slug: str, payload: AlertRuleIn, current: AlertRuleSpec | None) -> AlertRuleSpec:
    """The spec entry for an input. Every URL is checked before any is stored; an omitted URL keeps the one
    stored at the same position of the list."""
    urls: list[str | None] = []
    for index, hook in enumerate(payload.webhooks):
        if hook.url is None:
            if current is None or index >= len(current.webhooks):
                raise _bad_url(index, "required for a new webhook")
            urls.append(None)
            continue
        try:
            urls.append(webhooks.check_url(hook.url.get_secret_value()))
        except webhooks.BadWebhookUrl as exc:
            raise _bad_url(index, str(exc)) from None
    hooks = []
    for index, (hook, url) in enumerate(zip(payload.webhooks, urls, strict=True)):
        if url is None:
            assert current is not None
            ref = current.webhooks[index].url
        else:
            name = secret_name(payload.name, index)
            secret_store.write_secret(slug, name, url)
            ref = SecretRef(file=name)
        hooks.append(WebhookSpec(format=hook.format, url=ref))
    fields = payload.model_dump(exclude={"webhooks"})
    return AlertRuleSpec(**fields, webhooks=hooks)


def forget_secrets(slug: str, old: AlertRuleSpec, new: AlertRuleSpec | None) -> None:
    """Delete the stored URLs ``old`` referenced and ``new`` no longer does."""
    kept = {h.url.file for h in new.webhooks} if new is not None else set()
    for hook in old.webhooks:
        name = hook.url.file
        if name and name.startswith(SECRET_PREFIX) and name not in kept:
            secret_store.delete_secret(slug, name)


def renamed(org: Org, old: str, new: str) -> None:
    """The members' choices and the incidents of a renamed rule follow it."""
    if old != new:
        NotificationPreference.objects.filter(org=org, rule=old).update(rule=new)
        Incident.objects.filter(org=org, rule=old).update(rule=new)


def removed(org: Org, rule: str) -> None:
    NotificationPreference.objects.filter(org=org, rule=rule).delete()
    Incident.objects.filter(org=org, rule=rule).delete()


def public_view(slug: str, rule: AlertRuleSpec) -> dict[str, Any]:
    """The rule as the API shows it: each webhook's format and host, never its URL."""
    hooks = []
    for hook in rule.webhooks:
        try:
            host = webhooks.host_of(hook.url.resolve(slug)) or None
        except LookupError:
            host = None
        hooks.append({"format": hook.format, "host": host})
    return {**rule.model_dump(exclude={"webhooks"}), "webhooks": hooks}
