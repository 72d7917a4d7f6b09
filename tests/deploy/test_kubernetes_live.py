"""On Kubernetes every API change is live too, organizations created and deleted included: the first hour
of an organization (``live_changes.py``, as under ``dalgo serve`` and ``dalgo up``) driven over HTTP
against the platform deployed on the Kubernetes stand-in.

The stand-in's kubelet runs each Deployment as a local process under bubblewrap: Dagster's webserver and
daemon as the chart deploys them (their workspace the ConfigMap ``dalgo-workspace``, mounted without
``subPath`` and refreshed by the kubelet), the API under gunicorn, and Dalgo's controller (``python -m
dalgo_ops.k8s.controller``), which talks to the stand-in's API server through the official client and
gives each organization the API creates its own code server Deployment and Service. What Kubernetes
would do differently here: Dagster's storage is SQLite on a volume every pod mounts (the chart uses
PostgreSQL), and runs start in the code server's pod (Dagster's default run launcher; the chart's K8s
run launcher makes Jobs, which the stand-in does not run).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from dalgo_ops.naming import API_COMMAND
from tests.deploy.live_changes import Platform, first_hour_of_an_organization
from tests.support.kubernetes_standin import Kubelet, KubernetesStandin

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
NS = "dalgo"
PASSWORD = "Kube-test-pass-2024"
ROOT = "root@example.org"


def _deployment(name: str, args: list[str], env: dict[str, str], port: int | None, **pod: Any) -> dict[str, Any]:
    """A Deployment of one container; with ``port``, ready once it listens there."""
    labels = {"app.kubernetes.io/name": name}
    container = {
        "name": name,
        "image": "dalgo:test",
        "args": args,
        "env": [{"name": key, "value": value} for key, value in env.items()],
        "volumeMounts": pod.pop("mounts", []),
    }
    if port is not None:
        container["readinessProbe"] = {"tcpSocket": {"port": port}, "periodSeconds": 1, "failureThreshold": 300}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container], **pod}},
        },
    }


def _service(name: str, port: int) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name}
    return {"metadata": {"name": name, "labels": labels}, "spec": {"selector": labels, "ports": [{"port": port}]}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Platform, KubernetesStandin, Kubelet]]:
    from kubernetes import client

    root = tmp_path_factory.mktemp("kubernetes")
    data, dagster_home = root / "data", root / "dagster"
    for folder in (data / "orgs", data / "home", data / "dbt_projects", dagster_home):
        folder.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text((REPO / "deploy" / "dagster" / "dagster.yaml").read_text())
    workspace = data / "home" / "platform" / "run" / "workspace.yaml"
    dalgo = {  # what every Dalgo pod sees: the shared volume's folders (objects.dalgo_env)
        "DALGO_HOME": str(data / "home"),
        "DALGO_ORGS_DIR": str(data / "orgs"),
        "DALGO_DBT_PROJECTS_DIR": str(data / "dbt_projects"),
        "DALGO_WORKSPACE_FILE": str(workspace),
        "DAGSTER_HOME": str(dagster_home),
    }
    api_env = {
        **dalgo,
        "DALGO_API_SECRET_KEY": "test-" + "k" * 60,
        "DALGO_API_ALLOWED_HOSTS": "*",
        "DALGO_DAGSTER_URL": "http://dagster-webserver:3000",  # through the pod's cluster names
    }
    # the API's init container: its database migrated and a Super Admin
    setup = f'from dalgo_api.accounts.models import User; User.objects.create_superuser("{ROOT}", "{PASSWORD}")'
    for argv in (["migrate", "--noinput"], ["shell", "-c", setup]):
        done = subprocess.run(
            [str(BIN / "python"), "manage.py", *argv], cwd=REPO, env={**_host_env(), **api_env}, capture_output=True
        )
        assert done.returncode == 0, done.stderr.decode()[-3000:]

    kube = KubernetesStandin(cluster_ip_range="127.0.3.0/24", pod_ip_range="127.0.4.0/24").start()
    kubelet = Kubelet(
        kube,
        pvc_dirs={"dalgo-data": data, "dagster-home": dagster_home},
        namespace=NS,
        workdir=root / "kubelet",
        working_dir=REPO,
        extra_env={
            **_machine_network_env(),
            "DAGSTER_DISABLE_TELEMETRY": "1",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DALGO_GIT_SCHEMES": "https,ssh,file",  # the test's git repositories are local
            "DALGO_AUTOMATION_INTERVAL_SECONDS": "5",
            # connectors installed once per test session (and worker), as in tests/ingestion
            "DALGO_CONNECTORS_DIR": str(root.parent / "airbyte-connectors"),
        },
    ).start()
    api_client = client.ApiClient(kube.client_configuration())
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    volumes = [
        {"name": "dalgo-data", "persistentVolumeClaim": {"claimName": "dalgo-data"}},
        {"name": "dagster-home", "persistentVolumeClaim": {"claimName": "dagster-home"}},
        {"name": "workspace", "configMap": {"name": "dalgo-workspace"}},
    ]
    mounts = [
        {"name": "dalgo-data", "mountPath": str(data)},
        {"name": "dagster-home", "mountPath": str(dagster_home)},
    ]
    workspace_mount = {"name": "workspace", "mountPath": "/dagster-workspace/"}
    try:
        core.create_namespaced_secret(
            NS, {"metadata": {"name": "dagster-postgresql-secret"}, "stringData": {"postgresql-password": "unused"}}
        )
        # the controller first: it writes the workspace ConfigMap the webserver and the daemon mount
        controller_env = {
            **dalgo,
            "DALGO_KUBERNETES_API": kube.url,
            "DALGO_K8S_NAMESPACE": NS,
            "DALGO_K8S_IMAGE": "dalgo:test",
            "DALGO_K8S_DATA_DIR": str(data),
        }
        apps.create_namespaced_deployment(
            NS,
            _deployment(
                "dalgo-controller",
                ["python", "-m", "dalgo_ops.k8s.controller"],
                controller_env,
                None,
                volumes=volumes[:1],
                mounts=mounts[:1],
            ),
        )
        webserver_args = ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "/dagster-workspace/workspace.yaml"]
        apps.create_namespaced_deployment(
            NS,
            _deployment(
                "dagster-webserver",
                webserver_args,
                {"DAGSTER_HOME": str(dagster_home)},
                3000,
                volumes=volumes,
                mounts=[*mounts, workspace_mount],
            ),
        )
        core.create_namespaced_service(NS, _service("dagster-webserver", 3000))
        kubelet.wait_ready("dagster-webserver", timeout=180)  # creates the SQLite storage before the others
        daemon_args = ["dagster-daemon", "run", "-w", "/dagster-workspace/workspace.yaml"]
        daemon = _deployment(
            "dagster-daemon",
            daemon_args,
            {"DAGSTER_HOME": str(dagster_home)},
            None,
            volumes=volumes,
            mounts=[*mounts, workspace_mount],
        )
        apps.create_namespaced_deployment(NS, daemon)
        gunicorn = shlex.split(API_COMMAND)  # the chart's command (dalgo_ops.helm), with two workers
        apps.create_namespaced_deployment(
            NS,
            _deployment(
                "dalgo-api", gunicorn, {**api_env, "DALGO_API_WORKERS": "2"}, 8000, volumes=volumes[:2], mounts=mounts
            ),
        )
        core.create_namespaced_service(NS, _service("dalgo-api", 8000))
        kubelet.wait_ready("dalgo-api", timeout=180)
        api = f"http://{core.read_namespaced_service('dalgo-api', NS).spec.cluster_ip}:8000"
        webserver = f"http://{core.read_namespaced_service('dagster-webserver', NS).spec.cluster_ip}:3000"
        login = requests.post(f"{api}/api/login/", json={"email": ROOT, "password": PASSWORD}, timeout=30)
        assert login.status_code == 200, login.text
        yield Platform(api, webserver, login.json()["token"], data / "dbt_projects"), kube, kubelet
    finally:
        kubelet.stop()
        kube.stop()


def _host_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("DALGO_", "DAGSTER_"))}


def _machine_network_env() -> dict[str, str]:
    """How this machine reaches the package index (proxies, CA bundles, pip's and uv's settings): a
    cluster's nodes have their own; the stand-in's pods inherit this machine's (connectors install from PyPI)."""
    marks = ("PROXY", "CERT", "CA_BUNDLE", "CAINFO", "SSL")
    return {k: v for k, v in os.environ.items() if any(m in k.upper() for m in marks) or k.startswith(("PIP_", "UV_"))}


def test_an_organizations_first_hour_is_live_on_kubernetes(
    cluster: tuple[Platform, KubernetesStandin, Kubelet],
) -> None:
    platform, kube, kubelet = cluster
    slug = first_hour_of_an_organization(platform)
    # its code server was a Deployment and Service of its own, gone with it (and its process)
    names = {d["metadata"]["name"] for d in kube.list_objects("deployments", NS)}
    assert names == {"dalgo-controller", "dagster-webserver", "dagster-daemon", "dalgo-api"}, names
    assert not [s for s in kube.list_objects("services", NS) if slug.replace("_", "-") in s["metadata"]["name"]]
    deadline = time.time() + 30
    while kubelet.pod(f"org-{slug.replace('_', '-')}") is not None:
        assert time.time() < deadline, "the deleted organization's pod still runs"
        time.sleep(0.5)
    created = [r for r in kube.requests if r.method == "POST" and r.path.endswith("/deployments") and r.status == 201]
    assert len(created) == 5, created  # four of the test's, one of the controller's
