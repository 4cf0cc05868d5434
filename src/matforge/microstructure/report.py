"""Figures of the microstructure jobs: sample grids and two-point correlations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from matforge.core.rundir import pyplot
from matforge.microstructure.statistics import radial_average


def _image(field: torch.Tensor) -> torch.Tensor:
    """A 2D view of a field: itself, or the middle slice of a 3D one."""
    field = field.detach().cpu()
    return field if field.dim() == 2 else field[field.shape[0] // 2]


def sample_grid(groups: Sequence[torch.Tensor], titles: Sequence[float], columns: int = 6) -> Any:
    """One row of samples per group (e.g. per volume fraction), grey scale 0..1."""
    plt = pyplot()
    rows = len(groups)
    figure, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.7 * rows), squeeze=False)
    for row, (group, title) in enumerate(zip(groups, titles, strict=True)):
        for column in range(columns):
            axis = axes[row][column]
            axis.axis("off")
            if column < len(group):
                axis.imshow(_image(group[column]), cmap="gray", vmin=0, vmax=1)
                axis.set_title(
                    f"phi={float(group[column].mean()):.4f}" if column == 0 else "", fontsize=7
                )
        axes[row][0].text(-0.1, 0.5, f"{title:g}", transform=axes[row][0].transAxes, ha="right")
    figure.tight_layout()
    return figure


def s2_figure(rows: Sequence[dict[str, Any]], dims: int) -> Any:
    """Radially averaged S2(r), generated (dashed) vs training (solid), per fraction."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(5, 3.5))
    for row in rows:
        r, training = radial_average(row["s2_training"][None], spatial_dims=dims)
        _, generated = radial_average(row["s2_generated"][None], spatial_dims=dims)
        line = axis.plot(r, training[0], label=f"training phi={row['phi']:g}")[0]
        axis.plot(
            r,
            generated[0],
            "--",
            color=line.get_color(),
            label=f"generated ({row['s2_rel_error']:.1%})",
        )
    axis.set_xlabel("r (voxels)")
    axis.set_ylabel("S2(r)")
    axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def design_figure(field: torch.Tensor, history: Sequence[dict[str, float]], title: str) -> Any:
    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(7, 3.2))
    left.imshow(_image(field), cmap="gray", vmin=0, vmax=1)
    left.set_title(title, fontsize=8)
    left.axis("off")
    right.semilogy(
        [h["step"] for h in history], [max(h["best_relative_error"], 1e-6) for h in history]
    )
    right.set_xlabel("step")
    right.set_ylabel("best relative error")
    figure.tight_layout()
    return figure
