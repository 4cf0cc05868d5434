"""Neuroevolution potentials (NEP4: Fan et al., PRB 104 (2021) 104309; JCP 157 (2022) 114801),
with GPUMD's definitions, in torch.

Descriptor of atom i (species t_i), from neighbours j (species t_j) at r_ij < r_c:

- radial functions g_n(r) = sum_k c^{t_i t_j}_{nk} f_k(r), f_k(r) = (T_k(x) + 1) / 2 f_c(r),
  x = 2 (r / r_c - 1)^2 - 1, T_k Chebyshev polynomials, f_c(r) = (1 + cos(pi r / r_c)) / 2,
  with their own coefficients, cutoff and basis size for the radial and the angular part;
- radial descriptors q_n = sum_j g_n(r_ij), n = 0..n_max_radial;
- angular: A_nlm = sum_j g_n(r_ij) Y_lm(r_ij / r_ij) (orthonormal real harmonics), and
  q_nl = sum_m A_nlm^2 = (2l + 1) / 4 pi sum_jk g_n g_n P_l(cos theta_ijk), l = 1..l_max;
  the 4-body term (`l_max_4body` = 2) q_n = sum (2 2 2; m1 m2 m3) A_2m1 A_2m2 A_2m3 (Wigner 3j,
  complex harmonics), computed as kappa_4 det(M_n) with M_n = sum_j g_n (u u^T - 1/3) and
  kappa_4 = -108 sqrt(2/35) (5 / 16 pi)^(3/2); the 5-body term (`l_max_5body` = 1)
  q_n = (7/15) (sum_m A_n1m^2)^2;
- order: radial, then angular block by block (l = 1..l_max, then 4-body, then 5-body), each
  block n = 0..n_max_angular; every component is multiplied by `q_scaler` (GPUMD's
  per-block 1 / (max - min) over the training data).

Atomic energy: one hidden layer per species, E_i = sum_h w1[t,h] tanh(w0[t,h] . q_i - b0[t,h])
- b1 (b1 shared). GPUMD's normalization constants of its angular tables (C3B, C4B, C5B) are
exactly these definitions (checked against calorine's evaluation of GPUMD models in
tests/mlip/test_nep.py). An optional universal ZBL (`zbl_inner`, `zbl_outer`, GPUMD's
cosine switch) goes in the potential's reference slot (`matforge.mlip.zbl.ZBL`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import torch

from matforge.core.errors import ConfigError
from matforge.mlip.soap import real_spherical_harmonics, real_spherical_harmonics_and_gradient

#: the cubic invariant of the l = 2 block and the quartic one of the l = 1 block
KAPPA_4BODY = -108.0 * math.sqrt(2.0 / 35.0) * (5.0 / (16.0 * math.pi)) ** 1.5
KAPPA_5BODY = 7.0 / 15.0


@dataclass(frozen=True)
class NepSettings:
    """A NEP4 architecture, named as in GPUMD's nep.in / nep.txt (defaults: GPUMD's)."""

    elements: tuple[str, ...]
    cutoff_radial: float = 8.0
    cutoff_angular: float = 4.0
    n_max_radial: int = 6
    n_max_angular: int = 6
    basis_size_radial: int = 6
    basis_size_angular: int = 6
    l_max: int = 4
    l_max_4body: int = 2
    l_max_5body: int = 0
    neurons: int = 30
    zbl: tuple[float, float] | None = None  # inner, outer cutoff (A)
    max_neighbors: tuple[int, int] | None = None  # GPUMD's MN_radial, MN_angular (header only)

    def __post_init__(self) -> None:
        object.__setattr__(self, "elements", tuple(self.elements))
        if not self.elements or len(set(self.elements)) != len(self.elements):
            raise ConfigError(f"NEP elements must be distinct and not empty: {self.elements}")
        if not 0 < self.cutoff_angular <= self.cutoff_radial:
            raise ConfigError(
                f"NEP needs 0 < cutoff_angular <= cutoff_radial, got {self.cutoff_angular}, "
                f"{self.cutoff_radial}"
            )
        for name in ("n_max_radial", "n_max_angular", "basis_size_radial", "basis_size_angular"):
            if not 0 <= getattr(self, name) <= 19:
                raise ConfigError(f"NEP {name} must lie in [0, 19], got {getattr(self, name)}")
        if not 1 <= self.l_max <= 8:
            raise ConfigError(f"NEP l_max must lie in [1, 8], got {self.l_max}")
        if self.l_max_4body not in (0, 2) or (self.l_max_4body and self.l_max < 2):
            raise ConfigError("NEP l_max_4body must be 0 or 2 (and then l_max >= 2)")
        if self.l_max_5body not in (0, 1):
            raise ConfigError("NEP l_max_5body must be 0 or 1")
        if self.neurons < 1:
            raise ConfigError(f"NEP needs at least one neuron, got {self.neurons}")
        if self.zbl is not None and not 0 < self.zbl[0] < self.zbl[1]:
            raise ConfigError(f"NEP zbl needs 0 < inner < outer, got {self.zbl}")

    @property
    def n_types(self) -> int:
        return len(self.elements)

    @property
    def angular_blocks(self) -> int:
        return self.l_max + (self.l_max_4body == 2) + (self.l_max_5body == 1)

    @property
    def dim(self) -> int:
        return self.n_max_radial + 1 + (self.n_max_angular + 1) * self.angular_blocks

    @property
    def block_of_component(self) -> list[int]:
        """Block index of each descriptor component: 0 radial, 1.. angular blocks."""
        blocks = [0] * (self.n_max_radial + 1)
        for b in range(self.angular_blocks):
            blocks += [b + 1] * (self.n_max_angular + 1)
        return blocks

    @property
    def n_network_parameters(self) -> int:
        return self.n_types * (self.dim + 2) * self.neurons + 1

    @property
    def n_descriptor_parameters(self) -> int:
        t2 = self.n_types**2
        return t2 * (
            (self.n_max_radial + 1) * (self.basis_size_radial + 1)
            + (self.n_max_angular + 1) * (self.basis_size_angular + 1)
        )

    @property
    def n_parameters(self) -> int:
        return self.n_network_parameters + self.n_descriptor_parameters


def chebyshev_basis(r: torch.Tensor, cutoff: float, size: int) -> torch.Tensor:
    """f_k(r) = (T_k(x) + 1) / 2 f_c(r), k = 0..size, (P, size + 1); 0 beyond the cutoff."""
    return _chebyshev(r, cutoff, size, slope=False)[0]


def chebyshev_basis_and_slope(
    r: torch.Tensor, cutoff: float, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The basis and its derivative in r (T_k' = k U_(k-1), both by their recursions)."""
    values, slope = _chebyshev(r, cutoff, size, slope=True)
    assert slope is not None
    return values, slope


def _chebyshev(
    r: torch.Tensor, cutoff: float, size: int, *, slope: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    inside = r < cutoff
    u = r / cutoff - 1.0
    x = 2.0 * u * u - 1.0
    fc = torch.where(inside, 0.5 * torch.cos(math.pi * r / cutoff) + 0.5, torch.zeros_like(r))
    t = [torch.ones_like(x), x]
    for _ in range(2, size + 1):
        t.append(2.0 * x * t[-1] - t[-2])
    t = torch.stack(t[: size + 1], dim=-1)
    values = 0.5 * (t + 1.0) * fc[:, None]
    if not slope:
        return values, None
    chebyshev_u = [torch.ones_like(x), 2.0 * x]  # U_0, U_1, ...
    for _ in range(2, size):
        chebyshev_u.append(2.0 * x * chebyshev_u[-1] - chebyshev_u[-2])
    k = torch.arange(size + 1, dtype=r.dtype, device=r.device)
    u_previous = torch.stack([torch.zeros_like(x), *chebyshev_u[:size]], dim=-1)  # U_(k-1)
    dt = k * u_previous * (4.0 * u / cutoff)[:, None]  # dT_k/dr = k U_(k-1) dx/dr
    dfc = torch.where(
        inside, -0.5 * math.pi / cutoff * torch.sin(math.pi * r / cutoff), torch.zeros_like(r)
    )
    return values, 0.5 * dt * fc[:, None] + 0.5 * (t + 1.0) * dfc[:, None]


class NEPDescriptor(torch.nn.Module):
    """NEP4 descriptors (N, dim) from pair vectors; the radial coefficients are trainable."""

    def __init__(self, settings: NepSettings) -> None:
        super().__init__()
        s = settings
        self.settings = settings
        self.elements = s.elements
        t = s.n_types
        self.c_radial = torch.nn.Parameter(
            torch.zeros(s.n_max_radial + 1, s.basis_size_radial + 1, t, t, dtype=torch.float64)
        )
        self.c_angular = torch.nn.Parameter(
            torch.zeros(s.n_max_angular + 1, s.basis_size_angular + 1, t, t, dtype=torch.float64)
        )
        self.register_buffer("q_scaler", torch.ones(s.dim, dtype=torch.float64))

    @property
    def cutoff(self) -> float:
        return self.settings.cutoff_radial

    @property
    def n_features(self) -> int:
        return self.settings.dim

    @cached_property
    def feature_labels(self) -> list[str]:
        s = self.settings
        labels = [f"radial[{n}]" for n in range(s.n_max_radial + 1)]
        names = [f"l={ell}" for ell in range(1, s.l_max + 1)]
        names += ["4body"] * (s.l_max_4body == 2) + ["5body"] * (s.l_max_5body == 1)
        for name in names:
            labels += [f"angular[{name},{n}]" for n in range(s.n_max_angular + 1)]
        return labels

    def forward(
        self,
        vectors: torch.Tensor,
        center: torch.Tensor,
        neighbor_species: torch.Tensor,
        center_species: torch.Tensor,
    ) -> torch.Tensor:
        return self.unscaled(vectors, center, neighbor_species, center_species) * self.q_scaler

    def energy_forces(self, model: torch.nn.Module, batch, *, stress: bool = True):
        """Energies, forces and (with `stress`) virial stresses of `model` on this
        descriptor in closed form: autograd only on the per-atom network and invariants,
        the pair derivatives written out (see `nep_batch`); `Potential` uses it for
        predictions (equal to the autograd path to round-off, about twice as fast)."""
        from matforge.mlip.potential import PotentialOutput

        s, t = self.settings, self.settings.n_types
        species, pairs = batch.species, batch.pairs
        n_atoms = len(species)
        with torch.no_grad():
            vectors, _ = batch.strained(batch.positions, batch.zero_strain())
            r = vectors.norm(dim=-1)
            neighbor_species = species[pairs.neighbor]
            c_r = self.c_radial.detach()[:, :, species]  # (n, k, N, T)
            c_a = self.c_angular.detach()[:, :, species]
            radial = r < s.cutoff_radial
            basis_r, slope_r = chebyshev_basis_and_slope(
                r[radial], s.cutoff_radial, s.basis_size_radial
            )
            slot_r = pairs.center[radial] * t + neighbor_species[radial]
            sums = basis_r.new_zeros(n_atoms * t, basis_r.shape[1]).index_add_(0, slot_r, basis_r)
            q_radial = torch.einsum("itk,nkit->in", sums.view(n_atoms, t, -1), c_r)
            angular = r < s.cutoff_angular
            ra, va = r[angular], vectors[angular]
            unit_a = va / ra[:, None]
            basis_a, slope_a = chebyshev_basis_and_slope(ra, s.cutoff_angular, s.basis_size_angular)
            phi, grad_phi = angular_components_and_gradient(unit_a, ra, s)
            slot_a = pairs.center[angular] * t + neighbor_species[angular]
            terms = (basis_a[:, :, None] * phi[:, None, :]).reshape(len(ra), -1)
            sums = terms.new_zeros(n_atoms * t, terms.shape[1]).index_add_(0, slot_a, terms)
            a = torch.einsum("itkc,nkit->inc", sums.view(n_atoms, t, basis_a.shape[1], -1), c_a)
        with torch.enable_grad():
            q_radial.requires_grad_(True)
            a.requires_grad_(True)
            q = torch.cat([q_radial, angular_invariants(a, s)], dim=1) * self.q_scaler
            atomic = model(q, species)
            g_radial, g_angular = torch.autograd.grad(atomic.sum(), [q_radial, a])
        with torch.no_grad():
            atomic = atomic.detach()
            coupled_r = torch.einsum("in,nkit->itk", g_radial, c_r).reshape(n_atoms * t, -1)
            coupled_a = torch.einsum("inc,nkit->itkc", g_angular, c_a)
            coupled_a = coupled_a.reshape(n_atoms * t, *coupled_a.shape[2:])
            unit_r = vectors[radial] / r[radial, None]
            d_r = unit_r * (slope_r * coupled_r[slot_r]).sum(-1)[:, None]
            per_pair = coupled_a[slot_a]  # (P, k, C)
            h = torch.einsum("pk,pkc->pc", basis_a, per_pair)
            h_slope = torch.einsum("pk,pkc->pc", slope_a, per_pair)
            d_a = unit_a * (h_slope * phi).sum(-1)[:, None]
            d_a = d_a + torch.einsum("pc,pxc->px", h, grad_phi)
            force = vectors.new_zeros(n_atoms, 3)
            sigma = None
            if stress:
                virial = vectors.new_zeros(batch.n_structures, 3, 3)
            for mask, d in ((radial, d_r), (angular, d_a)):
                force.index_add_(0, pairs.center[mask], d)
                force.index_add_(0, pairs.neighbor[mask], -d)
                if stress:
                    outer = vectors[mask][:, :, None] * d[:, None, :]
                    virial.index_add_(0, pairs.structure[mask], outer)
            if stress:
                sigma = 0.5 * (virial + virial.transpose(1, 2)) / batch.volumes[:, None, None]
            energy = batch.sum_per_structure(atomic)
        return PotentialOutput(energy, force, sigma, atomic)

    def unscaled(
        self,
        vectors: torch.Tensor,
        center: torch.Tensor,
        neighbor_species: torch.Tensor,
        center_species: torch.Tensor,
    ) -> torch.Tensor:
        s = self.settings
        n_atoms, t = len(center_species), s.n_types
        r = vectors.norm(dim=-1)
        # sum the basis over neighbours per (centre, neighbour species) first: the
        # coefficients then act per atom, not per pair
        radial = r < s.cutoff_radial
        slot = center[radial] * t + neighbor_species[radial]
        basis = chebyshev_basis(r[radial], s.cutoff_radial, s.basis_size_radial)
        sums = basis.new_zeros(n_atoms * t, basis.shape[1]).index_add(0, slot, basis)
        c = self.c_radial[:, :, center_species]  # (n, k, N, T)
        q_radial = torch.einsum("itk,nkit->in", sums.reshape(n_atoms, t, -1), c)

        angular = r < s.cutoff_angular
        ra, va = r[angular], vectors[angular]
        basis = chebyshev_basis(ra, s.cutoff_angular, s.basis_size_angular)
        components = angular_components(va / ra[:, None], s)
        slot = center[angular] * t + neighbor_species[angular]
        terms = (basis[:, :, None] * components[:, None, :]).reshape(len(ra), -1)
        sums = terms.new_zeros(n_atoms * t, terms.shape[1]).index_add(0, slot, terms)
        sums = sums.reshape(n_atoms, t, basis.shape[1], components.shape[1])
        a = torch.einsum("itkc,nkit->inc", sums, self.c_angular[:, :, center_species])
        return torch.cat([q_radial, angular_invariants(a, s)], dim=1)


def angular_components(unit: torch.Tensor, s: NepSettings) -> torch.Tensor:
    """Per pair: Y_lm (l = 1..l_max, orthonormal real) and, for the 4-body term, the five
    components of u u^T - 1/3 (xx - 1/3, yy - 1/3, xy, xz, yz); (P, C)."""
    y = real_spherical_harmonics(unit, s.l_max)[:, 1:]
    if s.l_max_4body != 2:
        return y
    x, yy, z = unit.unbind(-1)
    quadrupole = torch.stack([x * x - 1 / 3, yy * yy - 1 / 3, x * yy, x * z, yy * z], dim=-1)
    return torch.cat([y, quadrupole], dim=-1)


def angular_components_and_gradient(
    unit: torch.Tensor, r: torch.Tensor, s: NepSettings
) -> tuple[torch.Tensor, torch.Tensor]:
    """Phi (P, C) and d Phi / d v (P, 3, C) for unit vectors u = v / r."""
    y, dy = real_spherical_harmonics_and_gradient(unit, s.l_max)
    values, grads = [y[:, 1:]], [dy[:, :, 1:]]
    if s.l_max_4body == 2:
        x, yy, z = unit.unbind(-1)
        zero = torch.zeros_like(x)
        values.append(torch.stack([x * x - 1 / 3, yy * yy - 1 / 3, x * yy, x * z, yy * z], -1))
        grads.append(
            torch.stack(
                [
                    torch.stack([2 * x, zero, zero], -1),
                    torch.stack([zero, 2 * yy, zero], -1),
                    torch.stack([yy, x, zero], -1),
                    torch.stack([z, zero, x], -1),
                    torch.stack([zero, z, yy], -1),
                ],
                dim=-1,
            )
        )
    phi, grad_u = torch.cat(values, dim=-1), torch.cat(grads, dim=-1)
    # on the sphere: d Phi(v / |v|) / dv = (1 - u u^T) grad_u Phi / |v|
    along = (unit[:, :, None] * grad_u).sum(dim=1, keepdim=True)
    return phi, (grad_u - unit[:, :, None] * along) / r[:, None, None]


def angular_invariants(a: torch.Tensor, s: NepSettings) -> torch.Tensor:
    """From the accumulated components a (N, n_max_angular + 1, C) to the angular
    descriptors (N, (n_max_angular + 1) * blocks), block by block."""
    blocks = []
    for ell in range(1, s.l_max + 1):
        part = a[..., ell * ell - 1 : (ell + 1) * (ell + 1) - 1]
        blocks.append((part * part).sum(dim=-1))
    if s.l_max_4body == 2:
        m = a[..., (s.l_max + 1) ** 2 - 1 :]
        xx, yy, xy, xz, yz = m.unbind(-1)
        zz = -xx - yy
        det = xx * (yy * zz - yz * yz) - xy * (xy * zz - yz * xz) + xz * (xy * yz - yy * xz)
        blocks.append(KAPPA_4BODY * det)
    if s.l_max_5body == 1:
        p = a[..., 0:3]
        blocks.append(KAPPA_5BODY * (p * p).sum(dim=-1) ** 2)
    return torch.cat(blocks, dim=1)


def angular_invariants_vjp(a: torch.Tensor, g: torch.Tensor, s: NepSettings) -> torch.Tensor:
    """d(sum g . invariants)/da for cotangents g (..., blocks * (n_max_angular + 1)) of
    `angular_invariants`, written out (no autograd graph)."""
    n = s.n_max_angular + 1
    out = torch.zeros_like(a)
    for ell in range(1, s.l_max + 1):
        part = slice(ell * ell - 1, (ell + 1) * (ell + 1) - 1)
        out[..., part] = 2.0 * a[..., part] * g[..., (ell - 1) * n : ell * n, None]
    block = s.l_max
    if s.l_max_4body == 2:
        m = a[..., (s.l_max + 1) ** 2 - 1 :]
        xx, yy, xy, xz, yz = m.unbind(-1)
        zz = -xx - yy
        # cofactors of the symmetric M; zz = -xx - yy carries into the xx and yy entries
        c_xx, c_yy, c_zz = yy * zz - yz * yz, xx * zz - xz * xz, xx * yy - xy * xy
        c_xy, c_xz, c_yz = xz * yz - xy * zz, xy * yz - yy * xz, xy * xz - xx * yz
        weight = KAPPA_4BODY * g[..., block * n : (block + 1) * n]
        grads = torch.stack([c_xx - c_zz, c_yy - c_zz, 2.0 * c_xy, 2.0 * c_xz, 2.0 * c_yz], dim=-1)
        out[..., (s.l_max + 1) ** 2 - 1 :] = grads * weight[..., None]
        block += 1
    if s.l_max_5body == 1:
        p = a[..., 0:3]
        weight = 4.0 * KAPPA_5BODY * (p * p).sum(-1) * g[..., block * n : (block + 1) * n]
        out[..., 0:3] = out[..., 0:3] + p * weight[..., None]
    return out


class NEPNetwork(torch.nn.Module):
    """One hidden tanh layer per species: E_i = w1[t] . tanh(w0[t] q_i - b0[t]) - b1."""

    def __init__(self, n_types: int, dim: int, neurons: int) -> None:
        super().__init__()
        f = torch.float64
        self.w0 = torch.nn.Parameter(torch.zeros(n_types, neurons, dim, dtype=f))
        self.b0 = torch.nn.Parameter(torch.zeros(n_types, neurons, dtype=f))
        self.w1 = torch.nn.Parameter(torch.zeros(n_types, neurons, dtype=f))
        self.b1 = torch.nn.Parameter(torch.zeros((), dtype=f))

    def forward(self, features: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        out = features.new_zeros(len(features))
        for t in range(self.w0.shape[0]):
            mine = species == t
            if not bool(mine.any()):
                continue
            hidden = torch.tanh(features[mine] @ self.w0[t].T - self.b0[t])
            out = out.index_put((torch.nonzero(mine).flatten(),), hidden @ self.w1[t])
        return out - self.b1


def nep_potential(settings: NepSettings):
    """An unfitted NEP (zero parameters, unit q_scaler) with GPUMD's ZBL if configured."""
    from matforge.mlip.potential import Potential
    from matforge.mlip.zbl import ZBL, atomic_number

    descriptor = NEPDescriptor(settings)
    network = NEPNetwork(settings.n_types, settings.dim, settings.neurons)
    reference = None
    if settings.zbl is not None:
        charges = {e: float(atomic_number(e)) for e in settings.elements}
        reference = ZBL(charges, settings.zbl[0], settings.zbl[1], style="gpumd")
    return Potential(descriptor, network, reference)


def parameter_vector(potential) -> torch.Tensor:
    """The NEP's parameters in nep.txt's order: per species w0 (neuron-major), b0, w1; b1;
    then c_radial, c_angular as (n, k, t1, t2) with the species pair fastest."""
    net, desc = potential.model, potential.descriptor
    parts = []
    for t in range(net.w0.shape[0]):
        parts += [net.w0[t].reshape(-1), net.b0[t], net.w1[t]]
    parts.append(net.b1.reshape(1))
    parts += [desc.c_radial.reshape(-1), desc.c_angular.reshape(-1)]
    return torch.cat(parts)


def load_parameter_vector(potential, values: torch.Tensor | Sequence[float]) -> None:
    """Set every NEP parameter from a vector in nep.txt's order (see `parameter_vector`)."""
    values = torch.as_tensor(values, dtype=torch.float64)
    net, desc = potential.model, potential.descriptor
    expected = sum(p.numel() for p in (net.w0, net.b0, net.w1, net.b1))
    expected += desc.c_radial.numel() + desc.c_angular.numel()
    if len(values) != expected:
        raise ConfigError(
            f"a NEP of this architecture has {expected} parameters, got {len(values)}"
        )
    offset = 0

    def take(n: int) -> torch.Tensor:
        nonlocal offset
        out = values[offset : offset + n]
        offset += n
        return out

    with torch.no_grad():
        for t in range(net.w0.shape[0]):
            net.w0[t].copy_(take(net.w0[t].numel()).reshape(net.w0[t].shape))
            net.b0[t].copy_(take(net.b0.shape[1]))
            net.w1[t].copy_(take(net.w1.shape[1]))
        net.b1.copy_(take(1)[0])
        desc.c_radial.copy_(take(desc.c_radial.numel()).reshape(desc.c_radial.shape))
        desc.c_angular.copy_(take(desc.c_angular.numel()).reshape(desc.c_angular.shape))
