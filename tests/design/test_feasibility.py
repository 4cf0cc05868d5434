"""CALPHAD feasibility on the bundled Co-Cr-Fe-Mn-Ni database."""

import pytest
import torch

from matforge.core.errors import ConfigError

pytest.importorskip("pycalphad", reason="CALPHAD feasibility needs the calphad extra")

from matforge.calphad import build_phase_models, equilibrium
from matforge.design import CalphadFeasibility

ELEMENTS = ("Co", "Cr", "Fe", "Mn", "Ni")
PHASES = ["LIQUID", "FCC_A1", "BCC_A2", "HCP_A3", "SIGMA_D8B"]


@pytest.fixture(scope="module")
def models():
    return build_phase_models("cocrfemnni_mfsteel", [e.upper() for e in ELEMENTS], PHASES)


def test_feasibility_agrees_with_the_equilibrium_it_comes_from(models):
    feasibility = CalphadFeasibility(models, ELEMENTS, "FCC_A1", 1000.0, temperature_sigma=25.0)
    x = torch.tensor([[0.3, 0.1, 0.2, 0.1, 0.3], [0.1, 0.35, 0.1, 0.35, 0.1]], dtype=torch.float64)
    # Design order Co, Cr, Fe, Mn, Ni is alphabetical here too, so the bulk is x itself.
    temps = torch.tensor(feasibility.temperatures, dtype=torch.float64)
    for i in range(2):
        result = equilibrium(models, temps, x[i].repeat(len(temps), 1))
        single = [p.phase_fractions().get("FCC_A1", 0.0) >= 0.999 for p in result.points]
        expected = float(
            torch.tensor(single, dtype=torch.float64) @ torch.tensor(feasibility.weights)
        )
        assert float(feasibility.probability(x[i : i + 1])) == pytest.approx(expected)
    assert bool(feasibility.is_feasible(x[:1])[0])
    assert not bool(feasibility.is_feasible(x[1:])[0])
    assert float(feasibility.second_phase_fraction(x[1:])) > 0.05


def test_design_order_is_mapped_to_calphad_order(models):
    reordered = ("Ni", "Mn", "Fe", "Cr", "Co")
    a = CalphadFeasibility(models, ELEMENTS, "FCC_A1", 1000.0)
    b = CalphadFeasibility(models, reordered, "FCC_A1", 1000.0)
    x = torch.tensor([[0.1, 0.35, 0.1, 0.35, 0.1]], dtype=torch.float64)
    assert torch.allclose(a.phase_fractions(x), b.phase_fractions(x.flip(-1)))


def test_soft_probability_gradient_matches_finite_differences(models):
    feasibility = CalphadFeasibility(models, ELEMENTS, "FCC_A1", 1000.0, softness=0.05)
    x = torch.tensor([[0.15, 0.3, 0.1, 0.3, 0.15]], dtype=torch.float64)
    assert 0.5 < float(feasibility.phase_fractions(x)) < 0.999  # a two-phase point
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(feasibility.soft_probability(xg).sum(), xg)
    direction = torch.tensor([[0.0, 1.0, 0.0, 0.0, -1.0]], dtype=torch.float64)
    h = 1e-5
    plus = feasibility.soft_probability(x + h * direction)
    minus = feasibility.soft_probability(x - h * direction)
    fd = float((plus - minus) / (2 * h))
    assert float((grad * direction).sum()) == pytest.approx(fd, rel=1e-4)
    assert fd < 0  # more Cr at the expense of Ni: less FCC


def test_results_are_cached_per_composition(models, monkeypatch):
    feasibility = CalphadFeasibility(models, ELEMENTS, "FCC_A1", 1000.0)
    x = torch.tensor([[0.3, 0.1, 0.2, 0.1, 0.3]], dtype=torch.float64)
    feasibility.probability(x)
    monkeypatch.setattr(feasibility, "_solve", lambda *a: pytest.fail("solved again"))
    assert float(feasibility.probability(x)) == 1.0


def test_elements_that_do_not_match_the_database_are_rejected(models):
    with pytest.raises(ConfigError, match="do not match the CALPHAD components"):
        CalphadFeasibility(models, ("Co", "Cr", "Fe", "Mn", "Al"), "FCC_A1", 1000.0)
    with pytest.raises(ConfigError, match="LAVES"):
        CalphadFeasibility(models, ELEMENTS, "LAVES", 1000.0)


def test_synthetic_cantor_job_runs_end_to_end(tmp_path):
    from matforge.design.job import DesignJobConfig, run_design_job
    from matforge.design.report import write_design_run

    config = DesignJobConfig(
        name="tiny",
        runs_dir=tmp_path,
        elements=list(ELEMENTS),
        default_bounds=(0.05, 0.35),
        feasibility={"database": "cocrfemnni_mfsteel", "phases": PHASES, "temperature": 1000},
        initial=4,
        budget=2,
        pool_size=40,
        local_candidates=8,
    )
    result = run_design_job(config, show_progress=False)
    history = result.history
    assert len(history.x) == 6
    truth = CalphadFeasibility(result.feasibility.models, ELEMENTS, "FCC_A1", 1000.0)
    assert history.feasible == truth.is_feasible(history.inputs).tolist()
    run, metrics = write_design_run(result, map_resolution=5)
    assert (run.path / "history.csv").is_file()
    assert metrics["evaluations"] == 6


def test_unconverged_equilibria_are_counted_warned_and_infeasible(monkeypatch):
    import matforge.calphad as calphad
    from matforge.design.feasibility import UnconvergedEquilibriumWarning

    models = build_phase_models("alzn_mey", ["AL", "ZN"])
    feasibility = CalphadFeasibility(models, ("Al", "Zn"), "FCC_A1", 600.0)
    original = calphad.equilibrium

    def first_fails(*args, **kwargs):
        result = original(*args, **kwargs)
        result.points[0].converged = False
        return result

    monkeypatch.setattr(calphad, "equilibrium", first_fails)
    x = torch.tensor([[0.95, 0.05], [0.9, 0.1]], dtype=torch.float64)  # both single FCC
    with pytest.warns(UnconvergedEquilibriumWarning, match="1 of 2 CALPHAD equilibria"):
        fractions = feasibility.phase_fractions(x)
    assert torch.isnan(fractions[0]).all()
    assert fractions[1, 0] == pytest.approx(1.0)
    assert feasibility.probability(x).tolist() == [0.0, 1.0]
    assert feasibility.second_phase_fraction(x)[0] == 1.0
    assert (feasibility.evaluated, feasibility.unconverged) == (2, 1)
    # The oracle's ground truth at the design temperature reuses those equilibria.
    assert feasibility.is_feasible(x).tolist() == [False, True]
    assert feasibility.evaluated == 2
