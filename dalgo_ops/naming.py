"""Names of an organization's deployment objects (DNS labels: no underscores) and shared constants."""

from __future__ import annotations

import yaml

IMAGE = "dalgo:latest"
APP_DIR = "/srv/dalgo"
DAGSTER_HOME = "/opt/dagster/dagster_home"
CODE_SERVER_PORT = 4000

WSGI_APP = "dalgo_api.wsgi:application"
GUNICORN_CONF = "python:dalgo_ops.gunicorn_conf"  # the API's workers, threads and timeouts
# the API in a container (compose, the Helm chart): its access log on the container's output
API_COMMAND = f"gunicorn --config {GUNICORN_CONF} {WSGI_APP} --bind 0.0.0.0:8000 --access-logfile -"


def dns_label(slug: str) -> str:
    """``demo_ngo`` -> ``demo-ngo``: slugs never hold a hyphen, so the mapping cannot collide."""
    return slug.replace("_", "-")


def code_server_service(slug: str) -> str:
    return f"code-server-{dns_label(slug)}"


def user_deployment_name(slug: str) -> str:
    return f"org-{dns_label(slug)}"


def org_secret_name(slug: str) -> str:
    """The Kubernetes Secret / env file holding one organization's secrets, seen by its code server only."""
    return f"dalgo-org-{dns_label(slug)}"


class _PlainDumper(yaml.SafeDumper):
    """No ``&id001`` anchors for shared objects: generated files are read by people and by Helm/compose."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def dump_yaml(*documents: object) -> str:
    return yaml.dump_all(documents, Dumper=_PlainDumper, sort_keys=False, width=120)
