"""`matforge transfer ...`: transfer learning across alloy systems with set encoders."""

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
    help="Transfer learning: pre-train on a source task, learning curves of every strategy "
    "on the target task, predictions with ensemble uncertainties.",
    no_args_is_help=True,
)

DropBad = Annotated[
    bool,
    typer.Option("--drop-bad", help="Leave out rows with bad formulas or values (listed)."),
]


@app.command("run")
def run_command(
    config_path: ConfigArgument,
    override: OverridesOption = None,
    drop_bad: DropBad = False,
    json_output: JsonFlag = False,
) -> None:
    """Pre-train, draw learning curves (every strategy, repeats), save an ensemble."""
    from matforge.core.config import load_config
    from matforge.transfer.job import TransferConfig, run, write_run

    overrides = list(override or []) + (["task.drop_bad=true"] if drop_bad else [])
    config = load_config(config_path, TransferConfig, overrides)
    run_dir, metrics = write_run(run(config))
    metrics["run"] = str(run_dir.path)
    if json_output:
        print_json(metrics)
        return
    from rich.table import Table

    console = stdout_console()
    for row in metrics["dropped_rows"]:
        console.print(f"dropped line {row['line']}: {row['reason']}")
    console.print(
        f"pre-trained on {metrics['source_rows']} source rows in {metrics['pretrain_s']:.1f} s "
        f"(validation MAE {metrics['pretrain_validation_mae']:.4g}); "
        f"{metrics['target_rows']} target rows"
    )
    table = Table("target n", "strategy", "test MAE", "+-", "vs scratch", "95% CI", "gain")
    for row in metrics["paired_differences"]:
        table.add_row(
            str(row["size"]),
            row["strategy"],
            f"{row['mae']:.4g}",
            f"{row['mae_std']:.3g}",
            f"{row['difference']:+.4g}",
            f"[{row['ci_low']:+.3g}, {row['ci_high']:+.3g}]",
            f"{row['gain_pct']:+.1f}%",
        )
    console.print(table)
    c = metrics["calibration"]
    console.print(
        f"saved a {metrics['best_strategy']} ensemble: test MAE {c['mae']:.4g}, "
        f"coverage {c['coverage_1sigma']:.0%} (1 sigma) / {c['coverage_2sigma']:.0%} "
        f"(2 sigma), RMS z {c['rms_z']:.2f}"
    )
    console.print(f"wrote {run_dir.path}")


@app.command("predict")
def predict_command(
    run: Annotated[Path, typer.Argument(help="A run directory written by 'transfer run'.")],
    formulas: Annotated[Path, typer.Argument(help="CSV with a 'formula' column.")],
    drop_bad: DropBad = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the table to this CSV (new file).")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Ensemble predictions with their standard deviation."""
    from matforge.transfer.job import predict

    result = predict(run, formulas, drop_bad=drop_bad)
    if out is not None:
        import pandas as pd

        from matforge.core.rundir import atomic_write_text

        atomic_write_text(out, pd.DataFrame(result["predictions"]).to_csv(index=False))
    if json_output:
        print_json(result)
        return
    from rich.table import Table

    console = stdout_console()
    for row in result["dropped"]:
        console.print(f"dropped line {row['line']}: {row['reason']}")
    table = Table("formula", "prediction", "+- (ensemble std)")
    for row in result["predictions"]:
        table.add_row(row["formula"], f"{row['prediction']:.4g}", f"{row['std']:.3g}")
    console.print(table)
