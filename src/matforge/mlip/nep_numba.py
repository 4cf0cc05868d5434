"""NEP energies and forces with compiled loops (numba, extra `jit`): the MD fast path.

Per atom: accumulate the radial descriptors and the angular sums A_nc = sum_j g_n(r_ij)
Phi_c(u_ij) over its neighbours, form the invariants and the network, and the adjoints
dE/dq and dE/dA (closed form, as `nep.angular_invariants_vjp`); then, per neighbour,
recompute the basis and harmonics and contract them with the adjoints into dE/dv_ij.
Nothing per pair is stored but dE/dv. The same mathematics as `NEPDescriptor` (torch);
results equal it to rounding (tests/mlip/test_nep.py).
"""

from __future__ import annotations

import math

import numpy as np

from matforge.mlip.nep import KAPPA_4BODY, KAPPA_5BODY

try:
    from numba import njit
except ImportError:  # pragma: no cover - the jit extra brings numba
    njit = None


def harmonic_norms(l_max: int) -> np.ndarray:
    """The normalization of each real Y_lm (l = 0..l_max, m = -l..l), sqrt(2) for m != 0."""
    out = []
    for ell in range(l_max + 1):
        for m in range(-ell, ell + 1):
            a = abs(m)
            norm = math.sqrt(
                (2 * ell + 1) / (4 * math.pi) * math.factorial(ell - a) / math.factorial(ell + a)
            )
            out.append(norm * (math.sqrt(2) if m else 1.0))
    return np.array(out)


def _chebyshev(r, cutoff, size, f, fp):
    """f_k(r) and df_k/dr, k = 0..size, into f and fp."""
    u = r / cutoff - 1.0
    x = 2.0 * u * u - 1.0
    dx = 4.0 * u / cutoff
    fc = 0.5 * math.cos(math.pi * r / cutoff) + 0.5
    dfc = -0.5 * math.pi / cutoff * math.sin(math.pi * r / cutoff)
    t_prev, t_now = 1.0, x
    u_prev, u_now = 0.0, 1.0  # U_(k-2), U_(k-1) for T_k' = k U_(k-1)
    for k in range(size + 1):
        if k == 0:
            t, dt = 1.0, 0.0
        elif k == 1:
            t, dt = x, dx
        else:
            t = 2.0 * x * t_now - t_prev
            t_prev, t_now = t_now, t
            u_next = 2.0 * x * u_now - u_prev
            u_prev, u_now = u_now, u_next
            dt = k * u_now * dx
        f[k] = 0.5 * (t + 1.0) * fc
        fp[k] = 0.5 * dt * fc + 0.5 * (t + 1.0) * dfc


def _harmonics(x, y, z, l_max, norm, cm, sm, q, dq, values, grads):
    """Real orthonormal Y_lm and their gradients in the independent x, y, z (see soap)."""
    cm[0], sm[0] = 1.0, 0.0
    for m in range(1, l_max + 1):
        cm[m] = x * cm[m - 1] - y * sm[m - 1]
        sm[m] = x * sm[m - 1] + y * cm[m - 1]
    q[0, 0], dq[0, 0] = 1.0, 0.0
    for ell in range(1, l_max + 1):
        for m in range(ell + 1):
            if m == ell:
                q[ell, m] = -(2 * ell - 1) * q[ell - 1, ell - 1]
                dq[ell, m] = 0.0
            elif m == ell - 1:
                q[ell, m] = (2 * ell - 1) * z * q[ell - 1, m]
                dq[ell, m] = (2 * ell - 1) * (q[ell - 1, m] + z * dq[ell - 1, m])
            else:
                a = (2 * ell - 1) / (ell - m)
                b = (ell + m - 1) / (ell - m)
                q[ell, m] = a * z * q[ell - 1, m] - b * q[ell - 2, m]
                dq[ell, m] = a * (q[ell - 1, m] + z * dq[ell - 1, m]) - b * dq[ell - 2, m]
    index = 0
    for ell in range(l_max + 1):
        for m in range(-ell, ell + 1):
            a = abs(m)
            n = norm[index]
            if m == 0:
                values[index] = n * q[ell, 0]
                grads[0, index] = 0.0
                grads[1, index] = 0.0
                grads[2, index] = n * dq[ell, 0]
            else:
                if m > 0:
                    t, dtx, dty = cm[a], a * cm[a - 1], -a * sm[a - 1]
                else:
                    t, dtx, dty = sm[a], a * sm[a - 1], a * cm[a - 1]
                values[index] = n * q[ell, a] * t
                grads[0, index] = n * q[ell, a] * dtx
                grads[1, index] = n * q[ell, a] * dty
                grads[2, index] = n * dq[ell, a] * t
            index += 1


def _components(v, r, l_max, quadrupole, norm, cm, sm, q, dq, y, dy, phi, dphi):
    """Phi_c (C,) and dPhi_c/dv (3, C) of a pair vector v, |v| = r."""
    ux, uy, uz = v[0] / r, v[1] / r, v[2] / r
    _harmonics(ux, uy, uz, l_max, norm, cm, sm, q, dq, y, dy)
    n_y = (l_max + 1) * (l_max + 1) - 1
    for c in range(n_y):
        phi[c] = y[c + 1]
        for a in range(3):
            dphi[a, c] = dy[a, c + 1]
    if quadrupole:
        phi[n_y] = ux * ux - 1.0 / 3.0
        phi[n_y + 1] = uy * uy - 1.0 / 3.0
        phi[n_y + 2] = ux * uy
        phi[n_y + 3] = ux * uz
        phi[n_y + 4] = uy * uz
        for a in range(3):
            for c in range(5):
                dphi[a, n_y + c] = 0.0
        dphi[0, n_y] = 2 * ux
        dphi[1, n_y + 1] = 2 * uy
        dphi[0, n_y + 2], dphi[1, n_y + 2] = uy, ux
        dphi[0, n_y + 3], dphi[2, n_y + 3] = uz, ux
        dphi[1, n_y + 4], dphi[2, n_y + 4] = uz, uy
    # on the sphere: (1 - u u^T) grad_u / r
    for c in range(len(phi)):
        along = ux * dphi[0, c] + uy * dphi[1, c] + uz * dphi[2, c]
        dphi[0, c] = (dphi[0, c] - ux * along) / r
        dphi[1, c] = (dphi[1, c] - uy * along) / r
        dphi[2, c] = (dphi[2, c] - uz * along) / r


def _quadrupole(a_sum, n, n_y):
    """The traceless M of block n: xx, yy, xy, xz, yz and zz = -xx - yy."""
    xx, yy = a_sum[n, n_y], a_sum[n, n_y + 1]
    return xx, yy, a_sum[n, n_y + 2], a_sum[n, n_y + 3], a_sum[n, n_y + 4], -xx - yy


def _kernel(
    starts, vectors, neighbors, neighbor_species, species, structure, n_structures,
    c_radial, c_angular, q_scaler, w0, b0, w1, b1, cut_r, cut_a, l_max, four_body,
    five_body, norm,
):  # fmt: skip
    n_atoms = len(species)
    nr, kr = c_radial.shape[2], c_radial.shape[3]
    na, ka = c_angular.shape[2], c_angular.shape[3]
    n_y = (l_max + 1) * (l_max + 1) - 1
    n_c = n_y + (5 if four_body else 0)
    blocks = l_max + (1 if four_body else 0) + (1 if five_body else 0)
    dim = nr + na * blocks
    hidden = w0.shape[1]
    energies = np.zeros(n_atoms)
    forces = np.zeros((n_atoms, 3))
    virial = np.zeros((n_structures, 3, 3))
    cm, sm = np.zeros(l_max + 1), np.zeros(l_max + 1)
    qq, dqq = np.zeros((l_max + 1, l_max + 1)), np.zeros((l_max + 1, l_max + 1))
    y, dy = np.zeros((l_max + 1) ** 2), np.zeros((3, (l_max + 1) ** 2))
    phi, dphi = np.zeros(n_c), np.zeros((3, n_c))
    q, gq = np.zeros(dim), np.zeros(dim)
    a_sum, g_a = np.zeros((na, n_c)), np.zeros((na, n_c))
    g, gp = np.zeros(na), np.zeros(na)
    # the basis and its slope of every pair, kept from the first pass for the second
    stored_r = np.zeros((len(vectors), 2, kr))
    stored_a = np.zeros((len(vectors), 2, ka))
    for i in range(n_atoms):
        ti = species[i]
        q[:] = 0.0
        a_sum[:, :] = 0.0
        for p in range(starts[i], starts[i + 1]):
            v = vectors[p]
            r = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
            tj = neighbor_species[p]
            if r < cut_r:
                _chebyshev(r, cut_r, kr - 1, stored_r[p, 0], stored_r[p, 1])
                fr = stored_r[p, 0]
                for n in range(nr):
                    s = 0.0
                    for k in range(kr):
                        s += c_radial[ti, tj, n, k] * fr[k]
                    q[n] += s
            if r < cut_a:
                _chebyshev(r, cut_a, ka - 1, stored_a[p, 0], stored_a[p, 1])
                fa = stored_a[p, 0]
                _components(v, r, l_max, four_body, norm, cm, sm, qq, dqq, y, dy, phi, dphi)
                for n in range(na):
                    s = 0.0
                    for k in range(ka):
                        s += c_angular[ti, tj, n, k] * fa[k]
                    for c in range(n_c):
                        a_sum[n, c] += s * phi[c]
        # invariants, block by block
        for n in range(na):
            for ell in range(1, l_max + 1):
                s = 0.0
                for c in range(ell * ell - 1, (ell + 1) * (ell + 1) - 1):
                    s += a_sum[n, c] * a_sum[n, c]
                q[nr + (ell - 1) * na + n] = s
            block = l_max
            if four_body:
                xx, yy, xy, xz, yz, zz = _quadrupole(a_sum, n, n_y)
                det = xx * (yy * zz - yz * yz) - xy * (xy * zz - yz * xz) + xz * (xy * yz - yy * xz)
                q[nr + block * na + n] = KAPPA_4BODY * det
                block += 1
            if five_body:
                s = a_sum[n, 0] ** 2 + a_sum[n, 1] ** 2 + a_sum[n, 2] ** 2
                q[nr + block * na + n] = KAPPA_5BODY * s * s
        # the network and dE/dq
        energy = -b1
        gq[:] = 0.0
        for h in range(hidden):
            z = -b0[ti, h]
            for d in range(dim):
                z += w0[ti, h, d] * q[d] * q_scaler[d]
            th = math.tanh(z)
            energy += w1[ti, h] * th
            slope = w1[ti, h] * (1.0 - th * th)
            for d in range(dim):
                gq[d] += slope * w0[ti, h, d]
        energies[i] = energy
        for d in range(dim):
            gq[d] *= q_scaler[d]
        # dE/dA
        g_a[:, :] = 0.0
        for n in range(na):
            for ell in range(1, l_max + 1):
                weight = gq[nr + (ell - 1) * na + n]
                for c in range(ell * ell - 1, (ell + 1) * (ell + 1) - 1):
                    g_a[n, c] = 2.0 * a_sum[n, c] * weight
            block = l_max
            if four_body:
                xx, yy, xy, xz, yz, zz = _quadrupole(a_sum, n, n_y)
                c_xx, c_yy, c_zz = yy * zz - yz * yz, xx * zz - xz * xz, xx * yy - xy * xy
                c_xy, c_xz, c_yz = xz * yz - xy * zz, xy * yz - yy * xz, xy * xz - xx * yz
                weight = KAPPA_4BODY * gq[nr + block * na + n]
                g_a[n, n_y] = (c_xx - c_zz) * weight
                g_a[n, n_y + 1] = (c_yy - c_zz) * weight
                g_a[n, n_y + 2] = 2.0 * c_xy * weight
                g_a[n, n_y + 3] = 2.0 * c_xz * weight
                g_a[n, n_y + 4] = 2.0 * c_yz * weight
                block += 1
            if five_body:
                s = a_sum[n, 0] ** 2 + a_sum[n, 1] ** 2 + a_sum[n, 2] ** 2
                weight = 4.0 * KAPPA_5BODY * s * gq[nr + block * na + n]
                for c in range(3):
                    g_a[n, c] += a_sum[n, c] * weight
        # dE/dv per neighbour
        for p in range(starts[i], starts[i + 1]):
            v = vectors[p]
            r = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
            ux, uy, uz = v[0] / r, v[1] / r, v[2] / r
            tj = neighbor_species[p]
            along = 0.0
            dx = dy_ = dz = 0.0
            if r < cut_r:
                fpr = stored_r[p, 1]
                for n in range(nr):
                    s = 0.0
                    for k in range(kr):
                        s += c_radial[ti, tj, n, k] * fpr[k]
                    along += gq[n] * s
            if r < cut_a:
                fa, fpa = stored_a[p, 0], stored_a[p, 1]
                _components(v, r, l_max, four_body, norm, cm, sm, qq, dqq, y, dy, phi, dphi)
                for n in range(na):
                    s, sp = 0.0, 0.0
                    for k in range(ka):
                        s += c_angular[ti, tj, n, k] * fa[k]
                        sp += c_angular[ti, tj, n, k] * fpa[k]
                    g[n], gp[n] = s, sp
                for c in range(n_c):
                    h, hp = 0.0, 0.0
                    for n in range(na):
                        h += g_a[n, c] * g[n]
                        hp += g_a[n, c] * gp[n]
                    along += hp * phi[c]
                    dx += h * dphi[0, c]
                    dy_ += h * dphi[1, c]
                    dz += h * dphi[2, c]
            d = (along * ux + dx, along * uy + dy_, along * uz + dz)
            j = neighbors[p]
            owner = structure[i]
            for a in range(3):
                forces[i, a] += d[a]
                forces[j, a] -= d[a]
                for b in range(3):
                    virial[owner, a, b] += v[a] * d[b]
    return energies, forces, virial


if njit is not None:
    _chebyshev = njit(cache=True)(_chebyshev)
    _harmonics = njit(cache=True)(_harmonics)
    _components = njit(cache=True)(_components)
    _quadrupole = njit(cache=True)(_quadrupole)
    _kernel = njit(cache=True)(_kernel)


def nep_energy_forces(descriptor, model, batch):
    """Atomic energies (N,), forces (N, 3) and virial sum_p v_p dE/dv_p (S, 3, 3) of a NEP
    (descriptor and network) on a batch."""
    if njit is None:
        raise ImportError("the numba NEP backend needs numba: pip install 'matforge[jit]'")
    s = descriptor.settings
    pairs = batch.pairs
    center, neighbor = pairs.center.numpy(), pairs.neighbor.numpy()
    positions, cells = batch.positions.detach().numpy(), batch.cells.detach().numpy()
    shift, owner = pairs.shift.numpy(), pairs.structure.numpy()
    vectors = positions[neighbor] - positions[center]
    for k in range(batch.n_structures):  # few structures: one matrix product each
        mine = owner == k if batch.n_structures > 1 else slice(None)
        vectors[mine] += np.einsum("pk,kl->pl", shift[mine], cells[k])
    species = batch.species.numpy()
    n_atoms = len(species)
    if len(center) and not bool(np.all(center[1:] >= center[:-1])):
        order = np.argsort(center, kind="stable")
        center, neighbor, vectors = center[order], neighbor[order], vectors[order]
    starts = np.zeros(n_atoms + 1, dtype=np.int64)
    np.cumsum(np.bincount(center, minlength=n_atoms), out=starts[1:])

    def array(t) -> np.ndarray:
        return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float64)

    def coefficients(c) -> np.ndarray:  # (n, k, t1, t2) -> (t1, t2, n, k): inner loops run on k
        return np.ascontiguousarray(c.detach().cpu().numpy().transpose(2, 3, 0, 1))

    energies, forces, virial = _kernel(
        starts,
        np.ascontiguousarray(vectors),
        np.ascontiguousarray(neighbor),
        np.ascontiguousarray(species[neighbor]),
        species,
        batch.structure.numpy(),
        batch.n_structures,
        coefficients(descriptor.c_radial),
        coefficients(descriptor.c_angular),
        array(descriptor.q_scaler),
        array(model.w0),
        array(model.b0),
        array(model.w1),
        float(model.b1.detach()),
        s.cutoff_radial,
        s.cutoff_angular,
        s.l_max,
        s.l_max_4body == 2,
        s.l_max_5body == 1,
        harmonic_norms(s.l_max),
    )
    return energies, forces, virial
