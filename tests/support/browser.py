"""A real browser for the tests that look at a page as its user does: Playwright driving the
system's Chromium (Debian's ``chromium``, which ``scripts/test`` installs; Playwright's own browser
download needs the internet). Every request the page makes, every error its scripts raise and every
console message are kept, so a test can say the page stayed on its own server and ran cleanly."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from playwright.sync_api import Page, sync_playwright


@dataclass
class Visit:
    page: Page
    hosts: set[str] = field(default_factory=set)  # scheme://host:port of every request sent over the network
    errors: list[str] = field(default_factory=list)  # uncaught errors of the pages' scripts
    console: list[str] = field(default_factory=list)  # what the browser said on the pages' consoles


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "no chromium on PATH: scripts/test installs Debian's chromium (apt-get install chromium)"
    return path


@contextmanager
def browser(timeout_ms: int = 60_000) -> Iterator[Visit]:
    """One page in a fresh headless Chromium, closed at the end."""
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium's own sandbox refuses to start as root (CI runs as root)
        engine = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            page = engine.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(timeout_ms)
            visit = Visit(page)
            page.on("request", lambda request: _remember(visit, request.url))
            page.on("pageerror", lambda error: visit.errors.append(str(error)))
            page.on("console", lambda message: visit.console.append(message.text))
            yield visit
        finally:
            engine.close()


def _remember(visit: Visit, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("data", "blob", "about"):  # made in the page itself, sent nowhere
        visit.hosts.add(f"{parts.scheme}://{parts.netloc}")
