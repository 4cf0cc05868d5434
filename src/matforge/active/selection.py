"""Which candidates go to the oracle: thresholds, then a batch without near-duplicates.

Thresholds on the per-configuration uncertainty: below `lower` a configuration is not
worth a label; above `upper` it is treated as unphysical (the model has left any region it
can say anything about, e.g. atoms on top of each other) and discarded. Among the rest,
`diversity` decides the batch:

- "greedy": D-optimal greedy selection for the grades; after each pick the grade is
  recomputed as if the pick were already in the training set (`with_added`), so a near-
  duplicate of a pick loses its grade and is not taken twice;
- "fps": farthest-point sampling in descriptor space (the mean of a configuration's
  standardized atom rows) among the 3 x batch most uncertain candidates, starting from
  the most uncertain one; works with every measure;
- "none": the most uncertain first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from ase import Atoms

from matforge.active.rows import DesignCache
from matforge.active.uncertainty import Uncertainty, UncertaintyEstimate

Diversity = Literal["greedy", "fps", "none"]


@dataclass(frozen=True)
class Selection:
    indices: list[int]  # into the candidates, in the order picked
    uncertainty: list[float]  # at the time of picking
    reasons: list[str]
    below_lower: int
    above_upper: int


def _eligible(values: np.ndarray, lower: float, upper: float | None) -> np.ndarray:
    ok = values >= lower
    if upper is not None:
        ok &= values <= upper
    return ok


def structure_features(cache: DesignCache, structures: Sequence[Atoms]) -> np.ndarray:
    """Mean atom row of each structure, columns standardized over the set."""
    means = np.stack([r.atoms.mean(axis=0) for r in cache.rows(structures, forces=False)])
    scale = means.std(axis=0)
    scale[scale == 0] = 1.0
    return (means - means.mean(axis=0)) / scale


def select_batch(
    candidates: Sequence[Atoms],
    estimate: UncertaintyEstimate,
    size: int,
    *,
    lower: float,
    upper: float | None = None,
    diversity: Diversity = "fps",
    uncertainty: Uncertainty | None = None,
    cache: DesignCache | None = None,
) -> Selection:
    """Pick up to `size` candidates (see the module docstring)."""
    values = np.asarray(estimate.per_structure, dtype=float)
    if len(values) != len(candidates):
        raise ValueError("estimate and candidates differ in length")
    if upper is not None and upper < lower:
        raise ValueError(f"upper threshold {upper} is below the lower one {lower}")
    below = int((values < lower).sum())
    above = int((values > upper).sum()) if upper is not None else 0
    eligible = np.flatnonzero(_eligible(values, lower, upper))
    measure = estimate.measure
    if size <= 0 or len(eligible) == 0:
        return Selection([], [], [], below, above)
    if diversity == "greedy":
        if uncertainty is None or not hasattr(uncertainty, "with_added"):
            raise ValueError("diversity 'greedy' needs a grade (leverage or maxvol)")
        return _greedy(candidates, values, eligible, size, lower, upper, uncertainty, below, above)
    order = eligible[np.argsort(-values[eligible], kind="stable")]
    if diversity == "none":
        picked = list(order[:size])
        reasons = [
            f"{measure} {values[i]:.4g} >= {lower:g}, rank {r + 1}" for r, i in enumerate(picked)
        ]
        return Selection(picked, [float(values[i]) for i in picked], reasons, below, above)
    if diversity != "fps":
        raise ValueError(f"diversity must be 'greedy', 'fps' or 'none', got {diversity!r}")
    if cache is None:
        raise ValueError("diversity 'fps' needs the design cache for descriptor distances")
    shortlist = order[: 3 * size]
    features = structure_features(cache, [candidates[i] for i in shortlist])
    picked_local = [0]
    distance = np.linalg.norm(features - features[0], axis=1)
    reasons = [f"{measure} {values[shortlist[0]]:.4g}, the largest"]
    while len(picked_local) < min(size, len(shortlist)):
        nxt = int(np.argmax(distance))
        if distance[nxt] <= 0:
            break  # the rest are exact duplicates of picks
        reasons.append(
            f"{measure} {values[shortlist[nxt]]:.4g} >= {lower:g}, farthest from the batch "
            f"(distance {distance[nxt]:.3g})"
        )
        picked_local.append(nxt)
        distance = np.minimum(distance, np.linalg.norm(features - features[nxt], axis=1))
    picked = [int(shortlist[i]) for i in picked_local]
    return Selection(picked, [float(values[i]) for i in picked], reasons, below, above)


def _greedy(
    candidates: Sequence[Atoms],
    values: np.ndarray,
    eligible: np.ndarray,
    size: int,
    lower: float,
    upper: float | None,
    uncertainty: Uncertainty,
    below: int,
    above: int,
) -> Selection:
    picked: list[int] = []
    grades: list[float] = []
    reasons: list[str] = []
    current = values.copy()
    remaining = list(eligible)
    grade = uncertainty
    while remaining and len(picked) < size:
        best = max(remaining, key=lambda i: current[i])
        if current[best] < lower:
            break
        picked.append(int(best))
        grades.append(float(current[best]))
        note = "" if not picked[:-1] else f" after adding the {len(picked) - 1} picked before"
        reasons.append(f"{grade.name} {current[best]:.4g} >= {lower:g}{note}")
        remaining.remove(best)
        if remaining and len(picked) < size:
            grade = grade.with_added([candidates[best]])  # type: ignore[attr-defined]
            update = grade.estimate([candidates[i] for i in remaining]).per_structure
            current[remaining] = update
            remaining = [i for i in remaining if _eligible(current[i : i + 1], lower, upper)[0]]
    return Selection(picked, grades, reasons, below, above)
