"""One way to change an organization's spec from the API: lock, edit, validate, write, prepare dbt
manifests if needed, reload the code location; undo everything if any step fails.

A change that Dagster cannot load (a dbt project that does not parse, a pipeline selection the
automation rejects) is rolled back and answered 422 with the reason, so a bad request never leaves an
organization's code location broken. Manifests are prepared here, when the spec changes, never when a
code location loads: dbt parses while the location reloads (its code server imports meanwhile and waits
for the manifests), so a dbt project change costs little more than the reload itself.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from dalgo_api import bridge
from dalgo_api.accounts.auth import RequestContext
from dalgo_api.audit import services as audit
from dalgo_api.errors import ApiError, not_found
from dalgo_api.specs import store as specs
from dalgo_core import layout
from dalgo_core.dbt_projects import DBT_TIMEOUT_SECONDS, DbtProjectError, preparing_beside
from dalgo_core.egress import NoSuchHost, NotPublic, tenant_address
from dalgo_core.pools import org_pools
from dalgo_core.spec import OrgSpec, SpecError

Edit = Callable[[OrgSpec], None]


@contextlib.contextmanager
def spec_lock(slug: str) -> Iterator[None]:
    """Serialize spec changes of one organization (several API workers may edit it at once)."""
    with layout.lock_file(f"{slug}.spec").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _invalid(exc: SpecError) -> ApiError:
    errors = [{"field": p.split(":", 1)[0], "message": p.split(":", 1)[-1].strip()} for p in exc.problems]
    return ApiError(422, f"the change is not valid for organization '{exc.org}': {'; '.join(exc.problems)}", errors)


def _unreachable_hosts(before: OrgSpec, after: OrgSpec) -> ApiError | None:
    """A 422 naming each database host the change brings that the platform may not reach for a tenant
    (loopback, private, link-local: its own services), as ``dalgo_core.egress`` decides. A host already
    in the spec is left to the connection, which checks it again; so is a name that does not resolve."""
    known = set(before.tenant_hosts().values())
    problems = []
    for field, (host, port) in after.tenant_hosts().items():
        if (host, port) not in known:
            try:
                tenant_address(host, port)
            except NotPublic as exc:
                problems.append((field, str(exc)))
            except NoSuchHost:
                pass
    if not problems:
        return None
    errors = [{"field": field, "message": message} for field, message in problems]
    return ApiError(422, "; ".join(f"{field}: {message}" for field, message in problems), errors)


def change_spec(
    slug: str, edit: Edit, *, prepare: bool = False, dagster_required: bool = True, reload: bool = True
) -> OrgSpec:
    """Apply ``edit`` to the organization's spec and make Dagster load it, or change nothing. With
    ``dagster_required`` false, a change Dagster cannot be reached for stays (Dagster loads it when it
    starts); one it refuses is still undone. With ``reload`` false the change is only written: for parts
    of the spec no Dagster definition is built from (its alert rules). The audit log gets the spec's
    sections before and after."""
    with spec_lock(slug):
        before = specs.load_spec(slug)
        after = before.model_copy(deep=True)
        edit(after)
        if refused := _unreachable_hosts(before, after):
            raise refused
        try:
            saved = specs.save_spec(after)
        except SpecError as exc:
            raise _invalid(exc) from None
        audit.spec_changed(before, saved)
        if not reload:
            return saved
        try:
            # dbt parses beside the reload: the code server imports meanwhile, and reads the manifests
            # once they are written (dalgo_core.dbt_projects holds it until then)
            with preparing_beside(saved) if prepare else contextlib.nullcontext(list) as prepared:
                bridge.ensure_pools(org_pools(saved))
                try:  # the reload may wait as long as dbt may take
                    bridge.reload_location(slug, longer=DBT_TIMEOUT_SECONDS if prepare else 0)
                finally:
                    prepared()  # dbt's own error first: it is why the location would not load
        except DbtProjectError as exc:
            specs.save_spec(before)
            raise ApiError(422, str(exc)) from None
        except bridge.DagsterRejected as exc:
            specs.save_spec(before)
            _reload_quietly(slug)
            raise ApiError(422, f"the change was undone because Dagster cannot load it: {exc.detail}") from None
        except bridge.DagsterUnavailable:
            if not dagster_required:
                return saved
            specs.save_spec(before)
            raise
        return saved


def _reload_quietly(slug: str) -> None:
    with contextlib.suppress(ApiError):
        bridge.reload_location(slug)


@dataclass(frozen=True)
class SpecSection:
    """A list of named entries of the organization's spec (connections, dbt projects, pipelines) and the
    API's ways to read and change it: lookup for ``has_permission``, a name free check (409), add,
    replace, remove, each through ``change_spec``."""

    field: str  # the OrgSpec attribute
    what: str  # how messages name an entry
    reload: bool = True  # whether Dagster builds definitions from the section (see change_spec)

    def entries(self, spec: OrgSpec) -> list[Any]:
        return getattr(spec, self.field)

    def find(self, spec: OrgSpec, name: str) -> Any | None:
        return next((e for e in self.entries(spec) if e.name == name), None)

    def lookup(self, ctx: RequestContext, params: dict) -> Any:
        """The entry named in the path, or 404."""
        found = self.find(specs.load_spec(ctx.org.slug), params["name"])
        if found is None:
            raise not_found(self.what, params["name"])
        return found

    def ensure_free(self, slug: str, name: str, current: str | None = None) -> None:
        """409 if another entry already has ``name`` (``current`` is the entry being renamed)."""
        if name != current and self.find(specs.load_spec(slug), name) is not None:
            raise ApiError(409, f"{self.what} '{name}' already exists in organization '{slug}'")

    def add(self, slug: str, entry: Any, *, prepare: bool = False) -> None:
        change_spec(slug, lambda spec: self.entries(spec).append(entry), prepare=prepare, reload=self.reload)

    def replace(self, slug: str, name: str, entry: Any, *, prepare: bool = False) -> None:
        def edit(spec: OrgSpec) -> None:
            setattr(spec, self.field, [entry if e.name == name else e for e in self.entries(spec)])

        change_spec(slug, edit, prepare=prepare, reload=self.reload)

    def remove(self, slug: str, name: str) -> None:
        def edit(spec: OrgSpec) -> None:
            setattr(spec, self.field, [e for e in self.entries(spec) if e.name != name])

        change_spec(slug, edit, reload=self.reload)
