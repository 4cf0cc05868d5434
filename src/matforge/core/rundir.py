"""Run directories and atomic file writes.

Each job writes into its own ``runs/<name>-<timestamp>/``: the resolved config, a
``metrics.json``, artefacts and plots. Directories are created exclusively, so an existing
run is never written into by a new job; files are written to a temporary file in the same
folder and renamed into place, so a reader (or a crash) never sees half a file.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matforge.core.errors import RunDirectoryError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure
    from pydantic import BaseModel

_TIMESTAMP_FORMAT = "%Y%m%d-%H%M%S"


def _new_file_mode(path: Path) -> int:
    """Mode a plainly created file would get: an existing file's, else 0666 minus umask."""
    if path.exists():
        return path.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_MAX_SUFFIX = 1000


def atomic_write_bytes(path: str | Path, data: bytes, *, overwrite: bool = False) -> Path:
    """Write `data` to `path` atomically; refuse to replace an existing file unless asked."""
    path = Path(path)
    if not path.parent.is_dir():
        raise RunDirectoryError(f"cannot write {str(path)!r}: folder {str(path.parent)!r} missing")
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        # mkstemp makes the file private (0600); results should get the usual permissions.
        os.chmod(tmp, _new_file_mode(path))
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            # link() fails if the target exists, so the no-overwrite check has no race window.
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise RunDirectoryError(
                    f"{str(path)!r} already exists; refusing to overwrite it"
                ) from None
            except OSError:
                if path.exists():
                    raise RunDirectoryError(
                        f"{str(path)!r} already exists; refusing to overwrite it"
                    ) from None
                os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | Path, text: str, *, overwrite: bool = False) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def to_jsonable(value: Any) -> Any:
    """Convert numpy/torch scalars and arrays, paths and non-finite floats for strict JSON.

    NaN and infinities have no JSON spelling; they become null so that every file and every
    ``--json`` output parses with strict JSON readers.
    """
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "tolist"):  # numpy arrays/scalars, torch tensors
        return to_jsonable(value.tolist())
    if hasattr(value, "item"):
        return to_jsonable(value.item())
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def dumps_json(value: Any, *, indent: int | None = 2) -> str:
    return json.dumps(to_jsonable(value), indent=indent, allow_nan=False)


def atomic_write_json(path: str | Path, value: Any, *, overwrite: bool = False) -> Path:
    return atomic_write_text(path, dumps_json(value) + "\n", overwrite=overwrite)


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend (files only, no display needed);
    imported on first use, as matplotlib is slow to import."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(
    path: str | Path, figure: Figure, *, dpi: int = 150, overwrite: bool = False
) -> Path:
    """Write a matplotlib figure atomically, in the format its suffix names (default PNG)."""
    path = Path(path)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=path.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue(), overwrite=overwrite)


class RunDirectory:
    """The folder of one job's outputs. Create with `RunDirectory.create`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise RunDirectoryError(f"run directory {str(self.path)!r} does not exist")

    @classmethod
    def create(
        cls, name: str, root: str | Path = "runs", *, timestamp: datetime | None = None
    ) -> RunDirectory:
        """Make ``root/<name>-<timestamp>``; never reuses an existing folder (adds -2, -3...)."""
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise RunDirectoryError(f"run name {name!r} must be a plain folder name")
        root = Path(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirectoryError(f"cannot create runs folder {str(root)!r}: {exc}") from None
        stamp = (timestamp or datetime.now()).strftime(_TIMESTAMP_FORMAT)
        base = f"{name}-{stamp}"
        for attempt in range(1, _MAX_SUFFIX + 1):
            candidate = root / (base if attempt == 1 else f"{base}-{attempt}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            return cls(candidate)
        raise RunDirectoryError(f"{_MAX_SUFFIX} runs named {base!r} exist in {str(root)!r}")

    def file(self, relative: str | Path) -> Path:
        """Path of a file inside the run; folders on the way are created."""
        target = (self.path / relative).resolve()
        if not target.is_relative_to(self.path.resolve()):
            raise RunDirectoryError(f"{str(relative)!r} lies outside the run directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    # The run owns its files, so later writes (metrics updated each iteration) replace them.
    def write_bytes(self, relative: str | Path, data: bytes) -> Path:
        return atomic_write_bytes(self.file(relative), data, overwrite=True)

    def write_text(self, relative: str | Path, text: str) -> Path:
        return atomic_write_text(self.file(relative), text, overwrite=True)

    def write_json(self, relative: str | Path, value: Any) -> Path:
        return atomic_write_json(self.file(relative), value, overwrite=True)

    def write_config(self, config: BaseModel, relative: str = "config.yaml") -> Path:
        from matforge.core.config import dump_config

        return self.write_text(relative, dump_config(config))

    def write_metrics(self, metrics: Mapping[str, Any], relative: str = "metrics.json") -> Path:
        return self.write_json(relative, metrics)

    def write_table(self, relative: str | Path, frame: pd.DataFrame) -> Path:
        return self.write_text(relative, frame.to_csv(index=False))

    def save_figure(self, relative: str | Path, figure: Figure, *, dpi: int = 150) -> Path:
        return save_figure(self.file(relative), figure, dpi=dpi, overwrite=True)

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"
