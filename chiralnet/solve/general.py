"""The general Gaussian path (method "exact-gaussian"): exact propagation, steady state and stability of a
:class:`~chiralnet.gaussian.GaussianModel` (squeezing, pumps, parametric links, squeezed baths and starts).

On the real quadratures R = (x, p) (2N): <R>_k = P <R>_{k-1} + c with P = e^{A dt} and c = int_0^dt
e^{A s} v ds from one augmented matrix exponential, and sigma_k = P sigma_{k-1} P^T + W with
W = int_0^dt e^{A s} D e^{A^T s} ds from Van Loan's block exponential, doubled up from a short step (no
difference of large steady covariances: see _propagators). Machine precision on any grid; cost O(K (2N)^3)
for K distinct steps plus O(T (2N)^3) for the covariance. docs/theory/gaussian.md has the equations.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as la

from .. import config, memory
from .._jit import jit
from ..errors import NoSteadyStateError, SolverError
from ..gaussian import (GaussianModel, doubled_model, doubled_state, general_model, is_general_model, quadrature_state,
                        sigma_to_moments, state_quadratures)
from ..linalg.lyapunov import symmetrize
from ..model import State, check_fluctuations
from ..results import SteadyState
from .base import Trace, battery_block, distinct_steps
from .exact import _affine_propagators, _noise_propagators
from .stationary import steady_arrays

__all__ = ["GENERAL_METHOD", "run_general", "steady_general", "check_stability_general", "needs_general"]

#: The name ``result.method`` carries when the general path ran.
GENERAL_METHOD = "exact-gaussian"


def needs_general(model, state) -> bool:
    """Whether a run of ``model`` from ``state`` takes the general path (an anomalous term or a squeezed state)."""
    return is_general_model(model) or getattr(state, "Mc", None) is not None


@jit
def _propagate(P, c, Phi, W, kind, R0, S0, n, cols, block_idx, out_R, out_xx, out_pp, out_xp, out_block):
    """<R>_k = P[s] <R>_{k-1} + c[s], sigma_k = Phi[s] sigma_{k-1} Phi[s]^T + W[s], s = kind[k].

    P, Phi, W: (K, 2N, 2N) float; c: (K, 2N); kind (T,) int; R0 (2N,), S0 (2N, 2N). Writes the means
    out_R (T, 2N), the diagonals sigma_xx, sigma_pp, sigma_xp of the kept cells ``cols`` (C,) into
    out_xx, out_pp, out_xp (T, C), and sigma on the rows/columns ``block_idx`` (2B,) into out_block
    (T, 2B, 2B); returns the last sigma.
    """
    R = R0.copy()
    S = S0.copy()
    for k in range(kind.shape[0]):
        s = kind[k]
        R = P[s] @ R + c[s]
        S = Phi[s] @ S @ Phi[s].T + W[s]
        out_R[k] = R
        for q in range(cols.shape[0]):
            i = cols[q]
            out_xx[k, q] = S[i, i]
            out_pp[k, q] = S[n + i, n + i]
            out_xp[k, q] = S[i, n + i]
        for u in range(block_idx.shape[0]):
            for w in range(block_idx.shape[0]):
                out_block[k, u, w] = S[block_idx[u], block_idx[w]]
    return S


def _propagate_blas(P, c, Phi, W, kind, R0, S0, n, cols, block_idx, out_R, out_xx, out_pp, out_xp, out_block):
    """:func:`_propagate` for large N: the two products Phi sigma Phi^T per output time through NumPy's BLAS
    (threaded, on contiguous operands: about twice as fast as the kernel's products at 2N = 1000), the
    outputs gathered by fancy indexing. Same arguments and result."""
    R = R0.copy()
    S = S0.copy()
    PhiT = [np.ascontiguousarray(x.T) for x in Phi]
    Y = np.empty_like(S)
    for k in range(kind.shape[0]):
        s = kind[k]
        R = P[s] @ R + c[s]
        np.matmul(Phi[s], S, out=Y)
        np.matmul(Y, PhiT[s], out=S)
        S += W[s]
        out_R[k] = R
        out_xx[k] = S[cols, cols]
        out_pp[k] = S[n + cols, n + cols]
        out_xp[k] = S[cols, n + cols]
        if block_idx.size:
            out_block[k] = S[np.ix_(block_idx, block_idx)]
    return S


def _stepper(n):
    """The covariance stepper for N cells: the one-kernel loop below ``config.AUTO_DENSE_MAX_CELLS`` quadratures
    (no NumPy call per output time), NumPy's BLAS above."""
    return _propagate if 2 * n < config.AUTO_DENSE_MAX_CELLS else _propagate_blas


def _margin(A) -> float:
    """The real part below which an eigenvalue of A counts as decaying: -64 eps ||A||_1 (a lossless mode's
    eigenvalue is 0 up to rounding of either sign, and is not stable)."""
    return -64 * np.finfo(float).eps * max(1.0, float(np.abs(A).sum(axis=0).max()))


def check_stability_general(model: GaussianModel) -> None:
    """NoSteadyStateError unless every eigenvalue of the quadrature drift A has a negative real part; the
    message names the pump or parametric link that drives the unstable mode and its threshold."""
    A = model.quadratures()[0]
    w, V = np.linalg.eig(A)
    k = int(np.argmax(w.real))
    if w[k].real < _margin(A):
        return
    n = model.n_cells
    # Without the pairing terms: a phase-insensitive instability (a cell without loss, gain) -- name the cell.
    weight = np.abs(V[:n, k]) ** 2 + np.abs(V[n:, k]) ** 2
    cell = model.cells[int(np.argmax(weight))]
    lead = f"the network has no steady state: its drift has an eigenvalue with real part {w[k].real:.6g} >= 0"
    M = model.drift
    base = np.linalg.eigvals(M).real.max() if n else -np.inf
    if base >= 0 or not model.terms:
        raise NoSteadyStateError(f"{lead}, on the mode of cell {cell!r}; the network is unstable even without its "
                                 "pumps and parametric links (a cell or block without loss); add damping there")
    # The anomalous term that weighs most on the unstable mode.
    best, best_score = None, -1.0
    pos = {c: i for i, c in enumerate(model.cells)}
    for term in model.terms:
        idx = [pos[term[1]]] if term[0] == "pump" else [pos[term[1]], pos[term[2]]]
        score = abs(term[-1]) * sum(weight[i] for i in idx)
        if score > best_score:
            best, best_score = term, score
    if best[0] == "pump":
        i = pos[best[1]]
        kappa, delta = -2 * M[i, i].real, -M[i, i].imag + 0.0
        threshold = float(np.sqrt(max(kappa, 0.0) ** 2 / 4 + delta**2))
        raise NoSteadyStateError(
            f"{lead}: the pump on cell {best[1]!r} (|P| = {abs(best[2]):.6g}) drives it above threshold; alone, "
            f"that cell is stable for |P| < sqrt(kappa^2/4 + Delta^2) = {threshold:.6g} (kappa = {kappa:.6g}, "
            f"Delta = omega - omega_L = {delta:.6g}, its total damping and detuning); lower the pump or add damping")
    u, v, g = best[1], best[2], best[3]
    threshold = _pair_threshold(M[pos[u], pos[u]], M[pos[v], pos[v]])
    raise NoSteadyStateError(
        f"{lead}: the parametric link ({u!r}, {v!r}) (|g| = {abs(g):.6g}) drives it above threshold; alone, that "
        f"pair of cells is stable for |g| < {threshold:.6g} (sqrt(kappa_u kappa_v)/2 at resonance); lower g or "
        "add damping")


def _pair_threshold(mu, mv):
    """Largest |g| at which two cells with diagonal drift entries mu, mv and a parametric link g stay stable
    (the 2x2 block of (a_u, a_v^dag): [[mu, -i g], [i conj g, conj mv]]), by bisection."""
    def growth(g):
        return np.linalg.eigvals(np.array([[mu, -1j * g], [1j * g, np.conj(mv)]])).real.max()

    if growth(0.0) >= 0:
        return 0.0
    lo, hi = 0.0, 1.0
    while growth(hi) < 0 and hi < 1e300:
        lo, hi = hi, 2 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if growth(mid) < 0 else (lo, mid)
        if hi - lo <= 1e-15 * hi:
            break
    return lo


def _steady_quadratures(model: GaussianModel):
    A, v, D = model.quadratures()
    check_stability_general(model)
    R = np.linalg.solve(A, -v)
    S = la.solve_continuous_lyapunov(A, -D)
    return R, 0.5 * (S + S.T)


def _steady_unpaired(model: GaussianModel) -> State:
    """The steady state without pairing (G = 0: squeezed baths only): alpha and Nc obey the phase-insensitive
    equations, solved by their own (sparse, cascaded) solvers on ``model.base``, and Mc the decoupled
    M X + X M^T = -S (zero without squeezed noise; O(N nnz) substitution when the network is cascaded,
    Bartels-Stewart on N x N complex otherwise). With G = 0 the quadrature drift's eigenvalues are those of M
    and their conjugates, so the phase-insensitive stability check is the whole one."""
    alpha, Nc, _, _ = steady_arrays(model.base)                 # (raises when M is not stable)
    n = model.n_cells
    Nc = np.zeros((n, n), complex) if Nc is None else Nc
    Mc = _steady_anomalous(model)                               # zero, or the cascade's substitution
    if Mc is None:                                              # feedback with squeezed noise: Bartels-Stewart
        M = model.drift
        Mc = symmetrize(np.ascontiguousarray(la.solve_sylvester(M, M.T, -model.squeezing)), False)
    check_fluctuations(Nc, model.cells)  # as the phase-insensitive steady state's (Mc is symmetric as made)
    return State._checked(model.cells, alpha, Nc, 0.0, model.drive_frequency, Mc)


def _steady_paired(model: GaussianModel):
    """The steady state with pairing through :func:`triangular_doubled`, when that makes the doubled model
    cascaded: forward substitution and the triangular Lyapunov recursion on 2N modes, O(N nnz), instead of the
    dense (2N)^3 quadrature Lyapunov solve. The transformed drift's diagonal holds the eigenvalues, so the
    stability check is a look at it (the named message of :func:`check_stability_general` when it fails).
    None below ``config.GAUSSIAN_SPARSE_MIN_CELLS`` cells or when the transform leaves feedback."""
    from ..linalg.cascade import cascade_order

    if model.n_cells < config.GAUSSIAN_SPARSE_MIN_CELLS:
        return None
    tm, V, _ = triangular_doubled(model)
    order = cascade_order(tm.M)
    if order is None:
        return None
    w = tm.M.diagonal()
    if not w.real.max() < -64 * np.finfo(float).eps * max(1.0, float(np.abs(w).max())):
        check_stability_general(model)                    # raises, naming the pump or link
    C = _steady_real(model, order)
    alpha_c, Xc, _, _ = steady_arrays(tm, fluctuations=C is None)
    if C is not None:  # the real route: Xc_ss = C_ss - J_c / 2 (_steady_real), so X = conj(V) C_ss V^T - J/2
        alpha, Nc, Mc = _back(alpha_c, C, V, commutator=True)
    else:
        m = tm.n_cells
        alpha, Nc, Mc = _back(alpha_c, np.zeros((m, m), complex) if Xc is None else Xc, V)
    check_fluctuations(Nc, model.cells)  # as the phase-insensitive steady state's (Mc is symmetric as made)
    return State._checked(model.cells, alpha, Nc, 0.0, model.drive_frequency, Mc)


def _steady_real(model: GaussianModel, order=None):
    """C_ss (2N, 2N) real, the real part of the steady Xc of :func:`triangular_doubled`'s real route, from
    M' C + C M'^T = -Re Q' by the triangular recursion in real arithmetic; None off the real route, or when M'
    is not cascaded or not stable.

    C = X + J/2 (J = diag(I, -I), the commutators) obeys Sigma conj(C) Sigma = C, so in self-conjugate modes
    C_c is real, and Xc = C_c - J_c/2 with J_c = conj(V^-1) J V^-T purely imaginary: Im Xc = K is the same for
    every state (the vacuum's). With M' real the Lyapunov equation of Xc splits into a real one for C_c and an
    identity for K: one real solve, a quarter of the complex one's arithmetic, gives Xc_ss = C_ss + i K.
    ``order``: M''s cascade order, when the caller has it."""
    from ..linalg.cascade import cascade_order, lyapunov_cascaded

    tm, _, _ = triangular_doubled(model)
    if not model._cache["triangular_real"] or tm.Q is None:
        return None
    order = cascade_order(tm.M) if order is None else order
    w = tm.M.diagonal().real
    if order is None or not w.max() < -64 * np.finfo(float).eps * max(1.0, float(np.abs(w).max())):
        return None
    C = tm.Q.real.toarray()
    np.negative(C, out=C)
    C = lyapunov_cascaded(tm.M, C, order, overwrite=True)   # M' real: conj(M') = M'; in place of -Re Q'
    return symmetrize(C, False)


def steady_general(model: GaussianModel) -> SteadyState:
    """The steady state of a general Gaussian model: <R>_ss = -A^-1 v, sigma_ss from A X + X A^T = -D.
    ``state`` carries Nc and Mc; ``method`` is "gaussian-lyapunov"."""
    if model.base is not None and not _has_pairing(model):
        state = _steady_unpaired(model)
    elif (paired := _steady_paired(model)) is not None:
        state = paired
    else:
        R, S = _steady_quadratures(model)
        state = quadrature_state(model.cells, R, S, 0.0, model.drive_frequency)
    alpha = state.alpha
    fluct = state.Nc.diagonal().real.copy()
    energies = model.omega * (alpha.real**2 + alpha.imag**2 + fluct)
    if not (np.isfinite(energies).all() and np.isfinite(state.Mc).all()):
        bad = int(np.flatnonzero(~np.isfinite(energies))[0]) if not np.isfinite(energies).all() else 0
        raise SolverError(f"the steady state of cell {model.cells[bad]!r} is not finite (overflow): rescale the "
                          "network's rates or drives")
    return SteadyState(cells=model.cells, energies=energies, amplitudes=alpha, fluctuations=fluct,
                       battery=model.battery, method="gaussian-lyapunov", state=state, omega=model.omega,
                       drive=model.drive, drive_frequency=model.drive_frequency)


def _propagators(A, v, D, dts):
    """P, c (affine means), Phi, W (covariance), float arrays (K, 2N, 2N) and (K, 2N)."""
    m = A.shape[0]
    if m < config.AUTO_DENSE_MAX_CELLS:  # the small-N kernel (complex, one call for every step)
        P, c = _affine_propagators(A.astype(complex), v.astype(complex), dts)
        P, c = np.ascontiguousarray(P.real), np.ascontiguousarray(c.real)
    else:  # a real augmented exponential [[A dt, v dt], [0, 0]]: a third of the complex one's cost
        aug = np.zeros((dts.size, m + 1, m + 1))
        aug[:, :m, :m] = A[None] * dts[:, None, None]
        aug[:, :m, m] = v[None] * dts[:, None]
        E = la.expm(aug)
        P, c = np.ascontiguousarray(E[:, :m, :m]), np.ascontiguousarray(E[:, :m, m])
    if not D.any():
        return P, c, P, np.zeros_like(P)
    # Van Loan's block exponential, doubled up from a short step (W(2h) = W(h) + P(h) W(h) P(h)^T: sums of
    # positive semidefinite terms), never sigma_ss - P sigma_ss P^T: a stable amplifier chain (pumps, parametric
    # links) can have a steady covariance 1e13 times its state's, and that difference then cancels every digit.
    _, W = _noise_propagators(P.astype(complex), A.astype(complex), D.astype(complex), dts)
    W = W.real
    W = 0.5 * (W + np.swapaxes(W, 1, 2))
    return P, c, P, np.ascontiguousarray(W)


def run_general(model, state: State, rel, *, store: bool = True, columns=None, keep_block=None, cache=None):
    """Run a general Gaussian model (or a phase-insensitive one from a squeezed state) from ``state`` at local
    times ``rel`` (checked). Returns (Trace with ``anomalous`` (T, C) and ``anomalous_block`` (T, B, B) set,
    GaussianModel). ``cache``: a dict kept across calls on the same model (simulate_to_file's blocks) that holds
    the last grid's propagators, so continued blocks on the same steps skip the matrix exponentials."""
    model = general_model(model)
    n = model.n_cells
    route = sparse_route(model)
    if route is not None:
        if cache is None or not cache.get("started"):
            _check_physical(state)
            if cache is not None:
                cache["started"] = True
        run = _run_unpaired if route == "unpaired-sparse" else _run_doubled
        return run(model, state, rel, store, columns, keep_block), model
    grid = distinct_steps(rel)
    dts, kind = grid
    # The budget counts complex entries; these propagators are real (half the bytes each): a 2,000-cell trace on
    # np.linspace times (two distinct steps by rounding, 2 x 4000^2 real entries) fits, as it does on "exact".
    if dts.size * (2 * n) ** 2 > 2 * config.EXACT_MAX_PROPAGATOR_ENTRIES:
        raise SolverError(f"the general Gaussian path would need too many dense propagators ({n} cells, "
                          f"{dts.size} distinct time steps, {dts.size} x (2N)^2 = {dts.size * (2 * n) ** 2} real "
                          f"entries > 2 config.EXACT_MAX_PROPAGATOR_ENTRIES = "
                          f"{2 * config.EXACT_MAX_PROPAGATOR_ENTRIES}); use a uniform time grid or raise that budget")
    A, v, D = model.quadratures()
    if cache is None or not cache.get("started"):  # a continued block starts from the previous one's state
        _check_physical(state)
        if cache is not None:
            cache["started"] = True
    key = dts.tobytes()
    computed = 0
    if cache is not None and cache.get("steps") == key:  # a continued block of the same grid: no new expm
        P, c, Phi, W = cache["propagators"]
    else:
        computed = int(dts.size)
        P, c, Phi, W = _propagators(A, v, D, dts)
        if cache is not None:
            cache.update(steps=key, propagators=(P, c, Phi, W))
    R0, S0 = state_quadratures(state)
    cols = np.arange(n, dtype=np.int64) if columns is None else np.asarray(columns, np.int64)
    block, keep = battery_block(model.battery, None if columns is None else cols, keep_block)
    bidx = np.concatenate([block, n + block]).astype(np.int64)
    T = rel.size
    out_R = np.empty((T, 2 * n))
    xx, pp, xp = (np.empty((T, cols.size)) for _ in range(3))
    out_block = np.empty((T, bidx.size, bidx.size))
    S = _stepper(n)(P, c, Phi, W, kind, R0, S0, n, cols, bidx, out_R, xx, pp, xp, out_block)
    alpha_all = (out_R[:, :n] + 1j * out_R[:, n:]) / np.sqrt(2.0)
    fluct = (xx + pp) / 2 - 0.5
    mc_diag = (xx - pp) / 2 + 1j * xp
    alpha = alpha_all[:, cols]
    energies = model.omega[cols] * (alpha.real**2 + alpha.imag**2 + fluct)
    if columns is None:
        totals = None
    else:  # the totals over every cell need every diagonal: from the means and sigma's diagonal we kept
        totals = _totals(model, alpha_all, out_R, P, c, Phi, W, kind, R0, S0)
    final = quadrature_state(model.cells, out_R[-1], S, 0.0, None)
    Nb = Mb = None
    if keep:
        Nb, Mb = sigma_to_moments(out_block)
    trace = Trace(alpha if store else None, energies, fluct, final, {"propagators": computed, "route": "dense"}, Nb, totals,
                  mc_diag, Mb)
    return trace, model


def sparse_route(model: GaussianModel):
    """The sparse route a trace of ``model`` takes, or None (the dense quadrature kernel, faster below
    ``config.GAUSSIAN_SPARSE_MIN_CELLS`` cells): "unpaired-sparse" (:func:`_run_unpaired`) without pairing when
    the steady Mc is cheap (no squeezed noise, or a stable cascade), else "doubled-sparse" (:func:`_run_doubled`)."""
    if model.n_cells < config.GAUSSIAN_SPARSE_MIN_CELLS:
        return None
    if model.base is not None and not _has_pairing(model) and _steady_anomalous(model) is not None:
        return "unpaired-sparse"
    return "doubled-sparse"


def _has_pairing(model: GaussianModel) -> bool:
    """Whether the model has a pump or a parametric link (its ``terms``: no scan of the N x N pairing)."""
    return bool(model.terms)


def _steady_anomalous(model: GaussianModel):
    """Mc_ss (N, N) complex symmetric of a model without pairing (M X + X M^T = -S) when it is cheap: zero
    without squeezed noise, the O(N nnz) triangular recursion on a stable cascade; else None (cached)."""
    from ..linalg.cascade import cascade_order, sylvester_cascaded
    from ..linalg.stability import check_stability_arrays

    if "Mc_ss" in model._cache:
        return model._cache["Mc_ss"]
    n = model.n_cells
    S = model.squeezing
    Mc = None
    if not S.any():
        Mc = np.zeros((n, n), complex)
    else:
        M = model.base.M
        order = cascade_order(M)
        if order is not None:
            try:
                check_stability_arrays(M, model.cells, order)
                Mc = symmetrize(sylvester_cascaded(M, -S, order), False)
            except NoSteadyStateError:
                pass
    model._cache["Mc_ss"] = Mc
    return Mc


def _run_unpaired(model: GaussianModel, state: State, rel, store, columns, keep_block) -> Trace:
    """A general run without pairing (G = 0: squeezed baths, squeezed starts), where Mc decouples from Nc:
    alpha, Nc (and the totals) are the phase-insensitive "exact-sparse" run of ``model.base`` itself, and
    Mc = Mc_ss + E D E^T (E = e^{M h}) one more one-sided pass of the same kernels in their complex symmetric
    mode (:func:`~chiralnet.solve.fluctuations.propagate_deviation`). Same Trace as the dense route;
    ``stats["route"]`` is "unpaired-sparse"."""
    from ..linalg.stability import jump_steps
    from .exact_sparse import EXACT_SPARSE
    from .fluctuations import propagate_deviation

    base = model.base
    n = model.n_cells
    cols = np.arange(n, dtype=np.int64) if columns is None else np.asarray(columns, np.int64)
    block, keep = battery_block(model.battery, None if columns is None else cols, keep_block)
    T = rel.size
    _check_memory_sparse(base, T, store, cols.size, 2, n)
    grid = distinct_steps(rel)
    options = {"grid": grid, "store_amplitudes": store, "block": block, "cells": cols}
    t1 = EXACT_SPARSE.run(base, State(model.cells, state.alpha, state.Nc), rel, options)
    fluct = np.broadcast_to(t1.fluctuations, (T, cols.size))
    Nc_end = t1.final_state.dense_Nc()
    Nb = t1.battery_block if t1.battery_block is not None else np.zeros((T, block.size, block.size), complex)
    Mc_ss = _steady_anomalous(model)
    Mc0 = state.dense_Mc()
    anomalous = memory.empty((T, cols.size), complex)
    Mb = np.empty((T, block.size, block.size), complex)
    more = {}
    if Mc0.any() or Mc_ss.any():
        dts, kind = grid
        Mc_end, more = propagate_deviation(base.M.conj(), Mc_ss, Mc0 - Mc_ss, dts, kind, out_diag=np.empty((T, n)),
                                           jump=jump_steps(base.M, dts), block_idx=block, out_block=Mb,
                                           extra_idx=np.stack([cols, cols], axis=1), out_extra=anomalous,
                                           symmetric=True)
    else:  # no squeezing anywhere: Mc stays zero
        Mc_end = Mc0
        anomalous[:] = 0
        Mb[:] = 0
    if store:
        alpha = t1.amplitudes
        energies = model.omega[cols] * (alpha.real**2 + alpha.imag**2 + fluct)
    else:
        alpha, energies = None, t1.energies
    final = State._checked(model.cells, t1.final_state.alpha, Nc_end, 0.0, None, Mc_end)  # (as exact-sparse's)
    stats = {**t1.stats, **{f"anomalous_{k}": v for k, v in more.items()}, "route": "unpaired-sparse"}
    return Trace(alpha, energies, np.ascontiguousarray(fluct), final, stats, Nb if keep else None,
                 None if columns is None else t1.energy_totals, anomalous, Mb if keep else None)


def _run_doubled(model: GaussianModel, state: State, rel, store, columns, keep_block) -> Trace:
    """The general run as the phase-insensitive "exact-sparse" run of the doubled model (2N modes b = (a, a^dag),
    X = [[Nc, conj Mc], [Mc, Nc^T + I]]) in the modes c = V^-1 b of :func:`triangular_doubled`, where pumps and
    parametric links leave it cascaded: its Taylor stepping on CSR, its one-sided deviation from the triangular
    Lyapunov steady state, its sparse propagators; no dense (2N)^3 product. Nc_ii and Mc_ii are read back from
    the entries of Xc = conj(V^-1) X V^-T that V's rows reach (extra outputs of the kernels), the battery blocks
    from Xc's block on the modes that (B, N + B) reach. Same Trace as the dense route; ``stats["route"]`` is
    "doubled-sparse"."""
    from .exact_sparse import EXACT_SPARSE

    n = model.n_cells
    tm, V, Vi = triangular_doubled(model)
    cols = np.arange(n, dtype=np.int64) if columns is None else np.asarray(columns, np.int64)
    block, keep = battery_block(model.battery, None if columns is None else cols, keep_block)
    T = rel.size
    pairs, CN, CM = _read_back(V, n)
    _check_memory_sparse(tm, T, True, 2 * n, 1, n, extra=pairs.shape[0])
    b2 = np.concatenate([block, n + block])
    reach = np.unique(V[b2].indices).astype(np.int64)     # the modes c that the battery's (a, a^dag) are made of
    options = {"grid": distinct_steps(rel), "store_amplitudes": True, "block": reach, "extra": pairs}
    start = _transformed_state(state, tm, Vi)
    C = _steady_real(model) if config.FLUCTUATION_ONE_SIDED else None
    if C is not None:  # the real route: Xc = C + i K for every state (_steady_real), so D0 = Re Xc0 - C_ss
        options["deviation"] = (C + 1j * start.Nc.imag, start.Nc.real - C, True)
    t2 = EXACT_SPARSE.run(tm, start, rel, options)
    alpha = (V[:n] @ t2.amplitudes.T).T                  # (T, N): <a> = V[:N] <c>
    x = t2.anomalous.T                                   # (E, T) entries of Xc
    fluct = (CN @ x).real.T                              # (T, N) Nc_ii
    anomalous = (CM @ x).T                               # (T, N) Mc_ii = X[N + i, i]
    energies = model.omega * (alpha.real**2 + alpha.imag**2 + fluct)
    totals = None
    if columns is not None:  # the totals over every cell (a run with cells= keeps a few columns only)
        totals = np.stack([energies.sum(axis=1), energies[:, model.battery].sum(axis=1)], axis=1)
        alpha, fluct, anomalous, energies = (np.ascontiguousarray(z[:, cols]) for z in (alpha, fluct, anomalous,
                                                                                           energies))
    Nb = Mb = None
    if keep:
        Vb = V[b2][:, reach].toarray()
        Xb = np.einsum("pa,tab,qb->tpq", Vb.conj(), t2.battery_block, Vb)
        Nb, Mb = Xb[:, :block.size, :block.size], Xb[:, block.size:, :block.size]
    final = _back(t2.final_state.alpha, t2.final_state.dense_Nc(), V)
    final = State._checked(model.cells, *final[:2], 0.0, None, final[2])  # symmetrised; as exact-sparse's
    stats = {**t2.stats, "route": "doubled-sparse", "triangularised": tm is not doubled_model(model),
             "arithmetic": "real" if C is not None else "complex"}
    return Trace(alpha if store else None, energies, fluct, final, stats, Nb, totals, anomalous, Mb)


def triangular_doubled(model: GaussianModel):
    """(Model, V, V^-1): :func:`~chiralnet.gaussian.doubled_model` in the modes c = V^-1 b (V (2N, 2N) CSR)
    that make its drift triangular when it is block-triangular: V is block diagonal over the strongly
    connected components of the drift (a pump's cell, a parametric link's pair; one mode elsewhere), each block
    the eigenvectors of the drift's diagonal block, so M' = V^-1 M2 V is triangular (cascaded) when the network
    is. <c> obeys d<c>/dt = M' <c> - i V^-1 E2 and Xc = conj(V^-1) X V^-T the phase-insensitive equations with
    Q' = conj(V^-1) Q2 V^-T (a congruence: Hermitian, positive semidefinite), so the cascaded solvers
    (substitution, triangular Lyapunov, one-sided deviation on the triangle) run it.

    Real when it can be: the blocks are taken on the quadratures R (b = T R, the quadrature drift
    A = T^-1 M2 T is real), and when every block's eigenvalues are real (cells at resonance) V = T V_R with V_R
    real: M' = V_R^-1 A V_R is real, and so are the deviations of Xc from its steady state, which the runs then
    step in real arithmetic. Otherwise the blocks are those of M2 itself (complex). M' is computed whole; an entry
    below 16 eps (|V^-1| |A| |V|)_ij, the bound on the product's own rounding, is a residue of an exact
    cancellation (the eigenvectors' own residual, or two couplings that cancel) and is set to zero.

    V = I (the doubled model as it is) when no block has two modes, one has more than
    ``config.GAUSSIAN_BLOCK_MAX_MODES``, or its eigenvectors' condition number passes
    ``config.GAUSSIAN_BLOCK_MAX_COND`` (near an exceptional point: the transform would amplify rounding)."""
    import scipy.sparse as sp

    from ..linalg.cascade import cascade_order
    from ..model import Model

    if "triangular" in model._cache:
        return model._cache["triangular"]
    d = doubled_model(model)
    m = 2 * model.n_cells
    eye = sp.identity(m, dtype=complex, format="csr")
    A = _quadrature_drift(model)
    blocks = _eigenbasis(A, real=True)
    real = blocks is not None
    if real:
        T = _ladder_sparse(m // 2)
        base, left, right = A, T.conj().T, T                       # c = V_R^-1 T^-1 b
    else:
        base, left, right = sp.csr_array(d.M), eye, eye
        blocks = _eigenbasis(base, real=False)
    result = (d, eye, eye)
    if blocks is not None:
        Vb, Vbi = blocks
        V, Vi = sp.csr_array(right @ Vb), sp.csr_array(Vbi @ left)
        Mt = _drop_rounding(Vbi @ base @ Vb, abs(Vbi) @ abs(base) @ abs(Vb))
        coo = Mt.tocoo()
        # the natural order when triangular (the copies apart: uniform runs of rows), else the cascade order: M'
        # triangular as stored, so the kernels use the triangle and their row bounds stay tight
        perm = None if (coo.col <= coo.row).all() else cascade_order(Mt)
        if perm is not None:
            Mt = sp.csr_array(Mt[perm][:, perm])
            V, Vi = sp.csr_array(V[:, perm]), sp.csr_array(Vi[perm])
        Q = d.Q
        if Q is not None:
            Q = sp.csr_array(Vi.conj() @ sp.csr_array(Q) @ Vi.T)
            Q = 0.5 * (Q + Q.conj().T)
        cells = d.cells if perm is None else tuple(d.cells[i] for i in perm)
        tm = Model(cells=cells, omega=np.zeros(m), drive_frequency=d.drive_frequency, M=Mt.astype(complex),
                   drive=Vi @ d.drive, Q=Q, battery=np.zeros(m, bool))
        result = (tm, V, Vi)
    model._cache["triangular"] = result
    model._cache["triangular_real"] = real
    return result


def _quadrature_drift(model: GaussianModel):
    """The quadrature drift A = T^-1 M2 T (2N, 2N) real CSR, R = (x, p): written out block by block,
    A = [[Re M + Im G, -Im M - Re G], [Im M - Re G, Re M - Im G]] (exact: no product to round; as
    :meth:`GaussianModel.quadratures`, sparse)."""
    import scipy.sparse as sp

    n = model.n_cells
    M = sp.coo_array(model.base.M if model.base is not None else model.drift)
    G = model._cache.get("pairing_csr")
    G = sp.coo_array(model.pairing if G is None else G)
    parts = [(M.row, M.col, M.data.real), (G.row, G.col, G.data.imag),                       # top left
             (M.row, n + M.col, -M.data.imag), (G.row, n + G.col, -G.data.real),             # top right
             (n + M.row, M.col, M.data.imag), (n + G.row, G.col, -G.data.real),              # bottom left
             (n + M.row, n + M.col, M.data.real), (n + G.row, n + G.col, -G.data.imag)]      # bottom right
    rows, cols, vals = (np.concatenate([p[k] for p in parts]) for k in range(3))
    A = sp.csr_array((vals, (rows, cols)), shape=(2 * n, 2 * n))
    A.sum_duplicates()
    A.eliminate_zeros()
    return A


def _ladder_sparse(n):
    """T (2N, 2N) CSR with b = (a, a^dag) = T R, R = (x, p): a_i = (x_i + i p_i)/sqrt2 (unitary)."""
    import scipy.sparse as sp

    i = np.arange(n)
    r = 1 / np.sqrt(2)
    rows = np.concatenate([i, i, n + i, n + i])
    cols = np.concatenate([i, n + i, i, n + i])
    vals = np.concatenate([np.full(n, r), np.full(n, 1j * r), np.full(n, r), np.full(n, -1j * r)])
    return sp.csr_array((vals, (rows, cols)), shape=(2 * n, 2 * n))


def _entries(B, rows, cols):
    """B[rows, cols] of a CSR matrix (zero where nothing is stored), by a search of its sorted entry keys: no
    scipy.sparse indexing (whose per-call overhead dominates at a few hundred modes)."""
    m = B.shape[1]
    if not B.has_canonical_format:
        B = B.copy()
        B.sum_duplicates()
    keys = np.repeat(np.arange(B.shape[0], dtype=np.int64), np.diff(B.indptr)) * m + B.indices
    want = np.asarray(rows, np.int64) * m + np.asarray(cols, np.int64)
    if keys.size == 0:
        return np.zeros(want.shape, B.dtype)
    at = np.minimum(np.searchsorted(keys, want), keys.size - 1)
    return np.where(keys[at] == want, B.data[at], 0)


def _drop_rounding(X, bound):
    """X (sparse) with every real or imaginary part at most 16 eps ``bound``_ij (the entrywise bound |L| |B| |R| of
    the product L B R that made it) set to zero: the rounding residue of an exact cancellation; CSR."""
    import scipy.sparse as sp

    X = sp.csr_array(X)
    X.sum_duplicates()
    bound = sp.csr_array(bound)
    coo_rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    tiny = 16 * np.finfo(float).eps * np.abs(_entries(bound, coo_rows, X.indices))
    data = X.data.astype(complex)
    re, im = data.real.copy(), data.imag.copy()
    re[np.abs(re) <= tiny] = 0
    im[np.abs(im) <= tiny] = 0
    X = sp.csr_array(((re + 1j * im) if im.any() else re, X.indices, X.indptr), shape=X.shape)
    X.eliminate_zeros()
    return X


def _eigenbasis(B, real):
    """(V, V^-1), block-diagonal CSR over the strongly connected components of B (sparse (m, m)), each block the
    eigenvectors of B's diagonal block (one batched eigendecomposition per block size; the identity when every
    block is one mode and ``real``); None when no block has two modes (complex), one has more than
    ``config.GAUSSIAN_BLOCK_MAX_MODES``, an eigenvector basis is worse conditioned than
    ``config.GAUSSIAN_BLOCK_MAX_COND`` (1-norm), or (``real``) a block has a complex eigenvalue."""
    import scipy.sparse as sp
    from scipy.sparse import csgraph

    m = B.shape[0]
    pattern = sp.csr_array((np.ones(B.nnz), B.indices, B.indptr), shape=B.shape)
    k, labels = csgraph.connected_components(pattern, directed=True, connection="strong")
    sizes = np.bincount(labels)
    if k == m and real:                                  # triangular on the quadratures as they are
        eye = sp.identity(m, format="csr")
        return eye, eye
    if k == m or sizes.max() > config.GAUSSIAN_BLOCK_MAX_MODES:
        return None
    order = np.argsort(labels, kind="stable")            # the modes grouped by component
    starts = np.cumsum(sizes) - sizes
    dtype = float if real else complex
    rows, cols, vals, ivals = [], [], [], []
    for s in np.unique(sizes):
        members = order[starts[sizes == s][:, None] + np.arange(s)]              # (K, s)
        r = np.repeat(members, s, axis=1).ravel()
        c = np.tile(members, (1, s)).ravel()
        if s == 1:  # a mode of its own: its own eigenvector
            rows.append(r)
            cols.append(c)
            vals.append(np.ones(r.size, dtype))
            ivals.append(np.ones(r.size, dtype))
            continue
        lam, U = np.linalg.eig(np.asarray(_entries(B, r, c), dtype).reshape(-1, s, s))
        Ui = np.linalg.inv(U)
        cond = np.abs(U).sum(axis=1).max(axis=1) * np.abs(Ui).sum(axis=1).max(axis=1)   # 1-norm condition numbers
        if (real and np.iscomplexobj(lam)) or not (cond <= config.GAUSSIAN_BLOCK_MAX_COND).all():
            return None
        rows.append(r)
        cols.append(c)
        vals.append(U.ravel())
        ivals.append(Ui.ravel())
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    return (sp.csr_array((np.concatenate(vals), (rows, cols)), shape=(m, m)),
            sp.csr_array((np.concatenate(ivals), (rows, cols)), shape=(m, m)))


def _transformed_state(state: State, tm, Vi) -> State:
    """The start of ``tm`` (:func:`triangular_doubled`): <c> = V^-1 <b>, Xc = conj(V^-1) X V^-T."""
    X = doubled_state(state, tm)
    idx, val = _padded_rows(Vi)
    Xc = np.empty_like(X.Nc)
    _congruence(idx, val.conj(), X.Nc, idx, val, Xc, True)
    return State._checked(tm.cells, Vi @ X.alpha, Xc, X.time, X.frame)


def _back(alpha_c, Xc, V, commutator=False):
    """(alpha (N,), Nc (N, N), Mc (N, N)) of <c> and Xc (dense, real or complex): <b> = V <c>,
    X = conj(V) Xc V^T (its first N columns, which hold Nc and Mc), Nc made Hermitian and Mc symmetric.
    ``commutator``: Xc is the real part C_c of a real-route Xc = C_c - J_c/2 (:func:`_steady_real`), and
    conj(V) (-J_c/2) V^T = -J/2 = diag(-I/2, I/2) is added (to the diagonal of Nc: Mc has none of it)."""
    n = alpha_c.shape[0] // 2
    idx, val = _padded_rows(V)
    X = np.empty((2 * n, n), complex)
    _congruence(idx, val.conj(), np.ascontiguousarray(Xc), idx[:n], val[:n], X, False)
    if commutator:
        X[np.arange(n), np.arange(n)] -= 0.5
    b = V @ alpha_c
    return 0.5 * (b[:n] + np.conj(b[n:])), symmetrize(X[:n], True), symmetrize(X[n:], False)


def _padded_rows(V):
    """V (CSR) as padded rows: column indices (m, w) int64 and values (m, w) complex, zero past a row's end."""
    m = V.shape[0]
    counts = np.diff(V.indptr)
    width = max(1, int(counts.max()) if m else 1)
    idx = np.zeros((m, width), np.int64)
    val = np.zeros((m, width), complex)
    for r in range(width):
        has = counts > r
        idx[has, r] = V.indices[V.indptr[:-1][has] + r]
        val[has, r] = V.data[V.indptr[:-1][has] + r]
    return idx, val


@jit
def _congruence(li, lv, X, ri, rv, out, hermitian):
    """out[r, c] = sum_p sum_q lv[r, p] X[li[r, p], ri[c, q]] rv[c, q] (L X R^T for L, R given as padded rows,
    :func:`_padded_rows`), for the rows of ``li`` and the columns of ``ri``; ``hermitian``: X Hermitian and
    L = conj(R), so only c <= r is computed and mirrored (an exactly Hermitian result, half the work)."""
    for r in range(out.shape[0]):
        top = r + 1 if hermitian else out.shape[1]
        for c in range(top):
            acc = 0j
            for p in range(li.shape[1]):
                a = lv[r, p]
                if a == 0:
                    continue
                row = li[r, p]
                for q in range(ri.shape[1]):
                    acc += a * X[row, ri[c, q]] * rv[c, q]
            out[r, c] = acc
            if hermitian:
                out[c, r] = np.conj(acc)
        if hermitian:
            out[r, r] = out[r, r].real


def _read_back(V, n):
    """What the kernels output for Nc_ii and Mc_ii of every cell: the entries ``pairs`` (E, 2) of Xc that
    V's rows reach, and CSR coefficients CN, CM (N, E) with Nc_ii = (CN x)_i, Mc_ii = X[N + i, i] = (CM x)_i
    for x the (E,) values of those entries (X = conj(V) Xc V^T; V = I: the pairs (i, i) and (N + i, i))."""
    import scipy.sparse as sp

    idx, val = _padded_rows(V)                           # width <= the largest block
    out = []
    for left in (slice(0, n), slice(n, 2 * n)):          # Nc_ii: rows (i, i); Mc_ii: rows (N + i, i)
        coef = val[left].conj()[:, :, None] * val[:n, None, :]
        keep = coef != 0
        cell = np.broadcast_to(np.arange(n)[:, None, None], coef.shape)[keep]
        pair = np.stack([np.broadcast_to(idx[left][:, :, None], coef.shape)[keep],
                         np.broadcast_to(idx[:n, None, :], coef.shape)[keep]], axis=1)
        out.append((pair, cell, coef[keep]))
    pairs = np.concatenate([out[0][0], out[1][0]])
    e = out[0][0].shape[0]
    CN = sp.csr_array((out[0][2], (out[0][1], np.arange(e))), shape=(n, pairs.shape[0]))
    CM = sp.csr_array((out[1][2], (out[1][1], e + np.arange(pairs.shape[0] - e))), shape=(n, pairs.shape[0]))
    return pairs, CN, CM


def _check_memory_sparse(model, n_times, store, n_kept, passes, n_cells, extra=0) -> None:
    """MemoryLimitError, before any allocation, when a sparse general run would not fit: the phase-insensitive
    "exact-sparse" estimate of ``model`` (the base model, or the doubled one) ``passes`` times over (the
    unpaired route keeps Nc and Mc), plus the (T, k) anomalous moments and ``extra`` entries a time; the
    message names the network's ``n_cells``."""
    items = memory.simulation_bytes(model.n_cells, n_times, method="exact-sparse", thermal=True,
                                    store_amplitudes=store, nnz=model.M.nnz if model.is_sparse else None,
                                    n_kept=n_kept)
    items = {k: passes * v if "N x N" in k else v for k, v in items.items()}
    items["anomalous moments (T x N complex)"] = n_times * n_kept * 16
    if extra:
        items["entries of the fluctuation matrix read back (T x E complex)"] = n_times * extra * 16
    memory.check(items, f"simulate ({n_cells} cells on the general path, {n_times} output times)",
                 "fewer output times or fewer cells, or store_amplitudes=False, or cells=[...]")


def _totals(model, alpha_all, out_R, P, c, Phi, W, kind, R0, S0):
    """(T, 2) total and battery energy over every cell (a run with cells= keeps a few columns only)."""
    n = model.n_cells
    every = np.arange(n, dtype=np.int64)
    T = kind.size
    xx, pp, xp = (np.empty((T, n)) for _ in range(3))
    _stepper(n)(P, c, Phi, W, kind, R0, S0, n, every, np.zeros(0, np.int64), np.empty((T, 2 * n)), xx, pp, xp,
                np.empty((T, 0, 0)))
    e = model.omega * (alpha_all.real**2 + alpha_all.imag**2 + (xx + pp) / 2 - 0.5)
    return np.stack([e.sum(axis=1), e[:, model.battery].sum(axis=1)], axis=1)


def _check_physical(state: State) -> None:
    """SolverError unless sigma + i Omega/2 >= 0 (the uncertainty principle): a given Nc, Mc that no quantum
    state has would propagate to negative occupations."""
    if state.Mc is None and state.Nc is None:
        return
    _, S = state_quadratures(state)
    n = state.n_cells
    Om = np.block([[np.zeros((n, n)), np.eye(n)], [-np.eye(n), np.zeros((n, n))]])
    low = float(np.linalg.eigvalsh(S + 0.5j * Om).min())
    if low < -1e-9 * max(1.0, float(np.abs(S).max())):
        raise SolverError(f"the start state (Nc, Mc) is not a quantum state: sigma + i Omega/2 has an eigenvalue "
                          f"{low:.3g} < 0 (the uncertainty principle); for a squeezed thermal cell, "
                          "|Mc_ii|^2 <= Nc_ii (Nc_ii + 1)")


def check_general_method(method, given, time_dependent=False) -> None:
    """SolverError unless ``method`` is "auto" or "exact-gaussian" and no tolerance is given (with shaped
    drives, ``time_dependent``, the tolerances are those of the drives' integration and are checked there)."""
    if method not in ("auto", GENERAL_METHOD):
        raise SolverError(f"this run has squeezing or parametric terms (a general Gaussian network or a squeezed "
                          f"state0) and takes method {GENERAL_METHOD!r} (or 'auto'), not {method!r}")
    if time_dependent:
        return
    for name, value in given.items():
        if value is not None:
            raise SolverError(f"{name} does not apply to method {GENERAL_METHOD!r} (exact propagation, machine "
                              "precision); drop it")


def scattering_general(model: GaussianModel, kap, port_idx, delta):
    """Signal and idler scattering blocks of a general Gaussian model (ports = the cells' local damping).

    With b = (a, a^dag): d delta_b/dt = Z delta_b - K2^{1/2} b_in and b_out = b_in + K2^{1/2} delta_b, K2 =
    diag(kappa, kappa), so at probe detuning delta (a ~ e^{-i delta t}) b_out(delta) = [I + K2^{1/2}
    (Z + i delta)^{-1} K2^{1/2}] b_in(delta), b_in(delta) = (a_in(delta), a_in^dag(-delta)). The top-left
    block is the signal S (the phase-insensitive formula when G = 0); the top-right block maps
    a_in^dag(-delta) (the idler, at the mirror frequency) to a_out(delta).

    Returns (signal (F, P, P) complex, idler (F, P, P) complex).
    """
    check_stability_general(model)
    n = model.n_cells
    M, G = model.drift, model.pairing
    Z = np.block([[M, -1j * G], [1j * np.conj(G), np.conj(M)]])
    root = np.sqrt(np.asarray(kap, float))
    rows = np.concatenate([port_idx, n + port_idx])
    P = port_idx.size
    signal = np.empty((delta.size, P, P), complex)
    idler = np.empty((delta.size, P, P), complex)
    rhs = np.zeros((2 * n, 2 * P), complex)
    rhs[rows, np.arange(2 * P)] = np.concatenate([root[port_idx], root[port_idx]])
    for f, d in enumerate(delta):
        X = np.linalg.solve(Z + 1j * d * np.eye(2 * n), rhs)          # (2n, 2P)
        S = root[port_idx][:, None] * X[port_idx]                       # rows a_out of the ports
        S[:, :P] += np.eye(P)
        signal[f], idler[f] = S[:, :P], S[:, P:]
    return signal, idler
