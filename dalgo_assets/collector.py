"""Python's cyclic garbage collector, kept out of definition loading.

Loading an organization allocates millions of long-lived objects (the parsed dbt manifest, asset specs):
each time enough of them pile up, CPython runs a full collection over the whole heap, which finds
nothing to free but costs up to a third of the load. So the load runs with the collector paused, and
what it built is then frozen out of later collections: a code location keeps its definitions for its life.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause cyclic garbage collection inside the block (reference counting still frees memory)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def freeze_loaded() -> None:
    """Move every object alive now out of the collector's reach (``gc.freeze``): call once loaded."""
    gc.freeze()
