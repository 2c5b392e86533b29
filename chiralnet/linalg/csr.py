"""CSR helpers shared by the sparse kernels: parts, diagonal, 1-norm, pruning, subnormal flushing, the
rows a product can reach, the diagonal shift of a Taylor series, triangularity.

Everything here works on M in CSR form (``indptr``, ``indices``, ``data``) and costs O(nnz).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import types as nb_types
from numba.extending import overload

from .. import config
from .._jit import jit

__all__ = ["csr_parts", "diagonal", "pruned_csr", "one_norm", "flush", "flush_any", "row_reach", "row_low", "shifted",
           "triangle"]


def csr_parts(M):
    """(indptr, indices, data) of M as CSR; dense M is converted. Duplicate entries are allowed
    (every kernel here sums them). A small dense M (up to ``config.SMALL_MAX_CELLS`` cells) is converted
    by a kernel, without a scipy.sparse object: the same arrays (int32 indices, row-major), in ~1 us
    instead of ~30."""
    if type(M) is np.ndarray and M.ndim == 2 and M.shape[0] <= config.SMALL_MAX_CELLS and M.dtype == complex:
        return _dense_to_csr(M)
    A = M if isinstance(M, sp.csr_array) else sp.csr_array(M)
    return A.indptr, A.indices, np.ascontiguousarray(A.data, dtype=complex)


@jit
def _dense_to_csr(M):
    """(indptr, indices, data) of the nonzero entries of a dense (N, N) complex M, row by row: as
    ``scipy.sparse.csr_array(M)`` stores them (int32 indices)."""
    n, m = M.shape
    nnz = 0
    for i in range(n):
        for j in range(m):
            if M[i, j] != 0:
                nnz += 1
    indptr = np.empty(n + 1, np.int32)
    indices = np.empty(nnz, np.int32)
    data = np.empty(nnz, np.complex128)
    k = 0
    indptr[0] = 0
    for i in range(n):
        for j in range(m):
            if M[i, j] != 0:
                indices[k] = j
                data[k] = M[i, j]
                k += 1
        indptr[i + 1] = k
    return indptr, indices, data


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
    """M as CSR without its explicit zeros (a dense M converted, or entries set to zero afterwards).

    Only exact zeros are dropped: an entry a balanced chiral link cancels is an exact zero from the
    assembly (:func:`chiralnet.model.assemble_model` decides it from the entry's own terms), and a weak
    but real coupling is never taken for rounding. Built once per run."""
    A = sp.csr_array(M)
    data = A.data
    keep = data != 0
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
def flush(z):
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


def flush_any(z):
    """:func:`flush` of a real or complex scalar, of its own type (a real one's solvers store it in real arrays)."""
    return complex(flush(complex(z))) if isinstance(z, complex) else (z if abs(z) >= 2.2250738585072014e-308 else 0.0)


@overload(flush_any)
def _flush_any(z):
    if isinstance(z, nb_types.Complex):
        return lambda z: flush(z)
    return lambda z: z if abs(z) >= 2.2250738585072014e-308 else 0.0


@jit
def row_reach(indptr, indices):
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
def row_low(indptr, indices):
    """low[r] = min(r, the first row with an entry in a column >= r): if v is zero above row r, so is
    M v above row low[r] (the mirror of :func:`row_reach`)."""
    n = indptr.shape[0] - 1
    low = np.arange(n)
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            if i < low[indices[p]]:
                low[indices[p]] = i
    for c in range(n - 2, -1, -1):
        low[c] = min(low[c], low[c + 1])
    return low


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


def triangle(indptr, indices) -> int:
    """1 if every entry is on or below the diagonal, -1 if on or above, else 0."""
    row = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    if (indices <= row).all():
        return 1
    if (indices >= row).all():
        return -1
    return 0
