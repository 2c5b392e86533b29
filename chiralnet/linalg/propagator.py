"""Sparse propagators P = e^{A h} of banded networks, for stepping on a uniform grid.

For a chain, e^{A h} truncated at machine precision has a band of K + 1 entries a row (K Taylor
terms): one product with P does about the arithmetic of the K Taylor products with A, in one pass over
the state instead of K with their bookkeeping, and a uniform chain's P is a dozen runs of identical rows
(:func:`row_runs`) whose product reads no indices and vectorises; so a grid that repeats one step
applies P instead of the series. P is
built only when it stays sparse (``config.PROPAGATOR_MAX_ROW_ENTRIES``; a 2D lattice fills in as
K^2 and keeps the series) and is used often enough to pay for itself.

Truncation is proven a priori, not by a threshold on entries: with theta = ||A h||_1 (after the shift
mu), sum_{m > K} theta^m / m! <= theta^{K+1} / (K+1)! e^theta, and ||e^{A h} x|| >= e^{-theta} ||x||, so
K is the least integer with theta^{K+1} / (K+1)! e^{2 theta} <= ``config.TAYLOR_TOL``: every vector
P x is e^{A h} x to that relative accuracy (1-norms). No entry of P is ever dropped.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from numba import prange

from .. import config, memory
from .._jit import jit, renamed
from .csr import flush, one_norm

__all__ = ["terms_a_priori", "sparse_propagator", "row_runs", "apply_vector", "apply_vector_parallel", "apply_planes"]


def terms_a_priori(theta: float, tol: float | None = None) -> int | None:
    """The least K with theta^{K+1} / (K+1)! e^{2 theta} <= tol (default ``config.TAYLOR_TOL``); None
    beyond ``config.TAYLOR_MAX_TERMS``."""
    tol = config.TAYLOR_TOL if tol is None else tol
    if not np.isfinite(theta):
        return None
    log_target = math.log(tol) - 2.0 * theta
    log_term = 0.0  # log(theta^k / k!) for k = 0
    for k in range(1, config.TAYLOR_MAX_TERMS + 2):
        log_term += math.log(theta) - math.log(k) if theta > 0 else -math.inf
        if log_term <= log_target:
            return k - 1
    return None


def sparse_propagator(B, mu: complex, h: float):
    """e^{(B + mu) h} as CSR (sorted indices, no stored zeros), or None when it would not stay sparse.

    B : sparse (N, N) complex, the shifted generator (:func:`chiralnet.linalg.csr.shifted`).
    mu : complex shift; h : step (1/omega), with ||B h||_1 <= ``config.TAYLOR_THETA``.
    Returns (P, K): K Taylor terms (:func:`terms_a_priori`); (None, K) when P would average more than
    ``config.PROPAGATOR_MAX_ROW_ENTRIES`` entries a row, or its build (P and one term, 24 bytes an entry
    each) would exceed ``config.PROPAGATOR_MAX_BYTES`` or a tenth of the memory limit: the caller then
    keeps the series, which needs no such memory.
    """
    B = sp.csr_array(B)
    n = B.shape[0]
    K = terms_a_priori(one_norm(B) * h)
    if K is None or n == 0:
        return None, K
    cap = min(config.PROPAGATOR_MAX_ROW_ENTRIES * n, config.PROPAGATOR_MAX_BYTES // 48, int(memory.limit_bytes() / 480))
    term = sp.identity(n, dtype=complex, format="csr")
    P = term.copy()
    for m in range(1, K + 1):
        term = sp.csr_array(B @ term) * (h / m)
        P = sp.csr_array(P + term)
        if P.nnz > cap or term.nnz > cap:
            return None, K
    P = sp.csr_array(P * np.exp(mu * h))
    P.eliminate_zeros()  # exact zeros only (a cancellation); nothing small is dropped
    P.sort_indices()
    return P, K


def row_runs(P):
    """P (CSR, sorted) as runs of identical rows: (starts (S+1,), ptr (S+1,), offsets (E,), values (E,)).

    Rows starts[s] .. starts[s+1]-1 all hold values[ptr[s]:ptr[s+1]] at columns row - offsets[...]: a
    uniform chain is a handful of runs (its ends differ), so the product runs down whole runs with
    constant coefficients (vectorised) and reads no index per entry; a disordered one is a run a row.
    """
    indptr, indices, data = P.indptr.astype(np.int64), P.indices.astype(np.int64), np.asarray(P.data, complex)
    return _row_runs(indptr, indices, data)


@jit
def _row_runs(indptr, indices, data):
    n = indptr.shape[0] - 1
    new = np.ones(n, np.bool_)
    for i in range(1, n):
        a, b = indptr[i - 1], indptr[i]
        m = indptr[i + 1] - b
        same = m == b - a
        j = 0
        while same and j < m:
            same = indices[b + j] - i == indices[a + j] - (i - 1) and data[b + j] == data[a + j]
            j += 1
        new[i] = not same
    first = np.flatnonzero(new)
    S = first.shape[0]
    starts = np.empty(S + 1, np.int64)
    ptr = np.empty(S + 1, np.int64)
    starts[S] = n
    ptr[0] = 0
    for s in range(S):
        starts[s] = first[s]
        ptr[s + 1] = ptr[s] + indptr[first[s] + 1] - indptr[first[s]]
    offsets = np.empty(ptr[S], np.int64)
    values = np.empty(ptr[S], np.complex128)
    for s in range(S):
        r = first[s]
        for j in range(ptr[s + 1] - ptr[s]):
            offsets[ptr[s] + j] = r - indices[indptr[r] + j]
            values[ptr[s] + j] = data[indptr[r] + j]
    return starts, ptr, offsets, values


#: Rows per chunk of a run in :func:`apply_vector` (the unit of work of its threaded variant).
VECTOR_CHUNK = 8192


def _apply_vector(starts, ptr, offsets, values, x, y, rows):
    """y[:rows] = P x with P as runs of identical rows (:func:`row_runs`), flushed (no subnormals), for x
    zero beyond the rows P reads. Returns 1 + the last nonzero row of y (0 if none). Each run is cut into
    chunks of ``VECTOR_CHUNK`` rows, split over threads when compiled parallel (every row is computed
    the same way either way: the result does not depend on the threads)."""
    n_runs = starts.shape[0] - 1
    chunk_start = np.zeros(n_runs + 1, np.int64)
    for s in range(n_runs):
        r1 = min(starts[s + 1], rows)
        length = max(0, r1 - starts[s])
        chunk_start[s + 1] = chunk_start[s] + (length + VECTOR_CHUNK - 1) // VECTOR_CHUNK
    n_chunks = chunk_start[n_runs]
    last = np.zeros(max(n_chunks, 1), np.int64)
    for q in prange(n_chunks):
        s = np.searchsorted(chunk_start, q, side="right") - 1
        r0 = starts[s] + (q - chunk_start[s]) * VECTOR_CHUNK
        r1 = min(r0 + VECTOR_CHUNK, starts[s + 1], rows)
        Y = y[r0:r1]
        for k in range(r1 - r0):
            Y[k] = 0j
        for e in range(ptr[s], ptr[s + 1]):
            o = offsets[e]
            v = values[e]
            X = x[r0 - o:r1 - o]
            for k in range(r1 - r0):
                Y[k] += v * X[k]
        for k in range(r1 - r0):
            t = flush(Y[k])
            Y[k] = t
            if t != 0:
                last[q] = r0 + k + 1
    return last.max()


apply_vector = jit(_apply_vector)
apply_vector_parallel = jit(parallel=True)(renamed(_apply_vector, "_parallel"))


#: Rows per tile of :func:`apply_planes` (a tile of the output stays in L1 across P's entries).
PLANES_TILE = 16


@jit
def apply_planes(starts, ptr, offsets, values, vr, vi, yr, yi, lo, hi, real=False):
    """y[lo:hi] = P v on (N, w) real / imaginary planes (C-contiguous), P as runs of identical rows
    (:func:`row_runs`), flushed; v zero outside the rows P reads. Within a run each entry is one
    contiguous axpy over tiles of rows x w columns. Returns the 1-norm of y[lo:hi] (sum of |Re| + |Im|;
    inf or NaN when not finite). ``real``: P and v are real (the imaginary planes and parts are zero and left
    untouched): a quarter of the arithmetic."""
    w = vr.shape[1]
    fvr = vr.reshape(-1)
    fvi = vi.reshape(-1)
    fyr = yr.reshape(-1)
    fyi = yi.reshape(-1)
    total = 0.0
    for s in range(starts.shape[0] - 1):
        r0 = max(starts[s], lo)
        r1 = min(starts[s + 1], hi)
        if r0 >= r1:
            continue
        for t0 in range(r0, r1, PLANES_TILE):
            t1 = min(t0 + PLANES_TILE, r1)
            m = (t1 - t0) * w
            Yr = fyr[t0 * w:t1 * w]
            Yi = fyi[t0 * w:t1 * w]
            for k in range(m):
                Yr[k] = 0.0
            if real:
                for e in range(ptr[s], ptr[s + 1]):
                    o = offsets[e]
                    a = values[e].real
                    Xr = fvr[(t0 - o) * w:(t1 - o) * w]
                    for k in range(m):
                        Yr[k] += a * Xr[k]
                for k in range(m):
                    if abs(Yr[k]) < 2.2250738585072014e-308:
                        Yr[k] = 0.0
                    total += abs(Yr[k])
                continue
            for k in range(m):
                Yi[k] = 0.0
            for e in range(ptr[s], ptr[s + 1]):
                o = offsets[e]
                a = values[e].real
                b = values[e].imag
                Xr = fvr[(t0 - o) * w:(t1 - o) * w]
                Xi = fvi[(t0 - o) * w:(t1 - o) * w]
                for k in range(m):
                    Yr[k] += a * Xr[k] - b * Xi[k]
                for k in range(m):
                    Yi[k] += a * Xi[k] + b * Xr[k]
            for k in range(m):
                if abs(Yr[k]) < 2.2250738585072014e-308:
                    Yr[k] = 0.0
                if abs(Yi[k]) < 2.2250738585072014e-308:
                    Yi[k] = 0.0
                total += abs(Yr[k]) + abs(Yi[k])
    return total
