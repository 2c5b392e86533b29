"""Cascaded (chiral, feed-forward) networks: M is triangular once the cells are put in topological order.

:func:`cascade_order` finds that order in O(N + nnz); :func:`forward_substitution` and
:func:`lyapunov_cascaded` then give the steady amplitudes in O(nnz) (one pass when the cells are
already in cascade order) and the steady fluctuation matrix in O(N nnz).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from .. import config
from .._jit import jit
from ..errors import SolverError
from .csr import _dense_to_csr, csr_parts, diagonal, flush, flush_any

__all__ = ["cascade_order", "forward_substitution", "Substitution", "solve_cascaded", "lyapunov_cascaded",
           "sylvester_cascaded"]


@jit
def _topological_order(indptr, indices, data, order):
    """Kahn's algorithm on the dependency graph i <- j (M_ij != 0, i != j).

    Writes ``order`` (N,) so that every row's off-diagonal nonzero entries point to cells placed earlier
    (tested as M_ij != 0, not |M_ij|^2 > 0: a subnormal coupling squares to zero but is one). Returns how many cells were placed: N iff M is triangular after
    permutation (no feedback loop).
    """
    n = indptr.shape[0] - 1
    waiting = np.zeros(n, np.int64)
    start = np.zeros(n + 1, np.int64)
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if j != i and data[p] != 0:
                waiting[i] += 1
                start[j + 1] += 1
    for j in range(n):
        start[j + 1] += start[j]
    fill = start[:n].copy()
    dependents = np.empty(start[n], np.int64)
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if j != i and data[p] != 0:
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

    Only exact zeros count as zero: a balanced chiral link's M[u, v] = -iJ + mu Gamma / 2 is made an exact
    zero at assembly (from its own terms, :func:`chiralnet.model.assemble_model`); any nonzero coupling,
    however weak, is a dependency (a matrix with rounding residues is simply not cascaded: LU solves it).
    (:func:`forward_substitution` checks the natural order itself, within its one pass.)

    Parameters
    ----------
    M : ndarray (N, N) or sparse
        The generator.

    Returns
    -------
    ndarray (N,) int64 or None
    """
    n = M.shape[0]
    order = np.empty(n, np.int64)
    if _small_dense(M):  # csr_parts' small dense route and the ordering in one kernel call
        placed = _topological_order_dense(M, order)
    else:
        indptr, indices, data = csr_parts(M)
        if _lower_triangular(indptr, indices, data):  # the stored order (Kahn's would interleave independent
            return np.arange(n, dtype=np.int64)        # chains, and the solvers' reads would jump between them)
        placed = _topological_order(indptr, indices, data, order)
    return order if placed == n else None


@jit
def _lower_triangular(indptr, indices, data):
    """Whether every nonzero entry of the CSR matrix lies on or below the diagonal."""
    for i in range(indptr.shape[0] - 1):
        for p in range(indptr[i], indptr[i + 1]):
            if indices[p] > i and data[p] != 0:
                return False
    return True


def _small_dense(M) -> bool:
    """Whether :func:`~chiralnet.linalg.csr.csr_parts` takes M's small dense route (a kernel, no scipy.sparse)."""
    return type(M) is np.ndarray and M.ndim == 2 and M.shape[0] <= config.SMALL_MAX_CELLS and M.dtype == complex


@jit
def _topological_order_dense(M, order):
    """:func:`_topological_order` of a small dense complex M, its CSR parts made in the same kernel call."""
    indptr, indices, data = _dense_to_csr(M)
    return _topological_order(indptr, indices, data, order)


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
                elif a != 0:  # a subnormal entry squares to zero but is not one
                    max_upper2 = max(max_upper2, a2, 5e-324)
        max_re = max(max_re, d.real)
        d2 = d.real * d.real + d.imag * d.imag
        max_diag2 = max(max_diag2, d2)
        # acc / d without Numba's slower complex division; d = 0 leaves x non-finite for the caller's
        # stability check to reject (instead of raising ZeroDivisionError here)
        r = 1.0 / d2 if d2 > 0.0 else np.inf
        prev = flush(acc * (d.real * r - 1j * (d.imag * r)))
        x[i] = prev
        energy[i] = omega[i] * (prev.real * prev.real + prev.imag * prev.imag)
    return max_all2, max_upper2, max_re, max_diag2


@jit
def _forward_substitution_dense(M, rhs, scale, omega, x, energy):
    """:func:`_forward_substitution` of a small dense complex M (N, N), its CSR parts made in the same kernel
    call (:func:`~chiralnet.linalg.csr._dense_to_csr`, as :func:`~chiralnet.linalg.csr.csr_parts` makes them)."""
    indptr, indices, data = _dense_to_csr(M)
    return _forward_substitution(indptr, indices, data, rhs, scale, omega, x, energy)


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
    above the diagonal is an exact zero and
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
    x = np.empty(rhs.size, complex)
    energy = np.empty(rhs.size)
    if _small_dense(M):  # csr_parts' small dense route and the pass in one kernel call
        max_all2, max_upper2, max_re, max_diag2 = _forward_substitution_dense(M, rhs, complex(scale), omega, x, energy)
    else:
        indptr, indices, data = csr_parts(M)
        max_all2, max_upper2, max_re, max_diag2 = _forward_substitution(indptr, indices, data, rhs, complex(scale),
                                                                        omega, x, energy)
    if max_upper2 > 0.0:
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
def _lyapunov_triangular(indptr, indices, data, diag, order, C, X, conjugate):
    """Solve A X + X B = C for A (CSR) triangular in ``order`` and B = A^H (``conjugate``: the Lyapunov
    equation of Nc) or B = A^T (the Sylvester equation of the anomalous moments, A = M, C = -S); X (N, N)
    written in place.

    (A_ii + b_jj) X_ij = C_ij - sum_{k != i} A_ik X_kj - sum_{k != j} X_ik b(A_jk), b = conj or identity,
    taking rows i, then columns j, in topological order so every X on the right is known (and C_ij is read
    before X_ij is written, so C may be X: solved in place).
    """
    n = order.shape[0]
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
                    acc -= X[i, k] * (np.conj(data[p]) if conjugate else data[p])
            X[i, j] = flush_any(acc / (diag[i] + (np.conj(diag[j]) if conjugate else diag[j])))


def sylvester_cascaded(A, C, order) -> np.ndarray:
    """Solve A X + X A^T = C for A triangular in ``order``, in O(N nnz) (:func:`lyapunov_cascaded` without the
    conjugate). A: ndarray or sparse (N, N); C (N, N) complex; returns X (N, N) complex."""
    indptr, indices, data = csr_parts(A)
    diag = diagonal(A)
    X = np.empty(C.shape, complex)
    _lyapunov_triangular(indptr, indices, data, diag, order, np.ascontiguousarray(C, dtype=complex), X, False)
    return X


def lyapunov_cascaded(A, C, order, overwrite=False) -> np.ndarray:
    """Solve A X + X A^H = C for A triangular in ``order``, in O(N nnz) instead of O(N^3).

    Parameters
    ----------
    A : ndarray (N, N) or sparse
        For the steady fluctuation matrix, A = conj(M) and C = -Q.
    C : ndarray (N, N) complex, or real (then, with A real, the solve is real)
    order : ndarray (N,) int, from :func:`cascade_order` (of A or of M: same pattern).
    overwrite : bool
        A real C (C-contiguous float) may be overwritten with X (no second N x N array).

    Returns
    -------
    ndarray (N, N) complex (real for real A and C)
    """
    indptr, indices, data = csr_parts(A)
    diag = diagonal(A)
    if not np.iscomplexobj(C) and not data.imag.any():  # real A and C: X is real, solved in real arithmetic
        C = np.ascontiguousarray(C, dtype=float)
        X = C if overwrite else np.empty(C.shape)
        _lyapunov_triangular(indptr, indices, np.ascontiguousarray(data.real), np.ascontiguousarray(diag.real),
                             order, C, X, True)
        return X
    X = np.empty(C.shape, complex)
    _lyapunov_triangular(indptr, indices, data, diag, order, np.ascontiguousarray(C, dtype=complex), X, True)
    return X

