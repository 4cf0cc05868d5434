"""Reduce a large TDB database to the elements of one alloy system.

Multicomponent databases (e.g. LibreCalphad's mf-steel, ~80 elements) take seconds to parse
although one alloy system uses a small part of them. `subset_database` keeps the species,
phases, parameters and functions that the chosen elements need; the result gives the same
Gibbs energies for those elements (checked by the tests) and loads in a fraction of the
time. It works on pycalphad's `Database` object and writes with pycalphad's TDB writer.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matforge.calphad.database import database_elements, load_database
from matforge.core.errors import DataError
from matforge.core.rundir import atomic_write_text

if TYPE_CHECKING:
    from pycalphad import Database

_ALWAYS = frozenset({"VA", "/-"})


def _species_within(species: Any, allowed: frozenset[str]) -> bool:
    return set(species.constituents) <= allowed


def _referenced_symbols(expressions: Iterable[Any], symbols: dict[str, Any]) -> set[str]:
    """Names of database FUNCTIONs the expressions use, directly or through other functions."""
    pending = [s for e in expressions for s in getattr(e, "free_symbols", ())]
    found: set[str] = set()
    while pending:
        name = str(pending.pop())
        if name in symbols and name not in found:
            found.add(name)
            pending.extend(getattr(symbols[name], "free_symbols", ()))
    return found


def _add_piecewise(first: Any, second: Any, key: tuple[Any, ...]) -> Any:
    """Sum of two parameters over the same temperature ranges, as one piecewise function.

    TDB files hold one expression per temperature range, so a sum of two piecewise
    functions has to be written range by range.
    """
    import symengine

    def branches(expr: Any) -> list[tuple[Any, Any]]:
        if type(expr).__name__ != "Piecewise":
            return [(expr, symengine.true)]
        args = list(expr.args)
        return list(zip(args[0::2], args[1::2], strict=True))

    a, b = branches(first), branches(second)
    if [c for _, c in a] != [c for _, c in b]:
        raise DataError(
            f"parameter {key[0]} {key[2]}{key[3]} is defined twice over different "
            f"temperature ranges; cannot merge it into one TDB parameter"
        )
    return symengine.Piecewise(*[(x + y, c) for (x, c), (y, _) in zip(a, b, strict=True)])


def _merge_duplicates(parameters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One parameter per (phase, constituents, type, order, diffusing species).

    A database may define the same parameter twice; pycalphad's Model adds every matching
    parameter, so the merged parameter is the sum, which keeps the Gibbs energy unchanged
    and gives the TDB writer unique keys to sort.
    """
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for parameter in parameters:
        key = (
            parameter["phase_name"],
            parameter["constituent_array"],
            parameter["parameter_type"],
            parameter["parameter_order"],
            parameter["diffusing_species"],
        )
        if key in merged:
            merged[key]["parameter"] = _add_piecewise(
                merged[key]["parameter"], parameter["parameter"], key
            )
        else:
            merged[key] = parameter
    return list(merged.values())


def subset_database(source: str | Path | Database, elements: Sequence[str]) -> Database:
    """A new Database holding only what a system of `elements` (plus vacancies) needs."""
    from pycalphad import Database

    db = source if not isinstance(source, (str, Path)) else load_database(source)
    requested = {str(e).upper() for e in elements}
    unknown = sorted(requested - set(database_elements(db)))
    if unknown:
        raise DataError(
            f"unknown element(s) {unknown}; the database has {', '.join(database_elements(db))}"
        )
    allowed = frozenset(requested | _ALWAYS)

    subset = Database()
    subset.elements = {e for e in db.elements if e in allowed}
    subset.species = {s for s in db.species if _species_within(s, allowed)}
    subset.refstates = {k: copy.deepcopy(v) for k, v in db.refstates.items() if k in allowed}
    for name, phase in db.phases.items():
        sublattices = [
            frozenset(s.name for s in sub if _species_within(s, allowed))
            for sub in phase.constituents
        ]
        if all(sublattices):
            subset.add_phase(name, copy.deepcopy(phase.model_hints), phase.sublattices)
            subset.add_phase_constituents(name, sublattices)
    parameters = [
        copy.deepcopy(p)
        for p in db._parameters.all()
        if p["phase_name"] in subset.phases
        and all(_species_within(s, allowed) for sub in p["constituent_array"] for s in sub)
        and _species_within(p["diffusing_species"], allowed | {None})
    ]
    subset._parameters.insert_multiple(_merge_duplicates(parameters))
    used = _referenced_symbols([p["parameter"] for p in parameters], db.symbols)
    subset.symbols = {name: db.symbols[name] for name in sorted(used)}
    # Model hints can name a partner phase (ordered <-> disordered) that did not survive.
    for phase in subset.phases.values():
        for key in ("ordered_phase", "disordered_phase"):
            partner = phase.model_hints.get(key)
            if partner is not None and partner not in subset.phases:
                del phase.model_hints[key]
    return subset


def leading_comments(path: str | Path) -> str:
    """The comment block ('$' lines) opening a TDB file: where its authors put provenance
    and license notices, which a subset must carry along."""
    lines = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("$"):
            break
        lines.append(stripped[1:].strip() if stripped.startswith("$") else "")
    return "\n".join(lines).strip("\n")


def write_database(
    db: Database, path: str | Path, *, header: str = "", overwrite: bool = False
) -> Path:
    """Write `db` as TDB (atomically; an existing file is kept unless `overwrite`)."""
    # Function names longer than the 8 characters of the original TDB format are kept:
    # pycalphad reads them back, and renaming would break the link to the source database.
    text = db.to_string(fmt="tdb", if_incompatible="ignore")
    if header:
        text = "".join(f"$ {line}".rstrip() + "\n" for line in header.splitlines()) + "\n" + text
    return atomic_write_text(path, text, overwrite=overwrite)
