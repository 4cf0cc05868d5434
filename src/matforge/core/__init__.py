"""The small shared core every part of matforge builds on."""

from matforge.core.composition import (
    Composition,
    compositions_from_matrix,
    compositions_to_matrix,
    parse_formula,
)
from matforge.core.config import JobConfig, StrictModel, load_config
from matforge.core.errors import (
    CompositionError,
    ConfigError,
    DataError,
    MatforgeError,
    RunDirectoryError,
)
from matforge.core.rundir import RunDirectory, atomic_write_bytes, atomic_write_json
from matforge.core.seeding import seed_everything

__all__ = [
    "Composition",
    "CompositionError",
    "ConfigError",
    "DataError",
    "JobConfig",
    "MatforgeError",
    "RunDirectory",
    "RunDirectoryError",
    "StrictModel",
    "atomic_write_bytes",
    "atomic_write_json",
    "compositions_from_matrix",
    "compositions_to_matrix",
    "load_config",
    "parse_formula",
    "seed_everything",
]
