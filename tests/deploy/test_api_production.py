"""The API's production settings: ``manage.py check --deploy`` is clean behind a TLS-terminating proxy.

Production is: a real secret key, DEBUG off, PostgreSQL, and ``DALGO_API_HTTPS=1`` (the API is reached
through HTTPS at the proxy, which sets ``X-Forwarded-Proto``)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_check_deploy_is_clean_with_production_settings(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dalgo_api.settings",
        "DALGO_HOME": str(tmp_path),
        "DALGO_API_SECRET_KEY": secrets.token_urlsafe(60),
        "DALGO_API_DEBUG": "0",
        "DALGO_API_HTTPS": "1",
        "DALGO_API_DATABASE_URL": "postgresql://dalgo:secret@127.0.0.1:5432/dalgo_api",
        "DALGO_API_ALLOWED_HOSTS": "dalgo.example.org",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout
