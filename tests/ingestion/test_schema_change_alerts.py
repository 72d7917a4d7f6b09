"""Schema changes found by real syncs reach the alerts, and ``propagate_fully`` adds the streams a source
gained: two files connections of one organization synced in process into its DuckDB warehouse on the
Dagster instance the API reads, then the alert dispatcher's passes and the task worker's approvals.

- a paused connection whose CSV gained a column records "pending" on its stream before its sync fails:
  one alert; its approval (the task worker) records "resolved": one recovery;
- a ``propagate_fully`` connection whose folder gained a file names the new stream: the dispatcher adds it
  to the connection (an audit entry of the platform) and it syncs in full at the next sync; an approval
  under that policy chooses the stream added since."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from django.core import mail

from dalgo_api.alerts.dispatcher import dispatch_once
from dalgo_api.audit.models import AuditEntry
from dalgo_api.audit.services import SYSTEM_ACTOR
from dalgo_api.bridge.transport import instance
from dalgo_api.specs import store as specs
from dalgo_assets.definitions import build_org_definitions
from dalgo_core.file_sources import files_root
from dalgo_core.names import LOCATION_TAG, SCHEMA_CHANGE_METADATA, SCHEMA_CHANGE_STREAMS_ADDED_METADATA, location_name
from dalgo_core.spec import AlertRuleSpec, ConnectionSpec, load_org_spec
from dalgo_ops.tasks import Job, approve_schema
from tests.api.conftest import build_world
from tests.ingestion.embedded_support import failure_message, loaded


def _connection(name: str, policy: str) -> ConnectionSpec:
    return ConnectionSpec.model_validate(
        {
            "name": name,
            "schema_change_policy": policy,
            "source": {"type": "files", "url": name, "format": "csv"},
            "destination_schema": name,
            "streams": [{"name": "people"}],
        }
    )


def _sync(slug: str) -> dg.ExecuteInProcessResult:
    """Every asset of the organization, in a run of its code location (as its runs are tagged by Dagster)."""
    defs = build_org_definitions(load_org_spec(slug))
    return dg.materialize(
        list(defs.assets or []),
        resources=dict(defs.resources or {}),
        instance=instance(),
        tags={LOCATION_TAG: location_name(slug)},
        raise_on_error=False,
    )


def _csv(slug: str, folder: str, name: str, text: str) -> None:
    path = files_root(slug) / folder / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _observed(run_id: str) -> dict[str, dict]:
    """The schema-change observations of a run, by asset (relative to the organization)."""
    records = instance().get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_OBSERVATION).records
    events = [r.event_log_entry.dagster_event for r in records]
    return {
        "/".join(e.asset_key.path[1:]): {
            k: v.value for k, v in e.event_specific_data.asset_observation.metadata.items()
        }
        for e in events
    }


def _approve(slug: str, org, user, connection: str) -> dict:
    """An approval as the API's task runs it."""
    return approve_schema(Job(org, load_org_spec(slug), {"connection": connection}, lambda _: None, user=user))


@pytest.mark.django_db
def test_schema_changes_of_real_syncs_reach_the_alerts_and_propagate(dalgo_env: Path) -> None:
    world = build_world("Schema NGO")
    slug, org = world.slug, world.org
    rule = AlertRuleSpec(name="schemas", kind="schema_change_pending")
    connections = [_connection("exports", "propagate_fully"), _connection("held", "pause")]
    specs.save_spec(specs.load_spec(slug).model_copy(update={"alerts": [rule], "connections": connections}))
    for folder in ("exports", "held"):
        _csv(slug, folder, "people", "id,name\n1,Asha\n2,Bilal\n")

    first = _sync(slug)
    assert first.success, failure_message(first)
    # every sync says, per stream, that nothing waits (a stateless truth the dispatcher may read any time)
    assert {k: v[SCHEMA_CHANGE_METADATA] for k, v in _observed(first.run_id).items()} == {
        "exports/people": "resolved",
        "held/people": "resolved",
    }
    dispatch_once()
    mail.outbox = []

    # the exports folder gains a file (a stream), the held CSV a column
    _csv(slug, "exports", "visits", "id,place\n1,Pune\n2,Gulu\n3,Lima\n")
    _csv(slug, "held", "people", "id,name,age\n1,Asha,31\n2,Bilal,45\n")
    second = _sync(slug)
    assert not second.success and "policy is to pause" in failure_message(second)
    observed = _observed(second.run_id)
    assert observed["held/people"][SCHEMA_CHANGE_METADATA] == "pending"  # recorded before the run failed
    assert observed["exports/people"] == {
        SCHEMA_CHANGE_METADATA: "resolved",
        SCHEMA_CHANGE_STREAMS_ADDED_METADATA: ["visits"],
    }

    report = dispatch_once()
    assert (report.alerts, report.streams_added) == (1, 1)
    [email] = [m for m in mail.outbox if m.to == [world.users["account-manager"].email]]
    assert email.subject == f"[{org.name}] A schema change of held/people waits for approval"
    assert "stream 'people': column 'age' added" in email.body
    exports = next(c for c in load_org_spec(slug).connections if c.name == "exports")
    assert [(s.name, s.sync_mode) for s in exports.streams] == [("people", "full_refresh"), ("visits", "full_refresh")]
    entry = AuditEntry.objects.get(org=org, actor_email=SYSTEM_ACTOR)
    assert entry.target == "connection=exports" and "visits" in str(entry.after)

    # the approval of the paused connection: resolved, one recovery; it syncs again with the new column
    assert _approve(slug, org, world.users["pipeline-manager"], "held")["approved"][0]["column"] == "age"
    assert dispatch_once().recoveries == 1

    # the added stream syncs in full; a file added since is chosen by an approval under propagate_fully
    _csv(slug, "exports", "trips", "id\n1\n")
    third = _sync(slug)
    assert third.success, failure_message(third)
    assert loaded(third)["visits"]["rows_loaded"] == 3
    approved = _approve(slug, org, world.users["account-manager"], "exports")
    assert approved["streams_added"] == ["trips"]
    exports = next(c for c in load_org_spec(slug).connections if c.name == "exports")
    assert [s.name for s in exports.streams] == ["people", "visits", "trips"]
    assert AuditEntry.objects.filter(
        org=org, actor=world.users["account-manager"], target="connection=exports"
    ).exists()
    assert dispatch_once().streams_added == 0  # the third sync named trips: already chosen

    # a file the folder lost is no longer synced under propagate_fully: the run succeeds, its table stays
    (files_root(slug) / "exports" / "people.csv").unlink()
    fourth = _sync(slug)
    assert fourth.success, failure_message(fourth)
    synced = {tuple(e.asset_key.path[1:]) for e in fourth.all_events if e.is_step_materialization}
    assert synced == {("exports", "visits"), ("exports", "trips"), ("held", "people")}
