"""Tenant code in its sandbox (bubblewrap, as the platform runs it): it sees its organization's root and
nothing of the platform or of other organizations, gets none of the platform's environment, and reaches
only its own endpoints (never Dagit, the API or Dagster's database on 127.0.0.1)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dalgo_core import layout, sandbox, secret_store
from dalgo_core.sandbox import Endpoint, Policy

PLATFORM_SECRET = "platform-secret-value-31337"

PROBE = r"""
import json, os, socket, sys, urllib.request
targets = json.loads(sys.argv[1])
out = {"read": {}, "listed": {}, "connect": {}, "proxy": {}}
for path in targets["read"]:
    try:
        out["read"][path] = open(path, "rb").read(200).decode("latin-1")
    except Exception as exc:
        out["read"][path] = "DENIED " + type(exc).__name__
for path in targets["listed"]:
    try:
        out["listed"][path] = sorted(os.listdir(path))
    except Exception as exc:
        out["listed"][path] = "DENIED " + type(exc).__name__
for host, port in targets["connect"]:
    try:
        s = socket.create_connection((host, port), timeout=3)
        out["connect"][f"{host}:{port}"] = s.recv(100).decode()
    except Exception as exc:
        out["connect"][f"{host}:{port}"] = "DENIED " + type(exc).__name__
for url in targets["proxy"]:
    try:
        out["proxy"][url] = urllib.request.urlopen(url, timeout=5).read(100).decode()
    except Exception as exc:
        out["proxy"][url] = "DENIED " + type(exc).__name__
out["environ"] = open("/proc/self/environ", "rb").read().decode("latin-1")
out["written"] = open(os.path.join(targets["root"], "mine.txt"), "w").write("ok")
print(json.dumps(out))
"""


@pytest.fixture
def server() -> Iterator[int]:
    """A TCP service on 127.0.0.1 standing for Dagit, the API or Dagster's database: it says its name."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nplatform service")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


@pytest.fixture
def two_orgs(dalgo_env: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setenv("DALGO_TEST_PLATFORM_SECRET", PLATFORM_SECRET)
    secret_store.write_secret("victim", "warehouse_password", "victim-password")
    mine, theirs = layout.org_root("tenant"), layout.org_root("victim")
    for root in (mine, theirs):
        root.mkdir(parents=True, exist_ok=True)
        (root / "warehouse.duckdb").write_text(f"rows of {root.name}")
    return mine, theirs


def _probe(policy: Policy, targets: dict) -> dict:
    import json

    result = sandbox.run(
        policy, [sys.executable, "-c", PROBE, json.dumps(targets)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.skipif(sandbox.mode() != "bwrap", reason="the sandbox is off on this machine")
def test_tenant_code_sees_only_its_root_and_reaches_only_its_endpoints(two_orgs, server: int, monkeypatch):
    mine, theirs = two_orgs
    monkeypatch.delenv("DALGO_SANDBOX_ALLOW_PRIVATE", raising=False)
    # the operator's network of tenant databases is 127.0.0.2 here; the platform's services stay on 127.0.0.1
    monkeypatch.setenv("DALGO_PRIVATE_NETWORKS", "127.0.0.2/32")
    warehouse = socket.socket()  # the tenant's own warehouse, the one endpoint its policy names
    warehouse.bind(("127.0.0.2", 0))
    warehouse.listen()

    def answer() -> None:
        conn, _ = warehouse.accept()
        conn.sendall(b"your warehouse")
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    wh_port = warehouse.getsockname()[1]
    policy = Policy(org="tenant", root=str(mine), endpoints=(Endpoint("127.0.0.2", wh_port),), egress=True)
    platform = layout.platform_dir()
    out = _probe(
        policy,
        {
            "root": str(mine),
            "read": [
                str(layout.secrets_key_file()),
                str(secret_store.secret_path("victim", "warehouse_password")),
                str(theirs / "warehouse.duckdb"),
                str(mine / "warehouse.duckdb"),
                "/etc/shadow",
                str(Path(__file__)),
            ],
            "listed": [str(platform), str(layout.orgs_root()), str(Path.cwd())],
            "connect": [["127.0.0.1", server], ["127.0.0.2", wh_port]],
            "proxy": [f"http://127.0.0.1:{server}/", f"http://localhost:{server}/"],
        },
    )
    assert out["read"][str(mine / "warehouse.duckdb")] == "rows of tenant"
    denied = {k: v for k, v in out["read"].items() if k != str(mine / "warehouse.duckdb")}
    assert all(v.startswith("DENIED") for v in denied.values()), denied
    assert out["listed"][str(layout.orgs_root())] == ["tenant"]  # its own root, no other organization
    assert out["listed"][str(platform)].startswith("DENIED")
    assert out["listed"][str(Path.cwd())] in ([".venv"], "DENIED FileNotFoundError")  # the code: not there
    assert out["connect"][f"127.0.0.2:{wh_port}"] == "your warehouse"
    assert out["connect"][f"127.0.0.1:{server}"].startswith("DENIED")
    assert all(v.startswith("DENIED") for v in out["proxy"].values()), out["proxy"]
    assert PLATFORM_SECRET not in out["environ"] and "DALGO_" not in out["environ"]
    assert (mine / "mine.txt").read_text() == "ok"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "169.254.169.254", "10.1.2.3"])
def test_a_tenant_database_on_the_platforms_network_is_refused_before_tenant_code_runs(two_orgs, host, monkeypatch):
    """A warehouse or database source is a host the tenant names: pointed at the platform's own services
    (loopback: Dagit, the API, Dagster's database; cloud metadata; the private network), the call is
    refused before anything starts, naming the host and what the operator can allow."""
    from dalgo_core.egress import NotPublic

    mine, _ = two_orgs
    monkeypatch.delenv("DALGO_SANDBOX_ALLOW_PRIVATE", raising=False)
    monkeypatch.delenv("DALGO_PRIVATE_NETWORKS", raising=False)
    policy = Policy(org="tenant", root=str(mine), endpoints=(Endpoint(host, 5432),))
    with pytest.raises(NotPublic, match=f"{host}: not a public address.*DALGO_PRIVATE_NETWORKS"):
        sandbox.run(policy, [sys.executable, "-c", "print('ran')"], capture_output=True, text=True, timeout=60)


def test_an_endpoint_relay_checks_the_address_at_each_connection(server: int, tmp_path: Path, monkeypatch):
    """The relay resolves its host again whenever tenant code connects (a name may be re-pointed after the
    check before the call), and carries nothing to an address outside the operator's networks."""
    from dalgo_core.sandbox.relay import Relays

    relays = Relays(tmp_path)
    path = relays.endpoint(0, "127.0.0.1", server)
    try:

        def through_relay() -> bytes:
            with socket.socket(socket.AF_UNIX) as conn:
                conn.settimeout(10)
                conn.connect(path)
                return conn.recv(100)

        monkeypatch.setenv("DALGO_PRIVATE_NETWORKS", "127.0.0.1/32")
        assert through_relay().endswith(b"platform service")
        monkeypatch.delenv("DALGO_PRIVATE_NETWORKS")
        monkeypatch.delenv("DALGO_SANDBOX_ALLOW_PRIVATE", raising=False)
        assert through_relay() == b""  # closed unanswered
    finally:
        relays.close()


LINKS = r"""
import json, os, sys
root, victim = sys.argv[1], sys.argv[2]
out = {}
for name, make in {
    "symlink": lambda: os.symlink(victim, os.path.join(root, "warehouse.duckdb")),
    "symlinkat": lambda: os.symlink(victim, "stolen", dir_fd=os.open(root, os.O_RDONLY)),
    "relative": lambda: os.symlink("../victim", os.path.join(root, "up")),
    "fifo": lambda: os.mkfifo(os.path.join(root, "profiles.yml")),
}.items():
    try:
        make()
        out[name] = "made"
    except OSError as exc:
        out[name] = exc.errno
with open(os.path.join(root, "mine.txt"), "w") as handle:
    handle.write("ok")
os.link(os.path.join(root, "mine.txt"), os.path.join(root, "also-mine.txt"))
out["hard link of its own file"] = open(os.path.join(root, "also-mine.txt")).read()
print(json.dumps(out))
"""


@pytest.mark.skipif(sandbox.mode() != "bwrap", reason="the sandbox is off on this machine")
def test_tenant_code_cannot_plant_a_link_in_its_root(two_orgs):
    """The platform opens files of an organization's root outside the sandbox (its DuckDB warehouse, dbt
    profile, manifests, connector state): a link planted there would lead it into another organization,
    a FIFO would hold its reader. Tenant code makes neither, however it asks; its own files it still
    writes and hard-links."""
    import errno
    import json

    mine, theirs = two_orgs
    result = sandbox.run(
        Policy(org="tenant", root=str(mine)),
        [sys.executable, "-c", LINKS, str(mine), str(theirs / "warehouse.duckdb")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert {out[k] for k in ("symlink", "symlinkat", "relative", "fifo")} == {errno.EPERM}, out
    assert out["hard link of its own file"] == "ok"
    assert (mine / "warehouse.duckdb").read_text() == "rows of tenant" and not (mine / "up").exists()


@pytest.mark.skipif(sandbox.mode() != "bwrap", reason="the sandbox is off on this machine")
def test_tenant_dbt_runs_when_the_platform_environment_is_reached_through_a_link(dalgo_env: Path):
    """A host whose environment is a symbolic link (a release folder linking a shared venv): dbt's script
    names the interpreter at the path it was installed at, which the sandbox shows beside the link."""
    link = dalgo_env / "linked-env"
    link.symlink_to(Path(sys.prefix).resolve(), target_is_directory=True)
    root = layout.org_root("tenant")
    root.mkdir(parents=True)
    call = (
        "import sys; from dalgo_core import sandbox; "
        "r = sandbox.run(sandbox.Policy(org='tenant', root=sys.argv[1]), [sys.argv[2], '--version'], "
        "capture_output=True, text=True, timeout=120); print(r.returncode, r.stdout, r.stderr)"
    )
    out = subprocess.run(
        [str(link / "bin" / "python"), "-c", call, str(root), str(link / "bin" / "dbt")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("0 ") and "Core:" in out.stdout, out.stdout


def test_a_policy_passes_only_the_variables_it_names(monkeypatch):
    monkeypatch.setenv("DALGO_SECRET_TENANT_PASSWORD", "tenant-pw")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "dagster-pw")
    monkeypatch.setenv("DBT_TARGET_PATH", "/x/target")
    env = Policy(org="tenant", root="/x", env=("DALGO_SECRET_TENANT_PASSWORD",)).environment()
    assert env["DALGO_SECRET_TENANT_PASSWORD"] == "tenant-pw" and env["DBT_TARGET_PATH"] == "/x/target"
    assert "dagster-pw" not in env.values()
    assert not {k for k in env if k.startswith("DAGSTER_PG")}


def test_without_bubblewrap_tenant_code_does_not_run(monkeypatch, tmp_path: Path):
    from dalgo_core.sandbox import runner

    monkeypatch.setattr(runner, "_bwrap_works", lambda: "bubblewrap is not installed")
    monkeypatch.setenv("DALGO_SANDBOX", "bwrap")
    with pytest.raises(sandbox.SandboxUnavailable, match="not run without its sandbox"):
        sandbox.run(Policy(org="t", root=str(tmp_path)), ["true"])
    assert "ERROR" in sandbox.status()
    monkeypatch.setenv("DALGO_SANDBOX", "off")
    assert "WITHOUT a sandbox" in sandbox.status()


def test_what_the_platform_reads_of_a_root_is_a_small_regular_file_of_that_root(dalgo_env: Path):
    """Files in an organization's root made otherwise (by hand, by an older version) are refused where
    the platform reads them in a process every organization shares: a FIFO (it would hold the reader),
    a file larger than the reader allows, a link; the dbt profile is rewritten over any of them."""
    import os
    import threading

    from dalgo_core.spec import load_org_spec
    from dalgo_core.warehouse.profiles import profiles_dir, write_profiles
    from tests.support.orgs import write_spec

    write_spec(dalgo_env / "orgs", "tenant", {"slug": "tenant", "name": "Tenant"})
    root = layout.org_root("tenant")
    root.mkdir(parents=True, exist_ok=True)
    os.mkfifo(root / "fifo.json")
    (root / "big.json").write_bytes(b"x" * 2048)
    (root / "link.json").symlink_to(root / "big.json")
    with pytest.raises(layout.RefusedFile, match="not a regular file"):
        layout.read_org_file(root / "fifo.json")
    with pytest.raises(layout.RefusedFile, match="larger than 1024 bytes"):
        layout.read_org_file(root / "big.json", max_bytes=1024)
    with pytest.raises(layout.OutsideRoot, match="symbolic link"):
        layout.read_org_file(root / "link.json")
    assert layout.read_org_file(root / "big.json") == b"x" * 2048

    profile = profiles_dir(load_org_spec("tenant")) / "profiles.yml"
    profile.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(profile)
    writer = threading.Thread(target=write_profiles, args=(load_org_spec("tenant"),), daemon=True)
    writer.start()
    writer.join(30)
    assert not writer.is_alive(), "the profile's writer was held by a FIFO"
    assert profile.is_file() and "duckdb" in profile.read_text()
