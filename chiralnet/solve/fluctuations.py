"""Exact sparse stepping of the fluctuation matrix Nc (method "exact-sparse" with thermal noise).

Two ways, both to machine precision and never with a dense N^3 product:

- :func:`propagate_matrix`: the two-sided series of Nc itself, Nc' = e^{A h} Nc e^{A^H h} + noise, one
  fused pass per term (networks with feedback and noise, whose steady Nc would cost a dense solve);
- :func:`propagate_deviation`: Nc = Nc_ss + D with D stepped one-sidedly on column blocks, by the series
  or by the sparse propagator of a repeated step (a stable cascade, or no noise).
"""

from __future__ import annotations

import numpy as np
from numba import prange
from numba import types as nb_types
from numba.extending import overload

from .. import config
from .._jit import jit, renamed
from ..errors import NoSteadyStateError
from ..linalg.cascade import cascade_order
from ..linalg.csr import csr_parts, flush, one_norm, pruned_csr, row_low, row_reach, shifted, triangle
from ..linalg.propagator import apply_planes, row_runs
from ..linalg.stability import check_stability_arrays
from ..model import Model
from ..linalg.lyapunov import steady_covariance, symmetrize
from .taylor import NO_CONVERGENCE, NOT_FINITE, OK, bounded_substeps, check_status, step_propagator, substeps

__all__ = ["propagate_matrix", "propagate_deviation", "steady_fluctuations"]


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


_lyap_term_parallel = jit(parallel=True)(renamed(_lyap_term, "_parallel"))


@jit
def _propagate_matrix(indptr, indices, data, Q, X0, step_h, step_sub, step_kind, tol, max_terms, parallel,
                      X_jump, out_diag, block_idx, out_block, extra_idx, out_extra, stats):
    """Nc_k = e^{A h} Nc_{k-1} e^{A^H h} + int_0^h e^{A u} Q e^{A^H u} du, A = conj(M) in CSR.
    Writes Re diag Nc_k to out_diag (T, N), Nc_k[block_idx, block_idx] to out_block (T, B, B) and the
    entries Nc_k[extra_idx[e, 0], extra_idx[e, 1]] to out_extra (T, E)."""
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
        for e in range(extra_idx.shape[0]):
            out_extra[k, e] = X[extra_idx[e, 0], extra_idx[e, 1]]
    return OK, step_kind.shape[0], X


def propagate_matrix(M, Q, X0, steps, step_kind, *, out_diag, X_jump=None, jump=None, parallel=None,
                     block_idx=None, out_block=None, extra_idx=None, out_extra=None):
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
    extra_idx : ndarray (E, 2) int, optional; out_extra : ndarray (T, E) complex, optional
        Entries Nc[extra_idx[e, 0], extra_idx[e, 1]] written at every output time (a doubled model's
        anomalous moments, :func:`chiralnet.gaussian.doubled_model`).

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
    n_sub = bounded_substeps(substeps(2.0 * one_norm(A), steps, jump), step_kind, "the fluctuations")
    X_jump = np.zeros((n, n), complex) if X_jump is None else np.ascontiguousarray(X_jump, dtype=complex)
    stats = np.zeros(1, np.int64)
    if block_idx is None:
        block_idx = np.zeros(0, np.int64)
        out_block = np.zeros((len(step_kind), 0, 0), complex)
    extra_idx, out_extra = _extra(extra_idx, out_extra, len(step_kind))
    status, k, X = _propagate_matrix(indptr, indices, data, np.ascontiguousarray(Q, dtype=complex),
                                     np.ascontiguousarray(X0, dtype=complex), steps, n_sub,
                                     np.asarray(step_kind, np.int64), config.TAYLOR_TOL, config.TAYLOR_MAX_TERMS,
                                     bool(parallel), X_jump, out_diag, np.asarray(block_idx, np.int64), out_block,
                                     extra_idx, out_extra, stats)
    check_status(status, k)
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
# D' = G + G^H with G = P (P L)^H. Both passes then store their output transposed (a column block's
# rows, N entries apart, cost several times a contiguous write at thousands of modes): the second reads
# the first's by columns, and the Hermitian sum undoes the transpose. A real D (a doubled model in
# self-conjugate modes) is held as a real array and stepped without the imaginary planes. Same
# truncation rule as the other kernels (two successive terms below TAYLOR_TOL of the sum, per block).


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
def _column_block(indptr, indices, dr, di, reach, low, X, Y, j0, wc, tri, sym, h, n_sub, tol, max_terms, factor,
                  buf, dirty, real, layout):
    """Y[:, j0:j0+wc] = e^{A h} V with V = (X^H)[:, j0:j0+wc] (``tri`` = 0), or V = the lower (1) / upper (-1)
    triangle of X^H with half its diagonal; X^T instead of X^H when ``sym``. ``buf`` (8, N, w) float planes (x, acc, two terms; real and
    imaginary apart, so the inner loops over the w columns vectorize), zero outside the rows ``dirty``
    (4, 2) records; ``real``: A, V and ``factor`` are real, the imaginary planes stay zero. Returns (status,
    Taylor terms)."""
    w = buf.shape[2]
    xr, xi, ar, ai = buf[0], buf[1], buf[2], buf[3]
    lanes = np.empty(w)
    lo, hi = _load_block(X, j0, wc, tri, sym, xr, xi, layout == 2)
    terms = 0
    hs = h / n_sub
    for _ in range(n_sub):
        lo, hi = _trim(xr, xi, lo, hi)
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
                if real:
                    for c in range(w):
                        tr[i, c] = 0.0
                    for p in range(indptr[i], indptr[i + 1]):
                        pr = dr[p] * scale
                        k = indices[p]
                        for c in range(w):
                            tr[i, c] += pr * sr[k, c]
                    for c in range(w):
                        ar[i, c] += tr[i, c]
                        lanes[c] += abs(tr[i, c])
                    continue
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
    _store_block(xr, xi, Y, j0, wc, layout != 0)
    return OK, terms


@jit
def _load_block(X, j0, wc, tri, sym, xr, xi, columns):
    """Planes (N, w) of V = X^H[:, j0:j0+wc] (``tri`` = 0), or of its lower (1) / upper (-1) triangle with
    half the diagonal, padded with zero columns; of X^T instead when ``sym`` (a complex symmetric X).
    ``columns``: X holds the transpose of that matrix (a pass's transposed output), so V = conj(X)[:, j0:j0+wc]
    (X when ``sym``), read a row of X at a time (``tri`` = 0). Returns (lo, hi): V is zero outside rows
    [lo, hi)."""
    n = X.shape[0]
    w = xr.shape[1]
    lo = 0
    hi = n
    if tri == 1:
        lo = j0
    elif tri == -1:
        hi = min(n, j0 + wc)
    real = not np.iscomplexobj(X)   # a real X leaves the imaginary plane zero (as the caller keeps it)
    if columns:
        for i in range(n):
            row = X[i]
            for c in range(w):
                if c < wc:
                    z = row[j0 + c]
                    xr[i, c] = z.real
                    if not real:
                        xi[i, c] = z.imag if sym else -z.imag
                else:
                    xr[i, c] = 0.0
                    xi[i, c] = 0.0
        return lo, hi
    for c in range(w):              # row j of X read contiguously into column c of the planes (L2-resident)
        j = j0 + c
        if c >= wc:
            for i in range(n):
                xr[i, c] = 0.0
                xi[i, c] = 0.0
            continue
        # V's column c: rows [a, b) of X's row j, zero elsewhere (the triangle's half diagonal at i = j)
        a = j if tri == 1 else 0
        b = j + 1 if tri == -1 else n
        for i in range(0, a):
            xr[i, c] = 0.0
        for i in range(b, n):
            xr[i, c] = 0.0
        row = X[j]
        for i in range(a, b):
            xr[i, c] = row[i].real
        if tri != 0:
            xr[j, c] *= 0.5
        if real:
            continue
        for i in range(0, a):
            xi[i, c] = 0.0
        for i in range(b, n):
            xi[i, c] = 0.0
        for i in range(a, b):
            xi[i, c] = row[i].imag if sym else -row[i].imag
        if tri != 0:
            xi[j, c] = 0.5 * row[j].imag if sym else 0.0
    return lo, hi


@jit
def _store_block(xr, xi, Y, j0, wc, transposed):
    """Y[:, j0:j0+wc] = the planes' first wc columns (the real plane only when Y is real); ``transposed``:
    Y[j0:j0+wc, :] = their transpose instead, written row by row (contiguous: a column block's rows of an
    N x N array lie N entries apart, and writing them costs several times a contiguous write)."""
    if transposed:
        for c in range(wc):
            row = Y[j0 + c]
            for i in range(xr.shape[0]):
                row[i] = _entry(Y, xr[i, c], xi[i, c])
        return
    for i in range(xr.shape[0]):
        for c in range(wc):
            Y[i, j0 + c] = _entry(Y, xr[i, c], xi[i, c])


def _entry(Y, re, im):
    """re + i im as an entry of Y: complex, or re for a real Y (whose imaginary plane is zero)."""
    return complex(re, im) if np.iscomplexobj(Y) else re


@overload(_entry)
def _entry_jit(Y, re, im):
    if isinstance(Y.dtype, nb_types.Complex):
        return lambda Y, re, im: complex(re, im)
    return lambda Y, re, im: re


@jit
def _column_block_propagator(starts, ptr, offsets, values, reach, low, X, Y, j0, wc, tri, sym, applications, buf,
                             dirty, real, layout):
    """Y[:, j0:j0+wc] = P^applications V with the sparse propagator P (its runs of rows ``starts, ptr,
    offsets, values``; ``reach``/``low`` its row bounds), V as in :func:`_column_block`; the planes
    buf[0:2] and buf[2:4] alternate as input and output, zero outside the rows ``dirty`` records.
    Returns (status, products)."""
    n = X.shape[0]
    src = 0
    lo, hi = _load_block(X, j0, wc, tri, sym, buf[0], buf[1], layout == 2)
    dirty[0, 0] = 0
    dirty[0, 1] = n
    done = 0
    for _ in range(applications):
        xr, xi = buf[2 * src], buf[2 * src + 1]
        lo, hi = _trim(xr, xi, lo, hi)
        if lo >= hi:
            break  # a zero block stays zero
        dst = 1 - src
        lo, hi = low[lo], reach[hi - 1]
        _clear(buf[2 * dst], buf[2 * dst + 1], dirty[dst], lo, hi)
        total = apply_planes(starts, ptr, offsets, values, xr, xi, buf[2 * dst], buf[2 * dst + 1], lo, hi, real)
        done += 1
        if not np.isfinite(total):
            return NOT_FINITE, done
        src = dst
    _store_block(buf[2 * src], buf[2 * src + 1], Y, j0, wc, layout != 0)
    return OK, done


@jit
def _trim(xr, xi, lo, hi):
    """[lo, hi) narrowed to the rows of the planes that are not all zero (empty when none is)."""
    while lo < hi and _zero_row(xr, xi, lo):
        lo += 1
    while hi > lo and _zero_row(xr, xi, hi - 1):
        hi -= 1
    return lo, hi


@jit
def _zero_row(xr, xi, i):
    for c in range(xr.shape[1]):
        if xr[i, c] != 0.0 or xi[i, c] != 0.0:
            return False
    return True


def _columns_pass(indptr, indices, dr, di, reach, low, X, Y, tri, sym, h, n_sub, tol, max_terms, factor, width, n_chunks,
                  stats, applications, p_starts, p_ptr, p_offsets, p_values, p_reach, p_low, real, layout):
    """Y = e^{A h} V, V = X^H or its triangle (``tri``; X^T when ``sym``), column block by column block; ``n_chunks``
    contiguous runs of blocks (one per thread when compiled parallel). With ``applications`` = 0 the
    series runs on the CSR arrays of A - mu (:func:`_column_block`, ``factor`` = e^{mu h / n_sub});
    else the sparse propagator (runs of rows ``p_*``) is applied that many times
    (:func:`_column_block_propagator`); ``real``: A (or P), X and ``factor`` are real. ``layout``: 0 X read by
    rows, Y stored by columns; 1 X by rows, Y^T stored; 2 X holds the transpose (read by columns), Y^T stored
    (:func:`_load_block`, :func:`_store_block`). Returns a status."""
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
                                                  wc, tri, sym, applications, buf, dirty, real, layout)
            else:
                st, te = _column_block(indptr, indices, dr, di, reach, low, X, Y, j0, wc, tri, sym, h, n_sub, tol,
                                       max_terms, factor, buf, dirty, real, layout)
            terms[t] += te * wc
            if st != OK:
                status[t] = st
                break
    stats[0 if applications == 0 else 1] += terms.sum()
    return status.max()


_columns_pass_serial = jit(_columns_pass)


_columns_pass_parallel = jit(parallel=True)(renamed(_columns_pass, "_parallel"))


@jit
def _hermitian_sum(H, D, sym):
    """D = G + G^H (G + G^T when ``sym``) for G given as its transpose H = G^T (a pass's transposed output):
    G + G^H = conj(H + H^H). In tiles (the transposed reads stay in cache)."""
    G = H
    n = G.shape[0]
    tile = 64
    flip = not sym
    for i0 in range(0, n, tile):
        for j0 in range(0, i0 + 1, tile):
            for i in range(i0, min(n, i0 + tile)):
                for j in range(j0, min(i + 1, j0 + tile)):
                    z = G[i, j] + (G[j, i] if sym else np.conj(G[j, i]))
                    if flip:
                        z = np.conj(z)
                    D[i, j] = z
                    D[j, i] = z if sym else np.conj(z)
    if not sym:
        for i in range(n):
            D[i, i] = D[i, i].real


@jit
def _write_outputs(D, X_ss, k, out_diag, block_idx, out_block, extra_idx, out_extra):
    """out_diag[k] = Re diag(X_ss + D), out_block[k] = (X_ss + D)[block_idx, block_idx], out_extra[k, e] =
    (X_ss + D)[extra_idx[e, 0], extra_idx[e, 1]]."""
    for i in range(D.shape[0]):
        out_diag[k, i] = X_ss[i, i].real + D[i, i].real
    for e in range(extra_idx.shape[0]):
        i, j = extra_idx[e, 0], extra_idx[e, 1]
        out_extra[k, e] = X_ss[i, j] + D[i, j]
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


def propagate_deviation(M, X_ss, D0, steps, step_kind, *, out_diag, jump=None, parallel=None, block_idx=None,
                        out_block=None, extra_idx=None, out_extra=None, width=None, propagator=None, symmetric=False,
                        real=False):
    """Exact fluctuation matrix of a network with a steady state: Nc_k = Nc_ss + P_k D_{k-1} P_k^H,
    P_k = e^{conj(M) h_k}, D_{-1} = D0 = Nc0 - Nc_ss, by one-sided Taylor passes on column blocks.

    Parameters
    ----------
    M : sparse or ndarray (N, N) complex
    X_ss : ndarray (N, N) complex
        Nc_ss (conj(M) X + X M^T = -Q), or zeros when there is no noise (then D = Nc, any M). Overwritten with
        the returned Nc when ``real``.
    D0 : ndarray (N, N) complex Hermitian
        Nc at t = 0 minus X_ss.
    steps, step_kind, out_diag, jump, block_idx, out_block, extra_idx, out_extra
        As in :func:`propagate_matrix` (a jump lands on Nc_ss).
    width : int, optional
        Columns per block (default ``config.FLUCTUATION_BLOCK_WIDTH``).
    propagator : bool, optional
        Apply a sparse propagator to the most frequent step (:func:`step_propagator`); default
        ``config.SPARSE_PROPAGATOR``.
    symmetric : bool
        X_ss and D0 complex symmetric, stepped as P D P^T instead (the anomalous moments Mc of a network
        without pairing: pass M = conj(drift), then P = e^{drift h}, :func:`chiralnet.solve.general`).
    real : bool
        M and D0 are real (a doubled model in its self-conjugate modes, :func:`chiralnet.solve.general.
        triangular_doubled`): D is stored real (half the bytes) and the passes skip the imaginary planes (a
        quarter of the arithmetic). Checked: any nonzero imaginary part in M or D0 runs the complex passes.

    Returns
    -------
    (Nc at the last output time (N, N) complex (symmetric when ``symmetric``), dict of counters)
    """
    A, mu = shifted(pruned_csr(M).conj())  # e^{A h} = e^{mu h} e^{(A - mu) h}
    indptr, indices, data = csr_parts(A)
    n = indptr.size - 1
    if parallel is None:
        parallel = n >= config.PARALLEL_MIN_CELLS_THERMAL
    width = int(width or config.FLUCTUATION_BLOCK_WIDTH)
    steps = np.asarray(steps, float)
    n_sub = bounded_substeps(substeps(one_norm(A), steps, jump), step_kind, "the fluctuations")
    tri = triangle(indptr, indices)
    reach, low = row_reach(indptr, indices), row_low(indptr, indices)
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
    extra_idx, out_extra = _extra(extra_idx, out_extra, len(step_kind))
    X_ss = np.ascontiguousarray(X_ss, dtype=complex)
    real = bool(real) and not data.imag.any() and not np.imag(mu) and not np.imag(D0).any()
    D = np.array(np.real(D0) if real else D0, dtype=float if real else complex, order="C")  # real: half the bytes
    W = np.empty_like(D)
    stats = np.zeros(2, np.int64)
    tol, max_terms = config.TAYLOR_TOL, config.TAYLOR_MAX_TERMS
    step_kind = np.asarray(step_kind, np.int64)
    prop = None
    if config.SPARSE_PROPAGATOR if propagator is None else propagator:  # the same P for every column
        prop = step_propagator(pruned_csr(M).conj(), steps, step_kind, n_sub, columns=n)
    if prop is not None:
        p_kind, P, applications = prop
        p_indptr, p_indices, _ = csr_parts(P)
        p_arrays = (*row_runs(P), row_reach(p_indptr, p_indices), row_low(p_indptr, p_indices))
    else:  # placeholders of the compiled types
        p_kind, applications = -1, 0
        p_arrays = (np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, complex),
                    np.zeros(0, np.int64), np.zeros(0, np.int64))
    series = (indptr, indices, dr, di, reach, low)
    sym = bool(symmetric)
    for k, s in enumerate(step_kind):
        if n_sub[s] < 0:  # below machine precision: the steady state
            D[:] = 0.0
        elif steps[s] > 0.0:
            uses = applications if s == p_kind else 0
            factor = np.exp(mu * steps[s] / n_sub[s])  # e^{mu hs}, applied after every substep of the series
            # with the triangle, both passes store transposed (contiguous writes): W^T, then H = G^T
            status = run(*series, D, W, tri, sym, steps[s], n_sub[s], tol, max_terms, factor, width, n_chunks,
                         stats, uses, *p_arrays, real, 1 if tri else 0)  # W = P L (or P D)
            if status == OK:  # D = P W^H: P D P^H, or G with P D P^H = G + G^H (^T for ^H when symmetric)
                status = run(*series, W, D, 0, sym, steps[s], n_sub[s], tol, max_terms, factor, width, n_chunks,
                             stats, uses, *p_arrays, real, 2 if tri else 0)
            if status == OK and tri != 0:
                _hermitian_sum(D, D, sym)  # G + G^H from H = G^T
            check_status(status, k)
        _write_outputs(D, X_ss, k, out_diag, block_idx, out_block, extra_idx, out_extra)
    Nc = X_ss if real else D  # (a real run's one complex N x N array is X_ss: no new one, no page faults)
    symmetrize(D, not sym, plus=X_ss, out=Nc)  # Nc = X_ss + D, symmetrised, in place
    out = {"matrix_terms": int(stats[0]) // max(n, 1), "fluctuation_stepping": "one-sided"}
    if prop is not None:
        out.update(matrix_propagator_products=int(stats[1]) // max(n, 1), propagator_entries=round(P.nnz / max(n, 1), 2))
    return Nc, out


def _extra(extra_idx, out_extra, T):
    """The (E, 2) int64 index pairs and (T, E) complex output of the extra entries ((0, 2), (T, 0): none)."""
    if extra_idx is None:
        return np.zeros((0, 2), np.int64), np.zeros((T, 0), complex)
    return np.ascontiguousarray(extra_idx, dtype=np.int64).reshape(-1, 2), out_extra


def steady_fluctuations(model: Model):
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
