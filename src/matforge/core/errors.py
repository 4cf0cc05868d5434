"""Exception hierarchy: every error matforge raises on bad input derives from MatforgeError.

The CLI turns a MatforgeError into a one-line message and a non-zero exit status, so the
messages are written for the person who supplied the input: they name the file, line or
field and say what was expected.
"""

from __future__ import annotations


class MatforgeError(Exception):
    """Base class of matforge's user-facing errors."""


class CompositionError(MatforgeError, ValueError):
    """A chemical formula or a composition mapping is malformed."""


class ConfigError(MatforgeError, ValueError):
    """A configuration file or an override is malformed or fails validation."""


class DataError(MatforgeError, LookupError):
    """A data set is unknown, missing or malformed."""


class RunDirectoryError(MatforgeError, OSError):
    """A run directory or one of its files cannot be created without losing data."""
