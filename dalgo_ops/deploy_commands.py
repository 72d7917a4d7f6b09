"""``dalgo serve`` and ``dalgo deploy compose|helm`` (registered by ``dalgo_ops.cli``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from dalgo_core import layout
from dalgo_ops.instance import REPO, DeployError, pg_env_from_url

DOCKER_DIR = REPO / "deploy" / "docker"
K8S_DIR = REPO / "deploy" / "k8s"


def cmd_serve(args: argparse.Namespace) -> int:
    from dalgo_ops.serve import ServeConfig, serve, stop

    run_dir = layout.run_dir()
    if args.action == "stop":
        print("stopped" if stop(run_dir) else "nothing was running")
        return 0
    url = args.postgres_url or os.environ.get("DALGO_POSTGRES_URL", "")
    if not url:
        print(
            "dalgo serve: give --postgres-url postgresql://user:password@host:port/database "
            "(or DALGO_POSTGRES_URL); dalgo serve uses a PostgreSQL server, it does not start one"
        )
        return 2
    try:
        pg_env_from_url(url)  # a bad URL is reported before anything starts
    except DeployError as exc:
        print(f"dalgo serve: {exc}")
        return 2
    config = ServeConfig(
        postgres_url=url,
        api_database_url=args.api_database_url or os.environ.get("DALGO_API_DATABASE_URL", ""),
        webserver_port=args.webserver_port,
        operator_port=args.operator_port,
        api_port=args.api_port,
        grpc_base_port=args.grpc_base_port,
        run_dir=run_dir,
    )
    try:
        return serve(config)
    except (DeployError, RuntimeError, TimeoutError) as exc:
        print(f"dalgo serve: {exc}")
        return 1


def cmd_deploy(args: argparse.Namespace) -> int:
    if args.target == "compose":
        from dalgo_ops.compose import write_compose

        folder = Path(args.output or DOCKER_DIR)
        slugs = write_compose(folder)
        print(f"wrote {folder / 'compose.yaml'} and workspace.yaml: {len(slugs)} organization(s)")
    else:
        from dalgo_ops.helm import write_helm

        folder = Path(args.output or K8S_DIR)
        repository, _, tag = args.image.partition(":")
        write_helm(
            folder,
            repository=repository,
            tag=tag or "latest",
            postgres_host=args.postgres_host,
            storage_class=args.storage_class,
        )
        print(f"wrote {folder / 'dagster-values.yaml'} and api.yaml (code servers: the controller's)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the production topology on this machine (PostgreSQL storage, no Docker)")
    p.add_argument("action", nargs="?", choices=["start", "stop"], default="start")
    p.add_argument("--postgres-url", help="Dagster's database: postgresql://user:password@host:port/db")
    p.add_argument("--api-database-url", help="the API's database (default: DALGO_API_DATABASE_URL, else Dagster's)")
    p.add_argument("--webserver-port", type=int, default=3000, help="Dagster webserver on 127.0.0.1")
    p.add_argument("--operator-port", type=int, default=None, help="also start a read-only webserver on this port")
    p.add_argument("--api-port", type=int, default=8000)
    p.add_argument("--grpc-base-port", type=int, default=4000, help="code server of the i-th org: base + i")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("deploy", help="regenerate deployment files from the organizations folder")
    p.add_argument("target", choices=["compose", "helm"])
    p.add_argument("--output", help="folder (default deploy/docker or deploy/k8s)")
    p.add_argument("--image", default="dalgo:latest", help="helm: the image holding the platform and the orgs")
    p.add_argument("--postgres-host", default="postgresql", help="helm: the external PostgreSQL host")
    p.add_argument("--storage-class", help="helm: a ReadWriteMany storage class for the shared volume")
    p.set_defaults(func=cmd_deploy)
