"""Learning curves: target-task error against the number of target samples, per strategy.

Protocol, per repeat r (seeded): the target set is shuffled; a test set (a fixed share of
it, at least `min_test` rows) is set aside; for each size n the first n remaining rows are
the target training data, of which a share is held out for early stopping. Every strategy
sees the same rows in a repeat, so differences between strategies are paired.
`paired_differences` gives, per size, the mean difference of each strategy's MAE from
scratch's over the repeats with its 95% t-interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from matforge.transfer.data import FormulaSet
from matforge.transfer.model import ModelSpec, SetRegressor
from matforge.transfer.training import FitSettings, train_strategy, validation_split

__all__ = ["learning_curve", "paired_differences", "split_target"]


def split_target(
    target: FormulaSet, repeat: int, test_fraction: float, min_test: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(pool, test) row indices of one repeat."""
    rng = np.random.default_rng(seed + 7919 * repeat)
    order = rng.permutation(len(target))
    held = max(min_test, round(test_fraction * len(target)))
    return order[held:], order[:held]


def learning_curve(
    target: FormulaSet,
    spec: ModelSpec,
    strategies: Sequence[str],
    sizes: Sequence[int],
    repeats: int,
    settings: FitSettings,
    *,
    source: SetRegressor | None = None,
    test_fraction: float = 0.3,
    min_test: int = 20,
    validation_fraction: float = 0.2,
    report: Callable[[dict], None] | None = None,
) -> pd.DataFrame:
    rows = []
    for repeat in range(repeats):
        pool, test_rows = split_target(target, repeat, test_fraction, min_test, settings.seed)
        test = target.subset(test_rows)
        for size in sizes:
            if size > len(pool):
                continue
            chosen = target.subset(pool[:size])
            seed = settings.seed + 31 * repeat + size
            train_rows, validation_rows = validation_split(size, validation_fraction, seed)
            run_settings = FitSettings(**{**settings.__dict__, "seed": seed})
            for strategy in strategies:
                result = train_strategy(
                    strategy,
                    spec,
                    chosen.subset(train_rows),
                    chosen.subset(validation_rows),
                    run_settings,
                    source,
                )
                predicted = result.model.predict(test.batch).cpu().numpy()
                row = {
                    "repeat": repeat,
                    "size": size,
                    "strategy": strategy,
                    "mae": float(np.mean(np.abs(predicted - test.targets))),
                    "best_epoch": result.best_epoch,
                    "seconds": result.seconds,
                }
                rows.append(row)
                if report is not None:
                    report(row)
    return pd.DataFrame(rows)


def paired_differences(curve: pd.DataFrame, baseline: str = "scratch") -> pd.DataFrame:
    """Per size and strategy: mean MAE, and the mean paired difference from `baseline`
    with its 95% t-interval and the gain in percent of the baseline's MAE."""
    table = curve.pivot_table(index=["size", "repeat"], columns="strategy", values="mae")
    rows = []
    for size, block in table.groupby(level="size"):
        base = block[baseline].to_numpy()
        for strategy in block.columns:
            values = block[strategy].to_numpy()
            difference = values - base
            n = len(difference)
            half = (
                stats.t.ppf(0.975, n - 1) * difference.std(ddof=1) / np.sqrt(n)
                if n > 1
                else float("nan")
            )
            rows.append(
                {
                    "size": int(size),
                    "strategy": strategy,
                    "mae": float(values.mean()),
                    "mae_std": float(values.std(ddof=1)) if n > 1 else 0.0,
                    "difference": float(difference.mean()),
                    "ci_low": float(difference.mean() - half),
                    "ci_high": float(difference.mean() + half),
                    "gain_pct": float(-100 * difference.mean() / base.mean()),
                    "repeats": n,
                }
            )
    return pd.DataFrame(rows)
