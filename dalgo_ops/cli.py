"""The ``dalgo`` command: prepare organizations, write the workspace, start the platform, reset a
connection."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dalgo_core import layout
from dalgo_core.code_locations import write_workspace
from dalgo_core.dbt_projects import prepare_organizations as prepare
from dalgo_core.spec import SpecError, list_org_slugs, load_org_spec
from dalgo_ops.airbyte import register as register_airbyte
from dalgo_ops.deploy_commands import register as register_deploy

DEFAULT_INSTANCE = Path(__file__).resolve().parent.parent / "deploy" / "dagster" / "dagster.yaml"


def _report(slugs: list[str], problems: dict[str, str]) -> None:
    for slug in slugs:
        print(f"  {slug}: {'ERROR ' + problems[slug] if slug in problems else 'ready'}")


def cmd_prepare(args: argparse.Namespace) -> int:
    slugs = args.orgs or list_org_slugs()
    problems = prepare(slugs, force=args.force)
    _report(slugs, problems)
    return 1 if problems else 0


def cmd_workspace(args: argparse.Namespace) -> int:
    slugs = list_org_slugs()
    problems = {} if args.no_prepare else prepare(slugs)
    output = Path(args.output) if args.output else layout.run_dir() / "workspace.yaml"
    output.parent.mkdir(parents=True, exist_ok=True)
    write_workspace(output, grpc_base_port=args.grpc_base_port)
    print(f"wrote {output}: {len(slugs)} organization(s)")
    _report(slugs, problems)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """The whole platform on the embedded default: ``dalgo serve``'s topology (a reloadable code server
    per organization, Dagster's webserver and daemon, the API under gunicorn) on Dagster's SQLite storage
    and the API's SQLite database under ``$DALGO_HOME``, every organization of the folder loaded."""
    from dalgo_ops.gunicorn_conf import setting
    from dalgo_ops.serve import ServeConfig, serve

    config = ServeConfig(
        postgres_url="",
        host=args.host,
        webserver_port=args.port,
        api_port=args.api_port,
        grpc_base_port=args.grpc_base_port,
        # one person trying the platform: one worker's threads
        api_workers=setting("DALGO_API_WORKERS", 1),
        api_threads=setting("DALGO_API_THREADS", 4),
        run_dir=layout.run_dir(),
        demo_user=(args.demo_org, args.demo_email) if args.demo_org else None,
    )
    try:
        return serve(config)
    except (RuntimeError, TimeoutError) as exc:
        print(f"dalgo up: {exc}", flush=True)
        return 1


def cmd_reset(args: argparse.Namespace) -> int:
    """Run the connection's reset job in this process against the organization's definitions (recorded
    in the Dagster instance of ``$DAGSTER_HOME`` when it is set), printing what it dropped: the tables
    and state in the warehouse, or, for an Airbyte server's connection, Airbyte's own reset job."""
    import os

    import dagster as dg

    from dalgo_assets.definitions import build_org_definitions
    from dalgo_assets.ingestion.reset import UnknownStreams, reset_streams
    from dalgo_core.names import reset_job_name, reset_op_name, reset_run_config

    try:
        spec = load_org_spec(args.org)
    except (SpecError, FileNotFoundError, ValueError) as exc:
        print(f"dalgo reset: {exc}")
        return 1
    connection = next((c for c in spec.connections if c.name == args.connection), None)
    if connection is None:
        names = ", ".join(c.name for c in spec.connections) or "none"
        print(
            f"dalgo reset: organization '{spec.slug}' has no connection '{args.connection}' (its connections: {names})"
        )
        return 1
    try:
        reset_streams(connection, args.stream)
    except UnknownStreams as exc:
        print(f"dalgo reset: {exc}")
        return 1
    job = build_org_definitions(spec).resolve_job_def(reset_job_name(spec.slug, connection.name))
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    result = job.execute_in_process(
        run_config=reset_run_config(spec.slug, connection.name, args.stream), instance=instance, raise_on_error=False
    )
    op = reset_op_name(spec.slug, connection.name)
    for entry in instance.all_logs(result.run_id):
        if entry.step_key == op and entry.user_message and not entry.is_dagster_event:
            print(entry.user_message)
    if not result.success:
        failures = [e for e in result.all_events if e.is_step_failure]
        error = failures[0].step_failure_data.error if failures else None
        print(f"dalgo reset: {error.message.strip() if error else 'the reset run failed'}")
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dalgo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="prepare organizations' dbt manifests (only what changed)")
    p.add_argument("orgs", nargs="*", help="organization slugs (default: all)")
    p.add_argument("--force", action="store_true", help="parse even if nothing changed")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("workspace", help="prepare every organization and write the Dagster workspace")
    p.add_argument("--output", help="default: the one dalgo up runs on, $DALGO_HOME/platform/run/workspace.yaml")
    p.add_argument("--no-prepare", action="store_true")
    p.add_argument("--grpc-base-port", type=int, default=None, help="one gRPC code server per org")
    p.set_defaults(func=cmd_workspace)

    p = sub.add_parser("up", help="start the whole platform on the embedded default (SQLite, DuckDB)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000, help="Dagster's webserver")
    p.add_argument("--api-port", type=int, default=8000)
    p.add_argument("--grpc-base-port", type=int, default=4000, help="code servers from this port on")
    p.add_argument("--demo-org", default="demo_ngo", help="its demo user's login is printed ('' for none)")
    p.add_argument("--demo-email", default="demo@example.org")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("reset", help="drop a connection's stream tables and state: the next sync is a full one")
    p.add_argument("org", help="organization slug")
    p.add_argument("connection")
    p.add_argument("--stream", action="append", default=[], help="a stream to reset (repeat; default: every stream)")
    p.set_defaults(func=cmd_reset)

    register_airbyte(sub)
    register_deploy(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
