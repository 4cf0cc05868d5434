"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Progress bars are noise in test logs.
os.environ.setdefault("MATFORGE_QUIET", "1")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Parallel workers share the cores: each gets its share of torch's intra-op threads
    # instead of every worker running as many threads as there are cores.
    import torch

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The reference data folder beside the repository; skips when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data folder {SHARED_DATA} is absent (it sits beside the repo)")
    return SHARED_DATA
