"""GAP's predictive variance as the active-learning uncertainty."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from matforge.active import GapTrainer, GPVarianceUncertainty, select_batch
from matforge.mlip.gap import GapSettings, gap_potential, kernel_rows
from matforge.mlip.gap_variance import predict_with_variance
from matforge.mlip.soap import SoapParameters

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mlip"))
from test_gap import labelled

SETTINGS = GapSettings(n_sparse=40, default_sigma=(0.002, 0.02, 0.02), fit_virials=False)


@pytest.fixture(scope="module")
def fitted():
    template = gap_potential(SoapParameters(("Cu",), cutoff=4.0, n_max=3, l_max=3, atom_sigma=0.5))
    train = [labelled(s, repeat=(2, 1, 1), rattle=0.05) for s in range(4)]
    return GapTrainer(template, SETTINGS).fit(train)


def test_estimate_is_the_predicted_force_sigma(fitted):
    pool = [labelled(s, repeat=(2, 1, 1), rattle=r) for s, r in ((10, 0.05), (11, 0.3))]
    estimate = GPVarianceUncertainty(fitted, SETTINGS).estimate(pool)
    prediction = predict_with_variance(fitted, pool)
    sigma = np.sqrt(prediction.force_variance.reshape(2, -1, 3).sum(axis=2))
    np.testing.assert_allclose(np.stack(estimate.per_atom), sigma, rtol=1e-10)
    # a strongly rattled configuration lies farther from the data: larger uncertainty
    assert estimate.per_structure[1] > 2 * estimate.per_structure[0]


def test_with_added_is_the_posterior_after_those_observations(fitted):
    candidate = labelled(20, repeat=(2, 1, 1), rattle=0.3)
    measure = GPVarianceUncertainty(fitted, SETTINGS)
    updated = measure.with_added([candidate])
    energy, force, _, _ = kernel_rows(
        fitted.descriptor, fitted.model, fitted.batch([candidate]), virials=False
    )
    m = fitted.model.n_sparse
    rows = np.vstack(
        [energy.numpy() / (0.002 * np.sqrt(len(candidate))), force.reshape(-1, m).numpy() / 0.02]
    )
    r0 = fitted.model.r_factor.numpy()
    np.testing.assert_allclose(
        updated.r_factor.T @ updated.r_factor, r0.T @ r0 + rows.T @ rows, rtol=1e-9, atol=1e-9
    )
    # observations alone leave the variance outside the sparse set's span ...
    before = measure.estimate([candidate]).per_structure[0]
    observed = updated.estimate([candidate]).per_structure[0]
    assert observed < before
    # ... joining the sparse set too (as a refit would) removes most of the rest
    train = [labelled(s, repeat=(2, 1, 1), rattle=0.05) for s in range(4)]
    refit = GPVarianceUncertainty(fitted, SETTINGS, training=train).with_added([candidate])
    assert refit.estimate([candidate]).per_structure[0] < 0.7 * observed


def test_greedy_batch_runs_on_the_gp_variance_and_discounts_a_twin(fitted):
    far = labelled(30, repeat=(2, 1, 1), rattle=0.45)
    twin = far.copy()
    twin.calc = far.calc
    twin.positions += 1e-4
    other = labelled(31, repeat=(2, 1, 1), rattle=0.3)
    train = [labelled(s, repeat=(2, 1, 1), rattle=0.05) for s in range(4)]
    measure = GPVarianceUncertainty(fitted, SETTINGS, training=train)
    pool = [far, twin, other]
    estimate = measure.estimate(pool)
    picked = select_batch(pool, estimate, 2, lower=0.0, diversity="greedy", uncertainty=measure)
    assert len(set(picked.indices)) == 2
    after = measure.with_added([far]).estimate([twin]).per_structure[0]
    # what stays is the force variance DTC cannot represent with value-only sparse points
    assert after < 0.4 * estimate.per_structure[1]


def test_active_learning_loop_trains_and_selects_with_gap(tmp_path):
    """`potential.kind: soap` + `gp_variance`: the loop fits GAPs and labels by variance."""
    import yaml

    from matforge.active import run_active_learning
    from matforge.active.config import ActiveConfig
    from matforge.core.config import load_config

    data = {
        "name": "gap",
        "runs_dir": str(tmp_path / "runs"),
        "structures": [{"kind": "bulk", "symbol": "Cu", "a": 3.61, "repeat": [2, 2, 2]}],
        "initial": {"count": 2, "rattle": 0.03},
        "potential": {"kind": "soap", "elements": ["Cu"], "cutoff": 4.0, "n_max": 3, "l_max": 3},
        "gap": {"n_sparse": 30, "default_sigma": [0.002, 0.02, 0.02], "fit_virials": False},
        "uncertainty": {"measure": "gp_variance", "lower": 0.0, "upper": 100.0},
        "selection": {"batch_size": 2},
        "explore": {"kind": "md", "stages": [{"temperature": 900, "steps": 20}], "sample_every": 5},
        "executor": {"kind": "serial"},
        "test_set": {
            "kind": "md",
            "stages": [{"temperature": 900, "steps": 20}],
            "frames_per_stage": 2,
        },
        "iterations": 1,
    }
    path = tmp_path / "gap.yaml"
    path.write_text(yaml.safe_dump(data))
    result = run_active_learning(load_config(path, ActiveConfig, []))
    assert [c["oracle_calls"] for c in result.curve] == [2, 4]
    assert result.curve[-1]["test_force_rmse"] < result.curve[0]["test_force_rmse"] * 1.5
    picked = result.store.structures(role="train", status="labelled")
    assert [a.info.get("measure") for a in picked].count("gp_variance") == 2
    bad = dict(data, uncertainty={"measure": "maxvol", "lower": 1.0})
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(Exception, match="gp_variance"):
        load_config(path, ActiveConfig, [])


def test_estimate_and_greedy_update_cover_a_two_body_term():
    from matforge.mlip.two_body import TwoBodySettings

    settings = GapSettings(
        n_sparse=40,
        default_sigma=(0.002, 0.02, 0.02),
        fit_virials=False,
        two_body=TwoBodySettings(cutoff=4.0, cutoff_transition_width=1.0, delta=0.3),
    )
    template = gap_potential(SoapParameters(("Cu",), cutoff=4.0, n_max=3, l_max=3, atom_sigma=0.5))
    train = [labelled(s, repeat=(2, 1, 1), rattle=0.05) for s in range(4)]
    potential = GapTrainer(template, settings).fit(train)
    pool = [labelled(s, repeat=(2, 1, 1), rattle=0.3) for s in (40, 41)]
    measure = GPVarianceUncertainty(potential, settings, training=train)
    estimate = measure.estimate(pool)
    prediction = predict_with_variance(potential, pool)
    sigma = np.sqrt(prediction.force_variance.reshape(2, -1, 3).sum(axis=2))
    np.testing.assert_allclose(np.stack(estimate.per_atom), sigma, rtol=1e-10)
    after = measure.with_added([pool[0]]).estimate(pool).per_structure
    assert after[0] < 0.5 * estimate.per_structure[0]


def test_active_learning_loop_trains_a_nep_committee(tmp_path):
    """`potential.kind: nep`: each pass trains a committee of NEPs and labels by disagreement."""
    import yaml

    from matforge.active import run_active_learning
    from matforge.active.config import ActiveConfig
    from matforge.core.config import load_config

    data = {
        "name": "nep",
        "runs_dir": str(tmp_path / "runs"),
        "structures": [{"kind": "bulk", "symbol": "Cu", "a": 3.61, "repeat": [2, 1, 1]}],
        "initial": {"count": 3, "rattle": 0.05},
        "potential": {
            "kind": "nep",
            "elements": ["Cu"],
            "cutoff": [4.0, 3.5],
            "n_max": [2, 2],
            "basis_size": [3, 3],
            "l_max": [2, 0, 0],
            "neuron": 4,
        },
        "nep": {"method": "gradient", "adam_steps": 20, "lbfgs_steps": 0},
        "uncertainty": {"measure": "committee", "members": 2, "lower": 0.0},
        "selection": {"batch_size": 2},
        "explore": {"kind": "md", "stages": [{"temperature": 600, "steps": 10}], "sample_every": 5},
        "executor": {"kind": "serial"},
        "iterations": 1,
    }
    path = tmp_path / "nep.yaml"
    path.write_text(yaml.safe_dump(data))
    result = run_active_learning(load_config(path, ActiveConfig, []))
    assert [c["oracle_calls"] for c in result.curve] == [3, 5]
    picked = result.store.structures(role="train", status="labelled")
    assert [a.info.get("measure") for a in picked].count("committee") == 2
    bad = dict(data, uncertainty={"measure": "maxvol", "lower": 1.0})
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(Exception, match="committee"):
        load_config(path, ActiveConfig, [])
