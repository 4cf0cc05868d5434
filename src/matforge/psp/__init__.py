"""Differentiable process -> structure -> property chains and process design (`matforge psp`).

Links (`ProcessStructureNet`, `HallPetchLink`, `NeuralPropertyLink`) are torch modules
with named, unit-annotated inputs and outputs; a `Chain` composes them; `fit_link` and
`fit_chain` train them separately or jointly; `ChainEnsemble` gives uncertainty;
`design_process` finds process parameters by gradient descent through the chain within
reparameterized bounds. `generator.DualPhaseSteel` stands in for experiments.
"""

from matforge.psp.design import Bound, DesignResult, design_process, grid_search
from matforge.psp.generator import DualPhaseSteel
from matforge.psp.links import (
    Chain,
    HallPetchLink,
    Link,
    NeuralPropertyLink,
    ProcessStructureNet,
    Quantity,
)
from matforge.psp.training import ChainEnsemble, TrainSettings, fit_chain, fit_link, link_errors

__all__ = [
    "Bound",
    "Chain",
    "ChainEnsemble",
    "DesignResult",
    "DualPhaseSteel",
    "HallPetchLink",
    "Link",
    "NeuralPropertyLink",
    "ProcessStructureNet",
    "Quantity",
    "TrainSettings",
    "design_process",
    "fit_chain",
    "fit_link",
    "grid_search",
    "link_errors",
]
