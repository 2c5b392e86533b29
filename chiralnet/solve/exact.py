"""Method "exact": dense affine propagators e^{M dt}, one per distinct output step (small N).

alpha_k = P alpha_{k-1} + c with P = e^{M dt} and c = int_0^dt e^{M s} b ds from one augmented
matrix exponential (no steady state needed); Nc_k = Phi Nc_{k-1} Phi^H + W with Phi = conj(P) and
W from the steady fluctuations (or Van Loan's block exponential when M has no steady state).
Machine precision; cost O(K N^3) for K distinct steps plus O(T N^2). No options of its own.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as la

from .. import config
from .._jit import jit
from ..errors import NoSteadyStateError, SolverError
from ..linalg.cascade import cascade_order
from ..linalg.expm import expm_one, expm_parameters, expm_small
from ..linalg.lyapunov import steady_covariance
from ..linalg.stability import check_stability_arrays
from ..model import Model, State
from .base import Method, Trace, _checked_uniform_steps, distinct_steps

__all__ = ["EXACT", "exact_fits", "small_coherent_trace"]


@jit
def propagate_affine(P, c, step_kind, alpha0, omega, out_alpha, out_energy):
    """alpha_{k} = P[s] alpha_{k-1} + c[s] with s = step_kind[k]; alpha_{-1} = alpha0.

    P: (K, N, N) complex, c: (K, N) complex, step_kind: (T,) int, alpha0: (N,) complex,
    omega: (N,) float. Writes out_alpha (T, N) complex and out_energy (T, N) = omega |alpha|^2.
    """
    n = alpha0.shape[0]
    a = alpha0.copy()
    nxt = np.empty_like(a)
    for k in range(step_kind.shape[0]):
        s = step_kind[k]
        for i in range(n):
            acc = c[s, i]
            for j in range(n):
                acc += P[s, i, j] * a[j]
            nxt[i] = acc
        a, nxt = nxt, a
        for i in range(n):
            out_alpha[k, i] = a[i]
            out_energy[k, i] = omega[i] * (a[i].real * a[i].real + a[i].imag * a[i].imag)


@jit
def propagate_fluctuations(Phi, W, step_kind, Nc0, out_occupation, block_idx, out_block):
    """Nc_k = Phi[s] Nc_{k-1} Phi[s]^H + W[s], s = step_kind[k]; Nc_{-1} = Nc0.

    Phi, W: (K, N, N) complex; Nc0: (N, N) complex; block_idx (B,) int64. Writes out_occupation
    (T, N) = Re diag Nc_k and out_block (T, B, B) = Nc_k[block_idx, block_idx] (the battery block),
    and returns the last Nc (N, N).
    """
    n = Phi.shape[1]
    Nc = Nc0.copy()
    T = np.empty((n, n), np.complex128)
    PhiH = np.empty((n, n), np.complex128)  # Phi[s]^H, formed again only when the step changes
    last = -1
    for k in range(step_kind.shape[0]):
        s = step_kind[k]
        if s != last:
            PhiH[:, :] = np.conj(Phi[s]).T
            last = s
        np.dot(Phi[s], Nc, T)  # the same two BLAS products, into buffers: no three new arrays per step
        np.dot(T, PhiH, Nc)
        Nc += W[s]
        _record(Nc, k, out_occupation, block_idx, out_block)
    return Nc



@jit
def _record(Nc, k, out_occupation, block_idx, out_block):
    """Output time k of a fluctuation run: the occupations Nc_ii into out_occupation[k] (N,) and the block
    Nc[block_idx, block_idx] into out_block[k] (B, B)."""
    for i in range(Nc.shape[0]):
        out_occupation[k, i] = Nc[i, i].real
    for u in range(block_idx.shape[0]):
        for v in range(block_idx.shape[0]):
            out_block[k, u, v] = Nc[block_idx[u], block_idx[v]]


@jit
def _small_sandwich(A, X, B, out):
    """out = A X B^H for small (N, N) complex matrices, summed in a fixed order (no BLAS call)."""
    n = X.shape[0]
    T = np.empty((n, n), np.complex128)
    for i in range(n):
        for j in range(n):
            acc = 0j
            for k in range(n):
                acc += A[i, k] * X[k, j]
            T[i, j] = acc
    for i in range(n):
        for j in range(n):
            acc = 0j
            for k in range(n):
                acc += T[i, k] * np.conj(B[j, k])
            out[i, j] = acc


@jit
def propagate_fluctuations_small(Phi, W, step_kind, Nc0, out_occupation, block_idx, out_block):
    """:func:`propagate_fluctuations` for small N (up to ``config.SMALL_PRODUCT_MAX_CELLS``): the products in
    loops instead of a BLAS call and two temporaries per step (the same sums, to rounding: 5e-16 apart)."""
    n = Nc0.shape[0]
    Nc = Nc0.copy()
    nxt = np.empty((n, n), np.complex128)
    for k in range(step_kind.shape[0]):
        s = step_kind[k]
        _small_sandwich(Phi[s], Nc, Phi[s], nxt)
        for i in range(n):
            for j in range(n):
                nxt[i, j] += W[s, i, j]
        Nc, nxt = nxt, Nc
        _record(Nc, k, out_occupation, block_idx, out_block)
    return Nc


def _affine_propagators(M, b, dts):
    """P_k = e^{M dt_k} and c_k = int_0^dt_k e^{M s} b ds, shapes (K, N, N), (K, N)."""
    n = M.shape[0]
    if n < config.AUTO_DENSE_MAX_CELLS:  # scipy's expm routes tiny products through threaded BLAS (slow)
        P = np.empty((dts.size, n, n), complex)
        c = np.empty((dts.size, n), complex)
        _affine_small(np.ascontiguousarray(M, dtype=complex), np.ascontiguousarray(b, dtype=complex), dts, P, c)
        return P, c
    aug = np.zeros((dts.size, n + 1, n + 1), complex)
    aug[:, :n, :n] = M[None] * dts[:, None, None]
    aug[:, :n, n] = b[None] * dts[:, None]
    E = la.expm(aug)
    return np.ascontiguousarray(E[:, :n, :n]), np.ascontiguousarray(E[:, :n, n])


@jit
def _affine_small(M, b, dts, P, c):
    """:func:`_affine_propagators` for small N in one kernel: the augmented matrices [[M dt, b dt], [0, 0]]
    (K, N + 1, N + 1) are formed, exponentiated (:func:`~chiralnet.linalg.expm.expm_small`) and split here,
    without a NumPy call per piece. Writes P (K, N, N) and c (K, N); returns whether P is real (M real).

    A real M (a resonant network: no detuning, real couplings) is exponentiated in real arithmetic, b split
    into two real columns [[M dt, Re b dt, Im b dt], [0, 0, 0], [0, 0, 0]] (N + 2): every sum is the complex
    route's with its zero imaginary parts left out, and (s, q) come from the complex matrix's norm, so the
    result is the complex route's (up to the sign of a zero) at a quarter of the multiplications."""
    n = M.shape[0]
    K = dts.shape[0]
    real = True
    for i in range(n):
        for j in range(n):
            real = real and M[i, j].imag == 0.0
    if real:
        m = n + 2
        A = np.zeros((m, m))
        X, E, T, out = np.empty((m, m)), np.empty((m, m)), np.empty((m, m)), np.empty((m, m))
        for k in range(K):
            dt = dts[k]
            for i in range(n):
                for j in range(n):
                    A[i, j] = M[i, j].real * dt
                A[i, n] = b[i].real * dt
                A[i, n + 1] = b[i].imag * dt
            norm = 0.0  # one_norm_small of the complex augmented matrix: the b column's moduli as one column
            for j in range(n):
                col = 0.0
                for i in range(n):
                    col += abs(A[i, j])
                norm = max(norm, col)
            col = 0.0
            for i in range(n):
                col += abs(complex(A[i, n], A[i, n + 1]))
            norm = max(norm, col)
            s, q = expm_parameters(norm)
            expm_one(A, 1.0, s, q, X, E, T, out)
            for i in range(n):
                for j in range(n):
                    P[k, i, j] = out[i, j]
                c[k, i] = complex(out[i, n], out[i, n + 1])
        return True
    aug = np.zeros((K, n + 1, n + 1), np.complex128)
    for k in range(K):
        dt = complex(dts[k])  # complex * complex, as NumPy multiplies the complex M by the float steps
        for i in range(n):
            for j in range(n):
                aug[k, i, j] = M[i, j] * dt
            aug[k, i, n] = b[i] * dt
    E = np.empty_like(aug)
    expm_small(aug, E)
    for k in range(K):
        for i in range(n):
            for j in range(n):
                P[k, i, j] = E[k, i, j]
            c[k, i] = E[k, i, n]
    return False


def _noise_propagators(P, M, Q, dts):
    """Van Loan: W_k = int_0^dt e^{A s} Q e^{A^H s} ds with A = conj(M); Phi_k = conj(P_k).

    The Van Loan block e^{-A h} grows like e^{mu h}, mu = lambda_max(D)/2 (the log-norm of -A),
    so it overflows for mu dt > ~709 (seen as a non-finite state). It is therefore evaluated at
    h = dt / 2^s with mu h <= 1, and W is doubled back up:
    W(2h) = W(h) + Phi(h) W(h) Phi(h)^H, Phi(2h) = Phi(h)^2.
    """
    n = M.shape[0]
    A = np.conj(M)
    mu = max(0.0, float(np.linalg.eigvalsh(-(A + np.conj(A).T) / 2).max()))
    levels = np.zeros(dts.size, np.int64)
    if mu > 0:
        levels = np.maximum(0, np.ceil(np.log2(np.maximum(mu * dts, 1e-300)))).astype(np.int64)
    h = dts / 2.0**levels
    C = np.zeros((dts.size, 2 * n, 2 * n), complex)
    C[:, :n, :n] = -A[None] * h[:, None, None]
    C[:, :n, n:] = Q[None] * h[:, None, None]
    C[:, n:, n:] = np.conj(A).T[None] * h[:, None, None]
    F = la.expm(C)
    Phi_h = np.conj(F[:, n:, n:]).swapaxes(1, 2)   # e^{A h} = (e^{A^H h})^H
    W = Phi_h @ F[:, :n, n:]
    for level in range(int(levels.max(initial=0))):
        k = levels > level
        W[k] = W[k] + Phi_h[k] @ W[k] @ np.conj(Phi_h[k]).swapaxes(1, 2)
        Phi_h[k] = Phi_h[k] @ Phi_h[k]
    Phi = np.conj(P)
    W = 0.5 * (W + np.conj(np.swapaxes(W, 1, 2)))  # Hermitian by construction; remove rounding
    return np.ascontiguousarray(Phi), np.ascontiguousarray(W)


@jit
def _affine_small_run(M, b, dts, step_kind, alpha0, omega, P, c, out_alpha, out_energy):
    """:func:`_affine_small` then :func:`propagate_affine`, in one call (small N: a kernel call's fixed cost
    is a sizeable part of the run); a real P steps in real arithmetic (:func:`_propagate_affine_real`).
    Writes P, c, out_alpha and out_energy."""
    if _affine_small(M, b, dts, P, c):
        _propagate_affine_real(np.ascontiguousarray(P.real), c, step_kind, alpha0, omega, out_alpha, out_energy)
    else:
        propagate_affine(P, c, step_kind, alpha0, omega, out_alpha, out_energy)


@jit
def _propagate_affine_real(P, c, step_kind, alpha0, omega, out_alpha, out_energy):
    """:func:`propagate_affine` for a real P (K, N, N) float: the same sums, each complex product P_ij a_j
    taken as its two real products (the complex route's, without the zero imaginary part's terms)."""
    n = alpha0.shape[0]
    re, im = alpha0.real.copy(), alpha0.imag.copy()
    nre, nim = np.empty(n), np.empty(n)
    for k in range(step_kind.shape[0]):
        s = step_kind[k]
        for i in range(n):
            ar, ai = c[s, i].real, c[s, i].imag
            for j in range(n):
                ar += P[s, i, j] * re[j]
                ai += P[s, i, j] * im[j]
            nre[i], nim[i] = ar, ai
        re, nre = nre, re
        im, nim = nim, im
        for i in range(n):
            out_alpha[k, i] = complex(re[i], im[i])
            out_energy[k, i] = omega[i] * (re[i] * re[i] + im[i] * im[i])


@jit
def _checked_affine_small_run(times, M, b, alpha0, omega, out_alpha, out_energy):
    """The checks and steps of :func:`~chiralnet.solve.base.checked_grid` (times from t = 0) and
    :func:`_affine_small_run` in one kernel call: the number K of distinct steps (1 or 2), or what
    ``_checked_uniform_steps`` returned instead (-1: the times fail a check; 0: not a uniform grid), and then
    nothing is written. Writes out_alpha (T, N) and out_energy (T, N)."""
    out = np.empty(2)
    kind = np.zeros(times.shape[0], np.int64)
    k = _checked_uniform_steps(times, 0.0, out, kind)
    if k <= 0:
        return k
    n = M.shape[0]
    P = np.empty((k, n, n), np.complex128)
    c = np.empty((k, n), np.complex128)
    _affine_small_run(M, b, out[:k], kind, alpha0, omega, P, c, out_alpha, out_energy)
    return k


def small_coherent_trace(model: Model, alpha0, times) -> Trace | None:
    """The Trace of method "exact" from amplitudes ``alpha0`` (no fluctuations) at t = 0 over a short uniform
    grid ``times`` (C-contiguous float64, T <= ``config.SMALL_GRID_MAX_TIMES``), with the times checked in the
    same kernel call (what ``simulate``'s small route runs: :func:`~chiralnet.solve.simulate._small_run`): the
    same checks and kernels as :func:`_run` (``checked_grid``, :func:`_affine_small_run`), so the same bits.
    None when the times fail a check or are not uniform (the caller takes the general route, which says why)."""
    T, n = times.size, model.n_cells
    alpha = np.empty((T, n), complex)
    energies = np.empty((T, n))
    k = _checked_affine_small_run(times, model.M, model.forcing, alpha0, model.omega, alpha, energies)
    if k <= 0:
        return None
    return Trace(alpha, energies, _zeros_view((T, n)), State._checked(model.cells, alpha[-1].copy(), None),
                 {"propagators": k}, None)


_ZERO = np.zeros(1)
_ZERO.flags.writeable = False


_ZERO_VIEWS = {}


def _zeros_view(shape) -> np.ndarray:
    """A read-only (T, N) float view of one zero (np.broadcast_to(np.zeros(1), shape), in ~0.1 us instead of ~5):
    one per shape, kept (a loop of runs asks for the same shape; read-only, so shared safely)."""
    view = _ZERO_VIEWS.get(shape)
    if view is None:
        if len(_ZERO_VIEWS) >= 256:
            _ZERO_VIEWS.clear()
        view = _ZERO_VIEWS[shape] = np.ndarray(shape, float, buffer=_ZERO, strides=(0,) * len(shape))
    return view


def exact_fits(model: Model, times, grid=None, thermal=False) -> bool:
    """Whether the dense propagators of ``times`` fit ``config.EXACT_MAX_*``."""
    n = model.n_cells
    if n > config.EXACT_MAX_CELLS:
        return False
    k = (grid or distinct_steps(times))[0].size
    per = (2 * n) ** 2 if model.thermal or thermal else (n + 1) ** 2
    return k * per <= config.EXACT_MAX_PROPAGATOR_ENTRIES


def _run(model: Model, state0: State, times, options) -> Trace:
    grid = options.get("grid") or distinct_steps(times)
    thermal = model.thermal or state0.Nc is not None
    if not exact_fits(model, times, grid, thermal):
        raise SolverError(
            f"method 'exact' would need too many dense propagators ({model.n_cells} cells, "
            f"{grid[0].size} distinct time steps); use a uniform time grid, method='exact-sparse' or method='rk45'"
        )
    M = model.dense_M()
    dts, kind = grid
    T, n = times.size, model.n_cells
    alpha = np.empty((T, n), complex)
    energies = np.empty((T, n))
    alpha0 = np.ascontiguousarray(state0.alpha, dtype=complex)
    if n < config.AUTO_DENSE_MAX_CELLS:  # propagators and stepping in one kernel call
        P = np.empty((dts.size, n, n), complex)
        c = np.empty((dts.size, n), complex)
        _affine_small_run(np.ascontiguousarray(M, dtype=complex), model.forcing, dts, kind, alpha0, model.omega,
                          P, c, alpha, energies)
    else:
        P, c = _affine_propagators(M, model.forcing, dts)
        propagate_affine(P, c, kind, alpha0, model.omega, alpha, energies)
    fluct = _zeros_view((T, n))  # coherent state: no fluctuations, no memory
    Nc = block = None
    if thermal:
        fluct = np.empty((T, n))  # the kernels write every entry
        idx = np.asarray(options["block"] if "block" in options else model.battery.nonzero()[0], np.int64)
        block = np.empty((T, idx.size, idx.size), complex)
        if model.Q is None:  # no noise: Nc only decays, W = 0
            Phi, W = np.ascontiguousarray(np.conj(P)), np.zeros_like(P)
        else:
            try:
                order = cascade_order(model.M)
                check_stability_arrays(model.M, model.cells, order)
            except NoSteadyStateError:
                Phi, W = _noise_propagators(P, M, model.dense_Q(), dts)
            else:
                # W = Nc_ss - Phi Nc_ss Phi^H: exact, and free of the cancellation Van Loan's e^{-A dt}
                # suffers on long steps (|error| ~ 1e-10 at Gamma dt ~ 10).
                X = steady_covariance(model, order)[0]
                Phi = np.ascontiguousarray(np.conj(P))
                W = X[None] - Phi @ X[None] @ np.conj(np.swapaxes(Phi, 1, 2))  # BLAS products: W cancels on
                W = np.ascontiguousarray(0.5 * (W + np.conj(np.swapaxes(W, 1, 2))))  # short steps; keep its bits
        step = propagate_fluctuations_small if n <= config.SMALL_PRODUCT_MAX_CELLS else propagate_fluctuations
        Nc = step(Phi, W, kind, state0.dense_Nc(), fluct, idx, block)
        energies += model.omega * fluct
    # the energies, which the result checks (SolverError naming the cell), are finite only where alpha[-1] and
    # diag Nc are; Nc is Hermitian and positive semidefinite by construction (Phi Nc Phi^H + W)
    final = State._checked(model.cells, alpha[-1].copy(), Nc)
    return Trace(alpha, energies, fluct, final, {"propagators": int(dts.size)}, block)


#: Dense propagators; machine precision; best on uniform grids, N up to ``config.EXACT_MAX_CELLS``.
EXACT = Method("exact", _run, frozenset(), "dense propagators e^{M dt} (machine precision, small N)")
