"""The Kubernetes stand-in (tests/support/kubernetes_standin.py), driven only through the official client.

The API tests hold the stand-in to a real kube-apiserver's answers (URLs, shapes, codes, Status bodies); the
kubelet tests run real processes under bubblewrap and reach them as a cluster would, through a Service's IP.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.support.kubernetes_standin import CLUSTER_IP_RANGE, Kubelet, KubernetesStandin, Request

NS = "dalgo"


@pytest.fixture
def kube() -> Iterator[KubernetesStandin]:
    with KubernetesStandin() as standin:
        yield standin


@pytest.fixture
def api(kube: KubernetesStandin) -> Iterator[client.ApiClient]:
    configuration = client.Configuration(host=kube.url)  # as the controller configures it
    configuration.proxy = None
    with client.ApiClient(configuration) as api_client:
        yield api_client


def status_of(error: ApiException) -> dict[str, Any]:
    return json.loads(error.body)


def raises(call: Callable[[], Any], code: int) -> dict[str, Any]:
    with pytest.raises(ApiException) as caught:
        call()
    assert caught.value.status == code, caught.value.body
    body = status_of(caught.value)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == code
    return body


def deployment(
    name: str, *, labels: dict[str, str] | None = None, container: dict[str, Any] | None = None, **spec: Any
):
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [container or {"name": "main", "image": "dalgo:1", "command": ["sleep", "60"]}]},
            },
            **spec,
        },
    }


def eventually(check: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except (AssertionError, OSError) as e:
            result, last = None, e
        else:
            last = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not so after {timeout}s: {what} {last or ''}")
        time.sleep(0.05)


def http_get(ip: str, port: int, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection(ip, port, timeout=2)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


# ------------------------------------------------------------------------------------------ the API


def test_deployment_lifecycle(kube: KubernetesStandin, api: client.ApiClient):
    apps = client.AppsV1Api(api)
    created = apps.create_namespaced_deployment(
        NS, deployment("org-acme", labels={"app": "code-server", "org": "acme"})
    )
    apps.create_namespaced_deployment(NS, deployment("org-beta", labels={"app": "code-server", "org": "beta"}))
    apps.create_namespaced_deployment("elsewhere", deployment("org-acme", labels={"app": "code-server", "org": "acme"}))
    assert kube.requests[0] == Request("POST", f"/apis/apps/v1/namespaces/{NS}/deployments", 201)

    # what a real server adds: system metadata, defaults, an empty status
    assert created.metadata.namespace == NS and created.metadata.uid and created.metadata.generation == 1
    assert created.metadata.creation_timestamp is not None
    assert created.spec.replicas == 1 and created.spec.strategy.type == "RollingUpdate"
    assert created.spec.template.spec.restart_policy == "Always"
    assert created.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"

    got = apps.read_namespaced_deployment("org-acme", NS)
    assert (
        got.metadata.uid == created.metadata.uid and got.metadata.resource_version == created.metadata.resource_version
    )
    assert kube.requests[-1] == Request("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/org-acme", 200)

    by_label = apps.list_namespaced_deployment(NS, label_selector="app=code-server,org in (acme,gamma)")
    assert [d.metadata.name for d in by_label.items] == ["org-acme"]
    assert by_label.kind == "DeploymentList" and by_label.api_version == "apps/v1"
    assert int(by_label.metadata.resource_version) >= int(created.metadata.resource_version)
    assert [d.metadata.name for d in apps.list_namespaced_deployment(NS, label_selector="org!=acme").items] == [
        "org-beta"
    ]
    assert len(apps.list_namespaced_deployment(NS, label_selector="org").items) == 2
    assert apps.list_namespaced_deployment(NS, label_selector="!org").items == []
    assert len(apps.list_deployment_for_all_namespaces(label_selector="org=acme").items) == 2
    page = apps.list_namespaced_deployment(NS, limit=1)
    assert len(page.items) == 1 and page.metadata._continue
    rest = apps.list_namespaced_deployment(NS, limit=1, _continue=page.metadata._continue)
    assert [d.metadata.name for d in page.items + rest.items] == ["org-acme", "org-beta"]

    # replace: a new image is a new generation; a stale resourceVersion is refused
    got.spec.template.spec.containers[0].image = "dalgo:2"
    replaced = apps.replace_namespaced_deployment("org-acme", NS, got)
    assert replaced.metadata.generation == 2
    assert int(replaced.metadata.resource_version) > int(got.metadata.resource_version)
    body = raises(lambda: apps.replace_namespaced_deployment("org-acme", NS, got), 409)
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on deployments.apps "org-acme": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    # a replace that changes nothing writes nothing, as etcd does
    same = apps.replace_namespaced_deployment("org-acme", NS, replaced)
    assert same.metadata.resource_version == replaced.metadata.resource_version

    # the client's default patch is a strategic merge: containers merge by name, the command stays
    patched = apps.patch_namespaced_deployment(
        "org-acme", NS, {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "dalgo:3"}]}}}}
    )
    assert patched.spec.template.spec.containers[0].image == "dalgo:3"
    assert patched.spec.template.spec.containers[0].command == ["sleep", "60"]
    assert patched.metadata.generation == 3
    scaled = apps.patch_namespaced_deployment("org-acme", NS, [{"op": "replace", "path": "/spec/replicas", "value": 0}])
    assert scaled.spec.replicas == 0 and scaled.metadata.generation == 4
    merged = apps.patch_namespaced_deployment(
        "org-acme",
        NS,
        {"metadata": {"labels": {"org": None, "tier": "x"}}},
        _content_type="application/merge-patch+json",
    )
    assert merged.metadata.labels == {"app": "code-server", "tier": "x"}
    assert merged.metadata.generation == 4  # metadata is not spec
    assert int(merged.metadata.resource_version) > int(scaled.metadata.resource_version)

    # errors, as Status bodies
    body = raises(lambda: apps.create_namespaced_deployment(NS, deployment("org-beta")), 409)
    assert body["reason"] == "AlreadyExists" and body["message"] == 'deployments.apps "org-beta" already exists'
    assert body["details"] == {"name": "org-beta", "group": "apps", "kind": "deployments"}
    body = raises(lambda: apps.create_namespaced_deployment(NS, deployment("Org_Acme")), 422)
    assert body["reason"] == "Invalid" and body["message"].startswith(
        'Deployment.apps "Org_Acme" is invalid: metadata.name'
    )
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    mismatched = deployment("org-gamma")
    mismatched["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    body = raises(lambda: apps.create_namespaced_deployment(NS, mismatched), 422)
    assert (
        "spec.template.metadata.labels" in body["message"]
        and "`selector` does not match template `labels`" in body["message"]
    )
    wrong_kind = deployment("org-gamma") | {"kind": "StatefulSet"}
    assert raises(lambda: apps.create_namespaced_deployment(NS, wrong_kind), 400)["reason"] == "BadRequest"
    body = raises(lambda: apps.patch_namespaced_deployment("nope", NS, {"spec": {}}), 404)
    assert body["message"] == 'deployments.apps "nope" not found'

    deleted = apps.delete_namespaced_deployment("org-acme", NS)
    assert deleted["status"] == "Success" and deleted["details"]["name"] == "org-acme"
    assert deleted["details"]["uid"] == created.metadata.uid
    body = raises(lambda: apps.read_namespaced_deployment("org-acme", NS), 404)
    assert body["reason"] == "NotFound"
    assert body["details"] == {"name": "org-acme", "group": "apps", "kind": "deployments"}
    assert raises(lambda: apps.delete_namespaced_deployment("org-acme", NS), 404)["reason"] == "NotFound"
    assert kube.requests[-1] == Request("DELETE", f"/apis/apps/v1/namespaces/{NS}/deployments/org-acme", 404)
    assert apps.read_namespaced_deployment("org-acme", "elsewhere").metadata.name == "org-acme"


def test_service_and_configmap(kube: KubernetesStandin, api: client.ApiClient):
    core = client.CoreV1Api(api)
    service = {
        "metadata": {"name": "org-acme", "labels": {"org": "acme"}},
        "spec": {"selector": {"org": "acme"}, "ports": [{"port": 3030}]},
    }
    first = core.create_namespaced_service(NS, service)
    second = core.create_namespaced_service(NS, {**service, "metadata": {"name": "org-beta"}})
    assert first.spec.cluster_ip == "127.0.1.1" and second.spec.cluster_ip == "127.0.1.2"
    assert first.spec.cluster_ips == ["127.0.1.1"] and first.spec.type == "ClusterIP"
    assert first.spec.ports[0].protocol == "TCP" and first.spec.ports[0].target_port == 3030
    assert CLUSTER_IP_RANGE == "127.0.1.0/24"

    body = raises(lambda: core.create_namespaced_service(NS, {**service, "metadata": {"name": "org_acme"}}), 422)
    assert body["reason"] == "Invalid" and body["details"]["kind"] == "Service"
    assert body["message"].startswith(
        'Service "org_acme" is invalid: metadata.name: Invalid value: "org_acme": a DNS-1035 label'
    )
    assert (
        raises(lambda: core.create_namespaced_service(NS, service), 409)["message"]
        == 'services "org-acme" already exists'
    )
    # a ConfigMap's name is a DNS-1123 subdomain: dots are fine there, not in a service's name
    assert (
        core.create_namespaced_config_map(NS, {"metadata": {"name": "org.acme"}, "data": {}}).metadata.name
        == "org.acme"
    )
    raises(lambda: core.create_namespaced_service(NS, {**service, "metadata": {"name": "org.acme"}}), 422)

    # the cluster IP is kept by a replace that leaves it out, and cannot be changed
    current = core.read_namespaced_service("org-acme", NS)
    body = client.ApiClient().sanitize_for_serialization(current)
    body["spec"].pop("clusterIP")
    body["spec"].pop("clusterIPs")
    body["spec"]["ports"][0]["port"] = 4040
    kept = core.replace_namespaced_service("org-acme", NS, body)
    assert kept.spec.cluster_ip == "127.0.1.1" and kept.spec.ports[0].port == 4040
    kept.spec.cluster_ip, kept.spec.cluster_ips = "127.0.1.9", ["127.0.1.9"]
    body = raises(lambda: core.replace_namespaced_service("org-acme", NS, kept), 422)
    assert "spec.clusterIPs[0]" in body["message"] and "may not change once set" in body["message"]
    removed = core.delete_namespaced_service("org-beta", NS)  # services answer the deleted object
    assert removed.metadata.name == "org-beta"
    assert (
        core.create_namespaced_service(NS, {**service, "metadata": {"name": "org-gamma"}}).spec.cluster_ip
        == "127.0.1.3"
    )

    # ConfigMaps: create, replace, patch, delete
    cm = core.create_namespaced_config_map(
        NS, {"metadata": {"name": "org-acme-config", "labels": {"org": "acme"}}, "data": {"a": "1"}}
    )
    v1 = int(cm.metadata.resource_version)
    cm.data = {"a": "2"}
    replaced = core.replace_namespaced_config_map("org-acme-config", NS, cm)
    assert replaced.data == {"a": "2"} and int(replaced.metadata.resource_version) > v1
    raises(lambda: core.replace_namespaced_config_map("org-acme-config", NS, cm), 409)  # cm still has v1
    patched = core.patch_namespaced_config_map("org-acme-config", NS, {"data": {"b": "3"}})
    assert patched.data == {"a": "2", "b": "3"}
    assert [c.metadata.name for c in core.list_namespaced_config_map(NS, label_selector="org=acme").items] == [
        "org-acme-config"
    ]
    assert (
        core.list_namespaced_config_map(NS, field_selector="metadata.name=org.acme").items[0].metadata.name
        == "org.acme"
    )
    body = raises(
        lambda: core.create_namespaced_config_map(NS, {"metadata": {"name": "bad"}, "data": {"a b": "x"}}), 422
    )
    assert body["details"]["causes"][0]["field"] == "data[a b]"
    missing = {"metadata": {"name": "nope", "resourceVersion": "1"}, "data": {}}
    assert (
        raises(lambda: core.replace_namespaced_config_map("nope", NS, missing), 404)["message"]
        == 'configmaps "nope" not found'
    )
    assert core.delete_namespaced_config_map("org-acme-config", NS)["status"] == "Success"
    raises(lambda: core.read_namespaced_config_map("org-acme-config", NS), 404)

    # Secrets: stringData becomes base64 data, as the apiserver converts it
    secret = core.create_namespaced_secret(NS, {"metadata": {"name": "creds"}, "stringData": {"token": "s3cret"}})
    assert (
        secret.type == "Opaque" and base64.b64decode(secret.data["token"]) == b"s3cret" and secret.string_data is None
    )
    assert kube.get_object("secrets", NS, "creds")["data"] == {"token": base64.b64encode(b"s3cret").decode()}


# -------------------------------------------------------------------------------------------- kubelet


@pytest.fixture
def cluster(kube: KubernetesStandin, api: client.ApiClient, tmp_path: Path) -> Iterator[dict[str, Any]]:
    pvc = tmp_path / "pvc"
    (pvc / "site").mkdir(parents=True)
    (pvc / "site" / "hello.txt").write_text("hello from the volume")
    (pvc / "secret.txt").write_text("outside the subPath")
    bin_dir = str(Path(sys.executable).parent)  # the test's venv: `python` there, as in the image
    kubelet = Kubelet(
        kube,
        pvc_dirs={"dalgo-data": pvc},
        namespace=NS,
        workdir=tmp_path / "kubelet",
        configmap_sync_seconds=0.5,
        extra_env={"PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"},
    )
    with kubelet:
        yield {"kubelet": kubelet, "pvc": pvc, "apps": client.AppsV1Api(api), "core": client.CoreV1Api(api)}
    assert kubelet.errors == []


def test_kubelet_runs_a_deployment_behind_its_service(cluster: dict[str, Any]):
    kubelet, apps, core = cluster["kubelet"], cluster["apps"], cluster["core"]
    core.create_namespaced_config_map(NS, {"metadata": {"name": "web-config"}, "data": {"greeting": "hello"}})
    service = core.create_namespaced_service(
        NS,
        {
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 8080}, {"name": "alt", "port": 80, "targetPort": "http"}],
            },
        },
    )
    ip = service.spec.cluster_ip
    container = {
        "name": "web",
        "image": "python:3.11",
        "command": ["python", "-m", "http.server", "-b", "0.0.0.0", "8080", "--directory", "/srv/dalgo/www"],
        "volumeMounts": [
            {"name": "data", "mountPath": "/srv/dalgo/www/data", "subPath": "site"},
            {"name": "config", "mountPath": "/srv/dalgo/www/config"},
        ],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"tcpSocket": {"port": 8080}},
    }
    spec = deployment("web", container=container)
    spec["spec"]["template"]["spec"]["volumes"] = [
        {"name": "data", "persistentVolumeClaim": {"claimName": "dalgo-data"}},
        {"name": "config", "configMap": {"name": "web-config"}},
    ]
    created = apps.create_namespaced_deployment(NS, spec)

    status = eventually(
        lambda: (s := apps.read_namespaced_deployment_status("web", NS).status).ready_replicas == 1 and s,
        what="readyReplicas 1",
    )
    assert status.available_replicas == 1 and status.observed_generation == created.metadata.generation
    pods = core.list_namespaced_pod(NS, label_selector="app=web").items
    assert len(pods) == 1 and pods[0].status.pod_ip == ip and pods[0].status.phase == "Running"
    assert pods[0].metadata.name.startswith("web-")
    assert {c.type: c.status for c in pods[0].status.conditions}["Ready"] == "True"

    # a cluster's path to the pod: the Service's IP and port; bound to the pod's IP, not all addresses
    assert http_get(ip, 8080, "/data/hello.txt") == (200, "hello from the volume")
    code, listing = http_get(ip, 8080, "/data/")
    assert code == 200 and "hello.txt" in listing and "secret.txt" not in listing  # only the subPath is mounted
    assert http_get(ip, 8080, "/config/greeting") == (200, "hello")
    assert http_get(ip, 80, "/data/hello.txt") == (200, "hello from the volume")  # port 80 -> targetPort http
    with pytest.raises(OSError):
        http_get("127.0.0.1", 8080, "/")
    assert not Path("/srv/dalgo").exists()  # the mount points live in the pod's tmpfs, not on this machine

    # a ConfigMap's new data reaches a mounted (non-subPath) volume within the sync period
    config = core.read_namespaced_config_map("web-config", NS)
    config.data = {"greeting": "bonjour"}
    core.replace_namespaced_config_map("web-config", NS, config)
    eventually(lambda: http_get(ip, 8080, "/config/greeting") == (200, "bonjour"), timeout=5, what="new config")

    pod = kubelet.pod("web")
    assert pod is not None and pod.pid is not None and process_group_alive(pod.pid)
    assert "GET /data/hello.txt" in kubelet.logs("web")
    assert "GET /data/hello.txt" in core.read_namespaced_pod_log(pod.name, NS)
    apps.delete_namespaced_deployment("web", NS)
    eventually(lambda: not process_group_alive(pod.pid), what="the pod's processes gone")
    eventually(lambda: core.list_namespaced_pod(NS).items == [], what="the Pod object gone")


def test_kubelet_environment_secrets_and_readiness(cluster: dict[str, Any]):
    kubelet, apps, core, pvc = cluster["kubelet"], cluster["apps"], cluster["core"], cluster["pvc"]
    script = (
        "import json, os, socket, time\n"
        "keys = ('TOKEN', 'MODE', 'HOSTNAME', 'GREETING', 'ADDRESS')\n"
        "out = {k: os.environ.get(k) for k in keys} | {'hostname': socket.gethostname()}\n"
        "out['db'] = socket.gethostbyname('db.dalgo.svc.cluster.local')\n"
        "json.dump(out, open('/srv/dalgo/out/env.json', 'w'))\n"
        "time.sleep(60)\n"
    )
    container = {
        "name": "worker",
        "image": "python:3.11",
        "args": ["python", "-c", script],  # no command: args are the whole argv
        "env": [
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
            {"name": "MODE", "value": "$(GREETING)-mode"},
            {"name": "ADDRESS", "value": "0.0.0.0:9000"},
        ],
        "envFrom": [{"configMapRef": {"name": "settings"}}, {"secretRef": {"name": "absent", "optional": True}}],
        "volumeMounts": [{"name": "data", "mountPath": "/srv/dalgo/out"}],
        "readinessProbe": {"tcpSocket": {"port": 9}},  # nothing listens: never ready
    }
    spec = deployment("worker", container=container)
    spec["spec"]["template"]["spec"]["volumes"] = [
        {"name": "data", "persistentVolumeClaim": {"claimName": "dalgo-data"}}
    ]
    core.create_namespaced_config_map(
        NS, {"metadata": {"name": "settings"}, "data": {"GREETING": "hi", "MODE": "envFrom"}}
    )
    db = core.create_namespaced_service(NS, {"metadata": {"name": "db"}, "spec": {"ports": [{"port": 5432}]}})
    apps.create_namespaced_deployment(NS, spec)

    # the Secret is missing: the pod waits, Pending, as a kubelet keeps it
    pod = eventually(lambda: (p := kubelet.pod("worker")) and p.waiting_reason and p, what="pod waiting")
    assert pod.waiting_reason == "CreateContainerConfigError" and pod.waiting_message == 'secret "creds" not found'
    listed = eventually(lambda: core.list_namespaced_pod(NS).items, what="Pod object")
    assert listed[0].status.phase == "Pending"
    assert listed[0].status.container_statuses[0].state.waiting.reason == "CreateContainerConfigError"
    assert ipaddress.ip_address(listed[0].status.pod_ip) in ipaddress.ip_network(
        "127.0.2.0/24"
    )  # no Service selects it

    core.create_namespaced_secret(
        NS, {"metadata": {"name": "creds"}, "data": {"token": base64.b64encode(b"t0k3n").decode()}}
    )
    out = pvc / "env.json"
    eventually(lambda: out.exists() and out.read_text(), what="the pod wrote its environment")
    env = json.loads(out.read_text())
    pod = kubelet.pod("worker")
    assert env["TOKEN"] == "t0k3n"
    assert env["MODE"] == "hi-mode"  # env wins over envFrom, and expands $(VAR)
    assert env["GREETING"] == "hi"
    assert env["HOSTNAME"] == env["hostname"] == pod.name
    assert env["ADDRESS"] == f"{pod.ip}:9000"
    assert env["db"] == db.spec.cluster_ip  # the pod's /etc/hosts names the services

    # running but never ready: the Deployment says so
    time.sleep(1.5)
    status = apps.read_namespaced_deployment_status("worker", NS).status
    assert status.ready_replicas is None and status.unavailable_replicas == 1 and status.replicas == 1
    assert {c.type: c.status for c in status.conditions}["Available"] == "False"
    pod_object = core.read_namespaced_pod(pod.name, NS)
    assert pod_object.status.phase == "Running"
    assert {c.type: c.status for c in pod_object.status.conditions}["Ready"] == "False"


def test_kubelet_restarts_a_crashing_pod_and_follows_template_changes(cluster: dict[str, Any]):
    kubelet, apps, core, pvc = cluster["kubelet"], cluster["apps"], cluster["core"], cluster["pvc"]
    script = "import sys; open('/srv/dalgo/out/starts', 'a').write('x'); sys.exit(3)"
    container = {
        "name": "crasher",
        "image": "python:3.11",
        "command": ["python", "-c", script],
        "volumeMounts": [{"name": "data", "mountPath": "/srv/dalgo/out"}],
    }
    spec = deployment("crasher", container=container)
    spec["spec"]["template"]["spec"]["volumes"] = [
        {"name": "data", "persistentVolumeClaim": {"claimName": "dalgo-data"}}
    ]
    apps.create_namespaced_deployment(NS, spec)

    starts = pvc / "starts"
    eventually(lambda: starts.exists() and len(starts.read_text()) >= 2, what="restarted after its back-off")
    pod = eventually(
        lambda: (
            (p := core.list_namespaced_pod(NS).items) and p[0].status.container_statuses[0].restart_count >= 1 and p[0]
        ),
        what="restartCount",
    )
    container_status = pod.status.container_statuses[0]
    assert container_status.last_state.terminated.exit_code == 3
    assert pod.status.phase == "Running"  # restartPolicy Always: a crash loop, not a failed pod

    # a new template replaces the pod (a new name); scaling to 0 removes it
    first = kubelet.pod("crasher").name
    apps.patch_namespaced_deployment(
        "crasher",
        NS,
        {"spec": {"template": {"spec": {"containers": [{"name": "crasher", "command": ["sleep", "30"]}]}}}},
    )
    pod = eventually(lambda: (p := kubelet.pod("crasher")) and p.name != first and p.pid and p, what="a new pod")
    assert kubelet.wait_ready("crasher", timeout=5).name == pod.name
    eventually(lambda: [p.metadata.name for p in core.list_namespaced_pod(NS).items] == [pod.name], what="one Pod")
    apps.patch_namespaced_deployment("crasher", NS, {"spec": {"replicas": 0}})
    eventually(lambda: not process_group_alive(pod.pid), what="scaled to 0")
    status = eventually(lambda: (s := apps.read_namespaced_deployment("crasher", NS).status).replicas is None and s)
    assert status.observed_generation == 3
