"""``dalgo serve``: the production topology on one machine, without Docker.

Given a PostgreSQL server it does not start itself, it writes the PostgreSQL instance into
``$DAGSTER_HOME``, a workspace of ``grpc_server`` entries, migrates the API's database and collects its
static files, then starts and watches:

- one ``dagster code-server start`` per organization (``org_<slug>``, on the port the workspace gives it
  from ``grpc_base_port``), shared by the webserver and the daemon instead of each spawning its own.
  It is Dagster's reloadable code server: the API's reload of a location (through the webserver) makes
  it load the organization's definitions again, and the webserver's and the daemon's gRPC watch see the
  new server within a second. The workspace file is the list of organizations: when the API adds or
  removes one, the supervisor starts or stops that organization's code server, no other;
- the Dagster webserver on 127.0.0.1 (operators and the API's run bridge; put an authenticating proxy in
  front to expose it), and optionally a second, ``--read-only`` webserver for operators;
- the Dagster daemon (run queue, schedules, sensors, run monitoring and retries);
- the API under gunicorn (``dalgo_api.wsgi:application``);
- the alert dispatcher (``manage.py dispatch_alerts --loop``: alerts from Dagster's event log to email,
  inboxes and webhooks).

Each is a program of supervisord (``dalgo_ops.processes``), which restarts what dies and rotates the
logs; on SIGTERM/SIGINT (or ``dalgo serve stop``) the runs in progress are ended and supervisord stops
everything.
Every process gets ``DALGO_WORKSPACE_FILE`` (this workspace) and ``DALGO_GRPC_BASE_PORT``, so the API
rewrites the same workspace the webserver and the daemon read.
"""

from __future__ import annotations

import importlib.metadata
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from dalgo_core import egress, layout, sandbox, settings
from dalgo_core.code_locations import GRPC_BASE_PORT_ENV, code_server_args, code_servers, write_workspace
from dalgo_core.dbt_projects import prepare_organizations
from dalgo_core.names import location_name
from dalgo_core.pids import start_time
from dalgo_core.pools import all_org_pools
from dalgo_core.spec import list_org_slugs
from dalgo_ops.forkserver.client import SOCKET_ENV
from dalgo_ops.instance import REPO, pg_env_from_url, write_embedded_instance, write_postgres_instance
from dalgo_ops.naming import GUNICORN_CONF, WSGI_APP
from dalgo_ops.processes import ProcessSpec, Supervisor, signal_group, stop_from_pid_files
from dalgo_ops.runs import RunReporter, end_runs_in_flight
from dalgo_ops.webserver import locations_settled

BIN = Path(sys.executable).parent


@dataclass
class ServeConfig:
    postgres_url: str  # empty: the embedded default (``dalgo up``): SQLite storage, the API on SQLite
    api_database_url: str = ""  # empty: the API's tables go into the Dagster database (or SQLite)
    host: str = "127.0.0.1"
    webserver_port: int = 3000
    operator_port: int | None = None  # a second, read-only webserver for operators
    api_port: int = 8000
    grpc_base_port: int = 4000
    api_workers: int | None = None  # None: ``dalgo_ops.gunicorn_conf``'s (``DALGO_API_WORKERS``, else the cores + 1)
    api_threads: int | None = None  # None: ``dalgo_ops.gunicorn_conf``'s (``DALGO_API_THREADS``, else 1)
    demo_user: tuple[str, str] | None = None  # (organization, email): ``dalgo up`` prints its login
    demo_login: str = ""
    dagster_home: Path = field(default_factory=lambda: layout.dagster_home().absolute())
    run_dir: Path = field(default_factory=lambda: layout.run_dir())

    @property
    def workspace(self) -> Path:
        return self.run_dir / "workspace.yaml"

    @property
    def webserver_url(self) -> str:
        return f"http://{self.host}:{self.webserver_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"


def process_env(config: ServeConfig) -> dict[str, str]:
    """The environment every process shares: where things are, the PostgreSQL settings, the API's URLs."""
    env = {
        **os.environ,
        **(pg_env_from_url(config.postgres_url) if config.postgres_url else {}),
        "DAGSTER_HOME": str(config.dagster_home),
        "DALGO_HOME": str(settings.home_dir()),
        "DALGO_ORGS_DIR": str(settings.orgs_dir()),
        "DALGO_DAGSTER_URL": config.webserver_url,
        # the API rewrites this workspace when organizations come and go; serve starts their servers
        "DALGO_WORKSPACE_FILE": str(config.workspace),
        GRPC_BASE_PORT_ENV: str(config.grpc_base_port),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    if config.api_database_url or config.postgres_url:
        env["DALGO_API_DATABASE_URL"] = config.api_database_url or config.postgres_url
    env.setdefault("DJANGO_SETTINGS_MODULE", "dalgo_api.settings")
    return env


class Step:
    """A preparation step run as a subprocess while others run, its output kept in ``<name>.log``."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.log = name, log_dir / f"{name}.log"
        self.on_success: Callable[[], None] | None = None
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)

    def result(self, failure: str) -> str:
        """Its output once it ended; a failure stops the start with ``failure`` and the output's tail."""
        self.proc.wait()
        output = self.log.read_text(errors="replace")
        if self.proc.returncode != 0:
            raise RuntimeError(f"{failure}:\n{output[-3000:]}")
        if self.on_success is not None:
            self.on_success()
        return output


READY_STAMP = ".dalgo-storage-ready"


def _embedded_stores(env: dict[str, str]) -> tuple[Path, ...] | None:
    """The files of the embedded SQLite storage (None: PostgreSQL storage)."""
    if "DAGSTER_PG_HOST" in env:
        return None
    home = Path(env["DAGSTER_HOME"])
    return (home / "history" / "runs.db", home / "schedules" / "schedules.db")


def new_storage(env: dict[str, str]) -> bool:
    """Whether the embedded SQLite storage does not exist yet: Dagster creates it in the first process
    that opens it, so the webserver, started alone before every other process that opens it, creates
    it (``start``)."""
    stores = _embedded_stores(env)
    return stores is not None and not any(f.exists() for f in stores)


def prepare_storage(env: dict[str, str], log_dir: Path, *, just_created: bool = False) -> Step | None:
    """Make Dagster's storage ready in one process (``dalgo_ops.storage``) before the webserver and the
    daemon touch it: processes that all create a new SQLite storage at once corrupt it. Storage left by
    an older Dagster is migrated, and every organization's pools get their row; a failure stops the
    start with Dagster's own message. A stamp in ``$DAGSTER_HOME`` records what a start made ready (the
    Dagster version, the pools): a warm start whose storage this version made and whose pools were all
    made skips the step (None); a new organization's pools are made without migrating again. PostgreSQL
    storage is shared, so it is always checked. Storage ``just_created`` by this Dagster (the webserver
    made it, ``new_storage``) always gets its pools, with no migration beside the processes using it."""
    stamp = Path(env["DAGSTER_HOME"]) / READY_STAMP
    version = f"dagster {importlib.metadata.version('dagster')}"
    pools = all_org_pools()
    stores = _embedded_stores(env)
    made = stamp.read_text().splitlines() if stamp.exists() else []
    migrated = just_created or (stores is not None and all(f.exists() for f in stores) and made[:1] == [version])
    if migrated and not just_created and pools <= set(made[1:]):
        return None
    stamp.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "dalgo_ops.storage", *([] if migrated else ["--migrate"])]
    step = Step("dagster-storage", argv, env, log_dir)
    step.on_success = lambda: stamp.write_text("\n".join([version, *sorted(pools)]) + "\n")
    return step


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def grpc_ok(host: str, port: int) -> bool:
    from dagster._grpc.client import DagsterGrpcClient

    try:
        DagsterGrpcClient(port=port, host=host).ping("dalgo")
    except Exception:
        return False
    return True


CODE_SERVER_PREFIX = "code-server-"


def code_server_name(slug: str) -> str:
    return f"{CODE_SERVER_PREFIX}{slug}"


def code_server_env(env: dict[str, str]) -> dict[str, str]:
    """A code server needs no Dagster storage: every call that needs the instance (a run, a sensor or
    schedule tick) brings the caller's. With ``DAGSTER_HOME`` empty (Dagster's "not set") it opens none,
    so it can start while the storage is still being created (``prepare_storage``) and never creates one
    beside it. (Empty rather than absent: supervisord's programs inherit its environment.)"""
    return {**env, "DAGSTER_HOME": ""}


FORK_SERVER = "forkserver"


def fork_server_socket(config: ServeConfig) -> Path:
    return config.run_dir / "forkserver.sock"


def fork_server(config: ServeConfig, env: dict[str, str]) -> ProcessSpec:
    """The process every code server is forked from (``dalgo_ops.forkserver``): started first."""
    path = fork_server_socket(config)
    argv = [sys.executable, "-m", "dalgo_ops.forkserver.server", str(path)]
    return ProcessSpec(FORK_SERVER, argv, code_server_env(env), REPO, ready=path.exists)


def code_server(config: ServeConfig, env: dict[str, str], slug: str, port: int) -> ProcessSpec:
    argv = [
        str(BIN / "dalgo-fork"),
        "code-server",
        "start",
        "-h",
        config.host,
        "-p",
        str(port),
        *code_server_args(slug),
        "-d",
        str(REPO),
        # the proxy starts its server with this process's Python: dalgo-fork-python when forked, which
        # has the fork server fork that server too (dalgo_ops.forkserver.client.python_main)
        "--use-python-environment-entry-point",
    ]
    return ProcessSpec(
        code_server_name(slug),
        argv,
        {**code_server_env(env), SOCKET_ENV: str(fork_server_socket(config))},
        REPO,
        stop_signal=signal.SIGKILL,
        ready=lambda: grpc_ok(config.host, port),
    )


def webserver(config: ServeConfig, env: dict[str, str], *, read_only: bool = False) -> ProcessSpec:
    port = config.operator_port if read_only else config.webserver_port
    argv = [str(BIN / "dagster-webserver"), "-h", config.host, "-p", str(port), "-w", str(config.workspace)]
    if read_only:
        argv.append("--read-only")
    name = "webserver-readonly" if read_only else "webserver"
    return ProcessSpec(name, argv, env, REPO, ready=lambda: http_ok(f"http://{config.host}:{port}/server_info"))


def daemon(config: ServeConfig, env: dict[str, str]) -> ProcessSpec:
    return ProcessSpec("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(config.workspace)], env, REPO)


def gunicorn_argv(bind: str, workers: int | None = None, threads: int | None = None) -> list[str]:
    """The API under gunicorn as ``dalgo_ops.gunicorn_conf`` sets it up (``dalgo serve``; the API
    benchmarks and tests run it the same way); ``workers`` and ``threads`` override its defaults."""
    argv = [str(BIN / "gunicorn"), "--config", GUNICORN_CONF, WSGI_APP, "--bind", bind]
    if workers is not None:
        argv += ["--workers", str(workers)]
    if threads is not None:
        argv += ["--threads", str(threads)]
    return argv


def api(config: ServeConfig, env: dict[str, str]) -> ProcessSpec:
    argv = [
        *gunicorn_argv(f"{config.host}:{config.api_port}", config.api_workers, config.api_threads),
        "--max-requests",
        "5000",
        "--max-requests-jitter",
        "500",
        "--access-logfile",
        "-",
    ]
    return ProcessSpec("api", argv, env, REPO, ready=lambda: http_ok(f"{config.api_url}/api/health"))


def prepare_api(env: dict[str, str], log_dir: Path, demo_user: tuple[str, str] | None) -> Step:
    """Before the API starts, in one Django process (``manage.py prepareapi``, idempotent): migrate its
    database, collect its static files, adopt the organizations folder, and the demo login if asked."""
    argv = [sys.executable, str(REPO / "manage.py"), "prepareapi", *(["--demo", *demo_user] if demo_user else [])]
    return Step("manage-prepareapi", argv, env, log_dir)


def alert_dispatcher(env: dict[str, str]) -> ProcessSpec:
    """Alerts (``dalgo_api.alerts.dispatcher``): started with the webserver and daemon, once the API's
    database is migrated."""
    return ProcessSpec("alerts", [sys.executable, str(REPO / "manage.py"), "dispatch_alerts", "--loop"], env, REPO)


def process_specs(config: ServeConfig, env: dict[str, str]) -> list[ProcessSpec]:
    specs = [fork_server(config, env)]
    specs += [code_server(config, env, slug, port) for slug, port in code_servers(config.workspace).items()]
    specs += [webserver(config, env), daemon(config, env), api(config, env), alert_dispatcher(env)]
    if config.operator_port:
        specs.append(webserver(config, env, read_only=True))
    return specs


def start(config: ServeConfig, supervisor: Supervisor) -> list[str]:
    """Write the instance and the workspace, prepare the API, start every process; return the org slugs."""

    slugs = list_org_slugs()
    supervisor.log(f"dalgo serve: {sandbox.status()}")
    supervisor.log(f"dalgo serve: {egress.status()}")
    if config.postgres_url:
        write_postgres_instance(config.dagster_home)
    else:
        write_embedded_instance(config.dagster_home)
    config.run_dir.mkdir(parents=True, exist_ok=True)
    write_workspace(config.workspace, grpc_base_port=config.grpc_base_port)
    env = process_env(config)
    # Dagster's storage and the API's database are made ready while supervisord starts, the dbt
    # manifests are prepared and the code servers load them (they need no storage: ``code_server_env``).
    # A new SQLite storage is created by the webserver alone (``new_storage``); one left by an earlier
    # start is migrated first.
    created_by_webserver = new_storage(env)
    migration = None if created_by_webserver else prepare_storage(env, supervisor.log_dir)
    demo = config.demo_user if config.demo_user and config.demo_user[0] in slugs else None
    api_ready = prepare_api(env, supervisor.log_dir, demo)
    supervisor.boot(env)  # supervisord, with no program yet
    supervisor.log(f"dalgo serve: preparing {len(slugs)} organization(s)")
    for slug, problem in prepare_organizations(slugs).items():
        supervisor.log(f"organization '{slug}' is not ready (its code location will show the error): {problem}")
    specs = {s.name: s for s in process_specs(config, env)}
    servers = [name for name in specs if name.startswith(CODE_SERVER_PREFIX)]
    on_the_database = ["api"]  # once the API's database is migrated
    # the alert dispatcher answers no request: it starts once Dagit and the API answer, not competing
    # with them for the CPU (two cores start the platform about as fast as dagster dev starts Dagster)
    after_ready = ["alerts"]
    first = [FORK_SERVER]  # the code servers fork from it (they wait for it a while, else run alone)
    rest = [name for name in specs if name not in {*first, *servers, "webserver", *on_the_database, *after_ready}]
    supervisor.log(f"dalgo serve: starting {len(servers)} code server(s), the webserver, the daemon and the API")
    for name in [*first, *servers]:
        supervisor.start(specs[name])
    if migration is not None:
        migration.result(f"Dagster's storage in {env['DAGSTER_HOME']} cannot be created or migrated")
    # the webserver's gRPC watch loads each organization's location within a second of its code server
    # answering
    supervisor.start(specs["webserver"])
    pools = None
    if created_by_webserver:
        supervisor.wait_ready(["webserver"])  # it answers once its instance (the new storage) exists
        pools = prepare_storage(env, supervisor.log_dir, just_created=True)  # its pools and stamp
    for line in api_ready.result("the API's database cannot be prepared").splitlines():
        if line.startswith("demo login") or (line.startswith("adopted organization") and line.endswith(")")):
            supervisor.log(f"dalgo serve: {line}")
            if line.startswith("demo login"):
                config.demo_login = line
    for name in on_the_database:
        supervisor.start(specs[name])
    # the daemon once the pools have their rows (its run queue limits only pools that exist:
    # dalgo_core.pools)
    if pools is not None:
        pools.result(f"the organizations' pools cannot be created in {env['DAGSTER_HOME']}")
    for name in rest:
        supervisor.start(specs[name])
    # A code server that cannot load its organization still serves the error, so waiting is safe.
    supervisor.wait_ready([*first, *servers, "webserver", *rest, *on_the_database])
    locations = {location_name(slug) for slug in code_servers(config.workspace)}
    supervisor.wait_until(
        lambda: locations_settled(f"{config.webserver_url}/graphql", locations), "the webserver's locations"
    )
    for name in after_ready:
        supervisor.start(specs[name])
    return slugs


def _port(spec: ProcessSpec) -> int:
    return int(spec.argv[spec.argv.index("-p") + 1])


def reconcile(config: ServeConfig, supervisor: Supervisor, env: dict[str, str]) -> None:
    """Start the code server of an organization the workspace gained, stop that of one it lost (or whose
    port changed); leave every other alone. The API waits for a new server to answer."""
    wanted = {code_server_name(slug): (slug, port) for slug, port in code_servers(config.workspace).items()}
    for name, managed in list(supervisor.managed.items()):
        if name.startswith(CODE_SERVER_PREFIX) and (name not in wanted or _port(managed) != wanted[name][1]):
            supervisor.log(f"dalgo serve: {name} left the workspace; stopping it")
            supervisor.stop(name)
    for name, (slug, port) in wanted.items():
        if name not in supervisor.managed:
            supervisor.log(f"dalgo serve: organization '{slug}' joined the workspace; starting {name} on {port}")
            supervisor.start(code_server(config, env, slug, port))


class AlreadyRunning(RuntimeError):
    """Another ``dalgo serve``/``dalgo up`` supervises this state folder."""


def running_supervisor(run_dir: Path) -> int | None:
    """The PID of the ``dalgo serve`` supervising ``run_dir`` if it is alive (the same process its PID
    file names, not one that reuses its PID), else None."""
    pidfile = run_dir / "supervisor.pid"
    try:
        pid, *started = (int(x) for x in pidfile.read_text().split())
    except (FileNotFoundError, ValueError):
        return None
    return pid if started and start_time(pid) == started[0] else None


def serve(config: ServeConfig) -> int:
    """Start the topology and supervise it until SIGTERM/SIGINT (then stop everything by PID)."""
    if (other := running_supervisor(config.run_dir)) is not None:
        raise AlreadyRunning(
            f"the platform of {settings.home_dir()} is already running (supervisor pid {other}): "
            "stop it first (Ctrl-C, or `dalgo serve stop`)"
        )
    supervisor = Supervisor(config.run_dir, log=lambda m: print(m, flush=True))
    stop_from_pid_files(config.run_dir)  # leftovers of a supervisor that was killed
    (config.run_dir / "supervisor.pid").write_text(f"{os.getpid()} {start_time(os.getpid()) or 0}\n")
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        slugs = start(config, supervisor)
        print(
            f"dalgo serve: ready ({len(slugs)} organization(s)); Dagster {config.webserver_url}, "
            f"API {config.api_url}/api/ (docs {config.api_url}/api/docs); logs in {supervisor.log_dir}",
            flush=True,
        )
        if config.demo_login:
            print(f"dalgo serve: {config.demo_login}; POST {config.api_url}/api/login/ to get a token", flush=True)
        env = process_env(config)
        workspace_seen = config.workspace.stat().st_mtime_ns
        runs = RunReporter(f"{config.webserver_url}/graphql", lambda m: supervisor.log(f"dalgo serve: {m}"))
        while not stopping:
            supervisor.check()
            runs.poll()
            if (changed := config.workspace.stat().st_mtime_ns) != workspace_seen:
                workspace_seen = changed
                reconcile(config, supervisor, env)
            time.sleep(0.2)
        return 0
    finally:
        if "daemon" in supervisor.managed:
            supervisor.stop("daemon")  # its run queue starts no run while the platform stops
        if "webserver" in supervisor.managed:
            end_runs_in_flight(f"{config.webserver_url}/graphql", lambda m: supervisor.log(f"dalgo serve: {m}"))
        supervisor.stop_all()
        (config.run_dir / "supervisor.pid").unlink(missing_ok=True)


def stop(run_dir: Path, timeout: float = 60.0) -> bool:
    """Ask a running ``dalgo serve`` to stop (SIGTERM), then stop what it left; True if one ran."""
    pidfile = run_dir / "supervisor.pid"
    ran = False
    if pidfile.exists():
        if (pid := running_supervisor(run_dir)) is not None:  # not a process reusing its PID
            try:
                os.kill(pid, signal.SIGTERM)
                ran = True
            except ProcessLookupError:
                pass
        deadline = time.time() + timeout
        while ran and pidfile.exists() and time.time() < deadline:
            time.sleep(0.3)
        if pidfile.exists():
            if ran:
                signal_group(pid, signal.SIGKILL)
            pidfile.unlink(missing_ok=True)
    left = stop_from_pid_files(run_dir)
    return ran or bool(left)
