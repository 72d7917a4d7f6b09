"""Dalgo's Kubernetes controller against the Kubernetes API stand-in, through the official client.

The controller gives each organization of the workspace file a code server (Deployment and Service)
and writes the workspace ConfigMap the chart's webserver and daemon mount; a deleted organization's
objects go, after its location left the workspace.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dalgo_core.code_locations import write_workspace
from dalgo_ops.k8s.controller import Controller
from dalgo_ops.k8s.objects import WORKSPACE_CONFIGMAP, Cluster
from tests.support.kubernetes_standin import KubernetesStandin
from tests.support.orgs import write_spec

NS = "dalgo"


@pytest.fixture
def kube() -> Iterator[KubernetesStandin]:
    with KubernetesStandin() as standin:
        yield standin


def controller(kube: KubernetesStandin, image: str = "registry.example.org/dalgo:1.0") -> Controller:
    from kubernetes import client

    return Controller(Cluster(namespace=NS, image=image), client.ApiClient(kube.client_configuration()))


def cluster_state(kube: KubernetesStandin) -> tuple[dict, dict, dict]:
    from kubernetes import client

    api_client = client.ApiClient(kube.client_configuration())
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    deployments = {d.metadata.name: d for d in apps.list_namespaced_deployment(NS).items}
    services = {s.metadata.name: s for s in core.list_namespaced_service(NS).items}
    text = core.read_namespaced_config_map(WORKSPACE_CONFIGMAP, NS).data["workspace.yaml"]
    entries = {e["grpc_server"]["location_name"]: e["grpc_server"] for e in yaml.safe_load(text)["load_from"]}
    return deployments, services, entries


def writes(kube: KubernetesStandin) -> list[tuple[str, str]]:
    return [(method, path) for method, path, _status in kube.requests if method not in ("GET",)]


def test_each_organization_gets_a_code_server_and_a_workspace_entry(kube: KubernetesStandin) -> None:
    changes = controller(kube).reconcile(["acme", "blue_sky"])
    assert changes.created == ["acme", "blue_sky"] and changes.workspace_written

    deployments, services, entries = cluster_state(kube)
    assert set(deployments) == set(services) == {"org-acme", "org-blue-sky"}
    assert set(entries) == {"org_acme", "org_blue_sky"}
    for slug, name in (("acme", "org-acme"), ("blue_sky", "org-blue-sky")):
        # the workspace reaches the Service that selects the organization's pod
        service, deployment = services[name], deployments[name]
        assert entries[f"org_{slug}"] == {"host": service.spec.cluster_ip, "port": 3030, "location_name": f"org_{slug}"}
        assert service.spec.selector.items() <= deployment.spec.template.metadata.labels.items()
        container = deployment.spec.template.spec.containers[0]
        assert container.args[:3] == ["dagster", "code-server", "start"]  # reloadable in place
        assert container.args[container.args.index("-a") + 1] == slug
        assert container.image == "registry.example.org/dalgo:1.0"
        # its own Secret, for its pod and for its runs' pods; no Kubernetes API token
        assert [s.secret_ref.name for s in container.env_from] == [f"dalgo-org-{name.removeprefix('org-')}"]
        env = {e.name: e.value for e in container.env}
        context = json.loads(env["DAGSTER_CONTAINER_CONTEXT"])["k8s"]
        assert context["env_secrets"] == [container.env_from[0].secret_ref.name]
        assert context["volumes"] == [{"name": "dalgo-data", "persistentVolumeClaim": {"claimName": "dalgo-data"}}]
        assert deployment.spec.template.spec.automount_service_account_token is False
        assert env["DALGO_ORGS_DIR"] == "/srv/dalgo/data/orgs"


def test_a_second_pass_changes_nothing(kube: KubernetesStandin) -> None:
    ctl = controller(kube)
    ctl.reconcile(["acme", "beta"])
    before = len(writes(kube))
    assert not ctl.reconcile(["acme", "beta"])
    assert len(writes(kube)) == before


def test_a_deleted_organization_leaves_the_workspace_then_loses_its_objects(kube: KubernetesStandin) -> None:
    ctl = controller(kube)
    ctl.reconcile(["acme", "beta"])
    kube.requests.clear()
    changes = ctl.reconcile(["acme"])
    assert changes.deleted == ["beta"] and changes.created == []
    deployments, services, entries = cluster_state(kube)
    assert set(deployments) == set(services) == {"org-acme"} and set(entries) == {"org_acme"}
    order = [(method, path.split("?")[0].rsplit("/", 2)[-2:]) for method, path in writes(kube)]
    assert order[0] == ("PUT", ["configmaps", WORKSPACE_CONFIGMAP])  # the location goes before its server
    assert ("DELETE", ["deployments", "org-beta"]) in order and ("DELETE", ["services", "org-beta"]) in order


def test_objects_changed_by_hand_or_a_new_image_are_put_back(kube: KubernetesStandin) -> None:
    from kubernetes import client

    controller(kube).reconcile(["acme"])
    apps = client.AppsV1Api(client.ApiClient(kube.client_configuration()))
    apps.patch_namespaced_deployment("org-acme", NS, {"metadata": {"annotations": {"dalgo.org/template-hash": "x"}}})
    assert controller(kube).reconcile(["acme"]).updated == ["acme"]
    assert controller(kube, image="registry.example.org/dalgo:1.1").reconcile(["acme"]).updated == ["acme"]
    deployment = apps.read_namespaced_deployment("org-acme", NS)
    assert deployment.spec.template.spec.containers[0].image == "registry.example.org/dalgo:1.1"
    # objects the controller does not own are never touched
    other = {"metadata": {"name": "other", "labels": {"app": "other"}}, "spec": _tiny_spec()}
    apps.create_namespaced_deployment(NS, other)
    controller(kube).reconcile([])
    assert [d.metadata.name for d in apps.list_namespaced_deployment(NS).items] == ["other"]


def test_it_follows_the_workspace_file_the_api_writes(kube: KubernetesStandin, dalgo_env: Path) -> None:
    workspace = dalgo_env / "home" / "platform" / "run" / "workspace.yaml"
    write_spec(dalgo_env / "orgs", "acme", {"slug": "acme", "name": "Acme"})
    write_workspace(workspace)
    stop = threading.Event()
    thread = threading.Thread(target=controller(kube).run, args=(workspace, stop), daemon=True)
    thread.start()
    try:
        _wait(lambda: set(cluster_state(kube)[2]) == {"org_acme"})
        write_spec(dalgo_env / "orgs", "beta", {"slug": "beta", "name": "Beta"})
        write_workspace(workspace)
        _wait(lambda: set(cluster_state(kube)[0]) == {"org-acme", "org-beta"})
    finally:
        stop.set()
        thread.join(5)


def _wait(predicate, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except Exception:  # the ConfigMap not written yet
            pass
        assert time.monotonic() < deadline, "the controller did not apply the change"
        time.sleep(0.1)


def _tiny_spec() -> dict:
    labels = {"app": "other"}
    return {
        "replicas": 0,
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
    }


def test_an_organization_the_cluster_refuses_fails_alone(kube: KubernetesStandin) -> None:
    """A folder named so that its Service name is not a DNS label (``bad_`` -> ``org-bad-``): the API
    server refuses its objects; the others are made, and its location shows the error in Dagster."""
    changes = controller(kube).reconcile(["acme", "bad_"])
    assert changes.created == ["acme"] and changes.failed == ["bad_"]
    deployments, services, entries = cluster_state(kube)
    assert set(deployments) == set(services) == {"org-acme"}
    assert (
        entries["org_bad_"]["host"] == "org-bad-"
        and entries["org_acme"]["host"] == services["org-acme"].spec.cluster_ip
    )
