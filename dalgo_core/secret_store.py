"""The file secrets backend: ``$DALGO_SECRETS_DIR/<org>/<name>``, mode 0600, encrypted at rest with Fernet.

A spec refers to such a secret as ``{file: <name>}``; ``SecretRef.resolve`` calls ``reveal`` so run-time
code reads encrypted and hand-written plain-text files alike. The key comes from ``DALGO_SECRETS_KEY``
(a Fernet key; set it in production so the key is not on the same disk as the secrets), otherwise from
``$DALGO_HOME/platform/secrets.key``, created (mode 0600) the first time a secret is written.

No Django or Dagster import: the API writes secrets, the code locations read them.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from dalgo_core import layout
from dalgo_core.names import FILE_NAME_PATTERN, SLUG_PATTERN

PREFIX = "fernet:"
KEY_ENV = "DALGO_SECRETS_KEY"


def _key_file() -> Path:
    return layout.secrets_key_file()


def _fernet(create: bool):  # -> cryptography.fernet.Fernet
    from cryptography.fernet import Fernet

    key = os.environ.get(KEY_ENV)
    if not key:
        path = _key_file()
        if not path.exists():
            if not create:
                raise LookupError(f"no secrets key: set {KEY_ENV} or create {path}")
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(Fernet.generate_key().decode())
        key = path.read_text().strip()
    return Fernet(key.encode())


def secret_path(org: str, name: str) -> Path:
    """The secret's file; refused (``layout.OutsideRoot``) unless it is one file in the organization's folder."""
    if not re.match(FILE_NAME_PATTERN, name) or not re.match(SLUG_PATTERN, org):
        raise layout.OutsideRoot(f"'{name}' is not a secret name (letters, digits, '_', '-', '.')")
    return layout.inside(layout.secrets_dir(), org, name)


def write_secret(org: str, name: str, value: str) -> Path:
    """Store a secret encrypted, readable by the owner only; atomically replaces an older value."""
    path = secret_path(org, name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(seal(value))
    os.replace(tmp, path)
    return path


def seal(value: str) -> str:
    """A value encrypted with the secrets key, as written in a secret file (``reveal`` reads it back): also
    what the API keeps in a database row that holds a secret (a task's input)."""
    return PREFIX + _fernet(create=True).encrypt(value.encode()).decode()


def read_secret(org: str, name: str) -> str:
    """A stored secret's value (``LookupError`` if there is none)."""
    try:
        return reveal(secret_path(org, name).read_text().strip())
    except FileNotFoundError:
        raise LookupError(f"organization '{org}': no secret '{name}'") from None


def reveal(text: str) -> str:
    """The secret in a file's text: decrypted when written by ``write_secret``, else as is."""
    if not text.startswith(PREFIX):
        return text
    from cryptography.fernet import InvalidToken

    try:
        return _fernet(create=False).decrypt(text[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise LookupError(f"a secret cannot be decrypted with the current key ({KEY_ENV})") from None


def delete_secret(org: str, name: str) -> None:
    secret_path(org, name).unlink(missing_ok=True)


def delete_org_secrets(org: str) -> None:
    shutil.rmtree(layout.inside(layout.secrets_dir(), org), ignore_errors=True)
