"""The sparse path: CSR kernels, structured (cascaded) solves, and array-level builders.

Everything here works on M in CSR form (``indptr``, ``indices``, ``data``) and costs
O(nnz) per matrix-vector product, so it reaches networks of 10^5 - 10^6 cells.

- Cascaded (chiral, feed-forward) networks have a triangular M once the cells are put in
  topological order: :func:`cascade_order` finds that order in O(N + nnz), and
  :func:`forward_substitution` / :func:`lyapunov_cascaded` give the steady state in O(nnz)
  (amplitudes; one pass when the cells are already in cascade order) and O(N nnz)
  (fluctuation matrix).
- :func:`propagate_vector` and :func:`propagate_matrix` step alpha and Nc exactly on any
  time grid: each step applies e^{M h} (and e^{conj(M) h} . e^{M^T h}) through a Taylor series
  truncated below machine precision, with substeps so that ||M h||_1 <= ``config.TAYLOR_THETA``.
  No dense propagator is ever formed (e^{M h} of a triangular M is dense).
- :func:`chain_model` and :func:`lattice_model` build the same :class:`~chiralnet.model.Model`
  as ``build_model(chain(n))`` / ``build_model(lattice(r, c))`` without a NetworkX graph.
"""

from __future__ import annotations

import types
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from numba import prange

from . import config, memory
from ._jit import jit
from .builders import _count, _options
from .errors import NetworkError, SolverError
from .model import Model, assemble_model
from .network import _check_cell, _complex, _real

__all__ = [
    "csr_parts", "pruned_csr", "diagonal", "cascade_order", "forward_substitution", "Substitution", "solve_cascaded",
    "lyapunov_cascaded", "one_norm", "propagate_vector", "propagate_matrix", "chain_model", "lattice_model",
]

# Status codes of the Taylor kernels.
OK = 0
NO_CONVERGENCE = 1
NOT_FINITE = 2


def csr_parts(M):
    """(indptr, indices, data) of M as CSR; dense M is converted. Duplicate entries are allowed
    (every kernel here sums them)."""
    A = M if isinstance(M, sp.csr_array) else sp.csr_array(M)
    return A.indptr, A.indices, np.ascontiguousarray(A.data, dtype=complex)


@jit
def _diagonal(indptr, indices, data, out):
    """out[i] = M_ii (duplicates summed)."""
    for i in range(indptr.shape[0] - 1):
        d = 0j
        for p in range(indptr[i], indptr[i + 1]):
            if indices[p] == i:
                d += data[p]
        out[i] = d


def diagonal(M) -> np.ndarray:
    """The diagonal of M (dense or sparse), shape (N,) complex, O(nnz)."""
    indptr, indices, data = csr_parts(M)
    out = np.empty(indptr.size - 1, complex)
    _diagonal(indptr, indices, data, out)
    return out


def pruned_csr(M):
    """M as CSR without its structural zeros (|M_ij| <= ``config.STRUCTURAL_ZERO`` max|M|), which a
    chiral link leaves where it cancels M[u, v]: a third of a chain's entries. Built once per run."""
    A = sp.csr_array(M)
    data = A.data
    keep = np.abs(data) > config.STRUCTURAL_ZERO * np.abs(data).max(initial=0.0)
    if keep.all():
        return A
    row = np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))[keep]
    indptr = np.zeros(A.shape[0] + 1, A.indptr.dtype)
    np.cumsum(np.bincount(row, minlength=A.shape[0]), out=indptr[1:])
    return sp.csr_array((data[keep], A.indices[keep], indptr), shape=A.shape)


def one_norm(M) -> float:
    """||M||_1, the largest column sum of |M_ij| (dense or sparse)."""
    A = sp.csr_array(M)
    return float(np.bincount(A.indices, weights=np.abs(A.data), minlength=A.shape[1]).max(initial=0.0))


@jit
def _flush(z):
    """z with parts below the smallest normal double (2.2e-308) set to zero.

    Amplitudes far down a long chain decay geometrically; without this they end in subnormal
    numbers, whose arithmetic is ~100x slower, and in a chain they never round to zero. The
    change is below 1e-307 in absolute value.
    """
    re = z.real
    im = z.imag
    if abs(re) < 2.2250738585072014e-308:
        re = 0.0
    if abs(im) < 2.2250738585072014e-308:
        im = 0.0
    return complex(re, im)


# ---------------------------------------------------------------------------------------------
# Cascaded (triangular after permutation) networks.


@jit
def _max_abs2(data):
    m = 0.0
    for p in range(data.shape[0]):
        a = data[p].real * data[p].real + data[p].imag * data[p].imag
        if a > m:
            m = a
    return m


@jit
def _topological_order(indptr, indices, data, zero_tol2, order):
    """Kahn's algorithm on the dependency graph i <- j (M_ij != 0, i != j).

    Writes ``order`` (N,) so that every row's off-diagonal entries with |M_ij|^2 > ``zero_tol2`` point to
    cells placed earlier. Returns how many cells were placed: N iff M is triangular after
    permutation (no feedback loop).
    """
    n = indptr.shape[0] - 1
    waiting = np.zeros(n, np.int64)
    start = np.zeros(n + 1, np.int64)
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if j != i and data[p].real * data[p].real + data[p].imag * data[p].imag > zero_tol2:
                waiting[i] += 1
                start[j + 1] += 1
    for j in range(n):
        start[j + 1] += start[j]
    fill = start[:n].copy()
    dependents = np.empty(start[n], np.int64)
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if j != i and data[p].real * data[p].real + data[p].imag * data[p].imag > zero_tol2:
                dependents[fill[j]] = i
                fill[j] += 1
    tail = 0
    for i in range(n):
        if waiting[i] == 0:
            order[tail] = i
            tail += 1
    head = 0
    while head < tail:
        j = order[head]
        head += 1
        for q in range(start[j], start[j + 1]):
            i = dependents[q]
            waiting[i] -= 1
            if waiting[i] == 0:
                order[tail] = i
                tail += 1
    return tail


def cascade_order(M):
    """Topological order of the cells if M is triangular after permutation, else None.

    Entries with |M_ij| <= ``config.STRUCTURAL_ZERO`` * max|M| count as zero: they are the
    rounding left where a chiral link cancels M[u, v] = -iJ + mu Gamma / 2 (its balance condition).
    (:func:`forward_substitution` checks the natural order itself, within its one pass.)

    Parameters
    ----------
    M : ndarray (N, N) or sparse
        The generator.

    Returns
    -------
    ndarray (N,) int64 or None
    """
    indptr, indices, data = csr_parts(M)
    n = indptr.size - 1
    zero_tol2 = config.STRUCTURAL_ZERO**2 * _max_abs2(data)
    order = np.empty(n, np.int64)
    placed = _topological_order(indptr, indices, data, zero_tol2, order)
    return order if placed == n else None


@jit
def _forward_substitution(indptr, indices, data, rhs, scale, omega, x, energy):
    """One pass over M (CSR, lower triangular): x = M^{-1} (scale rhs) and energy = omega |x|^2, (N,).

    Entries above the diagonal are skipped. Returns what the caller needs to trust x without
    another pass: the largest |M_ij|^2 over all entries and over those above the diagonal (they
    must be structural zeros), the largest Re M_ii and the largest |M_ii|^2 (stability).
    x[i - 1] is kept in registers: a chain's recursion then never waits on a store; a row that is
    exactly (i - 1, i), as in a chain, skips the general loop.
    """
    max_all2 = 0.0
    max_upper2 = 0.0
    max_re = -np.inf
    max_diag2 = 0.0
    prev = 0j
    for i in range(indptr.shape[0] - 1):
        acc = scale * rhs[i]
        p0 = indptr[i]
        p1 = indptr[i + 1]
        if p1 - p0 == 2 and indices[p0] == i - 1 and indices[p0 + 1] == i:
            a = data[p0]
            d = data[p0 + 1]
            max_all2 = max(max_all2, a.real * a.real + a.imag * a.imag, d.real * d.real + d.imag * d.imag)
            acc -= a * prev
        else:
            d = 0j
            for p in range(p0, p1):
                j = indices[p]
                a = data[p]
                a2 = a.real * a.real + a.imag * a.imag
                max_all2 = max(max_all2, a2)
                if j < i:
                    acc -= a * (prev if j == i - 1 else x[j])
                elif j == i:
                    d += a
                else:
                    max_upper2 = max(max_upper2, a2)
        max_re = max(max_re, d.real)
        d2 = d.real * d.real + d.imag * d.imag
        max_diag2 = max(max_diag2, d2)
        # acc / d without Numba's slower complex division; d = 0 leaves x non-finite for the caller's
        # stability check to reject (instead of raising ZeroDivisionError here)
        r = 1.0 / d2 if d2 > 0.0 else np.inf
        prev = _flush(acc * (d.real * r - 1j * (d.imag * r)))
        x[i] = prev
        energy[i] = omega[i] * (prev.real * prev.real + prev.imag * prev.imag)
    return max_all2, max_upper2, max_re, max_diag2


class Substitution(NamedTuple):
    """Result of :func:`forward_substitution`: x (N,) complex, energy = omega |x|^2 (N,) float, and the
    largest Re M_ii and |M_ii| (M triangular: its eigenvalues are its diagonal)."""

    x: np.ndarray
    energy: np.ndarray
    diag_max_real: float
    diag_max_abs: float


def forward_substitution(M, rhs, omega=None, order=None, scale=1.0) -> Substitution | None:
    """Solve M x = scale rhs by forward substitution in O(nnz), when M is triangular in ``order``.

    In natural order (``order`` None) this is one pass over M that also checks that every entry
    above the diagonal is a structural zero (|M_ij| <= ``config.STRUCTURAL_ZERO`` max|M|) and
    returns None when one is not; with an ``order`` from :func:`cascade_order`, M is permuted first.

    Parameters
    ----------
    M : ndarray (N, N) or sparse
    rhs : ndarray (N,) complex
    omega : ndarray (N,) float, optional
        Cell frequencies for ``energy`` (default ones: energy = |x|^2).
    order : ndarray (N,) int, optional
        Topological order of the cells (:func:`cascade_order`); default natural order.
    scale : complex
        Factor applied to rhs inside the pass (the steady state solves M alpha = i E: scale 1j, exact).

    Returns
    -------
    Substitution or None
    """
    rhs = np.asarray(rhs, complex)
    omega = np.ones(rhs.size) if omega is None else np.asarray(omega, float)
    if order is not None:
        A = sp.csr_array(M)[order][:, order]
        sub = forward_substitution(A, rhs[order], omega[order], scale=scale)
        if sub is None:
            raise SolverError("forward_substitution: M is not triangular in the given order (use cascade_order)")
        x = np.empty_like(sub.x)
        energy = np.empty_like(sub.energy)
        x[order] = sub.x
        energy[order] = sub.energy
        return sub._replace(x=x, energy=energy)
    indptr, indices, data = csr_parts(M)
    x = np.empty(rhs.size, complex)
    energy = np.empty(rhs.size)
    max_all2, max_upper2, max_re, max_diag2 = _forward_substitution(indptr, indices, data, rhs, complex(scale),
                                                                    omega, x, energy)
    if max_upper2 > config.STRUCTURAL_ZERO**2 * max_all2:
        return None
    return Substitution(x, energy, float(max_re), float(np.sqrt(max_diag2)))


def solve_cascaded(M, rhs, order) -> np.ndarray:
    """Solve M x = rhs by forward substitution in the topological ``order``, O(nnz).

    Parameters
    ----------
    M : ndarray (N, N) or sparse, triangular in ``order`` with a nonzero diagonal.
    rhs : ndarray (N,) complex
    order : ndarray (N,) int, from :func:`cascade_order`.

    Returns
    -------
    ndarray (N,) complex
    """
    return forward_substitution(M, rhs, order=order).x


@jit
def _lyapunov_triangular(indptr, indices, data, diag, order, C, X):
    """Solve A X + X A^H = C for A (CSR) triangular in ``order``; X (N, N) written in place.

    (A_ii + conj(A_jj)) X_ij = C_ij - sum_{k != i} A_ik X_kj - sum_{k != j} X_ik conj(A_jk),
    taking rows i, then columns j, in topological order so every X on the right is known.
    """
    n = order.shape[0]
    X[:, :] = 0.0
    for qi in range(n):
        i = order[qi]
        for qj in range(n):
            j = order[qj]
            acc = C[i, j]
            for p in range(indptr[i], indptr[i + 1]):
                k = indices[p]
                if k != i:
                    acc -= data[p] * X[k, j]
            for p in range(indptr[j], indptr[j + 1]):
                k = indices[p]
                if k != j:
                    acc -= X[i, k] * np.conj(data[p])
            X[i, j] = _flush(acc / (diag[i] + np.conj(diag[j])))


def lyapunov_cascaded(A, C, order) -> np.ndarray:
    """Solve A X + X A^H = C for A triangular in ``order``, in O(N nnz) instead of O(N^3).

    Parameters
    ----------
    A : ndarray (N, N) or sparse
        For the steady fluctuation matrix, A = conj(M) and C = -Q.
    C : ndarray (N, N) complex
    order : ndarray (N,) int, from :func:`cascade_order` (of A or of M: same pattern).

    Returns
    -------
    ndarray (N, N) complex
    """
    indptr, indices, data = csr_parts(A)
    diag = diagonal(A)
    X = np.empty(C.shape, complex)
    _lyapunov_triangular(indptr, indices, data, diag, order, np.ascontiguousarray(C, dtype=complex), X)
    return X


# ---------------------------------------------------------------------------------------------
# Exact stepping: Taylor series of e^{M h} applied to a vector / to Nc, below machine precision.
# Each term is one CSR product. Two compiled variants of the product: serial, and parallel over
# rows (prange), used above config.PARALLEL_MIN_CELLS cells.


def _renamed(f, suffix):
    """A copy of the Python function ``f`` under another name, so Numba caches its two compiled
    variants (serial and parallel) in separate files (the cache key ignores ``parallel``)."""
    g = types.FunctionType(f.__code__, f.__globals__, f.__name__ + suffix, f.__defaults__, f.__closure__)
    g.__qualname__ = f.__qualname__ + suffix
    g.__doc__ = f.__doc__
    return g


def _term(indptr, indices, data, v, b, first, scale, rows, out, acc):
    """out = scale (M v + b if ``first``) and acc += out, on rows [0, rows) (beyond, out is zero).

    Returns (||out||, ||acc||) over those rows: 1-norms of the real and imaginary parts together
    (cheaper than |z|, within a factor sqrt(2) of it).
    """
    s_out = 0.0
    s_acc = 0.0
    for i in prange(rows):
        t = b[i] if first else 0j
        for p in range(indptr[i], indptr[i + 1]):
            t += data[p] * v[indices[p]]
        t = complex(t.real * scale, t.imag * scale)
        out[i] = t
        a = acc[i] + t
        acc[i] = a
        s_out += abs(t.real) + abs(t.imag)
        s_acc += abs(a.real) + abs(a.imag)
    return s_out, s_acc


_term_serial = jit(_term)
_term_parallel = jit(parallel=True)(_renamed(_term, "_parallel"))


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
                   terms, acc, terms_rows, stats):
    """x <- e^{M h} x + int_0^h e^{M s} b ds, in ``n_sub`` equal substeps. Returns (status, x_rows).

    The forcing enters the first term only, hs (M x + b): the Taylor series of the augmented
    matrix [[M, b], [0, 0]], so no steady state is needed. Only rows the state can have reached
    are computed: x is zero from row ``x_rows`` on, b from ``b_rows`` on, and the reach of M
    (:func:`_reach`) bounds each term's rows; a signal entering a long chain at one end costs
    only the cells it has reached. ``acc`` equals x on entry and exit; ``terms`` (2, N) are
    the term buffers, zero from row ``terms_rows[k]`` on.
    """
    hs = h / n_sub
    for _ in range(n_sub):
        norm_x = 0.0
        for i in range(x_rows):
            norm_x += abs(x[i].real) + abs(x[i].imag)
        rows = max(b_rows, reach[x_rows - 1] if x_rows > 0 else 0)
        dst = 0
        src_vec = x
        prev2 = norm_x
        prev = 0.0
        total = 0.0
        converged = False
        m = 1
        while not converged and m <= max_terms:
            out = terms[dst]
            for i in range(rows, terms_rows[dst]):
                out[i] = 0j  # stale rows of an earlier, longer term
            if parallel:
                cur, total = _term_parallel(indptr, indices, data, src_vec, b, m == 1, hs / m, rows, out, acc)
            else:
                cur, total = _term_serial(indptr, indices, data, src_vec, b, m == 1, hs / m, rows, out, acc)
            terms_rows[dst] = rows
            stats[0] += 1
            if m > 1:
                prev2 = prev
            prev = cur
            converged = prev + prev2 <= tol * total
            support = _support(out, rows)
            rows = max(rows, reach[support - 1] if support > 0 else 0)  # never shrinks: acc's norm stays whole
            src_vec = out
            dst = 1 - dst
            m += 1
        if not np.isfinite(total):
            return NOT_FINITE, x_rows
        if not converged:
            return NO_CONVERGENCE, x_rows
        last = 0
        for i in range(terms_rows[1 - dst]):  # the last term's rows: every row acc has
            z = _flush(acc[i])  # no subnormals left to slow the next substep down
            x[i] = z
            acc[i] = z
            if z != 0:
                last = i + 1
        x_rows = last
    return OK, x_rows


@jit
def _propagate_vector(indptr, indices, data, b, x0, omega, step_h, step_sub, step_kind, tol, max_terms,
                      parallel, out_x, out_energy, stats):
    n = x0.shape[0]
    x = x0.copy()
    acc = x0.copy()
    terms = np.zeros((2, n), np.complex128)
    terms_rows = np.zeros(2, np.int64)
    reach = _reach(indptr, indices)
    x_rows = _support(x, n)
    b_rows = _support(b, n)
    store = out_x.shape[0] > 0
    for k in range(step_kind.shape[0]):
        s = step_kind[k]
        if step_h[s] > 0.0:
            status, x_rows = _taylor_vector(indptr, indices, data, reach, b, b_rows, x, x_rows, step_h[s],
                                            step_sub[s], tol, max_terms, parallel, terms, acc, terms_rows, stats)
            if status != OK:
                return status, k
        if store:
            for i in range(n):
                out_x[k, i] = x[i]
        for i in range(n):
            out_energy[k, i] = omega[i] * (x[i].real * x[i].real + x[i].imag * x[i].imag)
    return OK, step_kind.shape[0]


def _substeps(norm, steps):
    """Substeps per distinct step so that norm * h / n_sub <= config.TAYLOR_THETA."""
    return np.maximum(1, np.ceil(norm * np.asarray(steps) / config.TAYLOR_THETA)).astype(np.int64)


def propagate_vector(M, b, x0, omega, steps, step_kind, *, out_x, out_energy, parallel=None):
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
    out_x : ndarray (T, N) complex or (0, N)
        Amplitudes at the output times (not stored when it has zero rows).
    out_energy : ndarray (T, N) float
        omega_i |alpha_i|^2 at the output times.
    parallel : bool, optional
        Threads over rows; default above ``config.PARALLEL_MIN_CELLS`` cells.

    Returns
    -------
    dict of counters (``terms``: CSR products, ``substeps``).

    Raises
    ------
    chiralnet.errors.SolverError
        If the series does not converge or the state is not finite.
    """
    M = pruned_csr(M)
    indptr, indices, data = csr_parts(M)
    n = indptr.size - 1
    if parallel is None:
        parallel = n >= config.PARALLEL_MIN_CELLS
    steps = np.asarray(steps, float)
    n_sub = _substeps(one_norm(M), steps)
    stats = np.zeros(1, np.int64)
    status, k = _propagate_vector(indptr, indices, data, np.asarray(b, complex), np.asarray(x0, complex),
                                  np.asarray(omega, float), steps, n_sub, np.asarray(step_kind, np.int64),
                                  config.TAYLOR_TOL, config.TAYLOR_MAX_TERMS, bool(parallel), out_x,
                                  out_energy, stats)
    _check_status(status, k)
    return {"terms": int(stats[0]), "substeps": int(n_sub[np.asarray(step_kind)].sum())}


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
                      out_diag, stats):
    """Nc_k = e^{A h} Nc_{k-1} e^{A^H h} + int_0^h e^{A u} Q e^{A^H u} du, A = conj(M) in CSR."""
    n = X0.shape[0]
    X = X0.copy()
    t1 = np.empty((n, n), np.complex128)
    t2 = np.empty((n, n), np.complex128)
    acc = np.empty((n, n), np.complex128)
    for k in range(step_kind.shape[0]):
        s = step_kind[k]
        h = step_h[s]
        if h > 0.0:
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
                        X[i, j] = _flush(acc[i, j])
        for i in range(n):
            out_diag[k, i] = X[i, i].real
    return OK, step_kind.shape[0], X


def propagate_matrix(M, Q, X0, steps, step_kind, *, out_diag, parallel=None):
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
    n_sub = _substeps(2.0 * one_norm(A), steps)
    stats = np.zeros(1, np.int64)
    status, k, X = _propagate_matrix(indptr, indices, data, np.ascontiguousarray(Q, dtype=complex),
                                     np.ascontiguousarray(X0, dtype=complex), steps, n_sub,
                                     np.asarray(step_kind, np.int64), config.TAYLOR_TOL, config.TAYLOR_MAX_TERMS,
                                     bool(parallel), out_diag, stats)
    _check_status(status, k)
    X = 0.5 * (X + X.conj().T)
    return X, {"matrix_terms": int(stats[0])}


# ---------------------------------------------------------------------------------------------
# Array-level builders: the Model of a builder network without building the graph.

def _topology_model(name, n, n_links, links, *, sparse=None, **options) -> Model:
    """Model of ``n`` builder cells joined by ``n_links`` links; ``links()`` returns (u, v) index arrays
    (called after the memory check, so an oversized request allocates nothing). Options and their
    checks are those of the graph builders (:data:`chiralnet.builders.LINK_DEFAULTS`)."""
    o = _options(f"{name}_model", options)
    # Every cell shares these values: check them as the graph builder's add_cell(G, 0, ...) does.
    _check_cell(0, {key: o[key] for key in ("omega", "kappa", "n_th", "drive")})
    if o["drive_frequency"] is not None:
        _real(o["drive_frequency"], "graph attribute 'drive_frequency'")
    gamma = o["gamma"]  # a real number (builders._options)
    if not o["nonreciprocal"] and o["J"] is not None:
        _complex(o["J"], f"{name}_model option 'J'")
    L = n_links
    memory.check(memory.model_bytes(n, n + (2 + 4) * L if o["nonreciprocal"] else n + 2 * L, L),
                 f"building the {n}-cell {name} model", "fewer cells")
    u, v = links()
    omega = np.full(n, float(o["omega"]))
    kappa = np.full(n, float(o["kappa"]))
    n_th = np.full(n, float(o["n_th"]))
    drive = np.zeros(n, complex)
    drive[0] = o["drive"]
    battery = np.ones(n, bool)
    battery[0] = False
    omega_L = o["omega"] if o["drive_frequency"] is None else o["drive_frequency"]
    if o["nonreciprocal"]:
        if not gamma > 0:
            raise NetworkError(f"{name}: 'gamma' must be > 0, got {gamma}")
        link_J = np.full(L, -0.5j * gamma)
        rate = np.full(L, gamma)
        occupation = np.full(L, float(o["n_th"]))
        c_res = np.repeat(np.arange(L), 2)
        c_cell = np.empty(2 * L, np.int64)
        c_cell[0::2] = u
        c_cell[1::2] = v
        c_p = np.tile(np.array([1.0, -1.0], complex), L)
    else:
        link_J = np.full(L, complex(gamma / 2 if o["J"] is None else o["J"]))
        rate = occupation = np.zeros(0)
        c_res = c_cell = np.zeros(0, np.int64)
        c_p = np.zeros(0, complex)
    return assemble_model(
        tuple(range(n)), omega=omega, kappa=kappa, n_th=n_th, drive=drive, alpha0=np.zeros(n, complex),
        n0=np.zeros(n), battery=battery, drive_frequency=omega_L, link_u=u, link_v=v, link_J=link_J, rate=rate,
        occupation=occupation, coupling_reservoir=c_res, coupling_cell=c_cell, coupling_p=c_p, sparse=sparse,
    )


def chain_model(n_cells: int, *, sparse: bool | None = None, **options) -> Model:
    """The :class:`Model` of :func:`chiralnet.chain` ``(n_cells, **options)``, built from arrays.

    Same arrays as ``build_model(chain(n_cells, **options))`` (tested), in O(N) time and
    memory and without NetworkX: a 10^6-cell chain builds in about a second.

    Parameters
    ----------
    n_cells : int
        Number of cells, >= 2.
    sparse : bool, optional
        As in :func:`chiralnet.build_model`.
    omega, kappa, gamma, drive, n_th, nonreciprocal, J, drive_frequency
        As in :func:`chiralnet.chain`.

    Examples
    --------
    >>> import chiralnet as cn
    >>> from chiralnet.sparse import chain_model
    >>> round(cn.steady_state(chain_model(6)).energy(5), 1)
    55.8
    """
    n = _count(n_cells, "n_cells", 2)
    return _topology_model("chain", n, n - 1, lambda: (np.arange(n - 1), np.arange(1, n)), sparse=sparse, **options)


def lattice_model(rows: int, cols: int, *, sparse: bool | None = None, **options) -> Model:
    """The :class:`Model` of :func:`chiralnet.lattice` ``(rows, cols, **options)``, built from arrays.

    Cells r*cols + c; links point right, then down, in the same order as the graph builder.
    """
    r = _count(rows, "rows", 1)
    c = _count(cols, "cols", 1)
    if r * c < 2:
        raise NetworkError("lattice: rows * cols must be >= 2")
    def links():
        idx = np.arange(r * c).reshape(r, c)
        return (np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()]),
                np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()]))

    return _topology_model("lattice", r * c, r * (c - 1) + (r - 1) * c, links, sparse=sparse, **options)
