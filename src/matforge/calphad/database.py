"""Reading TDB databases: pycalphad's parser, with errors that name the file and the problem."""

from __future__ import annotations

import contextlib
import functools
import io
import warnings
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


def _parse(text: str) -> Database:
    from pycalphad import Database

    # pycalphad prints notices (e.g. "Undefined phase") while parsing: keep stdout clean
    # for the CLI's JSON output.
    with contextlib.redirect_stdout(io.StringIO()):
        return Database.from_string(text, fmt="tdb")


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"{exc.args[0]!r} is used but never declared (ELEMENT, SPECIES or PHASE)"
    # pyparsing repeats the command with a caret on later lines: the first line says it.
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _parses(text: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _parse(text)
    except Exception:  # any parser failure: the prefix does not parse
        return False
    return True


def _first_failing_command(text: str) -> tuple[int, str] | None:
    """(line, command) of the first TDB command whose addition makes parsing fail.

    Commands end with '!'; a binary search over prefixes of whole commands finds the
    shortest failing one. Text after the last '!' is a command left unterminated.
    """
    ends = [i + 1 for i, char in enumerate(text) if char == "!"]
    if not ends or _parses(text[: ends[-1]]):
        start = ends[-1] if ends else 0
        tail = text[start:]
        if not tail.strip():
            return None
        line = text.count("\n", 0, start + len(tail) - len(tail.lstrip())) + 1
        return line, " ".join(tail.split())
    low, high = 0, len(ends)  # a prefix of `low` commands parses, one of `high` fails
    while high - low > 1:
        middle = (low + high) // 2
        if _parses(text[: ends[middle - 1]]):
            low = middle
        else:
            high = middle
    start = ends[low - 1] if low else 0
    command = text[start : ends[high - 1]]
    line = text.count("\n", 0, start + len(command) - len(command.lstrip())) + 1
    return line, " ".join(command.split())


@functools.lru_cache(maxsize=16)
def _load(path: Path, mtime_ns: int) -> Database:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataError(f"cannot read TDB file {str(path)!r}: {exc}") from None
    try:
        return _parse(text)
    except Exception as exc:  # pycalphad raises pyparsing and plain errors alike
        found = _first_failing_command(text)
        where = f" line {found[0]}: {found[1][:120]!r}" if found else ""
        raise DataError(f"{str(path)!r}{where} is not valid TDB: {_describe(exc)}") from None


def load_database(source: str | Path) -> Database:
    """Load a TDB database (cached per file and modification time)."""
    _require_pycalphad()
    path = resolve_database_path(source).resolve()
    return _load(path, path.stat().st_mtime_ns)


def database_elements(db: Database) -> list[str]:
    """Real elements of a database: without vacancies ('VA') and the electron ('/-')."""
    return sorted(str(el) for el in db.elements if el not in ("VA", "/-"))
