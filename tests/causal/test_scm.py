"""The structural causal model: exact linear-Gaussian means, counterfactuals and
interventional samples against DoWhy's gcm on the same data, joint confounded roots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from matforge.causal.graph import CausalGraph
from matforge.causal.mechanisms import (
    EmpiricalRoot,
    LogisticMechanism,
    MLPMechanism,
    NonInvertibleError,
    PolynomialMechanism,
    mechanism_from_state,
)
from matforge.causal.scm import Intervention, StructuralCausalModel, parse_intervention
from matforge.core.errors import ConfigError

# A linear-Gaussian SCM: Z -> X -> M -> Y, Z -> Y, W -> M (coefficients below)
COEFFICIENTS = {
    "Z": ({}, 1.0, 1.0),
    "W": ({}, -0.5, 0.7),
    "X": ({"Z": 0.8}, 0.2, 1.0),
    "M": ({"X": 1.3, "W": -0.6}, 0.0, 0.5),
    "Y": ({"M": 0.9, "Z": -1.1}, 3.0, 0.4),
}


def linear_data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values: dict[str, np.ndarray] = {}
    for node, (parents, intercept, noise) in COEFFICIENTS.items():
        values[node] = intercept + noise * rng.standard_normal(n)
        for parent, weight in parents.items():
            values[node] = values[node] + weight * values[parent]
    return pd.DataFrame(values)


def linear_scm(noise: str = "gaussian", roots: str = "linear") -> StructuralCausalModel:
    graph = CausalGraph.from_parents({k: list(v[0]) for k, v in COEFFICIENTS.items()})
    mechanisms = {}
    for node, (parents, _, _) in COEFFICIENTS.items():
        if not parents and roots == "empirical":
            mechanisms[node] = EmpiricalRoot(node)
        else:
            mechanisms[node] = PolynomialMechanism(node, tuple(parents), noise=noise)
    return StructuralCausalModel(graph, mechanisms)


def closed_form_means(scm: StructuralCausalModel, interventions: dict[str, float]) -> dict:
    """mu = (I - A)^-1 b from the fitted coefficients, rows of intervened nodes replaced."""
    nodes = scm.graph.observed
    index = {n: i for i, n in enumerate(nodes)}
    a = np.zeros((len(nodes), len(nodes)))
    b = np.zeros(len(nodes))
    for node in nodes:
        if node in interventions:
            b[index[node]] = interventions[node]
            continue
        intercept, coefficients = scm.mechanisms[node].linear_form()
        b[index[node]] = intercept + scm.mechanisms[node].noise_mean()
        for parent, weight in zip(scm.mechanisms[node].parents, coefficients.numpy(), strict=True):
            a[index[node], index[parent]] = weight
    mu = np.linalg.solve(np.eye(len(nodes)) - a, b)
    return {n: mu[i] for n, i in index.items()}


@pytest.mark.parametrize("roots", ["linear", "empirical"])
def test_linear_gaussian_interventional_means_equal_closed_form(roots: str) -> None:
    scm = linear_scm(roots=roots).fit(linear_data(3000, 0))
    for interventions in ({"X": 1.5}, {"X": -2.0, "W": 0.3}, {"M": 0.0}):
        expected = closed_form_means(scm, interventions)
        actions = [Intervention(k, v) for k, v in interventions.items()]
        for node in scm.graph.observed:
            estimate = scm.interventional_mean(node, actions)
            assert estimate.exact
            assert estimate.mean == pytest.approx(expected[node], abs=1e-10, rel=1e-10)
    # and the fit recovers the data's coefficients: E[Y | do(X=1.5)] = 3 + 0.9 * 1.3 * 1.5
    # + 0.9 * (-0.6) * (-0.5) - 1.1 * 1.0 from the true equations
    truth = 3 + 0.9 * (1.3 * 1.5 - 0.6 * -0.5) - 1.1 * 1.0
    assert scm.interventional_mean("Y", ["X=1.5"]).mean == pytest.approx(truth, abs=0.06)
    # Monte Carlo agrees with the exact mean within its standard error
    draws = scm.sample(40000, ["X=1.5"], seed=3)["Y"]
    assert abs(draws.mean() - scm.interventional_mean("Y", ["X=1.5"]).mean) < 4 * (
        draws.std() / np.sqrt(len(draws))
    )


def test_shift_interventions_move_the_mean_by_the_propagated_amount() -> None:
    scm = linear_scm().fit(linear_data(2000, 1))
    base = scm.interventional_mean("Y").mean
    shifted = scm.interventional_mean("Y", ["X+=0.5"]).mean
    _, m_coefficients = scm.mechanisms["M"].linear_form()
    _, y_coefficients = scm.mechanisms["Y"].linear_form()
    slope = float(m_coefficients[scm.mechanisms["M"].parents.index("X")]) * float(
        y_coefficients[scm.mechanisms["Y"].parents.index("M")]
    )
    assert shifted - base == pytest.approx(0.5 * slope, abs=1e-10)


def _dowhy_model(data: pd.DataFrame):
    import networkx as nx

    gcm = pytest.importorskip("dowhy.gcm")
    edges = [(p, c) for c, (parents, _, _) in COEFFICIENTS.items() for p in parents]
    model = gcm.InvertibleStructuralCausalModel(nx.DiGraph(edges))
    for node, (parents, _, _) in COEFFICIENTS.items():
        if parents:
            mechanism = gcm.AdditiveNoiseModel(gcm.ml.create_linear_regressor())
        else:
            mechanism = gcm.EmpiricalDistribution()
        model.set_causal_mechanism(node, mechanism)
    gcm.fit(model, data)
    return gcm, model


def test_counterfactuals_equal_dowhy() -> None:
    data = linear_data(1500, 2)
    gcm, reference = _dowhy_model(data)
    scm = linear_scm(noise="empirical", roots="empirical").fit(data)
    units = data.iloc[:25]
    cases = [
        (["X=1.0"], {"X": lambda x: 1.0}),
        (["X+=0.7"], {"X": lambda x: x + 0.7}),
        (["M*=2", "W=0"], {"M": lambda m: 2 * m, "W": lambda w: 0.0}),
    ]
    for ours_spec, theirs_spec in cases:
        ours = scm.counterfactual(units, ours_spec)
        theirs = gcm.counterfactual_samples(reference, theirs_spec, observed_data=units)
        columns = list(COEFFICIENTS)
        np.testing.assert_allclose(
            ours[columns].to_numpy(), theirs[columns].to_numpy(), atol=1e-8, rtol=0
        )


def test_interventional_samples_match_dowhy_in_distribution() -> None:
    from scipy.stats import ks_2samp

    data = linear_data(2000, 4)
    gcm, reference = _dowhy_model(data)
    np.random.seed(5)  # DoWhy draws from numpy's global generator
    theirs = gcm.interventional_samples(
        reference, {"X": lambda x: x + 1.0}, num_samples_to_draw=3000
    )
    ours = (
        linear_scm(noise="empirical", roots="empirical").fit(data).sample(3000, ["X+=1.0"], seed=6)
    )
    for node in COEFFICIENTS:
        assert ks_2samp(ours[node], theirs[node]).pvalue > 0.01, node
    # the test has power: a wrong intervention (a shift of 1.3) is told apart
    wrong = (
        linear_scm(noise="empirical", roots="empirical").fit(data).sample(3000, ["X+=1.3"], seed=6)
    )
    assert ks_2samp(wrong["Y"], theirs["Y"]).pvalue < 1e-3


def test_confounded_roots_are_drawn_jointly_and_do_cuts_the_link() -> None:
    rng = np.random.default_rng(0)
    lab = rng.standard_normal(3000)
    x = lab + 0.3 * rng.standard_normal(3000)
    t = lab + 0.3 * rng.standard_normal(3000)
    y = 2 * t + 0.1 * rng.standard_normal(3000)
    data = pd.DataFrame({"X": x, "T": t, "Y": y})
    graph = CausalGraph.from_parents({"X": [], "T": [], "Y": ["T"]}, confounded=[("X", "T")])
    scm = StructuralCausalModel(
        graph,
        {"X": EmpiricalRoot("X"), "T": EmpiricalRoot("T"), "Y": PolynomialMechanism("Y", ("T",))},
    ).fit(data)
    observational = scm.sample(4000, seed=1)
    assert np.corrcoef(observational["X"], observational["Y"])[0, 1] > 0.85
    intervened = scm.sample(4000, ["T=1.0"], seed=1)
    assert abs(np.corrcoef(intervened["X"], intervened["Y"])[0, 1]) < 0.1


def test_non_invertible_mechanisms_refuse_counterfactuals() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(500)
    b = (rng.random(500) < 1 / (1 + np.exp(-2 * x))).astype(float)
    y = x + 2 * b + 0.1 * rng.standard_normal(500)
    data = pd.DataFrame({"X": x, "B": b, "Y": y})
    graph = CausalGraph.from_parents({"X": [], "B": ["X"], "Y": ["X", "B"]})
    scm = StructuralCausalModel(
        graph,
        {
            "X": EmpiricalRoot("X"),
            "B": LogisticMechanism("B", ("X",)),
            "Y": PolynomialMechanism("Y", ("X", "B")),
        },
    ).fit(data)
    with pytest.raises(NonInvertibleError, match="'B'"):
        scm.counterfactual(data.iloc[:3], ["X=0.5"])
    # intervening on the binary node itself is fine: Y's noise is abducted
    result = scm.counterfactual(data.iloc[:3], ["B=1"])
    assert (result["B"] == 1).all()
    # and the logistic fit is a real fit: P(B=1 | X=2) is high
    assert float(scm.mechanisms["B"].predict(torch.tensor([[2.0]], dtype=torch.float64))) > 0.9


def test_mechanism_states_round_trip() -> None:
    data = linear_data(400, 7)
    parents = torch.tensor(data[["X", "W"]].to_numpy().copy())
    values = torch.tensor(data["M"].to_numpy())
    for mechanism in (
        PolynomialMechanism("M", ("X", "W"), degree=2, noise="empirical"),
        MLPMechanism("M", ("X", "W"), hidden=(8,), iterations=50),
    ):
        mechanism.fit(parents, values)
        copy = mechanism_from_state(mechanism.state())
        assert torch.allclose(copy.predict(parents), mechanism.predict(parents), atol=1e-12)
        assert torch.allclose(copy.abduct(parents, values), mechanism.abduct(parents, values))


def test_interventions_parse_and_reject_bad_text() -> None:
    assert parse_intervention("Ni=0.3") == Intervention("Ni", 0.3, "set")
    assert parse_intervention(" T += 25 ") == Intervention("T", 25.0, "shift")
    assert parse_intervention("d*=1.5") == Intervention("d", 1.5, "scale")
    for text in ("Ni", "Ni=abc", "=3", "Ni==3"):
        with pytest.raises(ConfigError):
            parse_intervention(text)
    scm = linear_scm().fit(linear_data(100, 0))
    with pytest.raises(ConfigError, match="unknown node 'Q'"):
        scm.interventional_mean("Y", ["Q=1"])
    with pytest.raises(ConfigError, match="two interventions"):
        scm.sample(10, ["X=1", "X+=2"])
