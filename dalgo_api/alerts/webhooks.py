"""Posting an alert to a webhook: Slack's incoming-webhook format or a generic JSON body.

Webhook URLs are tenant strings and secrets (a Slack URL is its own credential). A URL must be ``https``;
when a message is posted its host is resolved once, refused if it is not a public address (loopback,
private, link-local: the platform's own services) unless it is in the operator's networks
(``DALGO_PRIVATE_NETWORKS``, ``dalgo_core.egress``) or the operator allows private targets
(``DALGO_WEBHOOK_ALLOW_PRIVATE=1``, which also allows ``http``, for a development machine or a receiver
inside the operator's network), and the connection goes to that very address, with the host's name for
TLS, so a name cannot be re-pointed between the check and the post. Redirects are not followed. No URL
appears in a result, an error or a log line: only its host.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3

from dalgo_core.egress import operator_networks, public_address

ALLOW_PRIVATE_ENV = "DALGO_WEBHOOK_ALLOW_PRIVATE"
TIMEOUT_SECONDS = float(os.environ.get("DALGO_WEBHOOK_TIMEOUT_SECONDS", "5"))
MAX_URL = 2000


class BadWebhookUrl(ValueError):
    """The URL cannot be a webhook (its message never contains the URL)."""


def private_allowed() -> bool:
    return os.environ.get(ALLOW_PRIVATE_ENV) == "1"


def check_url(url: str) -> str:
    """The URL if it can be a webhook target: https (http only where private targets are allowed), a host,
    no user name or password in it. Where it points is checked again when posting."""
    if len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise BadWebhookUrl(f"not a URL of at most {MAX_URL} characters without spaces")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BadWebhookUrl("not a URL") from None
    schemes = ("https", "http") if private_allowed() else ("https",)
    if parts.scheme not in schemes:
        raise BadWebhookUrl(f"use {' or '.join(schemes)}")
    if not parts.hostname:
        raise BadWebhookUrl("the URL names no host")
    if parts.username is not None or parts.password is not None:
        raise BadWebhookUrl("no user name or password in the URL (put the token in its path)")
    if port == 0:
        raise BadWebhookUrl("not a port")
    return url


def host_of(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


@dataclass(frozen=True)
class Posted:
    ok: bool
    host: str
    status: int | None = None
    error: str = ""


def post(url: str, payload: dict[str, Any]) -> Posted:
    """POST ``payload`` as JSON; ``ok`` for a 2xx answer. Never raises for the receiver's or the URL's
    problems: they are in ``error`` (without the URL)."""
    host = host_of(url)
    try:
        check_url(url)
        parts = urlsplit(url)
        secure = parts.scheme == "https"
        port = parts.port or (443 if secure else 80)
        address = public_address(
            parts.hostname or "", port, allow_private=private_allowed(), networks=operator_networks()
        )
        pool: urllib3.HTTPConnectionPool
        if secure:
            import certifi

            pool = urllib3.HTTPSConnectionPool(
                address,
                port,
                server_hostname=parts.hostname,
                assert_hostname=parts.hostname,
                cert_reqs="CERT_REQUIRED",
                ca_certs=certifi.where(),
                timeout=TIMEOUT_SECONDS,
                retries=False,
            )
        else:
            pool = urllib3.HTTPConnectionPool(address, port, timeout=TIMEOUT_SECONDS, retries=False)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        netloc = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        with pool:
            response = pool.request(
                "POST",
                target,
                body=json.dumps(payload).encode(),
                headers={"Host": netloc, "Content-Type": "application/json", "User-Agent": "Dalgo-alerts"},
                redirect=False,
                preload_content=False,
            )
            response.drain_conn()
        ok = 200 <= response.status < 300
        return Posted(ok, host, response.status, "" if ok else f"the receiver answered {response.status}")
    except BadWebhookUrl as exc:
        return Posted(False, host, error=f"not a webhook URL: {exc}")
    except PermissionError:
        return Posted(False, host, error=f"{host} is not a public address")
    except (OSError, urllib3.exceptions.HTTPError) as exc:
        return Posted(False, host, error=f"{type(exc).__name__} posting to {host}")


def payload(fmt: str, message: dict[str, Any]) -> dict[str, Any]:
    """The body for a webhook format from the event's fields (``dalgo_api.alerts.messages.event_fields``)."""
    if fmt == "slack":
        return slack_payload(message)
    return {"source": "dalgo", **message}


def slack_payload(message: dict[str, Any]) -> dict[str, Any]:
    """Slack's incoming-webhook message: ``text`` (the notification) and blocks (what people read)."""
    icon = ":white_check_mark:" if message["status"] == "recovery" else ":rotating_light:"
    text = f"{icon} [{message['organization_name']}] {message['title']}"
    details = message["message"][:2800]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_escape(text)}*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _escape(details) or " "}},
    ]
    if message.get("link"):
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{message['link']}|Open in Dalgo>"}]}
        )
    return {"text": text, "blocks": blocks}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
