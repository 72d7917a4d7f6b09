"""Kubernetes' counterpart of ``dalgo serve``'s supervisor: one code server per organization, live.

The API writes the workspace file (on the shared volume) when it creates or deletes an organization. The
controller follows that file: it gives every organization listed a Deployment and a Service
(``objects.code_server_deployment``: what Dagster's user-deployments subchart would render), rewrites the
ConfigMap ``dalgo-workspace`` that the chart's webserver and daemon mount, and deletes what a deleted
organization had, after its location left the workspace. The API waits for the webserver to load the new
location (``dalgo_api.bridge.locations.add_location``), so the organization is live when the API answers.

Every change inside an organization (dbt projects, connections, pipelines) needs no controller: the API
writes the spec on the shared volume and reloads that location through the webserver, whose
``dagster code-server start`` loads it again, as on one host.

Run as one replica (``python -m dalgo_ops.k8s.controller``) with a ServiceAccount allowed to manage
Deployments, Services and ConfigMaps in its namespace (``dalgo deploy helm`` writes it). A full
reconciliation every ``RESYNC_SECONDS`` repairs anything changed by hand.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from dalgo_core.code_locations import HEADER, workspace_slugs, write_workspace
from dalgo_ops.k8s.objects import (
    MANAGED,
    ORG_LABEL,
    TEMPLATE_HASH,
    WORKSPACE_CONFIGMAP,
    Cluster,
    code_server_deployment,
    code_server_service,
    workspace,
    workspace_configmap,
)
from dalgo_ops.naming import user_deployment_name

logger = logging.getLogger("dalgo.k8s")
POLL_SECONDS = 0.5
RESYNC_SECONDS = 30.0
SELECTOR = ",".join(f"{key}={value}" for key, value in MANAGED.items())


@dataclass
class Changes:
    """What one reconciliation did (slugs)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    workspace_written: bool = False

    def __bool__(self) -> bool:
        return bool(self.created or self.updated or self.deleted or self.workspace_written)


class Controller:
    """Makes the cluster match a list of organizations (``reconcile``), and follows the workspace file
    (``run``)."""

    def __init__(self, cluster: Cluster, api_client: Any) -> None:
        self.cluster = cluster
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)

    def reconcile(self, slugs: list[str]) -> Changes:
        changes = Changes()
        ns = self.cluster.namespace
        deployments = _by_org(self.apps.list_namespaced_deployment(ns, label_selector=SELECTOR).items)
        services = _by_org(self.core.list_namespaced_service(ns, label_selector=SELECTOR).items)
        hosts = {}
        for slug in slugs:
            try:
                hosts[slug] = self._code_server(slug, services.get(slug), deployments.get(slug), changes)
            except ApiException as exc:  # this organization's alone: its location shows the error
                logger.error("organization %s: its code server cannot be made: %s", slug, _reason(exc))
                changes.failed.append(slug)
                hosts[slug] = user_deployment_name(slug)
        # the workspace before deleting: a deleted organization's location leaves before its server goes
        changes.workspace_written = self._write_workspace(HEADER + yaml.safe_dump(workspace(hosts), sort_keys=False))
        for slug, deployment in deployments.items():
            if slug not in hosts:
                _absent_ok(self.apps.delete_namespaced_deployment, deployment.metadata.name, ns)
                changes.deleted.append(slug)
        for slug, service in services.items():
            if slug not in hosts:
                _absent_ok(self.core.delete_namespaced_service, service.metadata.name, ns)
        return changes

    def _code_server(self, slug: str, service: Any, current: Any, changes: Changes) -> str:
        """Create or update the organization's Service and Deployment; return the Service's host."""
        if service is None:
            body = code_server_service(slug, self.cluster)
            service = self._create(self.core.create_namespaced_service, self.core.read_namespaced_service, body)
        body = code_server_deployment(slug, self.cluster)
        wanted = body["metadata"]["annotations"][TEMPLATE_HASH]
        if current is None:
            self._create(self.apps.create_namespaced_deployment, self.apps.read_namespaced_deployment, body)
            changes.created.append(slug)
        elif (current.metadata.annotations or {}).get(TEMPLATE_HASH) != wanted:
            body["metadata"]["resourceVersion"] = current.metadata.resource_version
            self.apps.replace_namespaced_deployment(current.metadata.name, self.cluster.namespace, body)
            changes.updated.append(slug)
        return _service_host(service)

    def _create(self, create: Callable[..., Any], read: Callable[..., Any], body: dict[str, Any]) -> Any:
        try:
            return create(self.cluster.namespace, body)
        except ApiException as exc:
            if exc.status != 409:  # made by an earlier pass that stopped half-way: keep it
                raise
            return read(body["metadata"]["name"], self.cluster.namespace)

    def _write_workspace(self, text: str) -> bool:
        ns = self.cluster.namespace
        body = workspace_configmap(text, self.cluster)
        try:
            current = self.core.read_namespaced_config_map(WORKSPACE_CONFIGMAP, ns)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.core.create_namespaced_config_map(ns, body)
            return True
        if (current.data or {}).get("workspace.yaml") == text:
            return False
        body["metadata"]["resourceVersion"] = current.metadata.resource_version
        self.core.replace_namespaced_config_map(WORKSPACE_CONFIGMAP, ns, body)
        return True

    def run(self, workspace_file: Path, stop: threading.Event | None = None) -> None:
        """Reconcile whenever the workspace file changes, and every ``RESYNC_SECONDS``; an error (the
        API server unreachable, a conflict) is logged and retried at the next poll."""
        stop = stop or threading.Event()
        seen: int | None = None
        last = 0.0
        while not stop.is_set():
            try:
                stamp = workspace_file.stat().st_mtime_ns
            except FileNotFoundError:
                stamp = 0
            if stamp != seen or time.monotonic() - last > RESYNC_SECONDS:
                try:
                    changes = self.reconcile(workspace_slugs(workspace_file))
                except Exception:
                    logger.exception("reconciling the organizations' code servers failed; retrying")
                else:
                    seen, last = stamp, time.monotonic()
                    if changes:
                        logger.info(
                            "code servers: created %s, updated %s, deleted %s, failed %s; workspace %s",
                            changes.created,
                            changes.updated,
                            changes.deleted,
                            changes.failed,
                            "rewritten" if changes.workspace_written else "unchanged",
                        )
            stop.wait(POLL_SECONDS)


def _by_org(items: list[Any]) -> dict[str, Any]:
    return {item.metadata.labels[ORG_LABEL]: item for item in items if ORG_LABEL in (item.metadata.labels or {})}


def _reason(exc: Any) -> str:
    """The API server's message of a refusal (its ``Status`` body), else the exception."""
    try:
        return json.loads(exc.body)["message"]
    except (TypeError, ValueError, KeyError):
        return str(exc)


def _service_host(service: Any) -> str:
    """The Service's cluster IP (stable for the Service's life; the webserver's gRPC channel needs no DNS
    lookup), or its name when it has none."""
    ip = service.spec.cluster_ip
    try:
        ipaddress.ip_address(ip or "")
    except ValueError:
        return service.metadata.name
    return ip


def _absent_ok(delete: Callable[..., Any], name: str, namespace: str) -> None:
    try:
        delete(name, namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise


def api_client() -> Any:
    """The Kubernetes API: ``DALGO_KUBERNETES_API`` (a URL, tests), else the pod's service account, else
    the local kubeconfig."""
    url = os.environ.get("DALGO_KUBERNETES_API")
    if url:
        configuration = client.Configuration()
        configuration.host = url
        return client.ApiClient(configuration)
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def cluster_from_env() -> Cluster:
    namespace_file = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    default_namespace = namespace_file.read_text().strip() if namespace_file.exists() else "default"
    return Cluster(
        namespace=os.environ.get("DALGO_K8S_NAMESPACE", default_namespace),
        image=os.environ.get("DALGO_K8S_IMAGE", Cluster.image),
        pull_policy=os.environ.get("DALGO_K8S_PULL_POLICY", Cluster.pull_policy),
        release=os.environ.get("DALGO_K8S_RELEASE", Cluster.release),
        postgres_secret=os.environ.get("DALGO_K8S_POSTGRES_SECRET", Cluster.postgres_secret),
        data_dir=os.environ.get("DALGO_K8S_DATA_DIR", Cluster.data_dir),
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    workspace_file = Path(os.environ["DALGO_WORKSPACE_FILE"])
    write_workspace(workspace_file)  # the organizations on the volume, before the API changed any
    Controller(cluster_from_env(), api_client()).run(workspace_file)


if __name__ == "__main__":
    main()
