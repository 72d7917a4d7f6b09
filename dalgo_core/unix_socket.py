"""Unix sockets at any path: a socket's path is limited to 108 bytes, so it is bound and reached through
a descriptor of its folder (``/proc/self/fd/N/<name>``), whatever the folder's length."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path


def _via_folder(path: Path) -> tuple[int, str]:
    folder = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    return folder, f"/proc/self/fd/{folder}/{path.name}"


def listen(path: Path, backlog: int = 64) -> socket.socket:
    """A listening socket at ``path`` (an older one there is replaced), readable by this user alone."""
    path.unlink(missing_ok=True)
    folder, name = _via_folder(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(name)
        os.chmod(name, 0o600)
        listener.listen(backlog)
    except OSError:
        listener.close()
        raise
    finally:
        os.close(folder)
    return listener


def connect(path: Path, timeout: float | None, *, refused_for: float = 1.0) -> socket.socket:
    """A connection to the socket at ``path``; one bound but not yet listening (refused) is tried again
    for ``refused_for`` seconds. Raises ``OSError`` otherwise."""
    deadline = time.monotonic() + refused_for
    folder, name = _via_folder(path)
    try:
        while True:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(timeout)
            try:
                conn.connect(name)
                return conn
            except ConnectionRefusedError:
                conn.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            except OSError:
                conn.close()
                raise
    finally:
        os.close(folder)
