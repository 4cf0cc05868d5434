"""Batch selection: thresholds, and no near-duplicates in a batch."""

from __future__ import annotations

import numpy as np
import pytest

from matforge.active import DesignCache, MaxVolGrade, UncertaintyEstimate, select_batch
from matforge.active.store import new_uid


def _copies(atoms, n):
    out = []
    for _ in range(n):
        c = atoms.copy()
        c.info["uid"] = new_uid()
        out.append(c)
    return out


def test_thresholds_count_and_exclude(make_frames):
    candidates = make_frames(5, 0.05, 0, labelled=False)
    estimate = UncertaintyEstimate("x", [], np.array([0.5, 1.0, 2.0, 3.0, 20.0]))
    selection = select_batch(candidates, estimate, 10, lower=1.0, upper=10.0, diversity="none")
    assert selection.indices == [3, 2, 1]
    assert (selection.below_lower, selection.above_upper) == (1, 1)
    assert selection.uncertainty == [3.0, 2.0, 1.0]
    with pytest.raises(ValueError, match="below the lower"):
        select_batch(candidates, estimate, 1, lower=2.0, upper=1.0)


@pytest.mark.parametrize("diversity", ["greedy", "fps"])
def test_batches_skip_duplicates_of_a_pick(frames, make_snap, make_frames, diversity):
    """Three copies each of two different out-of-distribution frames: a batch of two
    takes one of each, never two copies (a plain top-k would take three equal copies)."""
    cache = DesignCache(make_snap())
    grade = MaxVolGrade(cache, frames["train"])
    a, b = make_frames(2, 0.25, 7, labelled=False)
    candidates = _copies(a, 3) + _copies(b, 3)
    estimate = grade.estimate(candidates)
    top = select_batch(candidates, estimate, 3, lower=1.0, diversity="none")
    assert len({i // 3 for i in top.indices}) == 1  # top-k: copies of one frame
    selection = select_batch(
        candidates, estimate, 2, lower=1.0, diversity=diversity, uncertainty=grade, cache=cache
    )
    assert sorted(i // 3 for i in selection.indices) == [0, 1]
    if diversity == "greedy":
        # once both frames are in, every copy interpolates: nothing more is worth a label
        more = select_batch(
            candidates, estimate, 6, lower=1.1, diversity="greedy", uncertainty=grade
        )
        assert len(more.indices) == 2


def test_greedy_needs_a_grade(frames):
    estimate = UncertaintyEstimate("committee", [], np.ones(3))
    with pytest.raises(ValueError, match="needs a grade"):
        select_batch(frames["near"], estimate, 2, lower=0.0, diversity="greedy")
