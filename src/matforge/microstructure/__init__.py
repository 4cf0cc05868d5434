"""Generative microstructures with hard volume-fraction constraints.

projection: exact projections onto {mean = phi} (two phases, K phases, per slice) with
implicit backward passes. sources: Cahn-Hilliard, Gaussian random fields, image stacks.
statistics: two-point correlation, chords, surface, percolation. homogenization:
differentiable FFT-based effective conductivity. models/training: conditional VAE and
WGAN-GP with the projection (or a penalty) as last layer. design: latent-space inverse
design for a target conductivity at an exact fraction. job: the `matforge micro` jobs.
"""

from matforge.microstructure.design import DesignSettings, design_microstructure
from matforge.microstructure.homogenization import (
    effective_conductivity,
    hashin_shtrikman_bounds,
    mixture_conductivity,
)
from matforge.microstructure.projection import (
    fraction_violation,
    project_fraction,
    project_phases,
    project_slices,
)
from matforge.microstructure.sources import (
    cahn_hilliard,
    gaussian_random_field,
    load_images,
    threshold_fraction,
)
from matforge.microstructure.statistics import (
    chord_lengths,
    percolates,
    radial_average,
    specific_surface,
    two_point_correlation,
)
from matforge.microstructure.training import (
    GenerativeModel,
    MicrostructureSet,
    TrainSettings,
    train_vae,
    train_wgan,
)

__all__ = [
    "DesignSettings",
    "GenerativeModel",
    "MicrostructureSet",
    "TrainSettings",
    "cahn_hilliard",
    "chord_lengths",
    "design_microstructure",
    "effective_conductivity",
    "fraction_violation",
    "gaussian_random_field",
    "hashin_shtrikman_bounds",
    "load_images",
    "mixture_conductivity",
    "percolates",
    "project_fraction",
    "project_phases",
    "project_slices",
    "radial_average",
    "specific_surface",
    "threshold_fraction",
    "train_vae",
    "train_wgan",
    "two_point_correlation",
]
