"""Reading TDB databases: pycalphad's parser, with errors that name the file and the problem."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from matforge.core.errors import DataError

if TYPE_CHECKING:
    from pycalphad import Database


def _require_pycalphad() -> None:
    try:
        import pycalphad  # noqa: F401
    except ImportError:
        raise DataError(
            "reading TDB databases needs pycalphad: pip install 'matforge[calphad]'"
        ) from None


def resolve_database_path(source: str | Path) -> Path:
    """A TDB path, or the name of a bundled TDB data set (see `matforge data list`)."""
    path = Path(source)
    if path.suffix.lower() == ".tdb" or path.exists():
        if not path.is_file():
            raise DataError(f"TDB file {str(path)!r} not found")
        return path
    from matforge.data import get_dataset

    dataset = get_dataset(str(source))
    if dataset.kind != "tdb":
        raise DataError(f"data set {dataset.name!r} is a {dataset.kind}, not a TDB database")
    return dataset.path()


@functools.lru_cache(maxsize=16)
def _load(path: Path, mtime_ns: int) -> Database:
    from pycalphad import Database

    try:
        return Database(str(path))
    except Exception as exc:  # pycalphad raises pyparsing and plain errors alike
        raise DataError(f"{str(path)!r} is not a readable TDB database: {exc}") from None


def load_database(source: str | Path) -> Database:
    """Load a TDB database (cached per file and modification time)."""
    _require_pycalphad()
    path = resolve_database_path(source).resolve()
    return _load(path, path.stat().st_mtime_ns)


def database_elements(db: Database) -> list[str]:
    """Real elements of a database: without vacancies ('VA') and the electron ('/-')."""
    return sorted(str(el) for el in db.elements if el not in ("VA", "/-"))
