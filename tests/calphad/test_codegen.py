from __future__ import annotations

import math

import pytest
import symengine
import torch

from matforge.calphad.codegen import CodegenError, compile_expressions

x, y, T = symengine.symbols("x y T")


def inputs(*columns: list[float]) -> torch.Tensor:
    return torch.tensor(list(zip(*columns, strict=True)), dtype=torch.float64)


def test_arithmetic_log_exp_and_powers() -> None:
    program = compile_expressions(
        [
            x * symengine.log(y) + x**2 / y,
            symengine.exp(x) + symengine.E ** (2 * x),
            x ** symengine.Rational(1, 3) + y**-2,
        ],
        [x, y],
    )
    values = inputs([0.5, 2.0], [0.25, 4.0])
    first, second, third = program(values)
    for i, (a, b) in enumerate([(0.5, 0.25), (2.0, 4.0)]):
        assert first[i].item() == pytest.approx(a * math.log(b) + a * a / b, rel=1e-14)
        assert second[i].item() == pytest.approx(math.exp(a) + math.exp(2 * a), rel=1e-14)
        assert third[i].item() == pytest.approx(a ** (1 / 3) + b**-2, rel=1e-14)


def test_piecewise_with_constant_branches_and_shared_conditions() -> None:
    inside = symengine.And(symengine.Lt(298.15, T), symengine.Lt(T, 700))
    step = symengine.Piecewise((1.5, inside), (2.5, symengine.Le(700, T)), (0, True))
    # The same condition twice makes CSE replace it by a symbol, written Eq(symbol, True).
    other = symengine.Piecewise((T, inside), (-T, True))
    program = compile_expressions([step, other, step * other], [T])
    s, o, p = program(inputs([200.0, 500.0, 800.0]))
    assert s.tolist() == [0.0, 1.5, 2.5]
    assert s.dtype == torch.float64
    assert o.tolist() == [-200.0, 500.0, -800.0]
    assert p.tolist() == [0.0, 750.0, -2000.0]


def test_constant_output_has_batch_shape() -> None:
    (out,) = compile_expressions([symengine.Integer(3)], [x])(inputs([1.0, 2.0, 3.0]))
    assert out.shape == (3,)
    assert out.tolist() == [3.0, 3.0, 3.0]


def test_autograd_through_compiled_code() -> None:
    program = compile_expressions([x**3 * symengine.log(x)], [x])
    values = inputs([0.3, 0.7]).requires_grad_(True)
    (out,) = program(values)
    (grad,) = torch.autograd.grad(out.sum(), values)
    expected = [3 * a**2 * math.log(a) + a**2 for a in (0.3, 0.7)]
    assert grad[:, 0].tolist() == pytest.approx(expected, rel=1e-14)


def test_unsupported_nodes_and_unknown_symbols_are_errors() -> None:
    with pytest.raises(CodegenError, match="cannot translate sin node"):
        compile_expressions([symengine.sin(x)], [x])
    with pytest.raises(CodegenError, match=r"depend on \['y'\], not among inputs"):
        compile_expressions([x + y], [x])


def test_input_shape_is_checked() -> None:
    program = compile_expressions([x + y], [x, y])
    with pytest.raises(CodegenError, match=r"expected inputs of shape \(N, 2\)"):
        program(torch.ones(3, 3, dtype=torch.float64))


def test_comparisons_and_logical_operators() -> None:
    outside = symengine.Or(symengine.Gt(x, 2), symengine.Ge(-1, x))
    program = compile_expressions(
        [
            symengine.Piecewise((1, outside), (0, True)),
            symengine.Piecewise((symengine.Abs(x), symengine.Ne(x, 0)), (5, True)),
        ],
        [x],
    )
    flags, absolute = program(inputs([-2.0, -1.0, 0.0, 2.0, 3.0]))
    assert flags.tolist() == [1.0, 1.0, 0.0, 0.0, 1.0]
    assert absolute.tolist() == [2.0, 1.0, 5.0, 2.0, 3.0]


@pytest.mark.reference
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_numpy_and_torch_backends_agree_on_a_magnetic_phase() -> None:
    # Without autograd, CPU inputs run the generated source on NumPy; with it, on torch.
    from matforge.calphad import build_phase_models

    model = build_phase_models("cocrfemnni_mfsteel", ["CO", "CR", "FE", "MN", "NI"], ["BCC_A2"])[
        "BCC_A2"
    ]
    program = model._derivative_program
    y = model.sample_site_fractions(64, generator=torch.Generator().manual_seed(3))
    temperature = torch.linspace(300.0, 2500.0, 64, dtype=torch.float64)[:, None]
    mu = -4e4 + 1e4 * torch.rand(64, 5, dtype=torch.float64, generator=torch.Generator())
    values = torch.cat([y, temperature, torch.full_like(temperature, 101325.0), mu], dim=1)
    assert program._numpy_path(values)
    fast = program.stacked(values)
    tracked = values.clone().requires_grad_(True)
    assert not program._numpy_path(tracked)
    exact = torch.stack(program(tracked), dim=1).detach()
    assert fast.shape == exact.shape == (64, len(program(values)))
    assert torch.isfinite(exact).all()
    assert torch.allclose(fast, exact, rtol=1e-11, atol=1e-9)
