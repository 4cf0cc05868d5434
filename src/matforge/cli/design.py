"""`matforge design CONFIG.yaml`: constrained Bayesian optimization of alloy compositions."""

from __future__ import annotations

import time

from matforge.cli._output import (
    ConfigArgument,
    JsonFlag,
    OverridesOption,
    print_json,
    stdout_console,
)


def design(
    config_path: ConfigArgument,
    override: OverridesOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Propose alloys actively (EI x CALPHAD feasibility, penalty, EI or random) and report
    the best feasible ones."""
    started = time.perf_counter()
    import importlib.util

    from matforge.core.config import load_config
    from matforge.core.errors import MatforgeError
    from matforge.core.progress import is_quiet

    missing = [
        m for m in ("botorch", "gpytorch", "pycalphad") if importlib.util.find_spec(m) is None
    ]
    if missing:
        raise MatforgeError(
            f"matforge design needs {', '.join(missing)}: pip install 'matforge[calphad,bo]'"
        )
    from matforge.design.job import DesignJobConfig, run_design_job
    from matforge.design.report import write_design_run

    config = load_config(config_path, DesignJobConfig, override or [])
    result = run_design_job(config, show_progress=not is_quiet() and not json_output)
    run, metrics = write_design_run(result)
    metrics["run"] = str(run.path)
    metrics["seconds"] = time.perf_counter() - started
    if json_output:
        print_json(metrics)
        return
    console = stdout_console()
    best = result.best_feasible()
    if not best:
        console.print(
            f"no feasible alloy among {len(result.history.x)} evaluations; see {run.path}"
        )
        return
    elements = result.history.elements
    console.print(
        f"best feasible alloys after {len(result.history.x)} evaluations "
        f"({metrics['feasible_evaluations']} feasible, strategy {config.strategy}):"
    )
    for rank, row in enumerate(best, 1):
        formula = " ".join(
            f"{e}{100 * row[f'x_{e}']:.1f}" for e in elements if row[f"x_{e}"] > 5e-4
        )
        console.print(f"  {rank}. {formula}  objective {row['objective']:.2f}")
    if result.calibration is not None:
        c = result.calibration
        console.print(
            f"surrogate ({c.folds}-fold CV on the evaluated alloys): MAE {c.mae:.3g}, "
            f"90% interval coverage {c.coverage_90:.2f}"
        )
    if metrics.get("calphad_unconverged"):
        console.print(
            f"[yellow]{metrics['calphad_unconverged']} of {metrics['calphad_equilibria']} "
            "CALPHAD equilibria did not converge (counted infeasible)[/]"
        )
    loop = metrics.get("closed_loop")
    if loop:
        console.print(
            f"closed loop: {loop['oracle_labels']} oracle labels for {loop['compositions']} "
            f"compositions ({loop['oracle_failed']} failed), potential in {loop['database']}"
        )
        for key, strength in loop["verified"].items():
            console.print(f"verified by the oracle directly: {key} -> {strength:.4g} MPa")
        if loop["computed_by_oracle"]:
            console.print(
                f"{len(loop['computed_by_oracle'])} compositions the potential could not vouch "
                f"for after max_rounds refits were computed by the oracle directly "
                f"({loop['direct_oracle_property_calls']} calls; alloys.csv: source oracle)"
            )
        if loop["untrusted"]:
            console.print(
                f"[yellow]{len(loop['untrusted'])} answers still above the uncertainty "
                "threshold after max_rounds refits (alloys.csv: trusted False)[/]"
            )
    console.print(result.history.stop_reason)
    console.print(f"wrote {run.path} in {metrics['seconds']:.0f} s")
