"""`matforge active ...`: active learning of interatomic potentials."""

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
    help="Active learning of potentials: MD exploration, uncertainty, oracle on Dask.",
    no_args_is_help=True,
)


@app.command("run")
def run_command(
    config_path: ConfigArgument,
    override: OverridesOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Run (or resume, from its database) an active-learning experiment."""
    from matforge.active.config import ActiveConfig
    from matforge.active.loop import run_active_learning
    from matforge.active.report import write_active_run
    from matforge.core.config import load_config

    config = load_config(config_path, ActiveConfig, override or [])
    result = run_active_learning(config)
    metrics = write_active_run(result, config.run_path)
    metrics["run"] = str(config.run_path)
    if json_output:
        print_json({**metrics, "curve": result.curve})
        return
    console = stdout_console()
    console.print("iteration  labels  failed  test force RMSE (eV/A)  test energy RMSE (eV/atom)")
    for record in result.curve:
        force = _number(record.get("test_force_rmse"), ".4f")
        energy = _number(record.get("test_energy_rmse"), ".5f")
        console.print(
            f"{record['iteration']:>9}  {record['oracle_calls']:>6}  {record['failed_calls']:>6}  "
            f"{force:>22}  {energy:>26}"
        )
    for line in result.failed:
        console.print(f"[yellow]failed oracle call[/yellow] {line}")
    if metrics.get("stop_reason"):
        console.print(f"stopped early: {metrics['stop_reason']}")
    console.print(f"wrote {config.run_path} (database {metrics['database']})")


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
