"""``dalgo airbyte plan|apply <org>``: an organization's connections as code, against its Airbyte workspace.

``plan`` exits 0 when the workspace matches the spec, 2 when there are changes to apply (like
``terraform plan -detailed-exitcode``) and 1 on an error; ``apply`` exits 0 once the workspace matches,
1 on an error. ``apply`` does not ask for confirmation: run ``plan`` first to review.
"""

from __future__ import annotations

import argparse
import sys

from dalgo_core.spec import SpecError, load_org_spec

EXIT_NO_CHANGES, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


def _run(org: str, *, apply_it: bool) -> int:
    import dagster as dg  # here, not at the CLI's start (every `dalgo` command would import Dagster)

    from dalgo_assets.ingestion.server.declared import DeclarationError
    from dalgo_assets.ingestion.server.reconcile import ReconcileError, apply, make_plan
    from dalgo_assets.ingestion.server.resource import airbyte_client
    from dalgo_assets.ingestion.server.state import AirbyteStateError, state_path

    try:
        spec = load_org_spec(org)
        client = airbyte_client(spec)
        plan = make_plan(spec, client)
        print(plan.render(), flush=True)
        if not apply_it:
            return EXIT_CHANGES if plan.has_changes else EXIT_NO_CHANGES
        apply(spec, client, plan)
    except dg.Failure as exc:
        print(f"error: organization '{org}': {exc.description}", file=sys.stderr)
        return EXIT_ERROR
    except (SpecError, DeclarationError, ReconcileError, AirbyteStateError, LookupError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(
        f"Applied. Connection ids recorded in {state_path(spec)}; "
        f"reload the code location {spec.location_name} to sync them."
    )
    return EXIT_NO_CHANGES


def cmd_plan(args: argparse.Namespace) -> int:
    return _run(args.org, apply_it=False)


def cmd_apply(args: argparse.Namespace) -> int:
    return _run(args.org, apply_it=True)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``airbyte plan`` and ``airbyte apply`` to the ``dalgo`` command."""
    parser = sub.add_parser("airbyte", help="connections as code, against an organization's Airbyte server")
    actions = parser.add_subparsers(dest="airbyte_command", required=True)
    p = actions.add_parser("plan", help="show what apply would change (exit 0: nothing, 2: changes, 1: error)")
    p.add_argument("org", help="organization slug")
    p.set_defaults(func=cmd_plan)
    p = actions.add_parser("apply", help="create or update the source, destination and connection of each connection")
    p.add_argument("org", help="organization slug")
    p.set_defaults(func=cmd_apply)
