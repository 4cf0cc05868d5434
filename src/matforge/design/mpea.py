"""Room-temperature yield strength from the MPEA data set (Borg et al., Sci. Data 7, 430).

The table is messy in the ways measured data are: entries without a yield strength
(hardness-only papers), tests far from room temperature, formulas that do not parse. Every
dropped row is counted under its reason, so a user sees what the model was fitted on.
Repeated measurements of one composition (different processing, test type or paper) are
kept: they are the noise the surrogate must learn; cross-validation keeps them in one fold
(`groups`) so that a composition is never predicted from its own repeat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from matforge.core.errors import MatforgeError

#: Test temperatures (deg C) counted as room temperature.
ROOM_TEMPERATURE_C = (15.0, 30.0)


@dataclass
class DropReport:
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def drop(self, reason: str, label: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        self.examples.setdefault(reason, [])
        if len(self.examples[reason]) < 3:
            self.examples[reason].append(label)

    def lines(self) -> list[str]:
        out = [f"kept {self.kept} rows"]
        for reason, count in sorted(self.dropped.items(), key=lambda kv: -kv[1]):
            out.append(f"dropped {count}: {reason} (e.g. {', '.join(self.examples[reason])})")
        return out


def room_temperature_strength(
    frame: pd.DataFrame | None = None,
    *,
    temperature_range: tuple[float, float] = ROOM_TEMPERATURE_C,
) -> tuple[pd.DataFrame, DropReport]:
    """Rows with a room-temperature yield strength and a parsed composition."""
    from matforge.core.composition import Composition
    from matforge.data import load_mpea

    frame = load_mpea(with_compositions=False) if frame is None else frame
    report = DropReport()
    rows = []
    low, high = temperature_range
    for index, row in frame.iterrows():
        label = f"row {index + 2} {row['formula']}"
        strength = row["yield_strength_mpa"]
        if pd.isna(strength):
            report.drop("no yield strength", label)
            continue
        if not strength > 0:
            report.drop("yield strength not positive", label)
            continue
        temperature = row["test_temperature_c"]
        if pd.isna(temperature) or not low <= temperature <= high:
            report.drop(f"test temperature outside {low:g}-{high:g} C", label)
            continue
        try:
            composition = Composition(str(row["formula"]))
        except MatforgeError:
            report.drop("formula does not parse", label)
            continue
        rows.append(
            {
                "formula": row["formula"],
                "composition": composition,
                "yield_strength_mpa": float(strength),
                "test_type": row["test_type"],
                "microstructure": row["microstructure"],
                "processing": row["processing"],
                "doi": row["doi"],
            }
        )
    report.kept = len(rows)
    return pd.DataFrame(rows), report


def composition_matrix(
    table: pd.DataFrame, elements: Sequence[str] | None = None
) -> tuple[torch.Tensor, tuple[str, ...]]:
    """Mole fractions (n, E) over `elements` (default: every element in the table)."""
    if elements is None:
        elements = sorted({e for c in table["composition"] for e in c.elements})
    elements = tuple(elements)
    rows = [c.to_vector(elements) for c in table["composition"]]
    x = torch.tensor(np.stack(rows) if rows else np.zeros((0, len(elements))), dtype=torch.float64)
    return x, elements


def composition_groups(table: pd.DataFrame) -> torch.Tensor:
    """Group id per row: rows of one composition share it."""
    keys = [c.to_string(4) for c in table["composition"]]
    index = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    return torch.tensor([index[k] for k in keys])


def mpea_pool(elements: Sequence[str]):  # type: ignore[no-untyped-def]
    """Pool-based oracle of the measured alloys made only of `elements`.

    One candidate per composition; its objective is the mean room-temperature yield
    strength of its measurements, and it counts as feasible when every measurement reports
    a single solid solution (microstructure "FCC" or "BCC").
    """
    from matforge.core.errors import ConfigError
    from matforge.design.oracles import TableOracle

    table, _ = room_temperature_strength()
    allowed = set(elements)
    table = table[[set(c.elements) <= allowed for c in table["composition"]]].copy()
    if table.empty:
        raise ConfigError(
            f"no MPEA alloy with a room-temperature yield strength is made of {sorted(allowed)}"
        )
    table["key"] = [c.to_string(4) for c in table["composition"]]
    table["single"] = table["microstructure"].isin(["FCC", "BCC"])
    grouped = table.groupby("key", sort=False)
    first = grouped.first()
    x, _ = composition_matrix(first, elements)
    return TableOracle(
        elements,
        x,
        torch.tensor(grouped["yield_strength_mpa"].mean().to_numpy(), dtype=torch.float64),
        torch.tensor(grouped["single"].all().to_numpy()),
        labels=list(first["formula"]),
    )
