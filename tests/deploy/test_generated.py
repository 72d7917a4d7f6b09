"""The generated deployment files: compose for one host, Helm values and API manifests for Kubernetes.

Docker and Helm cannot run here, so the files are checked for what a deployment relies on: every
organization has its code server / user deployment, the workspace points at it, ports are unique, every
Dalgo container has its environment, the files parse, and the Helm values validate against the chart's
own JSON schema (the part Dalgo uses, vendored in ``helm/values.schema.json``).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

from dalgo_core.spec import list_org_slugs
from dalgo_ops.cli import main
from dalgo_ops.compose import compose_config, write_compose
from dalgo_ops.helm import api_manifests, dagster_values, write_helm
from dalgo_ops.k8s.objects import WORKSPACE_CONFIGMAP
from dalgo_ops.naming import code_server_service, org_secret_name
from tests.support.orgs import copy_demo_org, write_spec

SCHEMA = Path(__file__).with_name("helm") / "values.schema.json"
REPO = Path(__file__).resolve().parents[2]
ENV_KEYS = {"DAGSTER_HOME", "DALGO_HOME", "DALGO_ORGS_DIR", "DAGSTER_PG_HOST", "DAGSTER_PG_PASSWORD"}
DALGO_SERVICES = {"prepare", "storage", "webserver", "webserver-readonly", "daemon", "api", "alerts"}


@pytest.fixture
def three_orgs(dalgo_env: Path) -> list[str]:
    orgs = dalgo_env / "orgs"
    copy_demo_org(orgs, "demo_ngo")
    copy_demo_org(orgs, "partner_ngo")
    write_spec(orgs, "third_org", {"slug": "third_org", "name": "Third", "warehouse": {"type": "duckdb"}})
    return ["demo_ngo", "partner_ngo", "third_org"]


def test_compose_has_a_code_server_per_org_wired_into_the_workspace(three_orgs: list[str], tmp_path: Path) -> None:
    out = tmp_path / "docker"
    assert main(["deploy", "compose", "--output", str(out)]) == 0
    compose = yaml.safe_load((out / "compose.yaml").read_text())
    workspace = yaml.safe_load((out / "workspace.yaml").read_text())
    services = compose["services"]

    servers = {s: services[code_server_service(s)] for s in three_orgs}
    assert set(services) == {"postgres", *DALGO_SERVICES, *(code_server_service(s) for s in three_orgs)}
    entries = {e["grpc_server"]["location_name"]: e["grpc_server"] for e in workspace["load_from"]}
    assert set(entries) == {f"org_{s}" for s in three_orgs}
    ports = []
    for slug, service in servers.items():
        command = service["command"]
        assert command[:3] == ["dagster", "code-server", "start"]
        assert command[command.index("-a") + 1] == slug
        assert command[command.index("--location-name") + 1] == f"org_{slug}"
        port = int(command[command.index("-p") + 1])
        ports.append(port)
        entry = entries[f"org_{slug}"]
        assert (entry["host"], entry["port"]) == (code_server_service(slug), port)
        # the org's secrets reach its own code server only
        assert service["env_file"] == [{"path": f"secrets/{org_secret_name(slug)}.env", "required": False}]
        assert "healthcheck" in service and service["depends_on"]["prepare"]["condition"] == (
            "service_completed_successfully"
        )
    assert len(set(ports)) == len(ports)
    for name in [*DALGO_SERVICES, *(code_server_service(s) for s in three_orgs)]:
        assert set(services[name]["environment"]) >= ENV_KEYS, name
    for name in ("webserver", "webserver-readonly", "daemon"):
        assert set(services[name]["depends_on"]) >= {code_server_service(s) for s in three_orgs}
        # one process makes Dagster's storage and the organizations' pools before these open it
        assert services[name]["depends_on"]["storage"] == {"condition": "service_completed_successfully"}
    assert services["storage"]["command"] == ["python", "-m", "dalgo_ops.storage", "--migrate"]
    # what is published is published on the host's loopback only, and the operators' webserver is read-only
    published = {n: s["ports"] for n, s in services.items() if "ports" in s}
    assert set(published) == {"webserver-readonly", "api"}
    assert all(p.startswith("127.0.0.1:") for ports_ in published.values() for p in ports_)
    assert "--read-only" in services["webserver-readonly"]["command"]
    assert services["api"]["environment"]["DALGO_DAGSTER_URL"] == "http://webserver:3000"
    assert "DALGO_API_SECRET_KEY" in services["api"]["environment"]


def test_adding_an_org_regenerates_compose(three_orgs: list[str], dalgo_env: Path, tmp_path: Path) -> None:
    write_compose(tmp_path)
    write_spec(dalgo_env / "orgs", "fourth_org", {"slug": "fourth_org", "name": "Fourth"})
    assert write_compose(tmp_path) == sorted([*three_orgs, "fourth_org"])
    assert code_server_service("fourth_org") in yaml.safe_load((tmp_path / "compose.yaml").read_text())["services"]


def test_repo_deployment_files_are_current() -> None:
    """The compose file and Helm values in the repository match the repository's organizations
    (run ``dalgo deploy compose`` and ``dalgo deploy helm`` after adding one)."""
    slugs = list_org_slugs(REPO / "orgs")
    assert yaml.safe_load((REPO / "deploy" / "docker" / "compose.yaml").read_text()) == compose_config(slugs)
    values = yaml.safe_load((REPO / "deploy" / "k8s" / "dagster-values.yaml").read_text())
    assert values == dagster_values()
    assert list(yaml.safe_load_all((REPO / "deploy" / "k8s" / "api.yaml").read_text())) == api_manifests()


def test_helm_values_leave_code_servers_to_the_controller_and_validate(tmp_path: Path) -> None:
    assert main(["deploy", "helm", "--output", str(tmp_path), "--image", "registry.example.org/dalgo:1.2.3"]) == 0
    values = yaml.safe_load((tmp_path / "dagster-values.yaml").read_text())
    jsonschema.validate(values, json.loads(SCHEMA.read_text()))
    # no user deployment of the chart's: the webserver and the daemon read the controller's workspace
    assert values["dagster-user-deployments"] == {
        "enabled": True,
        "enableSubchart": False,
        "imagePullSecrets": [],
        "deployments": [],
    }
    assert values["dagsterWebserver"]["workspace"]["externalConfigmap"] == WORKSPACE_CONFIGMAP
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    limits = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    assert limits[0]["key"] == "dagster/code_location" and limits[0]["value"] == {"applyLimitPerUniqueValue": True}

    manifests = {(m["kind"], m["metadata"]["name"]): m for m in yaml.safe_load_all((tmp_path / "api.yaml").read_text())}
    assert set(manifests) == {
        ("PersistentVolumeClaim", "dalgo-data"),
        ("Deployment", "dalgo-api"),
        ("Service", "dalgo-api"),
        ("Deployment", "dalgo-alerts"),
        ("ServiceAccount", "dalgo-controller"),
        ("Role", "dalgo-controller"),
        ("RoleBinding", "dalgo-controller"),
        ("Deployment", "dalgo-controller"),
    }
    assert manifests["PersistentVolumeClaim", "dalgo-data"]["spec"]["accessModes"] == ["ReadWriteMany"]
    pod = manifests["Deployment", "dalgo-api"]["spec"]["template"]["spec"]
    alerts = manifests["Deployment", "dalgo-alerts"]["spec"]["template"]["spec"]
    controller = manifests["Deployment", "dalgo-controller"]["spec"]["template"]["spec"]
    assert alerts["containers"][0]["command"] == ["python", "manage.py", "dispatch_alerts", "--loop"]
    assert alerts["containers"][0]["env"] == pod["containers"][0]["env"] and alerts["volumes"] == pod["volumes"]
    assert pod["containers"][0]["image"] == "registry.example.org/dalgo:1.2.3"
    init = pod["initContainers"][0]["command"][-1]
    assert "dalgo prepare" in init and "migrate" in init and ".seeded" in init
    # the API reads runs from the instance the chart renders, with the chart's database password, and
    # writes organizations on the volume the controller and the code servers read
    assert {"name": "dagster-instance", "configMap": {"name": "dagster-instance"}} in pod["volumes"]
    for spec in (pod, alerts, controller):
        assert {"name": "dalgo-data", "persistentVolumeClaim": {"claimName": "dalgo-data"}} in spec["volumes"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    controller_env = {e["name"]: e for e in controller["containers"][0]["env"]}
    assert env["DALGO_WORKSPACE_FILE"] == controller_env["DALGO_WORKSPACE_FILE"]
    assert env["DALGO_ORGS_DIR"]["value"].startswith("/srv/dalgo/data/")
    assert controller_env["DALGO_K8S_IMAGE"]["value"] == "registry.example.org/dalgo:1.2.3"
    assert env["DAGSTER_PG_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "dagster-postgresql-secret"
    assert env["DALGO_DAGSTER_URL"]["value"] == "http://dagster-webserver:80"
    assert manifests["Service", "dalgo-api"]["spec"]["selector"] == pod_labels(manifests["Deployment", "dalgo-api"])
    # the controller may manage the code servers' objects and nothing else
    rules = manifests["Role", "dalgo-controller"]["rules"]
    assert sorted(r for rule in rules for r in rule["resources"]) == ["configmaps", "deployments", "services"]
    assert controller["serviceAccountName"] == "dalgo-controller"


def pod_labels(deployment: dict) -> dict:
    return deployment["spec"]["selector"]["matchLabels"]


def test_helm_values_schema_rejects_a_broken_workspace(tmp_path: Path) -> None:
    """The vendored schema is not a rubber stamp: a workspace without its servers list is refused."""
    write_helm(tmp_path)
    values = yaml.safe_load((tmp_path / "dagster-values.yaml").read_text())
    del values["dagsterWebserver"]["workspace"]["servers"]
    with pytest.raises(jsonschema.ValidationError, match="'servers' is a required property"):
        jsonschema.validate(values, json.loads(SCHEMA.read_text()))


def test_dockerfile_installs_the_locked_environment() -> None:
    dockerfile = (REPO / "deploy" / "docker" / "Dockerfile").read_text()
    assert "uv sync --frozen" in dockerfile
    assert "dagster.postgres.yaml" in dockerfile
    # every package of the wheel is in the image, and the sandbox tenant code needs
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    for package in packages["packages"]:
        assert f"COPY {package} ./{package}" in dockerfile
    assert "bubblewrap" in dockerfile
