"""CSR helpers shared by the sparse kernels: parts, diagonal, 1-norm, pruning, subnormal flushing.

Everything here works on M in CSR form (``indptr``, ``indices``, ``data``) and costs O(nnz).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._jit import jit

__all__ = ["csr_parts", "diagonal", "pruned_csr", "one_norm", "flush"]


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


