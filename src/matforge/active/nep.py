"""Active learning with NEPs: a committee of independently trained NEPs.

`NepCommitteeTrainer.fit` trains `members` NEPs of the same architecture on the labels
gathered so far, each from its own random start (the seed of member k is seed + k) and
with the configured method (gradients by default: Adam then L-BFGS, or GPUMD's SNES), and
returns the first member as the potential that explores; `uncertainty()` is the
committee's disagreement (`CommitteeUncertainty`: per atom the norm of the force standard
deviation over the members, eV/A).
"""

from __future__ import annotations

from collections.abc import Sequence

from ase import Atoms

from matforge.active.uncertainty import CommitteeUncertainty
from matforge.core.errors import ConfigError
from matforge.mlip.nep import NepSettings, nep_potential
from matforge.mlip.nep_io import NepTrainingSettings
from matforge.mlip.nep_train import make_datasets, train_gradient, train_snes
from matforge.mlip.potential import Potential


class NepCommitteeTrainer:
    """Trains a committee of NEPs; the first member is the model that explores."""

    def __init__(
        self,
        settings: NepSettings,
        training: NepTrainingSettings,
        *,
        members: int = 4,
        method: str = "gradient",
        seconds: float | None = None,
        adam_steps: int = 300,
        lbfgs_steps: int = 100,
        learning_rate: float = 1e-2,
        generations: int = 200,
        seed: int = 0,
    ) -> None:
        if members < 2:
            raise ConfigError(f"a committee needs at least 2 members, got {members}")
        if method not in ("gradient", "snes"):
            raise ConfigError(f"method must be 'gradient' or 'snes', got {method!r}")
        self.settings, self.training = settings, training
        self.n_members, self.method, self.seconds = members, method, seconds
        self.adam_steps, self.lbfgs_steps = adam_steps, lbfgs_steps
        self.learning_rate, self.generations, self.seed = learning_rate, generations, seed
        self.members: list[Potential] = []

    def fit(self, labelled: Sequence[Atoms]) -> Potential:
        if not labelled:
            raise ConfigError("cannot fit a potential on an empty training set")
        self.members = []
        for k in range(self.n_members):
            potential = nep_potential(self.settings)
            data = make_datasets(
                self.settings, list(labelled), self.training.batch, potential.reference, k
            )
            if self.method == "snes":
                train_snes(
                    potential,
                    data,
                    self.training,
                    generations=self.generations,
                    seconds=self.seconds,
                    seed=self.seed + k,
                    report_every=max(1, self.generations),
                )
            else:
                train_gradient(
                    potential,
                    data,
                    self.training,
                    adam_steps=self.adam_steps,
                    lbfgs_steps=self.lbfgs_steps,
                    learning_rate=self.learning_rate,
                    seconds=self.seconds,
                    seed=self.seed + k,
                    report_every=max(1, self.adam_steps),
                )
            self.members.append(potential)
        return self.members[0]

    def uncertainty(self) -> CommitteeUncertainty:
        if len(self.members) < 2:
            raise ConfigError("fit the committee before asking for its uncertainty")
        return CommitteeUncertainty(self.members)
