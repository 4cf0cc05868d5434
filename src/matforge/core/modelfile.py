"""Versioned model files: a `torch.save` archive of plain data, read without running code.

`save_record` writes {"format", "format_version", "matforge_version", ...} atomically;
`load_record` reads it back with `weights_only=True` and turns every way a file can be
wrong (missing, not a torch archive, truncated, another format, a newer version, a
missing part) into one `ConfigError` that names the file. Each model kind (mlip
potentials, psp chains, ...) keeps its own format name and version.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matforge.core.errors import ConfigError


def save_record(
    path: str | Path,
    format_name: str,
    version: int,
    content: Mapping[str, Any],
    *,
    overwrite: bool = False,
) -> Path:
    import torch

    from matforge import __version__
    from matforge.core.rundir import atomic_write_bytes

    record = {
        "format": format_name,
        "format_version": version,
        "matforge_version": __version__,
        **content,
    }
    buffer = io.BytesIO()
    torch.save(record, buffer)
    return atomic_write_bytes(path, buffer.getvalue(), overwrite=overwrite)


class Record(dict):
    """A loaded model file: a dict whose missing keys are reported with the file."""

    path: Path

    def part(self, *keys: str) -> Any:
        value: Any = self
        for depth, key in enumerate(keys):
            if not isinstance(value, Mapping) or key not in value:
                raise ConfigError(
                    f"{self.path}: damaged model file, no {'.'.join(keys[: depth + 1])!r}"
                )
            value = value[key]
        return value


def load_record(path: str | Path, format_name: str, max_version: int, what: str) -> Record:
    """Read a file written by `save_record` with the format `format_name`."""
    import torch

    from matforge import __version__

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such {what} file")
    try:
        data = torch.load(path, weights_only=True)
    except Exception as error:  # torch raises many kinds for a bad or truncated file
        # torch's own messages run to paragraphs; the first sentence says what broke.
        detail = (str(error).strip().splitlines() or [type(error).__name__])[0]
        detail = detail.split(". ")[0][:160]
        raise ConfigError(f"{path}: not a {what} file (cannot read it: {detail})") from None
    if not isinstance(data, dict) or data.get("format") != format_name:
        raise ConfigError(f"{path}: not a {what} file (no {format_name!r} header)")
    version = data.get("format_version")
    if not isinstance(version, int):
        raise ConfigError(f"{path}: damaged {what} file (format_version {version!r})")
    if version > max_version:
        raise ConfigError(
            f"{path}: written by matforge {data.get('matforge_version', '?')} in format "
            f"version {version}; this matforge ({__version__}) reads up to version "
            f"{max_version}. Upgrade matforge to load it."
        )
    record = Record(data)
    record.path = path
    return record
