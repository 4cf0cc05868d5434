"""Effect estimators on data with known answers: the confounded alloy generator, a
front-door case, and the omitted-variable-bias identity behind the sensitivity bound."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matforge.causal.design import causal_design
from matforge.causal.estimation import (
    adjusted_means,
    frontdoor_means,
    linear_sensitivity,
    naive_means,
    polynomial,
)
from matforge.causal.generator import CONFOUNDED, GRAPH_PARENTS, ConfoundedAlloyGenerator
from matforge.causal.graph import CausalGraph
from matforge.causal.identification import find_backdoor_set
from matforge.causal.mechanisms import (
    EmpiricalRoot,
    HallPetchMechanism,
    MLPMechanism,
    PolynomialMechanism,
)
from matforge.causal.scm import StructuralCausalModel

LOW, HIGH = 0.18, 0.26


def test_generator_quadrature_equals_monte_carlo() -> None:
    generator = ConfoundedAlloyGenerator()
    for ni in (0.1, 0.3):
        draws = generator.sample(400_000, seed=1, ni=ni)["strength_MPa"]
        error = draws.std() / np.sqrt(len(draws))
        assert abs(draws.mean() - generator.interventional_strength(ni)) < 4 * error


def _alloy_scm(data: pd.DataFrame) -> StructuralCausalModel:
    graph = CausalGraph.from_parents(GRAPH_PARENTS, confounded=CONFOUNDED)
    mechanisms = {
        "Ni": EmpiricalRoot("Ni"),
        "anneal_K": EmpiricalRoot("anneal_K"),
        "fraction_beta": PolynomialMechanism("fraction_beta", ("Ni",), degree=4, log=True),
        "grain_um": PolynomialMechanism("grain_um", ("anneal_K",), degree=3, log=True),
        "strength_MPa": HallPetchMechanism(
            "strength_MPa",
            ("fraction_beta", "grain_um"),
            grain_size="grain_um",
            balance_phase="matrix",
        ),
    }
    return StructuralCausalModel(graph, mechanisms).fit(data)


def test_adjustment_and_scm_remove_the_confounding_bias() -> None:
    generator = ConfoundedAlloyGenerator()
    data = generator.sample(2000, seed=0)
    truth = generator.true_effect(LOW, HIGH)
    graph = CausalGraph.from_parents(GRAPH_PARENTS, confounded=CONFOUNDED)
    adjustment = find_backdoor_set(graph, "Ni", "strength_MPa")
    assert adjustment in (frozenset({"grain_um"}), frozenset({"anneal_K"}))
    naive = np.diff(naive_means(data, "Ni", "strength_MPa", [LOW, HIGH], regressor=polynomial(3)))

    def small_mlp(node: str, parents: tuple[str, ...]) -> MLPMechanism:
        return MLPMechanism(node, parents, hidden=(16,), iterations=300)

    adjusted = np.diff(
        adjusted_means(
            data, "Ni", "strength_MPa", sorted(adjustment), [LOW, HIGH], regressor=small_mlp
        )
    )
    scm = _alloy_scm(data)
    scm_means = [
        scm.interventional_mean("strength_MPa", [f"Ni={v}"], samples=40000).mean
        for v in (LOW, HIGH)
    ]
    assert abs(naive[0] - truth) / truth > 0.3
    assert abs(adjusted[0] - truth) / truth < 0.05
    assert abs(scm_means[1] - scm_means[0] - truth) / truth < 0.05
    # causal design lands on the interventional optimum; the correlational one does not
    choice = causal_design(
        scm,
        data,
        "Ni",
        "strength_MPa",
        (0.05, 0.45),
        points=21,
        samples=4000,
        regressor=polynomial(3),
    )
    grid = np.linspace(0.05, 0.45, 2001)
    best = generator.interventional_strength(grid).max()
    assert 1 - generator.interventional_strength(choice.causal) / best < 0.02
    assert choice.correlational < choice.causal - 0.02


def test_frontdoor_recovers_the_effect_under_a_hidden_confounder() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    hidden = rng.standard_normal(n)
    x = hidden + 0.5 * rng.standard_normal(n)
    m = 0.8 * x + 0.3 * rng.standard_normal(n)
    y = 1.5 * m + 2.0 * hidden + 0.3 * rng.standard_normal(n)
    data = pd.DataFrame({"X": x, "M": m, "Y": y})
    truth = 0.8 * 1.5
    front = np.diff(frontdoor_means(data, "X", "M", "Y", [0.0, 1.0], regressor=polynomial(1)))
    naive = np.diff(naive_means(data, "X", "Y", [0.0, 1.0], regressor=polynomial(1)))
    assert front[0] == pytest.approx(truth, rel=0.05)
    assert abs(naive[0] - truth) / truth > 0.5


def test_sensitivity_bound_is_the_omitted_variable_bias_of_the_confounder() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    z = rng.standard_normal(n)
    u = rng.standard_normal(n)
    d = 0.5 * z + 0.6 * u + rng.standard_normal(n)
    y = 1.0 * d + 0.4 * z + 0.8 * u + rng.standard_normal(n)
    data = pd.DataFrame({"D": d, "Z": z, "U": u, "Y": y})

    def residual(target: np.ndarray, regressors: list[np.ndarray]) -> np.ndarray:
        design = np.column_stack([np.ones(n), *regressors])
        return target - design @ np.linalg.lstsq(design, target, rcond=None)[0]

    # partial R^2 of U with Y given (D, Z), and with D given Z
    r2_y = 1 - residual(y, [d, z, u]).var() / residual(y, [d, z]).var()
    r2_d = 1 - residual(d, [z, u]).var() / residual(d, [z]).var()
    short = linear_sensitivity(data, "D", "Y", ["Z"], r2_outcome=r2_y, r2_treatment=r2_d)
    long = linear_sensitivity(data, "D", "Y", ["Z", "U"], r2_outcome=0.0, r2_treatment=0.0)
    assert abs(short.estimate - long.estimate) == pytest.approx(short.bias_bound, rel=1e-9)
    # the confounder of exactly that strength moves the estimate to the interval's end
    assert min(abs(long.estimate - end) for end in short.interval) < 1e-9
    assert 0 < short.robustness_value < 1


def test_estimators_name_a_missing_column() -> None:
    data = pd.DataFrame({"X": [0.0, 1.0, 2.0, 3.0], "Y": [1.0, 2.0, 2.5, 4.0]})
    with pytest.raises(Exception, match="no column 'Q'"):
        adjusted_means(data, "X", "Y", ["Q"], [0.0])
