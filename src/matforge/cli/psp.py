"""`matforge psp ...`: differentiable process-structure-property chains and process design."""

from __future__ import annotations

import typer

from matforge.cli._output import (
    ConfigArgument,
    JsonFlag,
    OverridesOption,
    print_json,
    stdout_console,
)

app = typer.Typer(
    help="Process-structure-property chains: fit the links, design the process by gradients.",
    no_args_is_help=True,
)


def _print_errors(errors: list[dict]) -> None:
    console = stdout_console()
    console.print("test errors per link:")
    for row in errors:
        extra = (
            f", mean relative {row['mean_relative_error']:.3%}"
            if "mean_relative_error" in row
            else ""
        )
        console.print(
            f"  {row['link']:<20} {row['quantity']:<22} MAE {row['mae']:.4g}  "
            f"RMSE {row['rmse']:.4g}  R^2 {row['r2']:.4f}{extra}"
        )


@app.command("fit")
def fit_command(
    config_path: ConfigArgument,
    override: OverridesOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Train the chain (an ensemble) on generator or CSV data; write chain.pt, errors, plots."""
    from matforge.core.config import load_config
    from matforge.psp.job import PspConfig, fit_ensemble
    from matforge.psp.report import write_fit_run

    config = load_config(config_path, PspConfig, override or [])
    fit = fit_ensemble(config)
    run, metrics = write_fit_run(fit)
    metrics["run"] = str(run.path)
    if json_output:
        print_json(metrics)
        return
    _print_errors(fit.errors)
    stdout_console().print(f"wrote {run.path}")


@app.command("design")
def design_command(
    config_path: ConfigArgument,
    override: OverridesOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Find process parameters for a target (or the maximum) of the property."""
    from matforge.core.config import load_config
    from matforge.core.rundir import RunDirectory
    from matforge.psp.job import PspConfig, fit_ensemble, load_ensemble, run_design
    from matforge.psp.report import write_design_run, write_fit_run

    config = load_config(config_path, PspConfig, override or [])
    if config.design is None:
        raise typer.BadParameter("the config has no 'design' section", param_hint="CONFIG")
    if config.design.chain is not None:
        ensemble, trained = load_ensemble(config.design.chain)
        if [p.name for p in trained.process] != [p.name for p in config.process]:
            raise typer.BadParameter(
                f"{config.design.chain} was trained on process variables "
                f"{[p.name for p in trained.process]}, the config names "
                f"{[p.name for p in config.process]}",
                param_hint="CONFIG",
            )
        run = RunDirectory.create(config.name, config.runs_dir)
        run.write_config(config)
        errors = None
    else:
        fit = fit_ensemble(config)
        run, _ = write_fit_run(fit)
        ensemble, errors = fit.ensemble, fit.errors
    outcome = run_design(config, ensemble)
    summary = write_design_run(config, ensemble, outcome, run)
    summary["run"] = str(run.path)
    if json_output:
        print_json({**summary, "errors": errors})
        return
    if errors:
        _print_errors(errors)
    console = stdout_console()
    route = ", ".join(f"{k} = {v:.4g}" for k, v in summary["process"].items())
    spread = summary["uncertainty"].get(config.property)
    console.print(f"design ({summary['objective']}): {route}")
    structure = ", ".join(
        f"{k} {v:.4g}" for k, v in summary["predicted"].items() if k != config.property
    )
    console.print(f"  predicted structure: {structure}")
    console.print(
        f"  predicted {config.property}: {summary['predicted'][config.property]:.1f}"
        + (f" +- {spread:.1f} (ensemble std)" if spread is not None else "")
        + f"  [{summary['design_seconds']:.2f} s]"
    )
    if "true_property" in summary:
        console.print(
            f"  true (generator, noise-free): {summary['true_property']:.1f}; dense grid "
            f"({summary['grid_points']} points, {summary['grid_seconds']:.2f} s): "
            f"{summary['grid_value']:.1f}"
        )
    console.print(f"wrote {run.path}")
