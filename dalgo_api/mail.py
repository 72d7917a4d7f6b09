"""Outgoing email through Django's email backend (console by default, SMTP from the settings)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail

logger = logging.getLogger(__name__)


def frontend_link(path: str, **params: str) -> str:
    from urllib.parse import urlencode

    return f"{settings.FRONTEND_URL}/{path.lstrip('/')}?{urlencode(params)}"


def send(to: str, subject: str, body: str) -> None:
    """Send one email; the log line names the recipient and subject, never the body (it holds tokens).
    The subject is one line whatever names it carries (an organization's name saved before names were
    checked could hold a line break, which Django refuses in a header)."""
    subject = " ".join(subject.split())
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to], fail_silently=False)
    logger.info("sent email '%s' to %s", subject, to)
