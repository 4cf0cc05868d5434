"""One reader for the CSV tables users hand to matforge, with errors that name file and line.

`read_table(path)` reads a comma-separated file with a header row into a `Table`: the
cells as text (a pandas DataFrame of strings, empty cells as ""), and for every row the
line of the file it came from. Blank lines are skipped but counted, as an editor counts
them, so "line 7" is line 7 of the file also when blank lines or quoted line breaks come
before it. The typed accessors check every cell and report the first bad ones by line and
column:

* `numeric(column, ...)`: floats, optionally finite / positive / non-negative;
* `boolean(column)`: true/false, yes/no, 1/0 (any case); anything else (empty, NaN,
  "maybe") is an error, never silently True;
* `text(column)`, `require(columns)`, `rename(mapping)`.

`design`, `psp` and `pinn` read their tables through it.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from matforge.core.errors import ConfigError

TRUE_WORDS = frozenset({"true", "yes", "1", "1.0", "t", "y"})
FALSE_WORDS = frozenset({"false", "no", "0", "0.0", "f", "n"})
#: How many bad lines an error message lists before "and N more".
SHOWN_LINES = 5


def _lines_phrase(lines: Sequence[int]) -> str:
    shown = ", ".join(str(n) for n in lines[:SHOWN_LINES])
    more = f" and {len(lines) - SHOWN_LINES} more" if len(lines) > SHOWN_LINES else ""
    return f"line{'s' if len(lines) > 1 else ''} {shown}{more}"


@dataclass
class Table:
    """Rows of a CSV file as text, with the file line of each row (see module docstring)."""

    path: Path
    frame: pd.DataFrame
    lines: np.ndarray  # (rows,) 1-based line of the file where each row starts

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def columns(self) -> list[str]:
        return list(self.frame.columns)

    def error(self, message: str, rows: Sequence[int] | np.ndarray = ()) -> ConfigError:
        """A ConfigError naming the file (and the lines of `rows`, indices into the table)."""
        where = f", {_lines_phrase(self.lines[np.asarray(rows, dtype=int)].tolist())}"
        return ConfigError(f"{self.path}{where if len(rows) else ''}: {message}")

    def require(self, columns: Sequence[str], hint: str = "") -> None:
        missing = [c for c in columns if c not in self.frame.columns]
        if missing:
            raise ConfigError(
                f"{self.path}: missing column(s) {missing}{hint}; the file has {self.columns}"
            )

    def rename(self, mapping: Mapping[str, str]) -> None:
        """Rename columns {csv name: new name}; every CSV name must exist."""
        absent = [c for c in mapping if c not in self.frame.columns]
        if absent:
            raise ConfigError(
                f"{self.path}: mapped column(s) {absent} not found; the file has {self.columns}"
            )
        self.frame = self.frame.rename(columns=dict(mapping))

    def text(self, column: str) -> list[str]:
        self.require([column])
        return self.frame[column].tolist()

    def numeric(
        self,
        column: str,
        *,
        finite: bool = True,
        positive: bool = False,
        non_negative: bool = False,
    ) -> np.ndarray:
        """The column as float64; bad cells are reported by line."""
        self.require([column])
        values = pd.to_numeric(self.frame[column].str.strip(), errors="coerce").to_numpy(
            dtype=float
        )
        bad = np.isnan(values) if not finite else ~np.isfinite(values)
        if bad.any():
            rows = np.flatnonzero(bad)
            example = self.frame[column].iloc[rows[0]]
            raise self.error(
                f"column {column!r} has missing or non-numeric values (first: {example!r})",
                rows,
            )
        if positive and (values <= 0).any():
            raise self.error(f"column {column!r} must be > 0", np.flatnonzero(values <= 0))
        if non_negative and (values < 0).any():
            raise self.error(f"column {column!r} must be >= 0", np.flatnonzero(values < 0))
        return values

    def boolean(self, column: str) -> np.ndarray:
        """The column as bool: true/false, yes/no, 1/0 (any case), nothing else."""
        self.require([column])
        words = self.frame[column].str.strip().str.lower()
        true, false = words.isin(TRUE_WORDS), words.isin(FALSE_WORDS)
        bad = ~(true | false)
        if bad.any():
            rows = np.flatnonzero(bad.to_numpy())
            example = self.frame[column].iloc[rows[0]]
            raise self.error(
                f"column {column!r} must hold true/false (or yes/no, 1/0), got {example!r}",
                rows,
            )
        return true.to_numpy()

    def subset(self, rows: np.ndarray) -> Table:
        return Table(self.path, self.frame.iloc[rows].reset_index(drop=True), self.lines[rows])


def read_table(path: str | Path, *, min_rows: int = 1) -> Table:
    """Read a CSV file with a header line (see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header: list[str] | None = None
            records: list[list[str]] = []
            lines: list[int] = []
            start = 1
            for record in reader:
                if not record or all(not cell.strip() for cell in record):
                    start = reader.line_num + 1
                    continue
                if header is None:
                    header = [cell.strip() for cell in record]
                    header_line = start
                else:
                    if len(record) != len(header):
                        raise ConfigError(
                            f"{path}, line {start}: {len(record)} fields, but the header "
                            f"(line {header_line}) has {len(header)}"
                        )
                    records.append(record)
                    lines.append(start)
                start = reader.line_num + 1
    except (UnicodeDecodeError, csv.Error) as error:
        raise ConfigError(f"{path}: not a readable CSV table ({error})") from None
    if header is None:
        raise ConfigError(f"{path}: the file is empty (expected a header line and rows)")
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated or "" in header:
        raise ConfigError(
            f"{path}, line {header_line}: the header needs distinct, non-empty column names"
            + (f" (repeated: {duplicated})" if duplicated else "")
        )
    if len(records) < min_rows:
        raise ConfigError(f"{path}: {len(records)} data rows; at least {min_rows} needed")
    frame = pd.DataFrame(records, columns=header, dtype=str)
    return Table(path, frame, np.asarray(lines, dtype=int))
