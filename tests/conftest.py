"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Progress bars are noise in test logs.
os.environ.setdefault("MATFORGE_QUIET", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The reference data folder beside the repository; skips when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data folder {SHARED_DATA} is absent (it sits beside the repo)")
    return SHARED_DATA
