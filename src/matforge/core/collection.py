"""Pausing Python's cyclic garbage collector around allocation-heavy batched work.

A process that has imported torch and pycalphad holds ~300,000 Python objects, and a full
(generation 2) collection walks all of them: ~150 ms on 2 cores, more than a whole
1,000-point binary equilibrium. Batched solvers allocate many short-lived tensors and small
objects without reference cycles (reference counting frees them), whose churn triggers such
collections every few calls. Pausing the collector for the duration of one call removes
that cost; anything cyclic made meanwhile is collected after it, as usual.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_cycle_collection() -> Iterator[None]:
    """Disable the cyclic collector inside the block; restore its previous state after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
