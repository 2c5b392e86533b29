"""Batched Numba kernels: one call computes many small networks of one structure (sweeps, observables).

Notation: P points, N cells. ``M`` (P, N, N) complex generators, ``forcing`` (P, N) complex
(b = -i E), ``omega`` (P, N) float, ``battery`` (N,) bool. Points are independent, so the
outer loop is a ``prange``; everything inside is allocation-light dense linear algebra on N x N.
Buffers are allocated by the caller; a point whose status is not OK is left as NaN.
"""

import numpy as np
from numba import prange

from .._jit import jit
from ..linalg.expm import expm_one, expm_parameters, one_norm_small

OK = 0
NO_STEADY_STATE = 1
NOT_REACHED = 2

@jit(parallel=True)
def steady_batch(M, forcing, blk_ptr, blk_idx, alpha_out, decay_out, status_out):
    """alpha_ss = solve(M, -b) per point, after checking every eigenvalue of M has Re < 0.

    blk_ptr (B+1,), blk_idx (N,): the strongly connected blocks of the shared sparsity pattern
    (cells of block k are blk_idx[blk_ptr[k]:blk_ptr[k+1]]); 1-cell blocks are checked from the
    diagonal exactly, larger ones by their eigenvalues (cascaded networks are never eigendecomposed).
    Writes alpha_out (P, N), decay_out (P,) = -max Re eig(M), status_out (P,).
    """
    P, N = forcing.shape
    nb = blk_ptr.shape[0] - 1
    for p in prange(P):
        scale = 1.0
        for i in range(N):
            for j in range(N):
                a = abs(M[p, i, j])
                if a > scale:
                    scale = a
        maxre = -np.inf
        for k in range(nb):
            s = blk_ptr[k + 1] - blk_ptr[k]
            if s == 1:
                i = blk_idx[blk_ptr[k]]
                re = M[p, i, i].real
            else:
                sub = np.empty((s, s), np.complex128)
                for u in range(s):
                    for v in range(s):
                        sub[u, v] = M[p, blk_idx[blk_ptr[k] + u], blk_idx[blk_ptr[k] + v]]
                w = np.linalg.eigvals(sub)
                re = -np.inf
                for u in range(s):
                    if w[u].real > re:
                        re = w[u].real
            if re > maxre:
                maxre = re
        decay_out[p] = -maxre
        if maxre >= -1e-13 * scale:
            status_out[p] = NO_STEADY_STATE
            for i in range(N):
                alpha_out[p, i] = np.nan
            continue
        status_out[p] = OK
        A = M[p].copy()
        x = np.empty(N, np.complex128)
        for i in range(N):
            x[i] = -forcing[p, i]
        _solve_inplace(A, x)
        for i in range(N):
            alpha_out[p, i] = x[i]


@jit
def _solve_inplace(A, x):
    """Gaussian elimination with partial pivoting: overwrite x with A^{-1} x (A destroyed)."""
    n = x.shape[0]
    for c in range(n):
        piv = c
        best = abs(A[c, c])
        for r in range(c + 1, n):
            if abs(A[r, c]) > best:
                best = abs(A[r, c])
                piv = r
        if piv != c:
            for j in range(n):
                t = A[c, j]
                A[c, j] = A[piv, j]
                A[piv, j] = t
            t = x[c]
            x[c] = x[piv]
            x[piv] = t
        d = A[c, c]
        for r in range(c + 1, n):
            f = A[r, c] / d
            if f != 0:
                for j in range(c + 1, n):
                    A[r, j] -= f * A[c, j]
                x[r] -= f * x[c]
    for c in range(n - 1, -1, -1):
        acc = x[c]
        for j in range(c + 1, n):
            acc -= A[c, j] * x[j]
        x[c] = acc / A[c, c]


@jit
def _expm_t(A, t, X, E, T, out):
    """out = e^{A t} for a small dense A (N, N), by the core kernel :func:`chiralnet.linalg.expm.expm_one`
    (scaling and squaring a Taylor series; no eigendecomposition, so defective A, as in cascaded
    chains, is fine). X, E, T: (N, N) complex work buffers."""
    s, q = expm_parameters(one_norm_small(A) * abs(t))
    expm_one(A, t, s, q, X, E, T, out)


@jit
def _battery(a, omega_p, battery):
    e = 0.0
    for i in range(a.shape[0]):
        if battery[i]:
            e += omega_p[i] * (a[i].real * a[i].real + a[i].imag * a[i].imag)
    return e


@jit
def _propagate(E, alpha_ss, start, out):
    """out = alpha_ss + E (start - alpha_ss)."""
    n = start.shape[0]
    for i in range(n):
        acc = alpha_ss[i]
        for j in range(n):
            acc += E[i, j] * (start[j] - alpha_ss[j])
        out[i] = acc


@jit(parallel=True)
def battery_energy_at_batch(M, alpha_ss, alpha0, omega, battery, status, steps, step_kind, out):
    """out[p, k] = battery energy at output k, stepping alpha <- alpha_ss + e^{M h}(alpha - alpha_ss) exactly.

    ``steps`` (K,) are the distinct step lengths and ``step_kind`` (T,) which one leads to each output
    (:func:`chiralnet.solve.base.distinct_steps`): one small expm per distinct step and point (K = 1 or 2
    on a uniform grid), then a matrix-vector product per output, as ``simulate`` steps.
    """
    P, N = alpha_ss.shape
    T = step_kind.shape[0]
    K = steps.shape[0]
    for p in prange(P):
        if status[p] != OK:
            for k in range(T):
                out[p, k] = np.nan
            continue
        E = np.empty((K, N, N), np.complex128)
        X = np.empty((N, N), np.complex128)
        W = np.empty((N, N), np.complex128)
        V = np.empty((N, N), np.complex128)
        for s in range(K):
            _expm_t(M[p], steps[s], X, W, V, E[s])
        a = alpha0[p].copy()
        nxt = np.empty(N, np.complex128)
        for k in range(T):
            _propagate(E[step_kind[k]], alpha_ss[p], a, nxt)
            a, nxt = nxt, a
            out[p, k] = _battery(a, omega[p], battery)


@jit(parallel=True)
def time_to_fraction_batch(M, alpha_ss, alpha0, omega, battery, status, fraction, horizon, steps, out, out_status):
    """First time the battery energy reaches ``fraction`` of its steady value.

    Steps a uniform grid of ``steps`` intervals over [0, horizon[p]] exactly (one e^{M h} per point),
    then bisects the first bracketing interval with exact propagation until the time is resolved to
    machine precision (the last bit of t_{found-1} + offset).
    out (P,) in 1/omega; out_status[p] = NOT_REACHED (and NaN) when the horizon is too short.
    """
    P, N = alpha_ss.shape
    for p in prange(P):
        out_status[p] = status[p]
        out[p] = np.nan
        if status[p] != OK:
            continue
        target = fraction * _battery(alpha_ss[p], omega[p], battery)
        if _battery(alpha0[p], omega[p], battery) >= target:
            out[p] = 0.0
            continue
        h = horizon[p] / steps
        Eh = np.empty((N, N), np.complex128)
        Es = np.empty((N, N), np.complex128)
        X = np.empty((N, N), np.complex128)
        W = np.empty((N, N), np.complex128)
        V = np.empty((N, N), np.complex128)
        a = alpha0[p].copy()
        nxt = np.empty(N, np.complex128)
        _expm_t(M[p], h, X, W, V, Eh)
        found = -1
        for j in range(1, steps + 1):
            _propagate(Eh, alpha_ss[p], a, nxt)
            if _battery(nxt, omega[p], battery) >= target:
                found = j
                break
            a[:] = nxt
        if found < 0:
            out_status[p] = NOT_REACHED
            continue
        lo, hi = 0.0, h  # offsets from t_{found-1}, where the state is a
        base = (found - 1) * h
        while True:  # to machine precision: until the time base + offset cannot be split further
            mid = 0.5 * (lo + hi)
            if base + mid == base + lo or base + mid == base + hi:
                break
            _expm_t(M[p], mid, X, W, V, Es)
            _propagate(Es, alpha_ss[p], a, nxt)
            if _battery(nxt, omega[p], battery) >= target:
                hi = mid
            else:
                lo = mid
        out[p] = base + hi


@jit
def _battery_power(M, forcing, a, omega_p, battery):
    """dE_B/dt of a coherent state: 2 sum_{i in B} omega_i Re(conj(a_i) (M a + b)_i)."""
    n = a.shape[0]
    p = 0.0
    for i in range(n):
        if battery[i]:
            acc = forcing[i]
            for j in range(n):
                acc += M[i, j] * a[j]
            p += 2.0 * omega_p[i] * (a[i].real * acc.real + a[i].imag * acc.imag)
    return p


@jit
def _propagated(M, t, alpha_ss, start, X, W, V, Es, out):
    """out = alpha_ss + e^{M t}(start - alpha_ss) (one small expm)."""
    _expm_t(M, t, X, W, V, Es)
    _propagate(Es, alpha_ss, start, out)


@jit(parallel=True)
def max_average_power_batch(M, forcing, alpha_ss, alpha0, omega, battery, status, horizon, steps, out_power,
                            out_time, out_status):
    """Largest average power (E_B(t) - E_B(0))/t and the time it is reached.

    Steps a uniform grid of ``steps`` intervals over [0, horizon[p]] exactly (one e^{M h} per point) and
    takes the largest grid value (at t = 0 the limit dE_B/dt(0)); then, from the state at the grid point
    before it (one expm from alpha0), bisects the sign change of g(t) = t dE_B/dt - (E_B(t) - E_B(0)) next
    to it with exact propagation until the time is resolved to its last bit. out_status[p] = NOT_REACHED
    (NaN) when the average power still rises at the horizon.
    """
    P, N = alpha_ss.shape
    for p in prange(P):
        out_status[p] = status[p]
        out_power[p] = np.nan
        out_time[p] = np.nan
        if status[p] != OK:
            continue
        h = horizon[p] / steps
        Eh = np.empty((N, N), np.complex128)
        Es = np.empty((N, N), np.complex128)
        X = np.empty((N, N), np.complex128)
        W = np.empty((N, N), np.complex128)
        V = np.empty((N, N), np.complex128)
        e0 = _battery(alpha0[p], omega[p], battery)
        best = _battery_power(M[p], forcing[p], alpha0[p], omega[p], battery)
        k = 0
        a = alpha0[p].copy()
        nxt = np.empty(N, np.complex128)
        _expm_t(M[p], h, X, W, V, Eh)
        for j in range(1, steps + 1):
            _propagate(Eh, alpha_ss[p], a, nxt)
            a, nxt = nxt, a
            f = (_battery(a, omega[p], battery) - e0) / (j * h)
            if f > best:
                best = f
                k = j
        if k == steps:
            out_status[p] = NOT_REACHED
            continue
        if k == 0:
            out_power[p] = best
            out_time[p] = 0.0
            continue
        base = (k - 1) * h
        left = alpha0[p].copy()
        if k > 1:
            _propagated(M[p], base, alpha_ss[p], alpha0[p], X, W, V, Es, left)
        _propagate(Eh, alpha_ss[p], left, nxt)  # at t_k
        g = (base + h) * _battery_power(M[p], forcing[p], nxt, omega[p], battery) - (_battery(nxt, omega[p], battery) - e0)
        lo, hi = (h, 2 * h) if g > 0 else (0.0, h)
        while True:
            mid = 0.5 * (lo + hi)
            if base + mid == base + lo or base + mid == base + hi:
                break
            _propagated(M[p], mid, alpha_ss[p], left, X, W, V, Es, nxt)
            g = (base + mid) * _battery_power(M[p], forcing[p], nxt, omega[p], battery) - (
                _battery(nxt, omega[p], battery) - e0)
            if g > 0:
                lo = mid
            else:
                hi = mid
        _propagated(M[p], hi, alpha_ss[p], left, X, W, V, Es, nxt)
        out_time[p] = base + hi
        out_power[p] = (_battery(nxt, omega[p], battery) - e0) / (base + hi)


@jit(parallel=True)
def efficiency_batch(M, forcing, omega_L, alpha_ss, alpha0, omega, battery, status, t90, out):
    """Charging efficiency E_B(t90) / int_0^t90 P_in dt at zero temperature (the battery's energy is all
    ergotropy there), with alpha(t90) = alpha_ss + e^{M t90}(alpha0 - alpha_ss) and, exactly,
    int_0^T alpha dt = M^{-1}(alpha(T) - alpha0 - b T), P_in = -2 omega_L Im(conj(E) . alpha), E = i b.
    NaN where status is not OK, t90 is not finite or t90 = 0."""
    P, N = alpha_ss.shape
    for p in prange(P):
        out[p] = np.nan
        if status[p] != OK or not np.isfinite(t90[p]) or t90[p] <= 0:
            continue
        T = t90[p]
        Es = np.empty((N, N), np.complex128)
        X = np.empty((N, N), np.complex128)
        W = np.empty((N, N), np.complex128)
        V = np.empty((N, N), np.complex128)
        aT = np.empty(N, np.complex128)
        _propagated(M[p], T, alpha_ss[p], alpha0[p], X, W, V, Es, aT)
        work = _battery(aT, omega[p], battery)
        x = np.empty(N, np.complex128)
        for i in range(N):
            x[i] = aT[i] - alpha0[p, i] - forcing[p, i] * T
        A = M[p].copy()
        _solve_inplace(A, x)
        acc = 0.0
        for i in range(N):
            E = 1j * forcing[p, i]
            acc += (np.conj(E) * x[i]).imag
        out[p] = work / (-2.0 * omega_L[p] * acc)
