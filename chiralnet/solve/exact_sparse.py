"""Method "exact-sparse": e^{M dt} applied to the state through a Taylor series on CSR.

Each step applies e^{M h} (and e^{conj(M) h} . e^{M^T h} to Nc) through a Taylor series truncated
below machine precision, with substeps so that ||M h||_1 <= ``config.TAYLOR_THETA``; each term is
one CSR product, O(nnz) (O(N nnz) for Nc), and no dense propagator is ever formed (e^{M h} of a
triangular M is dense). Only the rows the state can have reached are computed, so a chain driven at
one end costs what the cells the signal has reached cost. Any time grid. No options of its own.
A step the grid repeats applies a sparse propagator P = e^{M h} instead, built once when it stays sparse
(:mod:`chiralnet.linalg.propagator`: a chain's P is a band of K + 1 entries a row, truncation proven a
priori): to amplitudes that span most cells, and to every column block of the fluctuations.
Two compiled variants of each product: serial, and parallel over rows (prange), used above
``config.PARALLEL_MIN_CELLS`` (``PARALLEL_MIN_CELLS_THERMAL``) cells.
"""

from __future__ import annotations

import types

import numpy as np
import scipy.sparse as sp
from numba import prange

from .. import config, memory
from .._jit import jit
from ..errors import NoSteadyStateError, SolverError
from ..linalg.cascade import cascade_order
from ..linalg.csr import csr_parts, flush, one_norm, pruned_csr
from ..linalg.propagator import apply_planes, apply_vector, row_runs, sparse_propagator
from ..linalg.stability import check_stability_arrays
from ..model import Model, State
from .base import Method, Trace, distinct_steps
from .steady import steady_arrays, steady_covariance

__all__ = ["EXACT_SPARSE", "propagate_vector", "propagate_matrix", "propagate_deviation", "substeps", "decay_rate_bound",
           "jump_steps", "step_propagator", "forcing_increment"]

# Status codes of the Taylor kernels.
OK = 0
NO_CONVERGENCE = 1
NOT_FINITE = 2


def _renamed(f, suffix):
    """A copy of the Python function ``f`` under another name, so Numba caches its two compiled
    variants (serial and parallel) in separate files (the cache key ignores ``parallel``)."""
    g = types.FunctionType(f.__code__, f.__globals__, f.__name__ + suffix, f.__defaults__, f.__closure__)
    g.__qualname__ = f.__qualname__ + suffix
    g.__doc__ = f.__doc__
    return g


def _term(indptr, indices, data, v, b, zb, scale, rows, out, acc):
    """out = scale (M v + zb b) and acc += out, on rows [0, rows) (beyond, out is zero).

    Returns ||out|| over those rows: the 1-norm of the real and imaginary parts together (cheaper than
    |z|, within a factor sqrt(2) of it). Threaded over rows when compiled parallel.
    """
    s_out = 0.0
    for i in prange(rows):
        t = zb * b[i]
        for p in range(indptr[i], indptr[i + 1]):
            t += data[p] * v[indices[p]]
        t = complex(t.real * scale, t.imag * scale)
        out[i] = t
        acc[i] += t
        s_out += abs(t.real) + abs(t.imag)
    return s_out


_term_parallel = jit(parallel=True)(_renamed(_term, "_parallel"))


@jit
def _term_serial(indptr, indices, data, v, b, zb, scale, rows, out, acc):
    """:func:`_term`, serial, with its norm summed in 8 interleaved partial sums (one running sum would
    chain every row's addition to the previous one's latency)."""
    lanes = np.zeros(8)
    for i in range(rows):
        t = zb * b[i]
        for p in range(indptr[i], indptr[i + 1]):
            t += data[p] * v[indices[p]]
        t = complex(t.real * scale, t.imag * scale)
        out[i] = t
        acc[i] += t
        lanes[i & 7] += abs(t.real) + abs(t.imag)
    return lanes.sum()


@jit
def _norm1(x, rows):
    """sum |Re x_i| + |Im x_i| over rows [0, rows), in 8 interleaved partial sums."""
    lanes = np.zeros(8)
    for i in range(rows):
        lanes[i & 7] += abs(x[i].real) + abs(x[i].imag)
    return lanes.sum()


@jit
def _reach(indptr, indices):
    """reach[c] = 1 + the last row with an entry in a column <= c (at least c + 1): if v is zero from
    row k on, M v is zero from row reach[k - 1] on."""
    n = indptr.shape[0] - 1
    reach = np.arange(1, n + 1)
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            reach[indices[p]] = max(reach[indices[p]], i + 1)
    for c in range(1, n):
        reach[c] = max(reach[c], reach[c - 1])
    return reach


@jit
def _support(v, rows):
    """1 + the last nonzero row of v below ``rows`` (0 if none)."""
    k = rows
    while k > 0 and v[k - 1] == 0:
        k -= 1
    return k


@jit
def _taylor_vector(indptr, indices, data, reach, b, b_rows, x, x_rows, h, n_sub, tol, max_terms, parallel,
                   terms, acc, terms_rows, stats, mu, norm_b):
    """x <- e^{M h} x + int_0^h e^{M s} b ds, in ``n_sub`` equal substeps. Returns (status, x_rows).

    The series is that of the augmented matrix [[M, b], [0, 0]] (no steady state needed), shifted by
    mu: e^{M h} = e^{mu h} e^{(M - mu) h}, with the CSR arrays those of M - mu; the augmented
    component z_m = (h/m) (-mu) z_{m-1} carries the forcing into every term (into the first only
    when mu = 0). Only rows the state can have reached are computed: x is zero from row ``x_rows``
    on, b from ``b_rows`` on, and the reach of M (:func:`_reach`) bounds each term's rows; a signal
    entering a long chain at one end costs only the cells it has reached. ``acc`` equals x on entry
    and exit; ``terms`` (2, N) are the term buffers, zero from row ``terms_rows[k]`` on. The sum's
    norm is taken only when the terms are small against an upper bound of it (the same stopping rule).
    """
    hs = h / n_sub
    factor = np.exp(mu * hs)
    for _ in range(n_sub):
        norm_x = _norm1(x, x_rows)
        rows = max(b_rows, reach[x_rows - 1] if x_rows > 0 else 0)
        dst = 0
        src_vec = x
        prev2 = norm_x
        prev = 0.0
        z = 1.0 + 0j
        bound = norm_x + norm_b * hs  # >= ||acc||, grown by every term (triangle inequality)
        total = 0.0
        converged = False
        m = 1
        while not converged and m <= max_terms:
            out = terms[dst]
            for i in range(rows, terms_rows[dst]):
                out[i] = 0j  # stale rows of an earlier, longer term
            scale = hs / m
            if parallel:
                cur = _term_parallel(indptr, indices, data, src_vec, b, z, scale, rows, out, acc)
            else:
                cur = _term_serial(indptr, indices, data, src_vec, b, z, scale, rows, out, acc)
            z = z * (-mu) * scale
            cur += norm_b * (abs(z.real) + abs(z.imag))  # the forcing still to come counts as part of the term
            terms_rows[dst] = rows
            stats[0] += 1
            if m > 1:
                prev2 = prev
            prev = cur
            bound += cur
            if prev + prev2 <= tol * bound:
                total = _norm1(acc, rows)
                converged = prev + prev2 <= tol * total
            support = _support(out, rows)
            rows = max(rows, reach[support - 1] if support > 0 else 0)  # never shrinks: acc's norm stays whole
            src_vec = out
            dst = 1 - dst
            m += 1
        if not np.isfinite(bound):
            return NOT_FINITE, x_rows
        if not converged:
            return NO_CONVERGENCE, x_rows
        last = 0
        for i in range(terms_rows[1 - dst]):  # the last term's rows: every row acc has
            zi = flush(acc[i] * factor if mu != 0 else acc[i])  # no subnormals left to slow the next substep down
            x[i] = zi
            acc[i] = zi
            if zi != 0:
                last = i + 1
        x_rows = last
    return OK, x_rows


@jit
def _propagate_vector(indptr, indices, data, b, x0, omega, step_h, step_sub, step_kind, tol, max_terms,
                      parallel, x_jump, columns, battery, out_x, out_energy, out_totals, out_last, stats, mu,
                      p_kind, p_starts, p_ptr, p_offsets, p_values, p_reach, p_sub, p_forcing):
    """Steps alpha over every output time. Per output k: out_x[k] = alpha[columns] and out_energy[k] =
    omega |alpha|^2 on ``columns`` (each stored only when it has rows), out_totals[k] = the energy of
    all cells and of the battery cells (summed over the rows alpha can be nonzero on).

    Steps of kind ``p_kind`` (-1: none) apply the sparse propagator P (its runs of rows ``p_*``, its
    reach ``p_reach``) ``p_sub`` times and add ``p_forcing`` (int_0^h e^{M u} b du) instead of the series."""
    n = x0.shape[0]
    x = x0.copy()
    acc = x0.copy()
    y = np.zeros(n, np.complex128)  # P's output, swapped with x
    y_rows = 0  # y is zero from this row on
    acc_fresh = True  # acc equals x (the series needs it)
    c_rows = _support(p_forcing, p_forcing.shape[0])
    terms = np.zeros((2, n), np.complex128)
    terms_rows = np.zeros(2, np.int64)
    reach = _reach(indptr, indices)
    x_rows = _support(x, n)
    b_rows = _support(b, n)
    norm_b = _norm1(b, b_rows)
    store = out_x.shape[0] > 0
    store_energy = out_energy.shape[0] > 0
    k_cols = columns.shape[0]
    every = k_cols == n
    for c in range(k_cols):
        every = every and columns[c] == c
    for k in range(step_kind.shape[0]):
        s = step_kind[k]
        if step_sub[s] < 0:  # e^{M h} below machine precision (decay_rate_bound): the steady state
            for i in range(n):
                x[i] = x_jump[i]
                acc[i] = x_jump[i]
            acc_fresh = True
            x_rows = _support(x, n)
        elif s == p_kind:  # x <- P^p_sub x + c
            for _ in range(p_sub):
                rows = p_reach[x_rows - 1] if x_rows > 0 else 0
                for i in range(rows, y_rows):
                    y[i] = 0j  # stale rows of an earlier, longer output
                last = apply_vector(p_starts, p_ptr, p_offsets, p_values, x, y, rows)
                x, y = y, x
                y_rows, x_rows = x_rows, last
                stats[1] += 1
            if c_rows > 0:
                for i in range(c_rows):
                    x[i] += p_forcing[i]
                x_rows = max(x_rows, c_rows)
            acc_fresh = False  # (a non-finite state shows in the energy totals below)
        elif step_h[s] > 0.0:
            if not acc_fresh:
                for i in range(n):
                    acc[i] = x[i]
                acc_fresh = True
            status, x_rows = _taylor_vector(indptr, indices, data, reach, b, b_rows, x, x_rows, step_h[s],
                                            step_sub[s], tol, max_terms, parallel, terms, acc, terms_rows, stats, mu,
                                            norm_b)
            if status != OK:
                return status, k
        if store:
            if every:
                for i in range(x_rows):
                    out_x[k, i] = x[i]
                for i in range(x_rows, n):
                    out_x[k, i] = 0j
            else:
                for c in range(k_cols):
                    out_x[k, c] = x[columns[c]]
        if store_energy:
            for c in range(k_cols):
                z = x[columns[c]]
                out_energy[k, c] = omega[columns[c]] * (z.real * z.real + z.imag * z.imag)
        out_totals[k, 0], out_totals[k, 1] = _energy_totals(x, omega, battery, x_rows)
        if not np.isfinite(out_totals[k, 0]):
            return NOT_FINITE, k
    for i in range(n):
        out_last[i] = x[i]
    return OK, step_kind.shape[0]


@jit
def _energy_totals(x, omega, battery, rows):
    """(sum of omega |x|^2, the same over the ``battery`` cells) on rows [0, rows): 8-lane sums over
    blocks of 64 rows, the block sums added with Neumaier's compensation (about as exact as NumPy's
    pairwise sum of the energies: the terms are nonnegative)."""
    tot = 0.0
    tot_c = 0.0
    bat = 0.0
    bat_c = 0.0
    lt = np.empty(8)
    lb = np.empty(8)
    i = 0
    while i < rows:
        end = min(i + 64, rows)
        for lane in range(8):
            lt[lane] = 0.0
            lb[lane] = 0.0
        j = i
        while j + 8 <= end:
            for lane in range(8):
                z = x[j + lane]
                e = omega[j + lane] * (z.real * z.real + z.imag * z.imag)
                lt[lane] += e
                lb[lane] += e if battery[j + lane] else 0.0
            j += 8
        st = ((lt[0] + lt[1]) + (lt[2] + lt[3])) + ((lt[4] + lt[5]) + (lt[6] + lt[7]))
        sb = ((lb[0] + lb[1]) + (lb[2] + lb[3])) + ((lb[4] + lb[5]) + (lb[6] + lb[7]))
        while j < end:
            z = x[j]
            e = omega[j] * (z.real * z.real + z.imag * z.imag)
            st += e
            sb += e if battery[j] else 0.0
            j += 1
        t = tot + st
        tot_c += (tot - t) + st if abs(tot) >= abs(st) else (st - t) + tot
        tot = t
        t = bat + sb
        bat_c += (bat - t) + sb if abs(bat) >= abs(sb) else (sb - t) + bat
        bat = t
        i = end
    return tot + tot_c, bat + bat_c


def substeps(norm, steps, jump=None):
    """Substeps per distinct step (K,) int64 so that norm * h / n_sub <= config.TAYLOR_THETA; -1 where
    ``jump`` (K,) bool marks a step that lands on the steady state. Raises SolverError, before any
    work, when the total would exceed ``config.MAX_TAYLOR_SUBSTEPS`` (no int64 wrap-around)."""
    need = np.maximum(1.0, np.ceil(norm * np.asarray(steps, float) / config.TAYLOR_THETA))  # float: no overflow
    if jump is not None:
        need[jump] = -1.0
    return need


def _bounded_substeps(need, step_kind, what):
    total = float(np.maximum(need, 0.0)[np.asarray(step_kind)].sum())
    if not total <= config.MAX_TAYLOR_SUBSTEPS:
        raise SolverError(
            f"exact-sparse stepping of {what} would need {total:.3g} Taylor substeps (more than "
            f"config.MAX_TAYLOR_SUBSTEPS = {config.MAX_TAYLOR_SUBSTEPS:.3g}): the output times are too far apart "
            "for a network without a proven decay rate (an undamped mode); use closer output times, "
            "steady_state() for the long-time limit, or damp every cell (kappa > 0)"
        )
    return need.astype(np.int64)


def decay_rate_bound(M) -> float:
    """A lower bound d on the decay rate: ||e^{M t}||_2 <= e^{-d t / 2} for t >= 0 (0 when none is proven).

    M = -iH - D/2 has Hermitian part -D/2, so ||e^{Mt}||_2 <= e^{-lambda_min(D) t / 2}; Gershgorin's
    discs of D = -(M + M^H) bound lambda_min(D) from below in O(nnz).
    """
    A = pruned_csr(M)
    D = -(A + A.conj().T)
    d = D.diagonal().real
    radius = np.asarray(abs(D).sum(axis=1)).ravel() - np.abs(D.diagonal())
    return max(0.0, float((d - radius).min(initial=np.inf)))


def jump_steps(M, steps) -> np.ndarray:
    """(K,) bool: steps after which e^{M h} (and e^{conj(M) h} . e^{M^T h}) is below 2^-60 in norm, proven
    by :func:`decay_rate_bound`, so the state there is the steady state to machine precision."""
    d = decay_rate_bound(M)
    return (d * np.asarray(steps, float) / 2 >= 60 * np.log(2.0)) if d > 0 else np.zeros(len(steps), bool)


def propagate_vector(M, b, x0, omega, steps, step_kind, *, out_x, out_energy, out_last, x_jump=None, jump=None,
                     parallel=None, columns=None, battery=None, out_totals=None, propagator=None):
    """Exact alpha at every output time: alpha_k = e^{M h_s} alpha_{k-1} + int_0^{h_s} e^{M u} b du.

    Parameters
    ----------
    M : sparse or ndarray (N, N) complex
    b : ndarray (N,) complex
        Constant forcing (-i E).
    x0 : ndarray (N,) complex
        alpha at t = 0.
    omega : ndarray (N,) float
        Cell frequencies, for the energies.
    steps : ndarray (K,) float
        Distinct step lengths h_s (1/omega), >= 0.
    step_kind : ndarray (T,) int
        Which step leads to output k.
    out_x : ndarray (T, k) complex or (0, k)
        Amplitudes of the ``columns`` at the output times (not stored when it has zero rows).
    out_energy : ndarray (T, k) float or (0, k)
        omega |alpha|^2 of the ``columns`` at the output times (not stored when it has zero rows).
    out_last : ndarray (N,) complex
        alpha after the last output time.
    x_jump : ndarray (N,) complex, optional; jump : ndarray (K,) bool, optional
        The steady state, and the steps that land on it (:func:`jump_steps`).
    parallel : bool, optional
        Threads over rows; default above ``config.PARALLEL_MIN_CELLS`` cells.
    columns : ndarray (k,) int, optional
        Cells whose amplitudes / energies are written (default all N).
    battery : ndarray (N,) bool, optional; out_totals : ndarray (T, 2) float, optional
        Energy of all cells and of the ``battery`` cells at each output time, summed in the kernel.
    propagator : bool, optional
        Apply a sparse propagator P = e^{M h} to the most frequent step (:func:`step_propagator`) when x0
        is nonzero on at least half the cells (else the series' row tracking is cheaper); default
        ``config.SPARSE_PROPAGATOR``.

    Returns
    -------
    dict of counters (``terms``: CSR products of the series, ``substeps``, ``propagator_products``:
    products with P, ``propagator_entries``: its entries a row).

    Raises
    ------
    chiralnet.errors.SolverError
        If the series does not converge or the state is not finite.
    """
    M = pruned_csr(M)
    S, mu = shifted(M) if config.TAYLOR_SHIFT_VECTOR else (M, 0j)  # e^{M h} = e^{mu h} e^{(M - mu) h}
    indptr, indices, data = csr_parts(S)
    n = indptr.size - 1
    if parallel is None:
        parallel = n >= config.PARALLEL_MIN_CELLS
    steps = np.asarray(steps, float)
    # ||(M - mu) h|| <= theta per substep, and |mu h| too (the forcing's augmented component grows as e^{-mu h})
    n_sub = _bounded_substeps(substeps(max(one_norm(S), abs(mu)), steps, jump), step_kind, "the amplitudes")
    x_jump = np.zeros(n, complex) if x_jump is None else np.asarray(x_jump, complex)
    columns = np.arange(n, dtype=np.int64) if columns is None else np.asarray(columns, np.int64)
    battery = np.zeros(n, bool) if battery is None else np.asarray(battery, bool)
    if out_totals is None:
        out_totals = np.empty((len(step_kind), 2))
    b = np.asarray(b, complex)
    step_kind = np.asarray(step_kind, np.int64)
    x0 = np.asarray(x0, complex)
    prop = None
    # P costs a build over every row; it pays when the state spans most cells (a vacuum driven at one end
    # reaches few cells, which the series' row tracking already confines the work to)
    if (config.SPARSE_PROPAGATOR if propagator is None else propagator) and 2 * np.count_nonzero(x0) >= n:
        prop = step_propagator(M, steps, step_kind, n_sub)
    if prop is None:  # placeholders of the compiled types
        p_kind, p_sub, c = -1, 0, np.zeros(0, complex)
        p_arrays = (np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, complex),
                    np.zeros(0, np.int64))
    else:
        p_kind, P, p_sub = prop
        c = forcing_increment(M, b, steps[p_kind]) if b.any() else np.zeros(0, complex)
        p_indptr, p_indices, _ = csr_parts(P)
        p_arrays = (*row_runs(P), _reach(p_indptr, p_indices))
    stats = np.zeros(2, np.int64)
    status, k = _propagate_vector(indptr, indices, data, b, x0,
                                  np.asarray(omega, float), steps, n_sub, step_kind,
                                  config.TAYLOR_TOL, config.TAYLOR_MAX_TERMS, bool(parallel), x_jump, columns, battery,
                                  out_x, out_energy, out_totals, out_last, stats, complex(mu),
                                  p_kind, *p_arrays, p_sub, c)
    _check_status(status, k)
    out = {"terms": int(stats[0]), "substeps": int(np.maximum(n_sub, 0)[step_kind[step_kind != p_kind]].sum())}
    if prop is not None:
        out.update(propagator_products=int(stats[1]), propagator_entries=round(P.nnz / max(n, 1), 2))
    return out


def step_propagator(M, steps, step_kind, n_sub):
    """(kind, P, applications) for the step length that recurs most, when a sparse propagator pays:
    the step recurs at least ``config.PROPAGATOR_MIN_USES`` times, does not land on the steady state
    (``n_sub`` < 0) and P = e^{M h / applications} stays sparse (:func:`~chiralnet.linalg.propagator.sparse_propagator`);
    else None. ``applications`` substeps keep ||(M - mu) h / applications||_1 <= ``config.TAYLOR_THETA``."""
    uses = np.bincount(step_kind, minlength=len(steps))
    kind = int(uses.argmax()) if uses.size else -1
    if kind < 0 or uses[kind] < config.PROPAGATOR_MIN_USES or n_sub[kind] < 0 or not steps[kind] > 0:
        return None
    B, mu = shifted(M)
    applications = int(substeps(one_norm(B), [steps[kind]])[0])
    P, _ = sparse_propagator(B, mu, steps[kind] / applications)
    return None if P is None else (kind, P, applications)


def forcing_increment(M, b, h):
    """int_0^h e^{M u} b du (N,) complex: the state a step of length h reaches from alpha = 0, by the series."""
    n = b.size
    c = np.empty(n, complex)
    propagate_vector(M, b, np.zeros(n, complex), np.zeros(n), [h], [0], out_x=np.zeros((0, 0), complex),
                     out_energy=np.zeros((0, 0)), out_last=c, columns=np.zeros(0, np.int64), propagator=False)
    return c


def _check_status(status, k):
    if status == NO_CONVERGENCE:
        raise SolverError(
            f"the Taylor series of e^(M dt) did not converge within config.TAYLOR_MAX_TERMS terms at output "
            f"{k}; lower config.TAYLOR_THETA or use method='rk45'"
        )
    if status == NOT_FINITE:
        raise SolverError(f"the state became non-finite at output {k}; is the network unstable?")


def _lyap_term(indptr, indices, data, T, Q, first, scale, out, acc):
    """out = scale (A T + T A^H + Q if ``first``), A = conj(M) in CSR; acc += out. All (N, N).

    One pass, row by row: (A T)[i, :] adds the rows of T that A's row i names (contiguous), and
    (T A^H)[i, j] = sum_k T[i, k] conj(A_jk) reads row i of T only, so each row of out is
    finished while its inputs are in cache. Returns (||out||, ||acc||) as entrywise 1-norms of
    the real and imaginary parts. Rows are split over threads when compiled parallel.
    """
    n = T.shape[0]
    s_out = 0.0
    s_acc = 0.0
    for i in prange(n):
        for j in range(n):
            out[i, j] = Q[i, j] if first else 0j
        for p in range(indptr[i], indptr[i + 1]):
            a = data[p]
            k = indices[p]
            for j in range(n):
                out[i, j] += a * T[k, j]
        so = 0.0
        sa = 0.0
        for j in range(n):
            t = out[i, j]
            for p in range(indptr[j], indptr[j + 1]):
                t += T[i, indices[p]] * np.conj(data[p])
            t = complex(t.real * scale, t.imag * scale)
            out[i, j] = t
            v = acc[i, j] + t
            acc[i, j] = v
            so += abs(t.real) + abs(t.imag)
            sa += abs(v.real) + abs(v.imag)
        s_out += so
        s_acc += sa
    return s_out, s_acc


_lyap_term_serial = jit(_lyap_term)


_lyap_term_parallel = jit(parallel=True)(_renamed(_lyap_term, "_parallel"))


@jit
def _propagate_matrix(indptr, indices, data, Q, X0, step_h, step_sub, step_kind, tol, max_terms, parallel,
                      X_jump, out_diag, block_idx, out_block, stats):
    """Nc_k = e^{A h} Nc_{k-1} e^{A^H h} + int_0^h e^{A u} Q e^{A^H u} du, A = conj(M) in CSR.
    Writes Re diag Nc_k to out_diag (T, N) and Nc_k[block_idx, block_idx] to out_block (T, B, B)."""
    n = X0.shape[0]
    X = X0.copy()
    t1 = np.empty((n, n), np.complex128)
    t2 = np.empty((n, n), np.complex128)
    acc = np.empty((n, n), np.complex128)
    for k in range(step_kind.shape[0]):
        s = step_kind[k]
        h = step_h[s]
        if step_sub[s] < 0:  # below machine precision: the steady state
            X[:, :] = X_jump
        elif h > 0.0:
            hs = h / step_sub[s]
            for _ in range(step_sub[s]):
                acc[:, :] = X
                norm_x = np.abs(X.real).sum() + np.abs(X.imag).sum()
                if parallel:
                    prev, total = _lyap_term_parallel(indptr, indices, data, X, Q, True, hs, t1, acc)
                else:
                    prev, total = _lyap_term_serial(indptr, indices, data, X, Q, True, hs, t1, acc)
                stats[0] += 1
                src, dst = t1, t2
                prev2 = norm_x
                converged = prev + prev2 <= tol * total
                m = 2
                while not converged and m <= max_terms:
                    if parallel:
                        cur, total = _lyap_term_parallel(indptr, indices, data, src, Q, False, hs / m, dst, acc)
                    else:
                        cur, total = _lyap_term_serial(indptr, indices, data, src, Q, False, hs / m, dst, acc)
                    stats[0] += 1
                    prev2 = prev
                    prev = cur
                    src, dst = dst, src
                    converged = prev + prev2 <= tol * total
                    m += 1
                if not np.isfinite(total):  # first: a NaN sum never converges either
                    return NOT_FINITE, k, X
                if not converged:
                    return NO_CONVERGENCE, k, X
                for i in range(n):
                    for j in range(n):
                        X[i, j] = flush(acc[i, j])
        for i in range(n):
            out_diag[k, i] = X[i, i].real
        for u in range(block_idx.shape[0]):
            for v in range(block_idx.shape[0]):
                out_block[k, u, v] = X[block_idx[u], block_idx[v]]
    return OK, step_kind.shape[0], X


def propagate_matrix(M, Q, X0, steps, step_kind, *, out_diag, X_jump=None, jump=None, parallel=None,
                     block_idx=None, out_block=None):
    """Exact fluctuation matrix: Nc_k = e^{conj(M) h} Nc_{k-1} e^{M^T h} + (noise over the step).

    Each Taylor term costs O(N nnz) (a CSR-times-dense product), never a dense N x N product.

    Parameters
    ----------
    M : sparse or ndarray (N, N) complex
    Q : ndarray (N, N) complex
        Noise matrix (dense).
    X0 : ndarray (N, N) complex
        Nc at t = 0.
    steps, step_kind
        As in :func:`propagate_vector`.
    out_diag : ndarray (T, N) float
        Re diag(Nc) at the output times.
    X_jump : ndarray (N, N) complex, optional; jump : ndarray (K,) bool, optional
        The steady Nc, and the steps that land on it (:func:`jump_steps`).
    block_idx : ndarray (B,) int, optional; out_block : ndarray (T, B, B) complex, optional
        Cells whose block Nc[B, B] is written at every output time (the battery, for the ergotropy).

    Returns
    -------
    (Nc at the last output time (N, N) complex, dict of counters)
    """
    A = pruned_csr(M).conj()
    indptr, indices, data = csr_parts(A)
    n = indptr.size - 1
    if parallel is None:
        parallel = n >= config.PARALLEL_MIN_CELLS_THERMAL
    steps = np.asarray(steps, float)
    n_sub = _bounded_substeps(substeps(2.0 * one_norm(A), steps, jump), step_kind, "the fluctuations")
    X_jump = np.zeros((n, n), complex) if X_jump is None else np.ascontiguousarray(X_jump, dtype=complex)
    stats = np.zeros(1, np.int64)
    if block_idx is None:
        block_idx = np.zeros(0, np.int64)
        out_block = np.zeros((len(step_kind), 0, 0), complex)
    status, k, X = _propagate_matrix(indptr, indices, data, np.ascontiguousarray(Q, dtype=complex),
                                     np.ascontiguousarray(X0, dtype=complex), steps, n_sub,
                                     np.asarray(step_kind, np.int64), config.TAYLOR_TOL, config.TAYLOR_MAX_TERMS,
                                     bool(parallel), X_jump, out_diag, np.asarray(block_idx, np.int64), out_block,
                                     stats)
    _check_status(status, k)
    X = 0.5 * (X + X.conj().T)
    return X, {"matrix_terms": int(stats[0])}



# ---------------------------------------------------------------------------------------------
# Thermal traces, one-sided: Nc(t) = Nc_ss + D(t), D' = P D P^H with P = e^{A h}, A = conj(M).
#
# D has no forcing, so each output step is two one-sided passes Y = P X^H (X = D, then X = P D), each
# a Taylor series on column blocks of a few dozen columns: every column is an independent vector
# propagation, so the whole series of a block runs in cache (the two-sided series streams the N x N
# matrix once per term), and the one-sided series needs the norm ||A|| instead of 2 ||A||. When A is
# triangular (a cascade in node order), D = L + L^H with L the triangle of D (half diagonal): the
# first pass propagates L, whose columns keep their triangular support (half the work), and
# D' = G + G^H with G = P (P L)^H. Same truncation rule as the other kernels (two successive terms
# below TAYLOR_TOL of the sum, per block).



@jit
def _low(indptr, indices):
    """low[r] = min(r, the first row with an entry in a column >= r): if v is zero above row r, so is
    M v above row low[r] (the mirror of :func:`_reach`)."""
    n = indptr.shape[0] - 1
    low = np.arange(n)
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            if i < low[indices[p]]:
                low[indices[p]] = i
    for c in range(n - 2, -1, -1):
        low[c] = min(low[c], low[c + 1])
    return low


@jit
def _clear(br, bi, dirty, lo, hi):
    """Zero rows of the planes (br, bi) that were written ([dirty[0], dirty[1])) outside [lo, hi)."""
    for i in range(dirty[0], min(dirty[1], lo)):
        for c in range(br.shape[1]):
            br[i, c] = 0.0
            bi[i, c] = 0.0
    for i in range(max(dirty[0], hi), dirty[1]):
        for c in range(br.shape[1]):
            br[i, c] = 0.0
            bi[i, c] = 0.0
    dirty[0] = lo
    dirty[1] = hi


@jit
def _column_block(indptr, indices, dr, di, reach, low, X, Y, j0, wc, tri, h, n_sub, tol, max_terms, factor, buf,
                  dirty):
    """Y[:, j0:j0+wc] = e^{A h} V with V = (X^H)[:, j0:j0+wc] (``tri`` = 0), or V = the lower (1) / upper (-1)
    triangle of X^H with half its diagonal. ``buf`` (8, N, w) float planes (x, acc, two terms; real and
    imaginary apart, so the inner loops over the w columns vectorize), zero outside the rows ``dirty``
    (4, 2) records. Returns (status, Taylor terms)."""
    n = X.shape[0]
    w = buf.shape[2]
    xr, xi, ar, ai = buf[0], buf[1], buf[2], buf[3]
    lanes = np.empty(w)
    lo, hi = _load_block(X, j0, wc, tri, xr, xi)
    terms = 0
    hs = h / n_sub
    for _ in range(n_sub):
        while lo < hi and _zero_row(xr, xi, lo):
            lo += 1
        while hi > lo and _zero_row(xr, xi, hi - 1):
            hi -= 1
        if lo >= hi:
            break  # a zero block stays zero
        _clear(ar, ai, dirty[1], lo, hi)
        norm_x = 0.0
        for i in range(lo, hi):
            for c in range(w):
                ar[i, c] = xr[i, c]
                ai[i, c] = xi[i, c]
                norm_x += abs(xr[i, c]) + abs(xi[i, c])
        sr, si = xr, xi
        prev2 = norm_x
        prev = 0.0
        bound = norm_x  # >= ||acc|| (triangle inequality): ||acc|| is summed only when it can pass
        converged = False
        m = 1
        while not converged and m <= max_terms:
            slot = 2 if m % 2 == 1 else 3
            tr, ti = buf[2 * slot], buf[2 * slot + 1]
            lo = low[lo]
            hi = reach[hi - 1]
            _clear(tr, ti, dirty[slot], lo, hi)
            scale = hs / m
            for c in range(w):
                lanes[c] = 0.0  # per-column partial sums: the loops over c vectorise
            for i in range(lo, hi):
                for c in range(w):
                    tr[i, c] = 0.0
                    ti[i, c] = 0.0
                for p in range(indptr[i], indptr[i + 1]):
                    pr = dr[p] * scale
                    pi = di[p] * scale
                    k = indices[p]
                    for c in range(w):
                        tr[i, c] += pr * sr[k, c] - pi * si[k, c]
                        ti[i, c] += pr * si[k, c] + pi * sr[k, c]
                for c in range(w):
                    ar[i, c] += tr[i, c]
                    ai[i, c] += ti[i, c]
                    lanes[c] += abs(tr[i, c]) + abs(ti[i, c])
            s_out = lanes.sum()
            dirty[1, 0] = min(dirty[1, 0], lo)
            dirty[1, 1] = max(dirty[1, 1], hi)
            terms += 1
            if m > 1:
                prev2 = prev
            prev = s_out
            bound += s_out
            if prev + prev2 <= tol * bound:
                for c in range(w):
                    lanes[c] = 0.0
                for i in range(lo, hi):
                    for c in range(w):
                        lanes[c] += abs(ar[i, c]) + abs(ai[i, c])
                total = lanes.sum()
                converged = prev + prev2 <= tol * total
            sr, si = tr, ti
            m += 1
        if not np.isfinite(bound):
            return NOT_FINITE, terms
        if not converged:
            return NO_CONVERGENCE, terms
        fr = factor.real
        fi = factor.imag
        for i in range(lo, hi):
            for c in range(w):
                a = ar[i, c] * fr - ai[i, c] * fi  # e^{mu hs} (A - mu shifted series)
                b = ar[i, c] * fi + ai[i, c] * fr
                xr[i, c] = a if abs(a) >= 2.2250738585072014e-308 else 0.0  # flush, as the other kernels
                xi[i, c] = b if abs(b) >= 2.2250738585072014e-308 else 0.0
    _store_block(xr, xi, Y, j0, wc)
    return OK, terms


@jit
def _load_block(X, j0, wc, tri, xr, xi):
    """Planes (N, w) of V = X^H[:, j0:j0+wc] (``tri`` = 0), or of its lower (1) / upper (-1) triangle with
    half the diagonal, padded with zero columns. Returns (lo, hi): V is zero outside rows [lo, hi)."""
    n = X.shape[0]
    w = xr.shape[1]
    lo = 0
    hi = n
    if tri == 1:
        lo = j0
    elif tri == -1:
        hi = min(n, j0 + wc)
    for i in range(n):
        for c in range(w):
            j = j0 + c
            if c >= wc or (tri == 1 and i < j) or (tri == -1 and i > j):
                xr[i, c] = 0.0
                xi[i, c] = 0.0
            elif i == j and tri != 0:
                xr[i, c] = 0.5 * X[j, i].real
                xi[i, c] = 0.0
            else:
                z = X[j, i]
                xr[i, c] = z.real
                xi[i, c] = -z.imag
    return lo, hi


@jit
def _store_block(xr, xi, Y, j0, wc):
    """Y[:, j0:j0+wc] = the planes' first wc columns."""
    for i in range(xr.shape[0]):
        for c in range(wc):
            Y[i, j0 + c] = complex(xr[i, c], xi[i, c])


@jit
def _column_block_propagator(starts, ptr, offsets, values, reach, low, X, Y, j0, wc, tri, applications, buf, dirty):
    """Y[:, j0:j0+wc] = P^applications V with the sparse propagator P (its runs of rows ``starts, ptr,
    offsets, values``; ``reach``/``low`` its row bounds), V as in :func:`_column_block`; the planes
    buf[0:2] and buf[2:4] alternate as input and output, zero outside the rows ``dirty`` records.
    Returns (status, products)."""
    n = X.shape[0]
    src = 0
    lo, hi = _load_block(X, j0, wc, tri, buf[0], buf[1])
    dirty[0, 0] = 0
    dirty[0, 1] = n
    done = 0
    for _ in range(applications):
        xr, xi = buf[2 * src], buf[2 * src + 1]
        while lo < hi and _zero_row(xr, xi, lo):
            lo += 1
        while hi > lo and _zero_row(xr, xi, hi - 1):
            hi -= 1
        if lo >= hi:
            break  # a zero block stays zero
        dst = 1 - src
        lo, hi = low[lo], reach[hi - 1]
        _clear(buf[2 * dst], buf[2 * dst + 1], dirty[dst], lo, hi)
        total = apply_planes(starts, ptr, offsets, values, xr, xi, buf[2 * dst], buf[2 * dst + 1], lo, hi)
        done += 1
        if not np.isfinite(total):
            return NOT_FINITE, done
        src = dst
    _store_block(buf[2 * src], buf[2 * src + 1], Y, j0, wc)
    return OK, done


@jit
def _zero_row(xr, xi, i):
    for c in range(xr.shape[1]):
        if xr[i, c] != 0.0 or xi[i, c] != 0.0:
            return False
    return True


def _columns_pass(indptr, indices, dr, di, reach, low, X, Y, tri, h, n_sub, tol, max_terms, factor, width, n_chunks,
                  stats, applications, p_starts, p_ptr, p_offsets, p_values, p_reach, p_low):
    """Y = e^{A h} V, V = X^H or its triangle (``tri``), column block by column block; ``n_chunks``
    contiguous runs of blocks (one per thread when compiled parallel). With ``applications`` = 0 the
    series runs on the CSR arrays of A - mu (:func:`_column_block`, ``factor`` = e^{mu h / n_sub});
    else the sparse propagator (runs of rows ``p_*``) is applied that many times
    (:func:`_column_block_propagator`). Returns a status."""
    n = X.shape[0]
    n_blocks = (n + width - 1) // width
    status = np.zeros(n_chunks, np.int64)
    terms = np.zeros(n_chunks, np.int64)
    for t in prange(n_chunks):
        buf = np.zeros((8, n, width))
        dirty = np.zeros((4, 2), np.int64)
        for b in range(t * n_blocks // n_chunks, (t + 1) * n_blocks // n_chunks):
            j0 = b * width
            wc = min(width, n - j0)
            if applications > 0:
                st, te = _column_block_propagator(p_starts, p_ptr, p_offsets, p_values, p_reach, p_low, X, Y, j0,
                                                  wc, tri, applications, buf, dirty)
            else:
                st, te = _column_block(indptr, indices, dr, di, reach, low, X, Y, j0, wc, tri, h, n_sub, tol,
                                       max_terms, factor, buf, dirty)
            terms[t] += te * wc
            if st != OK:
                status[t] = st
                break
    stats[0 if applications == 0 else 1] += terms.sum()
    return status.max()


_columns_pass_serial = jit(_columns_pass)


_columns_pass_parallel = jit(parallel=True)(_renamed(_columns_pass, "_parallel"))


@jit
def _hermitian_sum(G, D):
    """D = G + G^H, in tiles (the transposed reads stay in cache)."""
    n = G.shape[0]
    tile = 64
    for i0 in range(0, n, tile):
        for j0 in range(0, i0 + 1, tile):
            for i in range(i0, min(n, i0 + tile)):
                for j in range(j0, min(i + 1, j0 + tile)):
                    z = G[i, j] + np.conj(G[j, i])
                    D[i, j] = z
                    D[j, i] = np.conj(z)
    for i in range(n):
        D[i, i] = D[i, i].real


@jit
def _write_outputs(D, X_ss, k, out_diag, block_idx, out_block):
    """out_diag[k] = Re diag(X_ss + D), out_block[k] = (X_ss + D)[block_idx, block_idx]."""
    for i in range(D.shape[0]):
        out_diag[k, i] = X_ss[i, i].real + D[i, i].real
    nb = block_idx.shape[0]
    if nb == 0:
        return
    b0 = block_idx[0]
    contiguous = True
    for u in range(nb):
        contiguous = contiguous and block_idx[u] == b0 + u
    if contiguous:  # rows of slices (vectorised)
        for u in range(nb):
            xs = X_ss[b0 + u, b0:b0 + nb]
            ds = D[b0 + u, b0:b0 + nb]
            ob = out_block[k, u]
            for v in range(nb):
                ob[v] = xs[v] + ds[v]
        return
    for u in range(nb):
        for v in range(nb):
            out_block[k, u, v] = X_ss[block_idx[u], block_idx[v]] + D[block_idx[u], block_idx[v]]


def shifted(A):
    """(A - mu I as CSR without zeros, mu): e^{A h} = e^{mu h} e^{(A - mu I) h} (Al-Mohy and Higham's shift).

    mu is the diagonal value most cells share when at least half do (a uniform network: those diagonal
    entries vanish, the Taylor terms cost fewer products, and the 1-norm is smaller), else the mean
    diagonal (trace / N) when it lowers the 1-norm, else 0."""
    A = sp.csr_array(A)
    n = A.shape[0]
    if n == 0:
        return A, 0j
    d = A.diagonal()
    values, counts = np.unique(d, return_counts=True)
    mu = complex(values[counts.argmax()]) if 2 * counts.max() >= n else complex(d.mean())
    if mu == 0:
        return A, 0j
    B = sp.csr_array(A - mu * sp.identity(n, dtype=complex, format="csr"))
    B.eliminate_zeros()
    if 2 * counts.max() < n and one_norm(B) >= one_norm(A):
        return A, 0j
    return B, mu


def _triangle(indptr, indices) -> int:
    """1 if every entry is on or below the diagonal, -1 if on or above, else 0."""
    row = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    if (indices <= row).all():
        return 1
    if (indices >= row).all():
        return -1
    return 0


def propagate_deviation(M, X_ss, D0, steps, step_kind, *, out_diag, jump=None, parallel=None, block_idx=None,
                        out_block=None, width=None, propagator=None):
    """Exact fluctuation matrix of a network with a steady state: Nc_k = Nc_ss + P_k D_{k-1} P_k^H,
    P_k = e^{conj(M) h_k}, D_{-1} = D0 = Nc0 - Nc_ss, by one-sided Taylor passes on column blocks.

    Parameters
    ----------
    M : sparse or ndarray (N, N) complex
    X_ss : ndarray (N, N) complex
        Nc_ss (conj(M) X + X M^T = -Q), or zeros when there is no noise (then D = Nc, any M).
    D0 : ndarray (N, N) complex Hermitian
        Nc at t = 0 minus X_ss.
    steps, step_kind, out_diag, jump, block_idx, out_block
        As in :func:`propagate_matrix` (a jump lands on Nc_ss).
    width : int, optional
        Columns per block (default ``config.FLUCTUATION_BLOCK_WIDTH``).
    propagator : bool, optional
        Apply a sparse propagator to the most frequent step (:func:`step_propagator`); default
        ``config.SPARSE_PROPAGATOR``.

    Returns
    -------
    (Nc at the last output time (N, N) complex, dict of counters)
    """
    A, mu = shifted(pruned_csr(M).conj())  # e^{A h} = e^{mu h} e^{(A - mu) h}
    indptr, indices, data = csr_parts(A)
    n = indptr.size - 1
    if parallel is None:
        parallel = n >= config.PARALLEL_MIN_CELLS_THERMAL
    width = int(width or config.FLUCTUATION_BLOCK_WIDTH)
    steps = np.asarray(steps, float)
    n_sub = _bounded_substeps(substeps(one_norm(A), steps, jump), step_kind, "the fluctuations")
    tri = _triangle(indptr, indices)
    reach, low = _reach(indptr, indices), _low(indptr, indices)
    dr, di = np.ascontiguousarray(data.real), np.ascontiguousarray(data.imag)
    n_chunks = 1
    if parallel:
        import numba

        n_chunks = max(1, min(numba.get_num_threads(), n // width))
    run = _columns_pass_parallel if parallel else _columns_pass_serial
    if block_idx is None:
        block_idx = np.zeros(0, np.int64)
        out_block = np.zeros((len(step_kind), 0, 0), complex)
    block_idx = np.asarray(block_idx, np.int64)
    X_ss = np.ascontiguousarray(X_ss, dtype=complex)
    D = np.array(D0, dtype=complex, order="C")
    W = np.empty_like(D)
    stats = np.zeros(2, np.int64)
    tol, max_terms = config.TAYLOR_TOL, config.TAYLOR_MAX_TERMS
    step_kind = np.asarray(step_kind, np.int64)
    prop = None
    if config.SPARSE_PROPAGATOR if propagator is None else propagator:  # the same P for every column
        prop = step_propagator(pruned_csr(M).conj(), steps, step_kind, n_sub)
    if prop is not None:
        p_kind, P, applications = prop
        p_indptr, p_indices, _ = csr_parts(P)
        p_arrays = (*row_runs(P), _reach(p_indptr, p_indices), _low(p_indptr, p_indices))
    else:  # placeholders of the compiled types
        p_kind, applications = -1, 0
        p_arrays = (np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, complex),
                    np.zeros(0, np.int64), np.zeros(0, np.int64))
    series = (indptr, indices, dr, di, reach, low)
    for k, s in enumerate(step_kind):
        if n_sub[s] < 0:  # below machine precision: the steady state
            D[:] = 0.0
        elif steps[s] > 0.0:
            uses = applications if s == p_kind else 0
            factor = np.exp(mu * steps[s] / n_sub[s])  # e^{mu hs}, applied after every substep of the series
            status = run(*series, D, W, tri, steps[s], n_sub[s], tol, max_terms, factor, width, n_chunks, stats,
                         uses, *p_arrays)  # W = P L (or P D)
            if status == OK:  # D = P W^H: P D P^H, or G with P D P^H = G + G^H
                status = run(*series, W, D, 0, steps[s], n_sub[s], tol, max_terms, factor, width, n_chunks, stats,
                             uses, *p_arrays)
            if status == OK and tri != 0:
                _hermitian_sum(D, D)
            _check_status(status, k)
        _write_outputs(D, X_ss, k, out_diag, block_idx, out_block)
    Nc = X_ss + D
    Nc = 0.5 * (Nc + Nc.conj().T)
    out = {"matrix_terms": int(stats[0]) // max(n, 1), "fluctuation_stepping": "one-sided"}
    if prop is not None:
        out.update(matrix_propagator_products=int(stats[1]) // max(n, 1), propagator_entries=round(P.nnz / max(n, 1), 2))
    return Nc, out


def _steady_fluctuations(model: Model):
    """Nc_ss when it is cheap and exact (no noise: zero, for any M; a stable cascade: the triangular
    Lyapunov recursion, O(N nnz)), else None (feedback with noise: the dense solve would cost N^3)."""
    if model.Q is None:
        return np.zeros((model.n_cells,) * 2, complex)
    order = cascade_order(model.M)
    if order is None:
        return None
    try:
        check_stability_arrays(model.M, model.cells, order)
    except NoSteadyStateError:
        return None
    return steady_covariance(model, order)[0]


def _run(model: Model, state0: State, times, options) -> Trace:
    dts, kind = options.get("grid") or distinct_steps(times)
    T, n = times.size, model.n_cells
    store = options.get("store_amplitudes", True)
    columns = options.get("cells")
    columns = np.arange(n, dtype=np.int64) if columns is None else np.asarray(columns, np.int64)
    k = columns.size
    # Amplitudes kept: the energies are derived from them on access (not stored twice); else energies only.
    alpha = memory.empty((T, k) if store else (0, k), complex)
    energies = memory.empty((0, k) if store else (T, k))
    totals = np.empty((T, 2))
    alpha_end = np.empty(n, complex)
    thermal = model.thermal or state0.Nc is not None
    jump = jump_steps(model.M, dts)
    steady = steady_arrays(model, fluctuations=thermal) if jump.any() else (None, None)
    stats = propagate_vector(model.M, model.forcing, state0.alpha, model.omega, dts, kind,
                             out_x=alpha, out_energy=energies, out_last=alpha_end, x_jump=steady[0], jump=jump,
                             columns=columns, battery=model.battery, out_totals=totals)
    Nc = block = None
    if thermal:
        fluct = memory.empty((T, n))
        idx = options.get("block", np.flatnonzero(model.battery)).astype(np.int64)
        block = memory.empty((T, idx.size, idx.size), complex)
        X_ss = _steady_fluctuations(model) if config.FLUCTUATION_ONE_SIDED else None
        if X_ss is not None:  # Nc = Nc_ss + D, D stepped one-sidedly (no forcing)
            Nc, more = propagate_deviation(model.M, X_ss, state0.dense_Nc() - X_ss, dts, kind, out_diag=fluct,
                                           jump=jump, block_idx=idx, out_block=block)
        else:  # feedback and noise: the steady state would cost a dense Lyapunov solve; step Nc itself
            Nc, more = propagate_matrix(model.M, model.dense_Q(), state0.dense_Nc(), dts, kind, out_diag=fluct,
                                        X_jump=steady[1], jump=jump, block_idx=idx, out_block=block)
        thermal_energy = model.omega * fluct
        totals[:, 0] += thermal_energy.sum(axis=1)
        totals[:, 1] += thermal_energy[:, model.battery].sum(axis=1)
        if k < n or not np.array_equal(columns, np.arange(n)):
            fluct = np.ascontiguousarray(fluct[:, columns])
        if not store:
            energies += model.omega[columns] * fluct
        stats.update(more)
    else:
        fluct = np.broadcast_to(np.zeros(1), (T, k))  # coherent state: no fluctuations, no memory
    return Trace(alpha if store else None, None if store else energies, fluct, State(model.cells, alpha_end, Nc),
                 {**stats, "format": "csr"}, block, totals)


#: Exact CSR stepping; machine precision; any grid; 10^5+ cells.
EXACT_SPARSE = Method("exact-sparse", _run, frozenset(),
                      "e^{M dt} on CSR through a Taylor series (machine precision, large sparse N)")
