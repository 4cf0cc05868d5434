"""matforge: machine-learning-driven inverse materials design."""

from matforge._version import __version__
from matforge.core import (
    Composition,
    CompositionError,
    ConfigError,
    JobConfig,
    MatforgeError,
    RunDirectory,
    load_config,
    seed_everything,
)

__all__ = [
    "Composition",
    "CompositionError",
    "ConfigError",
    "JobConfig",
    "MatforgeError",
    "RunDirectory",
    "__version__",
    "load_config",
    "seed_everything",
]
