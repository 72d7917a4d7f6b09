"""The Kubernetes objects of one organization's code server, and the workspace that lists them.

What Dagster's ``dagster-user-deployments`` subchart renders for a user deployment (its Deployment and
Service, ``dagster code-server start`` on port 3030, the container context its runs inherit), written by
Dalgo's controller instead of by Helm, so that an organization created through the API gets its code
server while the platform runs. The chart's webserver and daemon read the workspace from the ConfigMap
``dalgo-workspace`` (``dagsterWebserver.workspace.externalConfigmap``), which the controller writes too.

Every Dalgo pod mounts one ReadWriteMany volume (``dalgo-data``) at ``/srv/dalgo/data``: the organizations
folder the API writes, Dalgo's home (manifests, warehouses, encrypted secrets) and the tenants' dbt projects.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from dalgo_core.code_locations import code_server_args, code_server_entry
from dalgo_ops.naming import APP_DIR, DAGSTER_HOME, org_secret_name, user_deployment_name

GRPC_PORT = 3030
WORKSPACE_CONFIGMAP = "dalgo-workspace"
DATA_CLAIM = "dalgo-data"
DATA_DIR = f"{APP_DIR}/data"
MANAGED = {"app.kubernetes.io/managed-by": "dalgo", "app.kubernetes.io/component": "code-server"}
ORG_LABEL = "dalgo.org"
TEMPLATE_HASH = "dalgo.org/template-hash"

# Tenant code runs under bubblewrap, which needs unprivileged user namespaces: the runtime's default
# seccomp profile refuses them. Nothing else is granted: no capabilities, no privilege escalation.
SANDBOX_SECURITY_CONTEXT: dict[str, Any] = {
    "seccompProfile": {"type": "Unconfined"},
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "runAsUser": 10001,
}
CODE_SERVER_RESOURCES = {"requests": {"cpu": "100m", "memory": "320Mi"}, "limits": {"memory": "1Gi"}}


def dalgo_env(data_dir: str = DATA_DIR) -> list[dict[str, str]]:
    """Where every Dalgo container finds the platform's state: on the shared volume."""
    return [
        {"name": "DALGO_HOME", "value": f"{data_dir}/home"},
        {"name": "DALGO_ORGS_DIR", "value": f"{data_dir}/orgs"},
        {"name": "DALGO_DBT_PROJECTS_DIR", "value": f"{data_dir}/dbt_projects"},
        {"name": "DAGSTER_DISABLE_TELEMETRY", "value": "1"},
    ]


def data_volume() -> dict[str, Any]:
    return {"name": DATA_CLAIM, "persistentVolumeClaim": {"claimName": DATA_CLAIM}}


def data_mount(data_dir: str = DATA_DIR) -> dict[str, Any]:
    return {"name": DATA_CLAIM, "mountPath": data_dir}


@dataclass(frozen=True)
class Cluster:
    """Where the organizations' code servers run: the namespace, the image, the Helm release whose
    instance they use (``<release>-pipeline-env``, the PostgreSQL password Secret)."""

    namespace: str = "default"
    image: str = "dalgo:latest"
    pull_policy: str = "IfNotPresent"
    release: str = "dagster"
    postgres_secret: str = "dagster-postgresql-secret"
    data_dir: str = DATA_DIR  # where the shared volume is mounted, in every Dalgo pod alike


def org_labels(slug: str) -> dict[str, str]:
    return {**MANAGED, ORG_LABEL: slug}


def _container_context(slug: str, cluster: Cluster) -> dict[str, Any]:
    """What the K8s run launcher gives this organization's run pods (the chart's
    ``includeConfigInLaunchedRuns``): its environment, its Secret, the shared volume, the sandbox's
    security context."""
    return {
        "k8s": {
            "image_pull_policy": cluster.pull_policy,
            "env_config_maps": [f"{cluster.release}-pipeline-env"],
            "env_secrets": [org_secret_name(slug)],
            "env_vars": [f"{e['name']}={e['value']}" for e in dalgo_env(cluster.data_dir)],
            "volumes": [data_volume()],
            "volume_mounts": [data_mount(cluster.data_dir)],
            "labels": {ORG_LABEL: slug},
            "namespace": cluster.namespace,
            "run_k8s_config": {"container_config": {"security_context": SANDBOX_SECURITY_CONTEXT}},
        }
    }


def code_server_deployment(slug: str, cluster: Cluster) -> dict[str, Any]:
    """The organization's code server: ``dagster code-server start`` (reloadable in place) on port 3030,
    with its own Secret and no Kubernetes API token."""
    name = user_deployment_name(slug)
    labels = org_labels(slug)
    container = {
        "name": "dagster",
        "image": cluster.image,
        "imagePullPolicy": cluster.pull_policy,
        "args": ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", str(GRPC_PORT), *code_server_args(slug)],
        "env": [
            {"name": "DAGSTER_CURRENT_IMAGE", "value": cluster.image},
            {"name": "DAGSTER_HOME", "value": DAGSTER_HOME},
            {"name": "DAGSTER_K8S_PIPELINE_RUN_NAMESPACE", "value": cluster.namespace},
            {"name": "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP", "value": f"{cluster.release}-pipeline-env"},
            {
                "name": "DAGSTER_PG_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": cluster.postgres_secret, "key": "postgresql-password"}},
            },
            {"name": "DAGSTER_CONTAINER_CONTEXT", "value": json.dumps(_container_context(slug, cluster))},
            *dalgo_env(cluster.data_dir),
        ],
        "envFrom": [{"secretRef": {"name": org_secret_name(slug), "optional": True}}],
        "ports": [{"name": "grpc", "containerPort": GRPC_PORT}],
        "readinessProbe": {
            "exec": {"command": ["dagster", "api", "grpc-health-check", "-p", str(GRPC_PORT)]},
            "periodSeconds": 5,
            "timeoutSeconds": 10,
            "failureThreshold": 60,
        },
        "securityContext": SANDBOX_SECURITY_CONTEXT,
        "resources": CODE_SERVER_RESOURCES,
        "volumeMounts": [data_mount(cluster.data_dir)],
    }
    template = {
        "metadata": {"labels": labels},
        "spec": {
            "automountServiceAccountToken": False,  # the code server never calls the Kubernetes API
            "containers": [container],
            "volumes": [data_volume()],
        },
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": cluster.namespace, "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template},
    }
    # what the controller compares to know an existing Deployment is current (a new image, new settings)
    deployment["metadata"]["annotations"] = {TEMPLATE_HASH: _digest(deployment["spec"])}
    return deployment


def code_server_service(slug: str, cluster: Cluster) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": user_deployment_name(slug), "namespace": cluster.namespace, "labels": org_labels(slug)},
        "spec": {
            "type": "ClusterIP",
            "selector": org_labels(slug),
            "ports": [{"name": "grpc", "port": GRPC_PORT, "targetPort": GRPC_PORT, "protocol": "TCP"}],
        },
    }


def workspace(hosts: dict[str, str]) -> dict[str, Any]:
    """The webserver's and the daemon's workspace: slug -> the host of its code server's Service."""
    return {"load_from": [code_server_entry(slug, host, GRPC_PORT) for slug, host in sorted(hosts.items())]}


def workspace_configmap(text: str, cluster: Cluster) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": WORKSPACE_CONFIGMAP, "namespace": cluster.namespace, "labels": dict(MANAGED)},
        "data": {"workspace.yaml": text},
    }


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]
