"""Binary phase diagrams: equilibria on a (x, T) grid, drawn as tie-line end points.

As pycalphad's `binplot` does, every grid point with two or more stable composition sets
contributes the compositions of those sets at its temperature; their loci are the phase
boundaries. Single-phase points contribute nothing, so the regions between boundaries are
the single-phase fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from matforge.calphad.model import PhaseModel
from matforge.calphad.solver import EquilibriumResult, equilibrium
from matforge.core.errors import DataError

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class BinaryDiagram:
    """Boundary points of a binary A-B diagram: x is the mole fraction of `elements[1]`."""

    elements: tuple[str, str]
    phases: tuple[str, ...]  # phase of each boundary point
    x: torch.Tensor  # (K,)
    temperature: torch.Tensor  # (K,)
    result: EquilibriumResult
    unconverged: int

    def boundaries(self, phase: str) -> tuple[torch.Tensor, torch.Tensor]:
        mask = torch.tensor([p == phase for p in self.phases], dtype=torch.bool)
        return self.x[mask], self.temperature[mask]


def binary_diagram(
    models: Mapping[str, PhaseModel],
    elements: Sequence[str],
    temperatures: Sequence[float],
    fractions: Sequence[float],
    **options: object,
) -> BinaryDiagram:
    """Equilibria of A-B at every (x_B, T) of the grid, and their two-phase boundaries."""
    a, b = (e.upper() for e in elements)
    model_elements = next(iter(models.values())).elements
    if sorted((a, b)) != list(model_elements):
        raise DataError(f"diagram of {a}-{b}, but the models are for {list(model_elements)}")
    t = torch.tensor(list(temperatures), dtype=torch.float64)
    xb = torch.tensor(list(fractions), dtype=torch.float64)
    temperature = t.repeat_interleave(len(xb))
    x = xb.repeat(len(t))
    column = model_elements.index(b)
    bulk = torch.stack([x, 1 - x] if column == 0 else [1 - x, x], dim=1)
    result = equilibrium(models, temperature, bulk, **options)
    phases, xs, ts = [], [], []
    for n, point in enumerate(result.points):
        if not point.converged or len(point.sets) < 2:
            continue
        for s in point.sets:
            model = models[s.phase]
            composition = model.composition(s.site_fractions[None])[0]
            phases.append(s.phase)
            xs.append(float(composition[column]))
            ts.append(float(temperature[n]))
    return BinaryDiagram(
        (a, b),
        tuple(phases),
        torch.tensor(xs, dtype=torch.float64),
        torch.tensor(ts, dtype=torch.float64),
        result,
        sum(not p.converged for p in result.points),
    )


def plot_binary_diagram(diagram: BinaryDiagram, title: str | None = None) -> Figure:
    """A matplotlib Figure: boundary points coloured by phase (like pycalphad's binplot)."""
    from matforge.core.rundir import pyplot

    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 5.5))
    colours = plt.get_cmap("tab20")
    for index, phase in enumerate(sorted(set(diagram.phases))):
        x, t = diagram.boundaries(phase)
        axes.scatter(x.numpy(), t.numpy(), s=4, color=colours(index % 20), label=phase)
    a, b = diagram.elements
    axes.set_xlim(0, 1)
    t_all = diagram.result.temperature
    axes.set_ylim(float(t_all.min()), float(t_all.max()))
    axes.set_xlabel(f"x({b})")
    axes.set_ylabel("T / K")
    axes.set_title(title or f"{a}-{b}")
    if diagram.phases:
        axes.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=3, fontsize=8)
    figure.tight_layout()
    return figure


def save_binary_diagram(diagram: BinaryDiagram, path: str | Path, title: str | None = None) -> Path:
    """Write the diagram as an image, PNG unless the suffix names another format (refusing to
    overwrite an existing file)."""
    from matforge.core.rundir import pyplot, save_figure

    figure = plot_binary_diagram(diagram, title)
    try:
        return save_figure(path, figure, dpi=130)
    finally:
        pyplot().close(figure)
