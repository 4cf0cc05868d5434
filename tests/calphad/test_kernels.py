"""Numba CPU kernels: the generated programs compiled to loops, equal to torch's results."""

from __future__ import annotations

import warnings

import pytest
import symengine
import torch

from matforge.calphad import build_phase_models, equilibrium, kernels
from matforge.calphad.codegen import compile_expressions
from matforge.core.errors import MatforgeError

pytest.importorskip("numba", reason="the numba backend needs the jit extra")


@pytest.fixture
def numba_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("MATFORGE_CACHE_DIR", str(tmp_path))
    previous = kernels.cpu_backend()
    kernels.set_cpu_backend("numba")
    yield tmp_path
    kernels.set_cpu_backend(previous)


def test_kernel_equals_torch_on_every_construct(numba_backend) -> None:
    x, t = symengine.symbols("x t")
    piecewise = symengine.Piecewise(
        (t**2 * symengine.log(x), symengine.And(t >= 300, t < 700)),
        (symengine.exp(-x) + t**-9 * 1e20, t >= 700),
        (0, True),
    )
    expressions = [piecewise, x**0.5 * symengine.Abs(x - 0.3), x * (1 - x) ** 3, t * 0 + 2.5]
    program = compile_expressions(expressions, [x, t], name="constructs")
    values = torch.stack(
        [torch.linspace(0.01, 0.99, 40, dtype=torch.float64), torch.linspace(200, 1500, 40)],
        dim=1,
    ).double()
    fast = program.stacked(values)
    reference = torch.stack(program.function(values), dim=1)
    assert torch.allclose(fast, reference, rtol=1e-13, atol=0)
    # The kernel's source went to the cache directory, where the next process finds it.
    assert list(numba_backend.glob("kernels/k*.py"))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_equilibria_with_numba_equal_those_with_numpy(numba_backend) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = build_phase_models("alzn_mey", ["AL", "ZN"])
    x = torch.linspace(0.05, 0.95, 10, dtype=torch.float64)
    bulk = torch.stack([1 - x, x], dim=1).repeat(2, 1)
    temperature = torch.tensor([500.0, 650.0], dtype=torch.float64).repeat_interleave(10)
    compiled = equilibrium(models, temperature, bulk)
    kernels.set_cpu_backend("numpy")
    plain = equilibrium(models, temperature, bulk)
    for a, b in zip(compiled.points, plain.points, strict=True):
        assert a.converged
        assert b.converged
        fractions_a, fractions_b = a.phase_fractions(), b.phase_fractions()
        assert fractions_a.keys() == fractions_b.keys()
        assert all(abs(fractions_a[k] - fractions_b[k]) < 1e-9 for k in fractions_a)
        assert torch.allclose(a.chemical_potentials, b.chemical_potentials, atol=1e-6, rtol=0)


def test_unknown_backend_is_an_error() -> None:
    with pytest.raises(MatforgeError, match="unknown CPU backend 'gpu'"):
        kernels.set_cpu_backend("gpu")


def test_auto_runs_numpy_until_compiled_then_numba(tmp_path, monkeypatch) -> None:
    """`auto` never compiles on the caller's time: NumPy first, the program noted; the
    background compile leaves machine code in the cache; a new process runs it compiled."""
    monkeypatch.setenv("MATFORGE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(kernels, "_auto_choice", {})
    monkeypatch.setattr(kernels, "_pending", {})
    previous = kernels.cpu_backend()
    kernels.set_cpu_backend("auto")
    try:
        x, t = symengine.symbols("x t")
        program = compile_expressions(
            [x * symengine.log(x) + t, t**2 * x], [x, t], name="auto", key="autotest"
        )
        values = torch.tensor([[0.3, 500.0], [0.7, 900.0]], dtype=torch.float64)
        expected = torch.stack(program.function(values), dim=1)
        torch.testing.assert_close(program.stacked(values), expected, rtol=1e-13, atol=0)
        assert kernels.pending_kernels() == ["autotest"]
        assert "autotest" not in kernels._loaded  # nothing was compiled in this process
        assert kernels.compile_in_background(wait=True) == 1
        assert kernels.pending_kernels() == []
        assert not (tmp_path / "kernels" / "compiling.lock").exists()
        kernels._auto_choice.clear()  # as in a new process
        assert kernels.auto_backend("autotest", program.source, 2, 2) == "numba"
        torch.testing.assert_close(program.stacked(values), expected, rtol=1e-13, atol=0)
        assert "autotest" in kernels._loaded
    finally:
        kernels.set_cpu_backend(previous)
        kernels._loaded.pop("autotest", None)


def test_background_compile_policy(monkeypatch) -> None:
    monkeypatch.delenv("MATFORGE_BACKGROUND_COMPILE", raising=False)
    assert kernels.background_compile_wanted(interactive=True)
    assert not kernels.background_compile_wanted(interactive=False)
    monkeypatch.setenv("MATFORGE_BACKGROUND_COMPILE", "1")
    assert kernels.background_compile_wanted(interactive=False)
    monkeypatch.setenv("MATFORGE_BACKGROUND_COMPILE", "0")
    assert not kernels.background_compile_wanted(interactive=True)
