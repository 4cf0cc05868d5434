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
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# The collector's switch is process-global: overlapping blocks in several threads (Dask
# workers in one process) share one pause. The first to enter records the state and
# pauses, the last to leave restores it; a block never re-enables the collector under
# another thread that is still inside.
_lock = threading.Lock()
_depth = 0
_restore = False


@contextmanager
def paused_cycle_collection() -> Iterator[None]:
    """Disable the cyclic collector inside the block; restore its previous state once no
    thread is inside any such block (safe to overlap across threads and to nest)."""
    global _depth, _restore
    with _lock:
        if _depth == 0:
            _restore = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _restore:
                gc.enable()
