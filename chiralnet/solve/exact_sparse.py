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

import numpy as np
from numba import prange

from .. import config, memory
from .._jit import jit, renamed
from ..linalg.csr import csr_parts, flush, one_norm, pruned_csr, row_reach, shifted
from ..linalg.propagator import apply_vector, apply_vector_parallel, row_runs
from ..linalg.stability import jump_steps
from ..model import Model, State
from .base import Method, Trace, distinct_steps
from .fluctuations import propagate_deviation, propagate_matrix, steady_fluctuations
from .stationary import steady_arrays
from .taylor import NO_CONVERGENCE, NOT_FINITE, OK, bounded_substeps, check_status, step_propagator, substeps

__all__ = ["EXACT_SPARSE", "propagate_vector", "forcing_increment"]


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


_term_parallel = jit(parallel=True)(renamed(_term, "_parallel"))


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
    on, b from ``b_rows`` on, and the reach of M (:func:`row_reach`) bounds each term's rows; a signal
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
    reach = row_reach(indptr, indices)
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
                if parallel:
                    last = apply_vector_parallel(p_starts, p_ptr, p_offsets, p_values, x, y, rows)
                else:
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
    n_sub = bounded_substeps(substeps(max(one_norm(S), abs(mu)), steps, jump), step_kind, "the amplitudes")
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
        p_arrays = (*row_runs(P), row_reach(p_indptr, p_indices))
    stats = np.zeros(2, np.int64)
    status, k = _propagate_vector(indptr, indices, data, b, x0,
                                  np.asarray(omega, float), steps, n_sub, step_kind,
                                  config.TAYLOR_TOL, config.TAYLOR_MAX_TERMS, bool(parallel), x_jump, columns, battery,
                                  out_x, out_energy, out_totals, out_last, stats, complex(mu),
                                  p_kind, *p_arrays, p_sub, c)
    check_status(status, k)
    out = {"terms": int(stats[0]), "substeps": int(np.maximum(n_sub, 0)[step_kind[step_kind != p_kind]].sum())}
    if prop is not None:
        out.update(propagator_products=int(stats[1]), propagator_entries=round(P.nnz / max(n, 1), 2))
    return out


def forcing_increment(M, b, h):
    """int_0^h e^{M u} b du (N,) complex: the state a step of length h reaches from alpha = 0, by the series."""
    n = b.size
    c = np.empty(n, complex)
    propagate_vector(M, b, np.zeros(n, complex), np.zeros(n), [h], [0], out_x=np.zeros((0, 0), complex),
                     out_energy=np.zeros((0, 0)), out_last=c, columns=np.zeros(0, np.int64), propagator=False)
    return c


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
        # entries of Nc beyond the diagonal and the block, (E, 2) pairs: a doubled model's anomalous moments,
        # returned (T, E) as the trace's ``anomalous`` (chiralnet.solve.general reads them back)
        pairs = options.get("extra")
        extra = None if pairs is None else memory.empty((T, len(pairs)), complex)
        # (Nc_ss, D0, real): given by a doubled model in real modes (chiralnet.solve.general._steady_real)
        X_ss, D0, real = options.get("deviation") or (None, None, False)
        if X_ss is None and config.FLUCTUATION_ONE_SIDED:
            X_ss = steady_fluctuations(model)
            D0 = None if X_ss is None else state0.dense_Nc() - X_ss
        if X_ss is not None:  # Nc = Nc_ss + D, D stepped one-sidedly (no forcing)
            Nc, more = propagate_deviation(model.M, X_ss, D0, dts, kind, out_diag=fluct, jump=jump, block_idx=idx,
                                           out_block=block, extra_idx=pairs, out_extra=extra, real=real)
        else:  # feedback and noise: the steady state would cost a dense Lyapunov solve; step Nc itself
            Nc, more = propagate_matrix(model.M, model.dense_Q(), state0.dense_Nc(), dts, kind, out_diag=fluct,
                                        X_jump=steady[1], jump=jump, block_idx=idx, out_block=block,
                                        extra_idx=pairs, out_extra=extra)
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
        extra = None
    # the final arrays are the kernels' own (Nc symmetrised), their energies checked by the result: not checked
    # again (check_fluctuations' eigvalsh is O(N^3))
    return Trace(alpha if store else None, None if store else energies, fluct,
                 State._checked(model.cells, alpha_end, Nc), {**stats, "format": "csr"}, block, totals, extra)


#: Exact CSR stepping; machine precision; any grid; 10^5+ cells.
EXACT_SPARSE = Method("exact-sparse", _run, frozenset(),
                      "e^{M dt} on CSR through a Taylor series (machine precision, large sparse N)")
