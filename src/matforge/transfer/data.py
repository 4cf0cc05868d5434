"""Composition-property data: formula tables (with line-numbered errors), the bundled MPEA
tasks and the Matbench splits CrabNet uses.

`read_formula_table` parses every formula with `matforge.core.composition` and reports
unparseable formulas, unknown elements and bad target values by file line; with
`drop_bad=True` it leaves those rows out instead and lists them in `FormulaSet.dropped`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from matforge.core.composition import Composition
from matforge.core.errors import CompositionError, ConfigError
from matforge.core.table import read_table
from matforge.transfer.featurize import CompositionBatch, batch_compositions

__all__ = ["FormulaSet", "matbench_split", "mpea_task", "read_formula_table"]


@dataclass
class FormulaSet:
    formulas: list[str]
    compositions: list[Composition]
    targets: np.ndarray  # (n,), NaN where unknown (prediction inputs)
    dropped: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)

    def __post_init__(self) -> None:
        self.batch: CompositionBatch = batch_compositions(self.compositions)

    def __len__(self) -> int:
        return len(self.compositions)

    def subset(self, index: Sequence[int] | np.ndarray) -> FormulaSet:
        index = np.asarray(index, dtype=int)
        return FormulaSet(
            [self.formulas[i] for i in index],
            [self.compositions[i] for i in index],
            self.targets[index],
        )

    @property
    def y(self) -> torch.Tensor:
        return torch.as_tensor(self.targets, dtype=torch.float32)

    @property
    def arity(self) -> np.ndarray:
        return np.array([len(c.fractions) for c in self.compositions])


def _parse(formula: str) -> Composition:
    composition = Composition(formula)
    if not composition.fractions:
        raise CompositionError("no element with a positive amount")
    return composition


def read_formula_table(
    path: str | Path,
    *,
    target: str | None = "target",
    formula: str = "formula",
    drop_bad: bool = False,
) -> FormulaSet:
    """A CSV with a formula column (and a target column unless `target` is None)."""
    table = read_table(path)
    table.require([formula] + ([target] if target else []))
    formulas: list[str] = []
    compositions: list[Composition] = []
    targets: list[float] = []
    bad: list[tuple[int, str]] = []
    values = table.frame[target].str.strip() if target else None
    for row, text in enumerate(table.text(formula)):
        line = int(table.lines[row])
        try:
            composition = _parse(text)
        except CompositionError as error:
            bad.append((line, f"formula {text!r}: {error}"))
            continue
        value = float("nan")
        if values is not None:
            try:
                value = float(values.iloc[row])
            except ValueError:
                value = float("nan")
            if not np.isfinite(value):
                bad.append((line, f"{target} {values.iloc[row]!r} is not a finite number"))
                continue
        formulas.append(text.strip())
        compositions.append(composition)
        targets.append(value)
    if bad and not drop_bad:
        shown = "; ".join(f"line {line}: {reason}" for line, reason in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise ConfigError(
            f"{path}: {len(bad)} bad row(s): {shown}{more} (drop them with --drop-bad)"
        )
    if not compositions:
        raise ConfigError(f"{path}: no usable rows")
    return FormulaSet(formulas, compositions, np.array(targets), bad)


def _mean_by_formula(compositions: list[Composition], values: np.ndarray) -> FormulaSet:
    """One entry per distinct composition (the mean of its measurements)."""
    groups: dict[Composition, list[float]] = {}
    for composition, value in zip(compositions, values, strict=True):
        groups.setdefault(composition, []).append(float(value))
    keys = sorted(groups)
    return FormulaSet([k.formula for k in keys], keys, np.array([np.mean(groups[k]) for k in keys]))


def mpea_task(
    prop: str = "yield_strength_mpa", split: str = "arity"
) -> tuple[FormulaSet, FormulaSet]:
    """(source, target) from the bundled MPEA data (Borg et al. 2020), room temperature.

    split="arity": quinary alloys -> senary alloys; split="structure": FCC -> BCC
    (single-phase entries by the data set's `structure` column). Repeated measurements
    of one composition are averaged.
    """
    from matforge.data import load_mpea

    if prop not in ("yield_strength_mpa", "hardness_hv"):
        raise ConfigError(f"MPEA property must be yield_strength_mpa or hardness_hv, got {prop!r}")
    frame = load_mpea()
    frame = frame[np.isfinite(frame[prop].to_numpy(dtype=float))]
    if prop == "yield_strength_mpa":
        temperature = frame["test_temperature_c"].to_numpy(dtype=float)
        frame = frame[(temperature >= 15) & (temperature <= 30)]
    compositions = list(frame["composition"])
    values = frame[prop].to_numpy(dtype=float)
    if split == "arity":
        arity = np.array([len(c.fractions) for c in compositions])
        pick = {"source": arity == 5, "target": arity == 6}
    elif split == "structure":
        structure = frame["structure"].astype(str).str.upper().to_numpy()
        pick = {"source": structure == "FCC", "target": structure == "BCC"}
    else:
        raise ConfigError(f"MPEA split must be arity or structure, got {split!r}")
    sets = [
        _mean_by_formula(
            [c for c, k in zip(compositions, pick[name], strict=True) if k], values[pick[name]]
        )
        for name in ("source", "target")
    ]
    return sets[0], sets[1]


def matbench_split(
    root: str | Path, task: str, index: int, *, drop_bad: bool = False
) -> tuple[FormulaSet, FormulaSet, FormulaSet]:
    """CrabNet's (train, val, test) split `index` of a Matbench task."""
    folder = Path(root) / task
    return tuple(  # type: ignore[return-value]
        read_formula_table(folder / f"{part}{index}.csv", drop_bad=drop_bad)
        for part in ("train", "val", "test")
    )
