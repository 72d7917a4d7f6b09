"""The bridge answers in the API's own types: nothing its package exports, takes or returns is a Dagster
object, so none reaches the API's areas (runs, assets, alerts). The areas import nothing but the
package (import-linter's contracts in pyproject.toml)."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Iterator

from dalgo_api import bridge


def types_in(hint: object) -> Iterator[type]:
    """Every class a type hint names (``list[RunInfo] | None`` names list, RunInfo and NoneType)."""
    if isinstance(hint, type) and not typing.get_args(hint):
        yield hint
    origin = typing.get_origin(hint)
    if isinstance(origin, type):
        yield origin
    for arg in typing.get_args(hint):
        yield from types_in(arg)


def test_the_bridge_exports_takes_and_returns_no_dagster_type():
    named: dict[str, set[str]] = {}
    for name in bridge.__all__:
        exported = getattr(bridge, name)
        classes = set(types_in(type(exported)))
        if inspect.isfunction(exported) or dataclasses.is_dataclass(exported):
            classes |= {c for hint in typing.get_type_hints(exported).values() for c in types_in(hint)}
        if inspect.isclass(exported):
            classes.add(exported)
        named[name] = {c.__module__ for c in classes}
    assert named["run_for_org"] >= {"dalgo_api.bridge.run_records"}  # RunInfo: the hints are read
    dagsters = {name: modules for name, modules in named.items() if any(m.startswith("dagster") for m in modules)}
    assert not dagsters
