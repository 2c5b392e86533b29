"""Small dense matrix exponentials in Numba (a few cells): Taylor series with scaling and squaring.

Used by the "exact" method for small N (scipy's expm routes tiny products through threaded BLAS)
and by the batched sweep kernels.
"""

import numpy as np

from .._jit import jit

__all__ = ["one_norm_small", "expm_parameters", "expm_one", "expm_small"]


@jit
def _matmul(A, B, out):
    """out = A B for small square matrices (no BLAS call)."""
    m = A.shape[0]
    for i in range(m):
        for j in range(m):
            acc = 0j
            for l in range(m):
                acc += A[i, l] * B[l, j]
            out[i, j] = acc


@jit
def one_norm_small(A):
    """||A||_1 of one (m, m) matrix: the largest column sum of |A_ij|."""
    m = A.shape[0]
    norm = 0.0
    for j in range(m):
        col = 0.0
        for i in range(m):
            col += abs(A[i, j])
        norm = max(norm, col)
    return norm


@jit
def expm_parameters(norm):
    """(s, q) for e^X with ||X||_1 = ``norm``: s squarings bring it to theta = norm 2^-s <= 1, and q
    (at most 18) is the smallest Taylor degree whose remainder bound theta^(q+1)/(q+1)! is below 2^-53."""
    s = max(0, int(np.ceil(np.log2(norm)))) if norm > 1.0 else 0
    theta = norm / 2.0**s
    q = 1
    bound = theta
    while q < 18 and bound * theta / (q + 1) > 2.0**-53:
        q += 1
        bound *= theta / q
    return s, q


@jit
def expm_one(A, c, s, q, X, E, T, out):
    """out = e^{c A} for one small (m, m) complex A and scalar c, with (s, q) from :func:`expm_parameters`.

    Taylor series of X = c A / 2^s in Horner form E = I + X E / k, then s squarings.
    X, E, T: (m, m) complex work buffers; writes out (m, m).
    """
    m = A.shape[0]
    for i in range(m):
        for j in range(m):
            X[i, j] = A[i, j] * c / 2.0**s
            E[i, j] = X[i, j] / q + (1.0 if i == j else 0.0)
    for d in range(q - 1, 0, -1):
        _matmul(X, E, T)
        for i in range(m):
            for j in range(m):
                T[i, j] = T[i, j] / d + (1.0 if i == j else 0.0)
        E, T = T, E
    for _ in range(s):
        _matmul(E, E, T)
        E, T = T, E
    out[:, :] = E


@jit
def expm_small(A, out):
    """out[k] = e^{A[k]} for a stack A (K, m, m) complex of small matrices (a few cells).

    Each matrix is scaled by its own 2^-s to ||A||_1 <= 1 (one s for the whole stack would square a
    short step's exponential as often as the longest step's, losing accuracy), then a Taylor series
    of the smallest degree q (at most 18) whose remainder bound theta^(q+1)/(q+1)! is below 2^-53, in
    Horner form E = I + X E / k, and s squarings (:func:`expm_parameters`, :func:`expm_one`).
    Writes out (K, m, m) complex.
    """
    K, m = A.shape[0], A.shape[1]
    X = np.empty((m, m), np.complex128)
    E = np.empty((m, m), np.complex128)
    T = np.empty((m, m), np.complex128)
    for k in range(K):
        s, q = expm_parameters(one_norm_small(A[k]))
        expm_one(A[k], 1.0, s, q, X, E, T, out[k])
