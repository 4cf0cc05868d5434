"""Uncertainty of identified parameters from an ensemble of identifications.

Each member is trained from its own random start on a bootstrap resample of the sensors
(drawn with replacement): the spread across members combines the data noise (what the
bootstrap sees) and the optimization (what the starts see). The ensemble mean and
standard deviation are the identified parameters and their uncertainty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from matforge.core.ensemble import bootstrap_indices, spread


@dataclass
class EnsembleEstimate:
    moduli: np.ndarray  # (members, n_layers)
    interfaces: np.ndarray  # (members, n_layers - 1)
    losses: np.ndarray  # (members,)

    @property
    def moduli_mean(self) -> np.ndarray:
        return spread(self.moduli)[0]

    @property
    def moduli_std(self) -> np.ndarray:
        return spread(self.moduli)[1]

    @property
    def interfaces_mean(self) -> np.ndarray:
        return spread(self.interfaces)[0]

    @property
    def interfaces_std(self) -> np.ndarray:
        return spread(self.interfaces)[1]

    def table(self) -> list[dict[str, float | str]]:
        """One row per parameter: name, mean, std, relative std."""
        rows: list[dict[str, float | str]] = []
        for prefix, mean, std in (
            ("E", self.moduli_mean, self.moduli_std),
            ("y", self.interfaces_mean, self.interfaces_std),
        ):
            for k, (m, s) in enumerate(zip(mean, std, strict=True)):
                rows.append(
                    {
                        "parameter": f"{prefix}{k + 1}",
                        "mean": float(m),
                        "std": float(s),
                        "relative_std": float(s / abs(m)) if m else float("nan"),
                    }
                )
        return rows


Identify = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray, float]]


def ensemble_identify(
    identify: Identify,
    n_sensors: int,
    *,
    members: int = 4,
    bootstrap: bool = True,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> EnsembleEstimate:
    """Run `identify(sensor_indices, seed) -> (moduli, interfaces, loss)` `members` times,
    each on a bootstrap resample of the sensors (or all of them) with its own seed."""
    if members < 1:
        raise ValueError(f"members must be at least 1, got {members}")
    rng = np.random.default_rng(seed)
    moduli, interfaces, losses = [], [], []
    for member in range(members):
        if bootstrap and members > 1:
            indices = bootstrap_indices(rng, n_sensors)
        else:
            indices = np.arange(n_sensors)
        m, i, loss = identify(indices, seed + member)
        moduli.append(np.asarray(m, dtype=float))
        interfaces.append(np.asarray(i, dtype=float))
        losses.append(float(loss))
        if progress is not None:
            progress(1)
    return EnsembleEstimate(np.array(moduli), np.array(interfaces), np.array(losses))
