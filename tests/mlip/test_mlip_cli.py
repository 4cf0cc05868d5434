"""`matforge mlip fit | eval | md` on a small EMT-labelled set (fast, no shared data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from typer.testing import CliRunner

from matforge.cli import app


@pytest.fixture(scope="module")
def emt_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("emt")
    structures = []
    for k in range(12):
        atoms = bulk("Cu", "fcc", a=3.6 + 0.02 * (k % 4), cubic=True).repeat((2, 2, 1))
        atoms.rattle(0.05, seed=k)
        atoms.calc = EMT()
        energy, forces, stress = (
            atoms.get_potential_energy(),
            atoms.get_forces(),
            atoms.get_stress(),
        )
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=stress)
        atoms.info["group"] = "bulk" if k < 8 else "strained"
        structures.append(atoms)
    path = folder / "cu.extxyz"
    write(path, structures)
    config = folder / "fit.yaml"
    config.write_text(
        f"""name: cu-snap
runs_dir: {folder / "runs"}
data: {{format: ase, path: {path}}}
descriptor: {{twojmax: 4, rcutfac: 4.0, radius: {{Cu: 0.5}}, weight: {{Cu: 1.0}}}}
weights: {{bulk: [1, 1, 0.0001], strained: [1, 1, 0.0001]}}
fit: {{solver: ridge, alphas: [1.0e-8, 1.0e-4], weight_scales: {{energy: [0.5, 1]}},
      test_fraction: 0.25}}
"""
    )
    return folder, path, config


def test_fit_eval_md_round_trip(emt_data):
    folder, data, config = emt_data
    runner = CliRunner()
    fitted = runner.invoke(app, ["mlip", "fit", str(config), "--json"])
    assert fitted.exit_code == 0, fitted.output
    metrics = json.loads(fitted.stdout)
    assert metrics["test_structures"] == 3
    assert metrics["alpha"] in (1e-8, 1e-4)
    assert metrics["weight_scales"]["energy"] in (0.5, 1.0)
    assert metrics["errors"]["test_force_rmse"] < 0.2  # eV/A on EMT Cu
    run = folder / "runs" / metrics["run"].split("/")[-1]
    for name in (
        "model.pt",
        "model.snapcoeff",
        "model.snapparam",
        "errors.csv",
        "parity_energy.png",
        "parity_force.png",
        "metrics.json",
    ):
        assert (run / name).stat().st_size > 0, name
    evaluated = runner.invoke(app, ["mlip", "eval", str(run / "model.pt"), str(data), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    rows = json.loads(evaluated.stdout)["errors"]
    assert {r["kind"] for r in rows} == {"energy", "force", "stress"}
    structure = folder / "cu.cif"
    write(structure, bulk("Cu", "fcc", a=3.61, cubic=True))
    md = runner.invoke(
        app,
        [
            "mlip",
            "md",
            str(run / "model.pt"),
            str(structure),
            "--steps",
            "20",
            "--repeat",
            "2,2,2",
            "--trajectory",
            str(folder / "md.traj"),
            "--json",
        ],
    )
    assert md.exit_code == 0, md.output
    summary = json.loads(md.stdout)
    assert summary["atoms"] == 32
    assert (folder / "md.csv").stat().st_size > 0


def test_fit_config_errors_name_the_field(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(
        "data: {path: x}\ndescriptor: {rcutfac: 4.0, radius: {Cu: 0.5}, weight: {Ni: 1.0}}\n"
    )
    result = CliRunner().invoke(app, ["mlip", "fit", str(config)])
    assert result.exit_code != 0
    assert "radius" in result.output


def test_convert_to_an_ase_database_keeps_labels_and_groups(emt_data, tmp_path):
    from ase.io import read

    _, data, _ = emt_data
    out = tmp_path / "cu.db"
    result = CliRunner().invoke(app, ["mlip", "convert", str(data), str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["groups"] == ["bulk", "strained"]
    original = read(data, ":")
    stored = read(out, ":")
    assert len(stored) == len(original)
    assert stored[3].get_potential_energy() == pytest.approx(original[3].get_potential_energy())
    assert stored[3].get_forces() == pytest.approx(original[3].get_forces())
    from matforge.mlip.data import read_structures

    assert [a.info["group"] for a in read_structures(out)][7:9] == ["bulk", "strained"]
    again = CliRunner().invoke(app, ["mlip", "convert", str(data), str(out)])
    assert again.exit_code != 0  # an existing database is never overwritten


def test_gap_fit_eval_md_round_trip(emt_data):
    """`model: gap` through the same CLI: fit, model file, eval and MD with it."""
    folder, data, _ = emt_data
    config = folder / "gap.yaml"
    config.write_text(
        f"""name: cu-gap
runs_dir: {folder / "runs"}
model: gap
data: {{format: ase, path: {data}}}
descriptor: {{kind: soap, elements: [Cu], cutoff: 4.0, n_max: 4, l_max: 4, atom_sigma: 0.5}}
gap: {{n_sparse: 24, default_sigma: [0.002, 0.02, 0.02],
      two_body: {{cutoff: 4.0, cutoff_transition_width: 1.0, n_sparse: 10}}}}
fit: {{test_fraction: 0.25}}
"""
    )
    runner = CliRunner()
    fitted = runner.invoke(app, ["mlip", "fit", str(config), "--json"])
    assert fitted.exit_code == 0, fitted.output
    metrics = json.loads(fitted.stdout)
    assert metrics["model"] == "gap"
    assert metrics["sparse_points"] == 24
    assert metrics["two_body_sparse_points"] == 10
    assert metrics["errors"]["test_force_rmse"] < 0.1  # eV/A on EMT Cu (rattle 0.05)
    run = folder / "runs" / metrics["run"].split("/")[-1]
    evaluated = runner.invoke(app, ["mlip", "eval", str(run / "model.pt"), str(data), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    structure = folder / "cu_gap.cif"
    write(structure, bulk("Cu", "fcc", a=3.61, cubic=True))
    md = runner.invoke(
        app,
        [
            "mlip",
            "md",
            str(run / "model.pt"),
            str(structure),
            "--steps",
            "5",
            "--json",
            "--trajectory",
            str(folder / "gap.traj"),
        ],
    )
    assert md.exit_code == 0, md.output
    bad = folder / "gap_bad.yaml"
    bad.write_text(config.read_text().replace("n_sparse: 24", "n_sparse: 5000"))
    refused = runner.invoke(app, ["mlip", "fit", str(bad)])
    assert refused.exit_code != 0
    assert "n_sparse = 5000 is larger than" in refused.output
    assert "Traceback" not in refused.output
    mismatched = folder / "gap_kind.yaml"
    mismatched.write_text(config.read_text().replace("model: gap", "model: snap"))
    refused = runner.invoke(app, ["mlip", "fit", str(mismatched)])
    assert refused.exit_code != 0
    assert "needs descriptor.kind 'snap'" in refused.output


def test_nep_fit_writes_a_gpumd_model_and_runs_md(emt_data):
    """`model: nep` through the CLI: trained by gradients, nep.txt beside model.pt, MD."""
    folder, data, _ = emt_data
    config = folder / "nep.yaml"
    config.write_text(
        f"""name: cu-nep
runs_dir: {folder / "runs"}
model: nep
data: {{format: ase, path: {data}}}
descriptor: {{kind: nep, elements: [Cu], cutoff: [4.0, 3.5], n_max: [2, 2],
             basis_size: [3, 3], l_max: [2, 0, 0], neuron: 5}}
nep: {{method: gradient, adam_steps: 40, lbfgs_steps: 20}}
fit: {{test_fraction: 0.25}}
"""
    )
    runner = CliRunner()
    fitted = runner.invoke(app, ["mlip", "fit", str(config), "--json"])
    assert fitted.exit_code == 0, fitted.output
    metrics = json.loads(fitted.stdout)
    assert metrics["model"] == "nep"
    assert metrics["method"] == "gradient"
    run = folder / "runs" / metrics["run"].split("/")[-1]
    from matforge.mlip.io import load_potential
    from matforge.mlip.nep_io import read_nep_txt

    saved, gpumd = load_potential(run / "model.pt"), read_nep_txt(run / "nep.txt")
    cell = bulk("Cu", "fcc", a=3.62, cubic=True).repeat((2, 1, 1))
    cell.rattle(0.05, seed=3)
    e1 = saved(saved.batch([cell])).energy
    e2 = gpumd(gpumd.batch([cell])).energy
    assert abs(float(e1[0] - e2[0])) < 1e-8  # nep.txt holds the same model
    assert (run / "learning_curve.csv").exists()
    structure = folder / "cu_nep.cif"
    write(structure, bulk("Cu", "fcc", a=3.61, cubic=True))
    md = runner.invoke(
        app,
        [
            "mlip",
            "md",
            str(run / "model.pt"),
            str(structure),
            "--steps",
            "3",
            "--trajectory",
            str(folder / "nep.traj"),
        ],
    )
    assert md.exit_code == 0, md.output
    mismatched = folder / "nep_kind.yaml"
    mismatched.write_text(config.read_text().replace("kind: nep,", "kind: soap,"))
    refused = runner.invoke(app, ["mlip", "fit", str(mismatched)])
    assert refused.exit_code != 0
    assert "Traceback" not in refused.output


@pytest.mark.parametrize(
    "name",
    ["mlip_snap_ta.yaml", "mlip_snap_ta_2j8.yaml", "mlip_gap_mo.yaml", "mlip_nep_pbte.yaml"],
)
def test_mlip_examples_are_valid(name):
    from matforge.core.config import load_config
    from matforge.mlip.job import MlipFitConfig

    config = load_config(Path(__file__).parents[2] / "examples" / name, MlipFitConfig)
    assert config.model in ("snap", "gap", "nep")
