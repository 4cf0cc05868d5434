"""Energy, forces and virial of a linear SNAP with compiled loops (numba, extra `jit`).

The torch path (`Bispectrum` + autograd) runs any model on any device; this one is for
molecular dynamics with a linear SNAP on a CPU, where LAMMPS's strategy wins: per atom,
accumulate U_tot, form the bispectrum and, in the same loops over the non-zero
Clebsch-Gordan products, the adjoint Y = dE/dU_tot; then, per neighbour, recompute U^j and
its derivative dU^j/dr by the same recursion and contract with Y. Nothing per pair is
stored. Results equal the torch path to rounding (tests/mlip/test_snap_numba.py).
"""

from __future__ import annotations

import math

import numpy as np

try:
    from numba import njit
except ImportError:  # pragma: no cover - the jit extra brings numba
    njit = None


def _wigner(v, rc, rfac0, rmin0, twojmax, offsets, u, du, with_derivative):
    """U^j (full matrices, rows m', cols m, flattened per j at `offsets`) and, optionally,
    dU^j/dv for the three components, for one pair vector v; returns |v|."""
    vx, vy, vz = v[0], v[1], v[2]
    r = math.sqrt(vx * vx + vy * vy + vz * vz)
    scale = rfac0 * math.pi / (rc - rmin0)
    theta0 = (r - rmin0) * scale
    z0 = r * math.cos(theta0) / math.sin(theta0)
    r0inv = 1.0 / math.sqrt(r * r + z0 * z0)
    a = complex(r0inv * z0, r0inv * vz)  # conj(a) of the Cayley-Klein parameters
    b = complex(r0inv * vy, r0inv * vx)  # conj(b)
    dz0dr = z0 / r - r * scale / (math.sin(theta0) ** 2)
    dr0 = -(r0inv**3) * (r + z0 * dz0dr)
    ux, uy, uz = vx / r, vy / r, vz / r
    da0 = complex(dr0 * ux * z0 + r0inv * dz0dr * ux, dr0 * ux * vz)
    da1 = complex(dr0 * uy * z0 + r0inv * dz0dr * uy, dr0 * uy * vz)
    da2 = complex(dr0 * uz * z0 + r0inv * dz0dr * uz, dr0 * uz * vz + r0inv)
    db0 = complex(dr0 * ux * vy, dr0 * ux * vx + r0inv)
    db1 = complex(dr0 * uy * vy + r0inv, dr0 * uy * vx)
    db2 = complex(dr0 * uz * vy, dr0 * uz * vx)
    u[0] = 1.0
    du[0, 0] = 0.0
    du[1, 0] = 0.0
    du[2, 0] = 0.0
    for j in range(1, twojmax + 1):
        o, op = offsets[j], offsets[j - 1]
        for mb in range(j // 2 + 1):
            for ma in range(j + 1):
                value = 0j
                d0 = 0j
                d1 = 0j
                d2 = 0j
                if ma < j:
                    f = math.sqrt((j - ma) / (j - mb))
                    k = op + mb * j + ma
                    prev = u[k]
                    value += f * a * prev
                    if with_derivative:
                        d0 += f * (da0 * prev + a * du[0, k])
                        d1 += f * (da1 * prev + a * du[1, k])
                        d2 += f * (da2 * prev + a * du[2, k])
                if ma > 0:
                    f = math.sqrt(ma / (j - mb))
                    k = op + mb * j + ma - 1
                    prev = u[k]
                    value -= f * b * prev
                    if with_derivative:
                        d0 -= f * (db0 * prev + b * du[0, k])
                        d1 -= f * (db1 * prev + b * du[1, k])
                        d2 -= f * (db2 * prev + b * du[2, k])
                k = o + mb * (j + 1) + ma
                u[k] = value
                if with_derivative:
                    du[0, k] = d0
                    du[1, k] = d1
                    du[2, k] = d2
        for mb in range(j // 2 + 1, j + 1):
            for ma in range(j + 1):
                sign = 1.0 if (mb - ma) % 2 == 0 else -1.0
                source = o + (j - mb) * (j + 1) + (j - ma)
                k = o + mb * (j + 1) + ma
                u[k] = sign * u[source].conjugate()
                if with_derivative:
                    du[0, k] = sign * du[0, source].conjugate()
                    du[1, k] = sign * du[1, source].conjugate()
                    du[2, k] = sign * du[2, source].conjugate()
    return r


def _switch(r, rc, rmin0, switchflag):
    """Cosine switching function and its derivative in r."""
    if not switchflag or r <= rmin0:
        return 1.0, 0.0
    arg = math.pi * (r - rmin0) / (rc - rmin0)
    return 0.5 * (math.cos(arg) + 1.0), -0.5 * math.pi / (rc - rmin0) * math.sin(arg)


def _kernel(
    starts,
    vectors,
    cutoffs,
    weights,
    species,
    beta,
    twojmax,
    rfac0,
    rmin0,
    switchflag,
    wself,
    bzero,
    triples,
    cg,
    cg_offsets,
    offsets,
):
    n_atoms = len(starts) - 1
    size = offsets[twojmax + 1]
    energies = np.zeros(n_atoms)
    dedv = np.zeros((len(vectors), 3))
    utot = np.zeros(size, dtype=np.complex128)
    y = np.zeros(size, dtype=np.complex128)
    u = np.zeros(size, dtype=np.complex128)
    du = np.zeros((3, size), dtype=np.complex128)
    for i in range(n_atoms):
        utot[:] = 0.0
        for j in range(twojmax + 1):
            for m in range(j + 1):
                utot[offsets[j] + m * (j + 1) + m] = wself
        for p in range(starts[i], starts[i + 1]):
            rc = cutoffs[p]
            r = _wigner(vectors[p], rc, rfac0, rmin0, twojmax, offsets, u, du, False)
            fc, _ = _switch(r, rc, rmin0, switchflag)
            utot += (weights[p] * fc) * u
        y[:] = 0.0
        s = species[i]
        energy = beta[s, 0]
        for t in range(len(triples)):
            j1, j2, j = triples[t, 0], triples[t, 1], triples[t, 2]
            bt = beta[s, t + 1]
            o1, o2, o3, co = offsets[j1], offsets[j2], offsets[j], cg_offsets[t]
            total = 0.0
            for ap in range(j1 + 1):
                for bp in range(j2 + 1):
                    n2 = 2 * ap - j1 + 2 * bp - j2 + j
                    if n2 < 0 or n2 > 2 * j:
                        continue
                    n = n2 // 2
                    c1 = cg[co + (ap * (j2 + 1) + bp) * (j + 1) + n]
                    if c1 == 0.0:
                        continue
                    for a in range(j1 + 1):
                        u1 = utot[o1 + ap * (j1 + 1) + a]
                        for b in range(j2 + 1):
                            m2 = 2 * a - j1 + 2 * b - j2 + j
                            if m2 < 0 or m2 > 2 * j:
                                continue
                            m = m2 // 2
                            c = c1 * cg[co + (a * (j2 + 1) + b) * (j + 1) + m]
                            u2 = utot[o2 + bp * (j2 + 1) + b]
                            u3 = utot[o3 + n * (j + 1) + m]
                            product = u1 * u2
                            total += c * (u3.real * product.real + u3.imag * product.imag)
                            cb = c * bt
                            y[o3 + n * (j + 1) + m] += cb * product
                            y[o1 + ap * (j1 + 1) + a] += cb * u3 * u2.conjugate()
                            y[o2 + bp * (j2 + 1) + b] += cb * u3 * u1.conjugate()
            if bzero:
                total -= wself**3 * (j + 1)
            energy += bt * total
        energies[i] = energy
        for p in range(starts[i], starts[i + 1]):
            rc = cutoffs[p]
            r = _wigner(vectors[p], rc, rfac0, rmin0, twojmax, offsets, u, du, True)
            fc, dfc = _switch(r, rc, rmin0, switchflag)
            w = weights[p]
            yu = 0.0
            for k in range(size):
                yu += y[k].real * u[k].real + y[k].imag * u[k].imag
            for c in range(3):
                ydu = 0.0
                for k in range(size):
                    ydu += y[k].real * du[c, k].real + y[k].imag * du[c, k].imag
                dedv[p, c] = w * (dfc * vectors[p, c] / r * yu + fc * ydu)
    return energies, dedv


if njit is not None:
    _switch = njit(cache=True)(_switch)
    _wigner = njit(cache=True)(_wigner)
    _kernel = njit(cache=True)(_kernel)


def numba_available() -> bool:
    return njit is not None


def snap_energy_forces(bispectrum, batch, coefficients: np.ndarray):
    """Atomic energies (N,), forces (N, 3) and virial sum_p v_p dE/dv_p (S, 3, 3) of the
    linear SNAP part, from a batch and coefficients (n_elements, 1 + n_features)."""
    import torch

    from matforge.mlip.neighbors import pair_vectors

    if njit is None:
        raise ImportError("the numba SNAP backend needs numba: pip install 'matforge[jit]'")
    params = bispectrum.parameters
    if params.quadraticflag:
        raise ValueError("the numba SNAP backend supports linear SNAP only")
    pairs = batch.pairs
    with torch.no_grad():
        vectors = pair_vectors(pairs, batch.positions, batch.cells).numpy()
    center = pairs.center.numpy()
    neighbor = pairs.neighbor.numpy()
    species = batch.species.numpy()
    cut = bispectrum.pair_cutoff.numpy()[species[center], species[neighbor]]
    r = np.linalg.norm(vectors, axis=1)
    keep = np.nonzero(r < cut)[0]
    order = keep[np.argsort(center[keep], kind="stable")]
    n_atoms = len(species)
    starts = np.zeros(n_atoms + 1, dtype=np.int64)
    np.cumsum(np.bincount(center[order], minlength=n_atoms), out=starts[1:])
    weights = bispectrum.element_weight.numpy()[species[neighbor[order]]]
    energies, dedv = _kernel(
        starts,
        np.ascontiguousarray(vectors[order]),
        np.ascontiguousarray(cut[order]),
        weights,
        species,
        np.ascontiguousarray(coefficients, dtype=np.float64),
        params.twojmax,
        params.rfac0,
        params.rmin0,
        params.switchflag,
        params.wself,
        params.bzeroflag,
        bispectrum.triple_table,
        bispectrum.cg_flat,
        bispectrum.cg_offsets,
        bispectrum.u_offsets,
    )
    forces = np.zeros((n_atoms, 3))
    np.add.at(forces, center[order], dedv)
    np.add.at(forces, neighbor[order], -dedv)
    virial = np.zeros((batch.n_structures, 3, 3))
    owner = batch.structure.numpy()[center[order]]
    np.add.at(virial, owner, vectors[order][:, :, None] * dedv[:, None, :])
    return energies, forces, virial
