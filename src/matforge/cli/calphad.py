"""`matforge calphad ...`: databases, equilibria, binary phase diagrams, composition design."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from matforge.cli._output import (
    ConfigArgument,
    JsonFlag,
    OverridesOption,
    print_json,
    stdout_console,
)

app = typer.Typer(
    help="CALPHAD databases, equilibria, phase diagrams and composition design.",
    no_args_is_help=True,
)


@app.command("subset")
def subset_command(
    database: Annotated[str, typer.Argument(help="TDB file, or a bundled TDB data set name.")],
    elements: Annotated[str, typer.Option(help="Comma-separated elements, e.g. CO,CR,FE.")],
    out: Annotated[Path, typer.Option(help="TDB file to write (never overwritten).")],
    keep_phases: Annotated[
        str | None, typer.Option(help="Comma-separated phases to keep (default: all).")
    ] = None,
    unary: Annotated[
        str | None,
        typer.Option(help="Unary TDB giving lattice stabilities of --unary-elements."),
    ] = None,
    unary_elements: Annotated[
        str | None,
        typer.Option(help="Elements the database lacks, added ideally to FCC_A1 and LIQUID."),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Write the part of a TDB database that a system of ELEMENTS needs, for fast loading."""
    from matforge.calphad.database import resolve_database_path
    from matforge.calphad.subset import (
        add_unary_elements,
        drop_phases,
        leading_comments,
        subset_database,
        write_database,
    )

    names = [e.strip().upper() for e in elements.split(",") if e.strip()]
    subset = subset_database(database, names)
    source = resolve_database_path(database)
    header = (
        f"Subset of {source.name} for {'-'.join(names)}, written by 'matforge calphad "
        f"subset'.\nThe header of {source.name} follows.\n\n{leading_comments(source)}"
    )
    if keep_phases:
        kept = {p.strip().upper() for p in keep_phases.split(",") if p.strip()}
        subset = drop_phases(subset, sorted(set(subset.phases) - kept))
        header = f"Phases kept: {', '.join(sorted(kept))}.\n" + header
    if unary_elements:
        if not unary:
            from matforge.core.errors import ConfigError

            raise ConfigError("--unary-elements needs --unary (a unary TDB file)")
        extra = [e.strip().upper() for e in unary_elements.split(",") if e.strip()]
        subset = add_unary_elements(subset, unary, extra)
        header = (
            f"{', '.join(extra)} added from {Path(unary).name} (lattice stabilities in FCC_A1 "
            "and LIQUID only, no interaction parameters: every pair with them mixes "
            f"ideally).\n" + header
        )
    write_database(subset, out, header=header)
    summary = {
        "database": str(database),
        "elements": names,
        "out": str(out),
        "phases": sorted(subset.phases),
        "parameters": len(subset._parameters),
        "functions": len(subset.symbols),
        "size_bytes": out.stat().st_size,
    }
    if json_output:
        print_json(summary)
        return
    stdout_console().print(
        f"wrote {out} ({summary['size_bytes']} bytes): {len(summary['phases'])} phases, "
        f"{summary['parameters']} parameters, {summary['functions']} functions"
    )


def _load_models(database: str, components: str, phases: str | None) -> tuple[list[str], dict]:
    from matforge.calphad.model import build_phase_models

    names = [e.strip().upper() for e in components.split(",") if e.strip()]
    chosen = [p.strip().upper() for p in phases.split(",") if p.strip()] if phases else None
    return names, build_phase_models(database, names, chosen)


@app.command("equilibrium")
def equilibrium_command(
    database: Annotated[str, typer.Argument(help="TDB file, or a bundled TDB data set name.")],
    components: Annotated[str, typer.Option(help="Comma-separated elements, e.g. AL,ZN.")],
    temperature: Annotated[
        str, typer.Option("--T", help="Kelvin: a value, a list a,b,c or a range start:stop:step.")
    ],
    x: Annotated[
        list[str],
        typer.Option(
            "--x", help="Mole fraction of an element, e.g. ZN=0:1:0.01; all but one component."
        ),
    ],
    phases: Annotated[
        str | None, typer.Option(help="Comma-separated phases to consider (default: all).")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Equilibria on a grid of temperatures and compositions at 1 atm."""
    from rich.table import Table

    from matforge.calphad.conditions import (
        condition_grid,
        parse_composition_options,
        parse_values,
        result_records,
    )
    from matforge.calphad.solver import equilibrium

    fractions = parse_composition_options(x)
    temperatures = parse_values(temperature, "--T")
    names, models = _load_models(database, components, phases)
    grid = condition_grid(names, temperatures, fractions)
    result = equilibrium(models, grid.temperature, grid.bulk)
    given = [e for e in grid.elements if e in fractions]
    records = result_records(result, given)
    if json_output:
        print_json(
            {
                "database": database,
                "components": list(grid.elements),
                "phases_considered": sorted(models),
                "points": records,
            }
        )
        return
    table = Table(title=f"equilibria of {'-'.join(grid.elements)} ({database})")
    table.add_column("T / K", justify="right")
    for element in given:
        table.add_column(f"x({element})", justify="right")
    table.add_column("phases (fraction)")
    table.add_column("converged")
    for record in records:
        phase_text = ", ".join(f"{p} {f:.4f}" for p, f in record["phases"].items())
        table.add_row(
            f"{record['T']:.2f}",
            *(f"{record['x'][e]:.4f}" for e in given),
            phase_text or "-",
            "yes" if record["converged"] else f"no: {record['reason']}",
        )
    stdout_console().print(table)


@app.command("diagram")
def diagram_command(
    database: Annotated[str, typer.Argument(help="TDB file, or a bundled TDB data set name.")],
    first: Annotated[str, typer.Argument(help="Element A (x = 0 side).")],
    second: Annotated[str, typer.Argument(help="Element B (the x axis is x(B)).")],
    out: Annotated[
        Path | None, typer.Option(help="PNG to write (never overwritten); default DB-A-B.png.")
    ] = None,
    temperature: Annotated[
        str, typer.Option("--T", help="Kelvin range start:stop:step.")
    ] = "300:1500:20",
    x_step: Annotated[float, typer.Option(help="Composition step of the grid.")] = 0.01,
    phases: Annotated[
        str | None, typer.Option(help="Comma-separated phases to consider (default: all).")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Binary phase diagram of A-B as a PNG (tie-line end points, like pycalphad's binplot)."""
    from matforge.calphad.conditions import parse_values
    from matforge.calphad.diagram import binary_diagram, save_binary_diagram
    from matforge.core.errors import ConfigError

    if not 0 < x_step <= 0.5:
        raise ConfigError(f"--x-step must lie in (0, 0.5], got {x_step}")
    temperatures = parse_values(temperature, "--T")
    a, b = first.upper(), second.upper()
    _, models = _load_models(database, f"{a},{b}", phases)
    fractions = parse_values(f"0:1:{x_step}", "--x-step")
    stem = Path(str(database)).stem
    out = out or Path(f"{stem}-{a}-{b}.png")
    diagram = binary_diagram(models, (a, b), temperatures, fractions)
    save_binary_diagram(diagram, out, title=f"{a}-{b} ({stem})")
    summary = {
        "database": database,
        "elements": [a, b],
        "out": str(out),
        "grid_points": len(diagram.result.points),
        "boundary_points": len(diagram.phases),
        "unconverged": diagram.unconverged,
        "phases_on_boundaries": sorted(set(diagram.phases)),
    }
    if json_output:
        print_json(summary)
        return
    stdout_console().print(
        f"wrote {out}: {summary['grid_points']} equilibria, {summary['boundary_points']} "
        f"boundary points, {summary['unconverged']} not converged"
    )


@app.command("design")
def design_command(
    config_path: ConfigArgument,
    check_grid: Annotated[
        float | None,
        typer.Option(help="Also search a composition grid of this spacing, to compare."),
    ] = None,
    override: OverridesOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Find a composition that reaches a phase-fraction goal by gradient steps (IFT)."""
    from matforge.calphad.design import DesignConfig, grid_search, run_design, write_design_run
    from matforge.calphad.model import build_phase_models
    from matforge.core.config import load_config
    from matforge.core.errors import ConfigError
    from matforge.core.progress import is_quiet

    config = load_config(config_path, DesignConfig, override or [])
    if check_grid is not None and not 0 < check_grid <= 0.5:
        raise ConfigError(f"--check-grid must lie in (0, 0.5], got {check_grid}")
    models = build_phase_models(config.database, config.components, config.phases)
    result = run_design(config, models, show_progress=not is_quiet() and not json_output)
    check = grid_search(config, models, check_grid) if check_grid else None
    run, metrics = write_design_run(config, result, check, check_grid)
    metrics["run"] = str(run.path)
    if json_output:
        print_json(metrics)
        return
    console = stdout_console()
    if result.best_composition is None:
        console.print(f"no visited composition reached the goal; see {run.path}")
        return
    composition = ", ".join(f"{e} {v:.4f}" for e, v in result.best_composition.items())
    console.print(f"best: {composition}; {config.phase} fraction {result.best_phase_fraction:.4f}")
    if check is not None and check.best_composition is not None:
        grid = ", ".join(f"{e} {v:.4f}" for e, v in check.best_composition.items())
        console.print(f"grid (spacing {check_grid}): {grid}; objective {check.best_objective:.4f}")
    console.print(f"wrote {run.path}")
