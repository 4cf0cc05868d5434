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


def copy_database(db: Database) -> Database:
    """A deep copy (pycalphad's `__deepcopy__` shares phases, symbols and species with the
    original, and a loaded database is cached: editing a shallow copy would edit that)."""
    from pycalphad import Database

    duplicate = Database()
    for key, value in db.__dict__.items():
        if key != "_parameters":
            setattr(duplicate, key, copy.deepcopy(value))
    duplicate._parameters.insert_multiple(copy.deepcopy(db._parameters.all()))
    return duplicate


def add_unary_elements(
    db: Database,
    unary: str | Path | Database,
    elements: Sequence[str],
    phases: Sequence[str] = ("FCC_A1", "LIQUID"),
) -> Database:
    """A copy of `db` with `elements` added to `phases` from a unary (pure-element)
    database: their lattice stabilities (G(phase, EL:VA;0) and any other pure-element
    parameter) go in, with no interaction parameter, so every pair that involves them
    mixes ideally in those phases. For elements a multicomponent assessment lacks; report
    what is missing with `interaction_coverage`."""
    from pycalphad.variables import Species

    source = unary if not isinstance(unary, (str, Path)) else load_database(unary)
    added = {str(e).upper() for e in elements}
    unknown = sorted(added - set(database_elements(source)))
    if unknown:
        raise DataError(f"the unary database has no {unknown}")
    missing_phases = [p for p in phases if p not in db.phases or p not in source.phases]
    if missing_phases:
        raise DataError(f"phase(s) {missing_phases} are not in both databases")
    merged = copy_database(db)
    allowed = frozenset(added | _ALWAYS)
    merged.elements |= added
    merged.species |= {Species(e) for e in added}
    for element in added:
        if element in source.refstates:
            merged.refstates[element] = copy.deepcopy(source.refstates[element])
    parameters = []
    for name in phases:
        # ordered partners (L1_2, L1_0 of FCC_A1) share the disordered phase's constituents
        partners = [
            other
            for other, phase in merged.phases.items()
            if other != name and phase.model_hints.get("disordered_phase") == name
        ]
        for target in (name, *partners):
            sublattices = [
                frozenset(s.name for s in sub) for sub in merged.phases[target].constituents
            ]
            merged.phases[target].constituents = ()
            merged.add_phase_constituents(
                target, [sub if sub <= _ALWAYS else sub | added for sub in sublattices]
            )
        parameters += [
            copy.deepcopy(p)
            for p in source._parameters.all()
            if p["phase_name"] == name
            and any(s.name in added for sub in p["constituent_array"] for s in sub)
            and all(_species_within(s, allowed) for sub in p["constituent_array"] for s in sub)
        ]
    merged._parameters.insert_multiple(parameters)
    used = _referenced_symbols([p["parameter"] for p in parameters], source.symbols)
    clashes = sorted(
        n for n in used if n in merged.symbols and merged.symbols[n] != source.symbols[n]
    )
    if clashes:
        raise DataError(f"functions {clashes} differ between the two databases")
    merged.symbols.update({n: source.symbols[n] for n in used})
    return merged


def interaction_coverage(db: Database, phase: str, elements: Sequence[str]) -> dict[str, int]:
    """Per pair of `elements` ("AL-CU"), how many interaction parameters of `phase`
    (binary or higher, any order) involve both; 0 means the pair mixes ideally there."""
    names = sorted(str(e).upper() for e in elements)
    counts = {f"{a}-{b}": 0 for i, a in enumerate(names) for b in names[i + 1 :]}
    for p in db._parameters.all():
        if p["phase_name"] != phase:
            continue
        for sub in p["constituent_array"]:
            present = sorted({s.name for s in sub} & set(names))
            for i, a in enumerate(present):
                for b in present[i + 1 :]:
                    counts[f"{a}-{b}"] += 1
    return counts


def drop_phases(db: Database, phases: Sequence[str]) -> Database:
    """A copy of `db` without `phases` (and their parameters), e.g. a phase pycalphad cannot
    build for the system at hand."""
    unknown = sorted(set(phases) - set(db.phases))
    if unknown:
        raise DataError(f"phase(s) {unknown} are not in the database")
    kept = copy_database(db)
    for name in phases:
        del kept.phases[name]
    remaining = [p for p in kept._parameters.all() if p["phase_name"] not in phases]
    kept._parameters.truncate()
    kept._parameters.insert_multiple(remaining)
    for phase in kept.phases.values():
        hints = phase.model_hints
        partners = [hints.get("ordered_phase"), hints.get("disordered_phase")]
        if any(p is not None and p not in kept.phases for p in partners):
            # an order-disorder pair is written as both hints or neither
            phase.model_hints = {
                k: v for k, v in hints.items() if k not in ("ordered_phase", "disordered_phase")
            }
    return kept
