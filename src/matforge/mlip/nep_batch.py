"""NEP energies, forces and virials for many parameter sets at once (SNES populations) and
with parameter gradients through the forces (gradient training), without autograd through
the neighbour geometry.

Everything that does not depend on the parameters is computed once per data set
(`NepTables`): per atom, its neighbours padded to a fixed width, the Chebyshev basis and its
radial derivative, the unit vectors, the angular components (Y_lm and the quadrupole) and
their gradients with respect to the pair vector. A parameter set then costs a few batched
contractions: g = basis . c (per species pair), q, the network, dE/dq and dE/dA by autograd
on the small per-atom part, and the pair derivatives

    dE/dv_ij = u_ij sum_n G^R_in g'^R_ijn
             + sum_nc G^A_inc (g'^A_ijn Phi_ijc u_ij + g^A_ijn grad Phi_ijc),

scattered to forces (F_i += dE/dv_ij, F_j -= dE/dv_ij) and virials (-sum v_ij dE/dv_ij).
The result equals the autograd path of `Potential` (tests/mlip/test_nep.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms

from matforge.mlip.batch import AtomsBatch
from matforge.mlip.descriptors import VOIGT
from matforge.mlip.nep import (
    NepSettings,
    angular_components_and_gradient,
    angular_invariants,
    angular_invariants_vjp,
    chebyshev_basis_and_slope,
)


@dataclass
class Padded:
    """Pairs of one cutoff in an (atoms, width) layout; empty slots have valid == False."""

    neighbor: torch.Tensor  # (N, W) long (0 where empty)
    neighbor_type: torch.Tensor  # (N, W) long (-1 where empty)
    valid: torch.Tensor  # (N, W) bool
    vector: torch.Tensor  # (N, W, 3)
    unit: torch.Tensor  # (N, W, 3)
    basis: torch.Tensor  # (N, W, K)
    slope: torch.Tensor  # (N, W, K) d basis / dr
    reverse: torch.Tensor  # (N * W,) flat slot of the reverse pair (j -> i, -shift)
    outer: torch.Tensor  # (N, W, 6) sym(v u^T) in VOIGT order (virials of radial terms)


@dataclass
class NepTables:
    species: torch.Tensor  # (N,)
    structure: torch.Tensor  # (N,)
    n_atoms: torch.Tensor  # (S,)
    radial: Padded
    angular: Padded
    components: torch.Tensor  # (N, W_a, C) angular components Phi
    component_grad: torch.Tensor  # (N, W_a, 3, C) d Phi / d (pair vector)
    radial_sums: torch.Tensor  # (N, T, K_r): sum of the radial basis over neighbours of type t
    angular_sums: torch.Tensor  # (N, T, K_a, C): sum of basis x Phi over neighbours of type t

    @property
    def n_structures(self) -> int:
        return len(self.n_atoms)

    def astype(self, dtype: torch.dtype) -> NepTables:
        """The same tables with every floating-point array in `dtype` (e.g. float32 for
        SNES populations, as GPUMD evaluates them)."""

        def cast(x: torch.Tensor) -> torch.Tensor:
            return x.to(dtype) if x.is_floating_point() else x

        def cast_padded(p: Padded) -> Padded:
            return Padded(*(cast(getattr(p, f)) for f in Padded.__dataclass_fields__))

        return NepTables(
            self.species,
            self.structure,
            self.n_atoms,
            cast_padded(self.radial),
            cast_padded(self.angular),
            cast(self.components),
            cast(self.component_grad),
            cast(self.radial_sums),
            cast(self.angular_sums),
        )

    def to(self, device: str | torch.device) -> NepTables:
        def move(p: Padded) -> Padded:
            return Padded(*(getattr(p, f).to(device) for f in Padded.__dataclass_fields__))

        return NepTables(
            self.species.to(device),
            self.structure.to(device),
            self.n_atoms.to(device),
            move(self.radial),
            move(self.angular),
            self.components.to(device),
            self.component_grad.to(device),
            self.radial_sums.to(device),
            self.angular_sums.to(device),
        )


def _pad(
    batch: AtomsBatch, vectors: torch.Tensor, cutoff: float, size: int
) -> tuple[Padded, torch.Tensor]:
    pairs = batch.pairs
    r = vectors.norm(dim=-1)
    keep = r < cutoff
    center, neighbor, v, r = pairs.center[keep], pairs.neighbor[keep], vectors[keep], r[keep]
    n = len(batch.species)
    counts = torch.bincount(center, minlength=n)
    width = max(int(counts.max()) if len(counts) else 0, 1)
    order = torch.argsort(center, stable=True)
    center, neighbor, v, r = center[order], neighbor[order], v[order], r[order]
    slot = torch.arange(len(center)) - torch.repeat_interleave(
        torch.cumsum(counts, 0) - counts, counts
    )
    valid = torch.zeros(n, width, dtype=torch.bool)
    valid[center, slot] = True

    def padded(values: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
        out = values.new_full((n, width, *values.shape[1:]), fill)
        out[center, slot] = values
        return out

    basis, slope = chebyshev_basis_and_slope(r, cutoff, size)
    unit = v / r[:, None]
    # the reverse of pair (i -> j, shift) is (j -> i, -shift): sorting both keys aligns them
    shift = pairs.shift[keep][order].round().long().numpy()
    c_np, n_np = center.numpy(), neighbor.numpy()
    forward = np.lexsort((shift[:, 2], shift[:, 1], shift[:, 0], n_np, c_np))
    backward = np.lexsort((-shift[:, 2], -shift[:, 1], -shift[:, 0], c_np, n_np))
    partner = np.empty(len(c_np), dtype=np.int64)
    partner[forward] = backward
    flat = (center * width + slot).numpy()
    reverse = np.zeros(n * width, dtype=np.int64)
    reverse[flat] = flat[partner]
    outer = torch.stack([0.5 * (v[:, a] * unit[:, b] + v[:, b] * unit[:, a]) for a, b in VOIGT], -1)
    table = Padded(
        padded(neighbor).long(),
        padded(batch.species[neighbor], -1).long(),
        valid,
        padded(v),
        padded(unit),
        padded(basis),
        padded(slope),
        torch.from_numpy(reverse),
        padded(outer),
    )
    return table, unit


def build_tables(settings: NepSettings, structures: Sequence[Atoms]) -> NepTables:
    """The parameter-independent geometry of `structures` for a NEP of `settings`."""
    batch = AtomsBatch.from_atoms(structures, settings.elements, settings.cutoff_radial)
    with torch.no_grad():
        vectors, _ = batch.strained(batch.positions, batch.zero_strain())
        radial, _ = _pad(batch, vectors, settings.cutoff_radial, settings.basis_size_radial)
        angular, _ = _pad(batch, vectors, settings.cutoff_angular, settings.basis_size_angular)
        flat_unit = angular.unit[angular.valid]
        flat_r = angular.vector[angular.valid].norm(dim=-1)
        phi, grad = angular_components_and_gradient(flat_unit, flat_r, settings)
        components = phi.new_zeros(*angular.valid.shape, phi.shape[1])
        components[angular.valid] = phi
        component_grad = grad.new_zeros(*angular.valid.shape, 3, phi.shape[1])
        component_grad[angular.valid] = grad
        types = range(settings.n_types)
        radial_sums = torch.stack(
            [(radial.basis * (radial.neighbor_type == t)[..., None]).sum(1) for t in types], 1
        )
        angular_sums = torch.stack(
            [
                torch.einsum(
                    "nwk,nwc->nkc",
                    angular.basis * (angular.neighbor_type == t)[..., None],
                    components,
                )
                for t in types
            ],
            1,
        )
    return NepTables(
        batch.species,
        batch.structure,
        batch.n_atoms,
        radial,
        angular,
        components,
        component_grad,
        radial_sums,
        angular_sums,
    )


#: parameter names and their shapes without the leading batch dimension
def parameter_shapes(s: NepSettings) -> dict[str, tuple[int, ...]]:
    t = s.n_types
    return {
        "w0": (t, s.neurons, s.dim),
        "b0": (t, s.neurons),
        "w1": (t, s.neurons),
        "b1": (),
        "c_radial": (s.n_max_radial + 1, s.basis_size_radial + 1, t, t),
        "c_angular": (s.n_max_angular + 1, s.basis_size_angular + 1, t, t),
    }


def split_vector(theta: torch.Tensor, s: NepSettings) -> dict[str, torch.Tensor]:
    """(B, n_parameters) in nep.txt's order -> named tensors with a leading B dimension."""
    out, offset = {}, 0
    b, t = theta.shape[0], s.n_types
    per_type = [("w0", s.neurons * s.dim), ("b0", s.neurons), ("w1", s.neurons)]
    chunks: dict[str, list[torch.Tensor]] = {"w0": [], "b0": [], "w1": []}
    for _ in range(t):
        for name, size in per_type:
            chunks[name].append(theta[:, offset : offset + size])
            offset += size
    out["w0"] = torch.stack(chunks["w0"], 1).reshape(b, t, s.neurons, s.dim)
    out["b0"] = torch.stack(chunks["b0"], 1)
    out["w1"] = torch.stack(chunks["w1"], 1)
    out["b1"] = theta[:, offset]
    offset += 1
    for name in ("c_radial", "c_angular"):
        shape = parameter_shapes(s)[name]
        size = int(torch.tensor(shape).prod())
        out[name] = theta[:, offset : offset + size].reshape(b, *shape)
        offset += size
    return out


@dataclass(frozen=True)
class BatchOutput:
    energy: torch.Tensor  # (B, S)
    forces: torch.Tensor | None  # (B, N, 3)
    virial: torch.Tensor | None  # (B, S, 6), -dE/d strain in VOIGT order (eV)
    descriptors: torch.Tensor  # (B, N, dim), scaled


def _by_species(species: torch.Tensor, n_types: int):
    for t in range(n_types):
        rows = species == t
        if bool(rows.any()):
            yield t, rows


def _pair_derivative(
    table: Padded, coupled: torch.Tensor, basis: torch.Tensor, n_types: int
) -> torch.Tensor:
    """sum_k basis[i, w, k] coupled[b, i, k, ..., t_j(i, w)] -> (B, N, W, ...), as one
    batched matrix product per neighbour type (atoms are the batch)."""
    b, n, k = coupled.shape[:3]
    rest = coupled.shape[3:-1]
    out = None
    for tj in range(n_types):
        mask = (table.neighbor_type == tj).to(basis.dtype)
        right = coupled[..., tj].reshape(b, n, k, -1).permute(1, 2, 0, 3).reshape(n, k, -1)
        part = torch.bmm(basis * mask[..., None], right)  # (N, W, B * rest)
        out = part if out is None else out + part
    width = out.shape[1]
    return out.reshape(n, width, b, *rest).movedim(2, 0)


def evaluate(
    tables: NepTables,
    params: dict[str, torch.Tensor],
    settings: NepSettings,
    q_scaler: torch.Tensor,
    *,
    forces: bool = True,
    virials: bool = False,
    create_graph: bool = False,
) -> BatchOutput:
    """Energies (and forces, virials) of every structure for every parameter set in
    `params` (leading dimension B); `create_graph` keeps them differentiable in the
    parameters (gradient training)."""
    s, t = settings, settings.n_types
    species, radial, angular = tables.species, tables.radial, tables.angular
    c_radial, c_angular = params["c_radial"], params["c_angular"]
    b, n = c_radial.shape[0], len(species)
    if True:  # every derivative below is written out: plain tensor algebra
        # q_in = sum_tj sum_k (sum of basis over type-tj neighbours) c_nk^{ti tj}
        q_radial = c_radial.new_zeros(b, n, s.n_max_radial + 1)
        a = c_angular.new_zeros(b, n, s.n_max_angular + 1, tables.components.shape[-1])
        for ti, rows in _by_species(species, t):
            q_radial[:, rows] = torch.einsum(
                "ajk,bnkj->ban", tables.radial_sums[rows], c_radial[:, :, :, ti, :]
            )
            a[:, rows] = torch.einsum(
                "ajkc,bnkj->banc", tables.angular_sums[rows], c_angular[:, :, :, ti, :]
            )
        invariants = angular_invariants(a.flatten(0, 1), s).unflatten(0, (b, -1))
        q = torch.cat([q_radial, invariants], -1) * q_scaler
        atomic = q.new_zeros(b, n)
        g_q = torch.zeros_like(q) if (forces or virials) else None
        for ti, rows in _by_species(species, t):
            w0 = params["w0"][:, ti]
            hidden = torch.tanh(
                torch.einsum("bad,bhd->bah", q[:, rows], w0) - params["b0"][:, ti, None, :]
            )
            atomic[:, rows] = torch.einsum("bah,bh->ba", hidden, params["w1"][:, ti])
            if g_q is not None:  # dE_i/dq_i = sum_h w1_h (1 - h^2) w0_h
                slope_h = (1.0 - hidden * hidden) * params["w1"][:, ti, None, :]
                g_q[:, rows] = torch.einsum("bah,bhd->bad", slope_h, w0)
        atomic = atomic - params["b1"][:, None]
        energy = atomic.new_zeros(b, tables.n_structures).index_add(1, tables.structure, atomic)
        if g_q is None:
            return BatchOutput(energy, None, None, q)
        g_q = g_q * q_scaler
        nr = s.n_max_radial + 1
        g_radial = g_q[..., :nr]
    g_angular = angular_invariants_vjp(a, g_q[..., nr:], s)
    # couple dE/dq with the coefficients per centre: (B, N, K, T) and (B, N, K, C, T)
    coupled_r = c_radial.new_zeros(b, n, s.basis_size_radial + 1, t)
    coupled_a = c_angular.new_zeros(b, n, s.basis_size_angular + 1, a.shape[-1], t)
    for ti, rows in _by_species(species, t):
        coupled_r[:, rows] = torch.einsum(
            "ban,bnkj->bakj", g_radial[:, rows], c_radial[:, :, :, ti]
        )
        coupled_a[:, rows] = torch.einsum(
            "banc,bnkj->bakcj", g_angular[:, rows], c_angular[:, :, :, ti]
        )
    # radial pairs: dE/dv = d u; F_i = sum_w (d_iw + d_reverse(iw)) u_iw
    d = _pair_derivative(radial, coupled_r, radial.slope, t)  # (B, N, W)
    h = _pair_derivative(angular, coupled_a, angular.basis, t)  # (B, N, W, C)
    h_slope = _pair_derivative(angular, coupled_a, angular.slope, t)
    d_angular = angular.unit * (h_slope * tables.components).sum(-1)[..., None]
    d_angular = d_angular + torch.einsum("bnwc,nwxc->bnwx", h, tables.component_grad)
    out_forces = out_virial = None
    if forces:
        both = d + d.reshape(b, -1)[:, radial.reverse].reshape(d.shape)
        f = torch.einsum("bnw,nwx->bnx", both, radial.unit)
        flat = d_angular.reshape(b, -1, 3)
        partner = flat[:, angular.reverse].reshape(d_angular.shape)
        f = f + ((d_angular - partner) * angular.valid[..., None]).sum(2)
        out_forces = f
    if virials:
        per_atom = torch.einsum("bnw,nwk->bnk", d, radial.outer)
        for column, (i, j) in enumerate(VOIGT):
            sym = 0.5 * (
                angular.vector[..., i] * d_angular[..., j]
                + angular.vector[..., j] * d_angular[..., i]
            )
            per_atom[..., column] = per_atom[..., column] + sym.sum(2)
        out_virial = -per_atom.new_zeros(b, tables.n_structures, 6).index_add(
            1, tables.structure, per_atom
        )
    return BatchOutput(energy, out_forces, out_virial, q)
