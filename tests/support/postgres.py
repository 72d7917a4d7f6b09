"""A throwaway PostgreSQL server from the machine's PostgreSQL binaries, for tests and benchmarks.

pytest-postgresql runs it: its executor initializes the data directory, starts the server with
``pg_ctl`` on a free port of 127.0.0.1 (trust authentication, no fsync), waits for it and stops it; its
janitor creates and drops databases. What pytest-postgresql does not do is kept here, small: the server
runs as the ``postgres`` user when the tests run as root (PostgreSQL refuses root), a database owned by a
role with a password, a role that must give its password (``pg_hba.conf``), a restart, and use outside
pytest (the benchmarks).
"""

from __future__ import annotations

import contextlib
import glob
import os
import random
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql
from pytest_postgresql.executors import PostgreSQLExecutor
from pytest_postgresql.janitor import DatabaseJanitor

# every character a URL gives a meaning to, percent-encoded in a URL: parsers must decode it back
AWKWARD_PASSWORD = "p@ss w:rd/%?#&=+"
# beside pytest-postgresql's own (-F: no fsync): TCP on 127.0.0.1 only, throwaway durability, room for a platform
SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
)


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


def pg_ctl_as_postgres(root: Path, pg_ctl: Path) -> Path:
    """A ``pg_ctl`` that runs the real one as the ``postgres`` user, for a root process (the executor
    takes one executable). It lives in ``root``, which stays root's; the server's files are the user's."""
    wrapper = root / "pg_ctl"
    wrapper.write_text(f'#!/bin/sh\ncd / && exec runuser -u postgres -- {shlex.quote(str(pg_ctl))} "$@"\n')
    wrapper.chmod(0o755)
    root.chmod(0o711)
    return wrapper


class PostgresServer:
    """``start()`` (or ``with``) then ``dsn()``, ``create_database()``; ``destroy()`` stops it and removes
    its files."""

    def __init__(self, root: Path | None = None, port: int | None = None):
        self.root = Path(root or tempfile.mkdtemp(prefix="dalgo-pg-"))
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.superuser = "postgres"
        files = self.root / "server"  # data directory, log and socket: the server's user owns them
        files.mkdir(parents=True, exist_ok=True)
        pg_ctl = find_bindir() / "pg_ctl"
        if os.geteuid() == 0:
            shutil.chown(files, "postgres", "postgres")
            pg_ctl = pg_ctl_as_postgres(self.root, pg_ctl)
        self.data = files / "data"
        self.executor = PostgreSQLExecutor(
            executable=str(pg_ctl),
            host=self.host,
            port=self.port,
            datadir=str(self.data),
            unixsocketdir=str(files),
            logfile=str(files / "server.log"),
            startparams="-w",
            dbname="postgres",
            user=self.superuser,
            timeout=300,  # initdb on a loaded machine
            postgres_options=SERVER_OPTIONS,
        )

    def start(self) -> PostgresServer:
        self.executor.start()  # waits for the port to open
        # ``pg_ctl start -w`` exits once the server accepts sessions (the port opens before)
        if self.executor.process is not None and self.executor.process.wait(300) != 0:
            raise RuntimeError(f"PostgreSQL did not start:\n{Path(self.executor.logfile).read_text()[-2000:]}")
        return self

    def stop(self) -> None:
        if self.executor.running():
            self.executor.stop()

    def restart(self) -> None:
        """Stopped (fast: open sessions are ended) and started again on the same port and data."""
        self.stop()
        self.start()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, database: str = "postgres", user: str | None = None, password: str | None = None) -> str:
        """A ``postgresql://`` URL, its user, password and database percent-encoded (every character but
        letters, digits and ``_.-~``): what libpq, SQLAlchemy and dj-database-url all decode alike."""
        auth = quote(user or self.superuser, safe="")
        if password:
            auth += f":{quote(password, safe='')}"
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(database, safe='')}"

    def janitor(self, database: str) -> DatabaseJanitor:
        """pytest-postgresql's janitor of ``database``: ``init()`` creates it, ``drop()`` ends its sessions
        and drops it."""
        return DatabaseJanitor(user=self.superuser, host=self.host, port=self.port, dbname=database)

    def create_database(self, name: str, owner: str | None = None, password: str | None = None) -> str:
        """Create a fresh database (dropping one of that name an earlier test of the session left) and its
        owner role, which logs in with ``password``; return a DSN that connects as the owner."""
        janitor = self.janitor(name)
        janitor.drop()
        janitor.init()
        if owner:
            with janitor.cursor() as cursor:
                role, secret = sql.Identifier(owner), sql.Literal(password or "")
                exists = cursor.execute("select 1 from pg_roles where rolname = %s", (owner,)).fetchone()
                verb = "alter" if exists else "create"
                cursor.execute(sql.SQL(verb + " role {} login password {}").format(role, secret))
                cursor.execute(sql.SQL("alter database {} owner to {}").format(sql.Identifier(name), role))
        return self.dsn(name, owner, password)

    def require_password(self, role: str) -> None:
        """Connections over TCP as ``role`` must give its password (every other role stays trusted)."""
        hba = self.data / "pg_hba.conf"
        rule = f"host all {role} {self.host}/32 scram-sha-256\n"
        if rule not in hba.read_text():
            hba.write_text(rule + hba.read_text())  # the first matching line wins
        subprocess.run([self.executor.executable, "reload", "-D", str(self.data)], check=True, capture_output=True)
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

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.destroy()
