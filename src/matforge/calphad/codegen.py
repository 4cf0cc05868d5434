"""Compile symengine expressions (pycalphad's Gibbs energy models) into batched torch code.

pycalphad builds each phase's molar Gibbs energy as a symengine expression of the site
fractions, T and P. Walking that tree at every evaluation would cost Python time per node;
instead the expressions go through common-subexpression elimination once and are printed as
the source of one Python function of torch operations, compiled with `exec`. The function
takes a (N, n_inputs) float64 tensor and returns one (N,) tensor per expression, so a batch
of N points costs one pass of vectorized kernels, and autograd differentiates it.

Only the node types that CALPHAD models produce are supported (sums, products, powers,
log, exp, piecewise functions of T with relational conditions); anything else raises an
error naming the node, rather than evaluating something approximate.
"""

from __future__ import annotations

import hashlib
import math
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import symengine
import torch

from matforge.calphad.kernels import auto_backend, cpu_backend, load_kernel
from matforge.core.errors import MatforgeError

Inputs = torch.Tensor
CompiledFunction = Callable[[Inputs], tuple[torch.Tensor, ...]]


class CodegenError(MatforgeError):
    """An expression holds a construct the torch translation does not support."""


def _where(condition: torch.Tensor | bool, a: object, b: object) -> torch.Tensor:
    """torch.where that accepts Python numbers for either branch (constants of a model)."""
    if isinstance(condition, torch.Tensor) and (
        isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor)
    ):
        return torch.where(condition, a, b)  # type: ignore[arg-type]
    values = [x for x in (a, b) if isinstance(x, torch.Tensor)]
    tensors = [*values, *([condition] if isinstance(condition, torch.Tensor) else [])]
    device = tensors[0].device if tensors else None
    dtype = values[0].dtype if values else torch.float64
    a_t = torch.as_tensor(a, dtype=dtype, device=device)
    b_t = torch.as_tensor(b, dtype=dtype, device=device)
    return torch.where(torch.as_tensor(condition, device=device), a_t, b_t)


class _IntegerPower(torch.autograd.Function):
    """x**n whose gradient is exactly zero where the incoming gradient is zero.

    torch.where evaluates both branches of a piecewise function. In the magnetic term of
    CALPHAD models tau = T/Tc becomes huge as Tc -> 0, and the unused branch's powers of
    tau overflow; autograd then multiplies the zero gradient of the unused branch by an
    infinite local derivative, giving NaN. Zero times anything is zero here, as it is in
    exact arithmetic, and the backward pass is built from this same function, so second
    derivatives (Newton's Hessians) stay clean too.
    """

    @staticmethod
    def forward(ctx, base: torch.Tensor, exponent: int) -> torch.Tensor:  # type: ignore[no-untyped-def,override]
        ctx.save_for_backward(base)
        ctx.exponent = exponent
        return base**exponent

    @staticmethod
    def backward(ctx, grad):  # type: ignore[no-untyped-def,override]
        (base,) = ctx.saved_tensors
        n = ctx.exponent
        if n == 0:
            return torch.zeros_like(base), None
        local = n * (_ipow(base, n - 1) if n != 1 else torch.ones_like(base))
        return torch.where(grad == 0, torch.zeros_like(grad), grad * local), None


def _ipow(base: object, exponent: int) -> object:
    if not isinstance(base, torch.Tensor) or not (base.requires_grad and torch.is_grad_enabled()):
        return base**exponent
    return _IntegerPower.apply(base, exponent)


_RUNTIME = {"torch": torch, "_where": _where, "_ipow": _ipow, "math": math}


_FUNCTIONS = {"log": "torch.log", "exp": "torch.exp", "Abs": "torch.abs"}
_COMPARISONS = {
    "StrictLessThan": "<",
    "LessThan": "<=",
    "StrictGreaterThan": ">",
    "GreaterThan": ">=",
    "Unequality": "!=",
}
_LOGICAL = {"And": "torch.logical_and", "Or": "torch.logical_or"}
_CONSTANTS = {"BooleanTrue": "True", "BooleanFalse": "False", "Exp1": repr(math.e)}


class _Printer:
    """Prints one CSE-reduced expression as a torch expression string."""

    def __init__(self, names: dict[symengine.Basic, str]) -> None:
        self.names = names

    def __call__(self, expr: symengine.Basic) -> str:
        if expr in self.names:
            return self.names[expr]
        kind = type(expr).__name__
        args = expr.args
        if kind in _FUNCTIONS:
            return f"{_FUNCTIONS[kind]}({self(args[0])})"
        if kind in _COMPARISONS:
            return f"({self(args[0])} {_COMPARISONS[kind]} {self(args[1])})"
        if kind in _LOGICAL:
            code = self(args[0])
            for arg in args[1:]:
                code = f"{_LOGICAL[kind]}(torch.as_tensor({code}), torch.as_tensor({self(arg)}))"
            return code
        if kind in _CONSTANTS:
            return _CONSTANTS[kind]
        method = getattr(self, f"_print_{kind.lower()}", None)
        if method is not None:
            return method(expr)
        if expr.is_Number:
            return repr(float(expr))
        if expr.is_Symbol:
            raise CodegenError(f"expression depends on {expr}, which is not an input")
        raise CodegenError(f"cannot translate {kind} node to torch: {expr}")

    def _print_add(self, expr: symengine.Basic) -> str:
        return "(" + " + ".join(self(a) for a in expr.args) + ")"

    def _print_mul(self, expr: symengine.Basic) -> str:
        return "(" + " * ".join(self(a) for a in expr.args) + ")"

    def _print_pow(self, expr: symengine.Basic) -> str:
        base, exponent = expr.args
        if base == symengine.E:
            return f"torch.exp({self(exponent)})"
        if exponent.is_Integer:
            return f"_ipow({self(base)}, {int(exponent)})"
        if exponent.is_Number:
            return f"torch.pow({self(base)}, {float(exponent)!r})"
        return f"torch.pow({self(base)}, {self(exponent)})"

    def _print_piecewise(self, expr: symengine.Basic) -> str:
        args = list(expr.args)
        branches = list(zip(args[0::2], args[1::2], strict=True))
        # Nested where, innermost first: a branch without a true condition falls back to NaN.
        code = "float('nan')"
        for value, condition in reversed(branches):
            if condition == symengine.true:
                code = self(value)
            elif condition != symengine.false:
                code = f"_where({self(condition)}, {self(value)}, {code})"
        return code

    def _print_equality(self, expr: symengine.Basic) -> str:
        # CSE replaces a shared condition by a symbol s and writes its use as Eq(s, True).
        left, right = expr.args
        if right == symengine.true:
            return self(left)
        if left == symengine.true:
            return self(right)
        return f"({self(left)} == {self(right)})"


def _numpy_where(condition: object, a: object, b: object) -> np.ndarray:
    return np.where(condition, a, b)  # type: ignore[arg-type]


def _numpy_power(base: object, exponent: int) -> object:
    return base**exponent  # type: ignore[operator]


#: The generated source refers to `torch.<function>`; on the NumPy path these stand in.
_NUMPY_TORCH = types.SimpleNamespace(
    log=np.log,
    exp=np.exp,
    pow=np.power,
    abs=np.abs,
    logical_and=np.logical_and,
    logical_or=np.logical_or,
    as_tensor=np.asarray,
)
_NUMPY_RUNTIME = {"torch": _NUMPY_TORCH, "_where": _numpy_where, "_ipow": _numpy_power}


@dataclass(frozen=True)
class TorchProgram:
    """A compiled batch of expressions: call with a (N, n_inputs) tensor.

    The same generated source runs on several backends. Torch: any device, with autograd.
    For CPU inputs that need no gradient, the CPU backend (`kernels.set_cpu_backend`):
    NumPy (these programs are thousands of small elementwise operations on a few hundred
    rows, where the time is the per-operation overhead, about 4 us in torch against 1-2 us
    in NumPy) or a Numba kernel, one compiled loop over the rows; by default (`auto`) the
    kernel where it is already compiled, NumPy otherwise. Results agree to rounding.
    """

    inputs: tuple[symengine.Basic, ...]
    source: str
    function: CompiledFunction
    numpy_function: Callable[[np.ndarray], tuple[object, ...]] | None = None
    n_outputs: int = 0
    #: Identifies the function computed (not the text of `source`, whose common
    #: subexpressions are numbered differently from process to process): the on-disk
    #: kernel cache's key.
    key: str = ""

    def _check(self, values: torch.Tensor) -> None:
        if values.ndim != 2 or values.shape[1] != len(self.inputs):
            raise CodegenError(
                f"expected inputs of shape (N, {len(self.inputs)}) for "
                f"{[str(s) for s in self.inputs]}, got {tuple(values.shape)}"
            )

    def _cpu_path(self, values: torch.Tensor) -> str | None:
        """The CPU backend for these inputs, or None for torch."""
        if (
            self.numpy_function is None
            or values.device.type != "cpu"
            or values.dtype != torch.float64
            or (values.requires_grad and torch.is_grad_enabled())
        ):
            return None
        backend = cpu_backend()
        if backend == "auto":
            return auto_backend(self.key, self.source, len(self.inputs), self.n_outputs)
        return None if backend == "torch" else backend

    def _numpy_path(self, values: torch.Tensor) -> bool:
        return self._cpu_path(values) is not None

    def __call__(self, values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        self._check(values)
        if self._numpy_path(values):
            return tuple(self.stacked(values).T)
        return self.function(values)

    def stacked(self, values: torch.Tensor) -> torch.Tensor:
        """All outputs as one (N, n_outputs) tensor."""
        self._check(values)
        backend = self._cpu_path(values)
        if backend == "numba":
            array = np.ascontiguousarray(values.detach().numpy())
            out = np.empty((array.shape[0], self.n_outputs))
            load_kernel(self.key, self.source, len(self.inputs), self.n_outputs)(array, out)
            return torch.from_numpy(out)
        if backend == "numpy":
            return torch.from_numpy(np.ascontiguousarray(self._numpy_rows(values).T))
        return torch.stack(self.function(values), dim=1)

    def _numpy_rows(self, values: torch.Tensor) -> np.ndarray:
        assert self.numpy_function is not None
        # Overflow in an unused branch of a piecewise function is expected (torch is
        # silent about it too).
        with np.errstate(all="ignore"):
            outputs = self.numpy_function(values.detach().numpy())
        # Every output is (N,): the source adds a zero row to each.
        return np.stack(outputs)  # type: ignore[arg-type]


def compile_expressions(
    expressions: Sequence[symengine.Basic],
    inputs: Sequence[symengine.Basic],
    name: str = "program",
    key: str | None = None,
) -> TorchProgram:
    """Compile `expressions` of the symbols `inputs` into one batched torch function.

    Every output has shape (N,), also for an expression that is constant or ignores some
    inputs, so callers can stack them. `key` names the function for the kernel cache
    (default: a digest of the expressions' canonical text; pass one for expressions
    derived from others, whose text can be large).
    """
    inputs = tuple(inputs)
    names: dict[symengine.Basic, str] = {symbol: f"_in{i}" for i, symbol in enumerate(inputs)}
    free = set().union(*(e.free_symbols for e in expressions)) if expressions else set()
    unknown = [str(s) for s in free if s not in names]
    if unknown:
        raise CodegenError(f"{name}: expressions depend on {sorted(unknown)}, not among inputs")

    replacements, reduced = symengine.cse(list(expressions))
    printer = _Printer(names)
    lines = [f"def {name}(X):"]
    lines += [f"    _in{i} = X[:, {i}]" for i in range(len(inputs))]
    lines.append("    _zero = X[:, 0] * 0.0")
    for symbol, value in replacements:
        target = f"_cse{len(printer.names)}"
        lines.append(f"    {target} = {printer(value)}")
        printer.names[symbol] = target
    outputs = [f"(_zero + {printer(e)})" for e in reduced]
    lines.append(f"    return ({', '.join(outputs)},)")
    source = "\n".join(lines) + "\n"
    code = compile(source, f"<matforge.calphad:{name}>", "exec")
    namespace: dict[str, object] = {**_RUNTIME}
    exec(code, namespace)
    numpy_namespace: dict[str, object] = {**_NUMPY_RUNTIME, "math": math}
    exec(code, numpy_namespace)
    return TorchProgram(
        inputs=inputs,
        source=source,
        function=namespace[name],  # type: ignore[arg-type]
        numpy_function=numpy_namespace[name],  # type: ignore[arg-type]
        n_outputs=len(outputs),
        key=key or program_key(name, [str(e) for e in expressions], [str(i) for i in inputs]),
    )


def program_key(*parts: object) -> str:
    """A digest of `parts` (canonical texts) and of matforge's version."""
    from matforge import __version__

    return hashlib.sha256(repr((__version__, *parts)).encode()).hexdigest()[:24]
