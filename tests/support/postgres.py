"""A throwaway PostgreSQL server from the machine's PostgreSQL binaries, for tests and benchmarks.

It listens on 127.0.0.1 only, on a free port, with trust authentication, and is stopped by its
data directory's PID (``pg_ctl stop``). As root, the server runs as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

# every character a URL gives a meaning to, percent-encoded in a URL: parsers must decode it back
AWKWARD_PASSWORD = "p@ss w:rd/%?#&=+"


def find_bindir() -> Path:
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    if candidates:
        return Path(candidates[-1])
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise RuntimeError("PostgreSQL server binaries not found: install postgresql or set PG_BINDIR")


def free_port_range(count: int = 20) -> int:
    """A base port below the kernel's ephemeral range with ``count`` free ports after it: code servers
    take consecutive ports from a base, and ports any process may be handed by the kernel could be
    taken between the check and their start."""
    import random

    for _ in range(200):
        base = random.randrange(20000, 32000 - count)
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + count):
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {count} consecutive free ports between 20000 and 32000")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self, root: Path | None = None, port: int | None = None):
        self.root = Path(root or tempfile.mkdtemp(prefix="dalgo-pg-"))
        self.data = self.root / "data"
        self.port = port or free_port()
        self.bindir = find_bindir()
        self.host = "127.0.0.1"
        self.superuser = "postgres"
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, cwd="/")

    def start(self) -> PostgresServer:
        if not self.data.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            if self._as_root:
                shutil.chown(self.root, "postgres", "postgres")
            self._run("initdb", "-D", str(self.data), "-U", self.superuser, "--auth=trust", "-E", "UTF8")
        self._pg_ctl_start()
        return self

    def _pg_ctl_start(self) -> None:
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "server.log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def restart(self) -> None:
        self.stop()
        self._pg_ctl_start()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def pid(self) -> int | None:
        pidfile = self.data / "postmaster.pid"
        return int(pidfile.read_text().split()[0]) if pidfile.exists() else None

    def dsn(self, database: str = "postgres", user: str | None = None, password: str | None = None) -> str:
        """A ``postgresql://`` URL, its user, password and database percent-encoded (every character but
        letters, digits and ``_.-~``): what libpq, SQLAlchemy and dj-database-url all decode alike."""
        auth = quote(user or self.superuser, safe="")
        if password:
            auth += f":{quote(password, safe='')}"
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(database, safe='')}"

    def require_password(self, role: str) -> None:
        """Connections over TCP as ``role`` must give its password (every other role stays trusted)."""
        import psycopg

        hba = self.data / "pg_hba.conf"
        rule = f"host all {role} {self.host}/32 scram-sha-256\n"
        if rule not in hba.read_text():
            hba.write_text(rule + hba.read_text())  # the first matching line wins
        self._run("pg_ctl", "-D", str(self.data), "reload")
        deadline = time.monotonic() + 10  # the server rereads its rules asynchronously
        while True:
            try:
                psycopg.connect(self.dsn(user=role), connect_timeout=5).close()
            except psycopg.OperationalError as exc:
                if "password" in str(exc):
                    return
                raise
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server still trusts {role} without a password")
            time.sleep(0.05)

    def create_database(self, name: str, owner: str | None = None, password: str | None = None) -> str:
        """Create a database (and its owner role); return a DSN that connects as the owner."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            if owner:
                exists = conn.execute("select 1 from pg_roles where rolname = %s", (owner,)).fetchone()
                if not exists:
                    conn.execute(
                        sql.SQL("create role {} login password {}").format(
                            sql.Identifier(owner), sql.Literal(password or "")
                        )
                    )
            create = sql.SQL("create database {}").format(sql.Identifier(name))
            if owner:
                create += sql.SQL(" owner {}").format(sql.Identifier(owner))
            conn.execute(create)
        return self.dsn(name, owner, password)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.destroy()
