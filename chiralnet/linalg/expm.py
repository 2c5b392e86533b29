"""Small dense matrix exponentials in Numba (a few cells): Taylor series with scaling and squaring.

Used by the "exact" method for small N (scipy's expm routes tiny products through threaded BLAS)
and by the batched sweep kernels.
"""

import numpy as np

from .._jit import jit

__all__ = ["one_norm_small", "expm_parameters", "expm_one", "expm_small"]


@jit
def _matmul_rows(A, B, out, r):
    """out = A B for small square matrices, real or complex (no BLAS call; out must not be A or B), where the
    rows of A from ``r`` on are zero but for their diagonal (r = m: a full product).

    Each entry is sum_l A[i, l] B[l, j] summed in order of l, as a dot product would; the loops run over
    rows of B (out[i, :] += A[i, l] B[l, :]) so that the innermost loop is an element-wise update the
    compiler vectorises (a dot product's reduction it cannot, without reassociating: fastmath). A row i >= r
    is A[i, i] B[i, :], the sum's only term that is not a product with a zero (so the same numbers, up to
    the sign of a zero)."""
    m = A.shape[0]
    for i in range(r):
        a = A[i, 0]
        for j in range(m):
            out[i, j] = a * B[0, j]
        for l in range(1, m):
            a = A[i, l]
            for j in range(m):
                out[i, j] += a * B[l, j]
    for i in range(r, m):
        a = A[i, i]
        for j in range(m):
            out[i, j] = a * B[i, j]


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
def _ps_block_size(q):
    """The block size p of :func:`expm_one`'s Paterson-Stockmeyer evaluation of a degree-q polynomial: the
    one (2 <= p <= 6) with the fewest products, (p - 1) powers plus ceil((q + 1) / p) - 1 Horner steps."""
    best, cost = 2, 1 << 30
    for p in range(2, 7):
        c = (p - 1) + (q + p) // p - 1
        if c < cost:
            best, cost = p, c
    return best


@jit
def expm_one(A, c, s, q, X, E, T, out):
    """out = e^{c A} for one small (m, m) A and scalar c, with (s, q) from :func:`expm_parameters`; real or
    complex (X, E, T and out of A's type: a real A is exponentiated in real arithmetic).

    The Taylor polynomial sum_k X^k / k! of X = c A / 2^s by Paterson-Stockmeyer: powers X^2 ... X^p and a
    Horner recurrence in X^p over blocks of p coefficients (7 products at q = 18 instead of Horner's 17), then
    s squarings. X, E, T: (m, m) complex work buffers; writes out (m, m).
    """
    m = A.shape[0]
    rows = m  # rows of A from here on are zero (the exact method's augmented [[M dt, b dt], [0, 0]]): so are
    while rows > 0:  # they in every power of X, and in the polynomial and its squares they are rows of the
        zero = True  # identity times a number; the products form the rows above them only (_matmul_rows)
        for j in range(m):
            zero = zero and A[rows - 1, j] == 0
        if not zero:
            break
        rows -= 1
    scale = c / 2.0**s
    for i in range(m):
        for j in range(m):
            X[i, j] = A[i, j] * scale
    p = _ps_block_size(q)
    pw = np.empty((p + 1, m, m), X.dtype)  # pw[j] = X^j, j = 1 ... p (pw[0] unused: X^0 = I)
    pw[1] = X
    for j in range(2, p + 1):
        _matmul_rows(pw[j - 1], X, pw[j], rows)
    coef = np.empty(q + 1)  # 1 / k!
    coef[0] = 1.0
    for k in range(1, q + 1):
        coef[k] = coef[k - 1] / k
    r = q // p + 1  # blocks B_i = sum_{j < p} coef[i p + j] X^j, i = 0 ... r - 1
    for blk in range(r - 1, -1, -1):
        if blk < r - 1:  # E <- E X^p + B_blk
            _matmul_rows(E, pw[p], T, rows)
            E, T = T, E
        else:
            for i in range(m):
                for j in range(m):
                    E[i, j] = 0.0
        for d in range(p):
            k = blk * p + d
            if k > q:
                break
            if d == 0:
                for i in range(m):
                    E[i, i] += coef[k]
            else:
                for i in range(m):
                    for j in range(m):
                        E[i, j] += coef[k] * pw[d, i, j]
    for _ in range(s):
        _matmul_rows(E, E, T, rows)
        E, T = T, E
    out[:, :] = E


@jit
def expm_small(A, out):
    """out[k] = e^{A[k]} for a stack A (K, m, m) complex of small matrices (a few cells).

    Each matrix is scaled by its own 2^-s to ||A||_1 <= 1 (one s for the whole stack would square a
    short step's exponential as often as the longest step's, losing accuracy), then a Taylor series
    of the smallest degree q (at most 18) whose remainder bound theta^(q+1)/(q+1)! is below 2^-53, evaluated by
    Paterson-Stockmeyer, and s squarings (:func:`expm_parameters`, :func:`expm_one`).
    Writes out (K, m, m) complex.
    """
    K, m = A.shape[0], A.shape[1]
    X = np.empty((m, m), np.complex128)
    E = np.empty((m, m), np.complex128)
    T = np.empty((m, m), np.complex128)
    for k in range(K):
        s, q = expm_parameters(one_norm_small(A[k]))
        expm_one(A[k], 1.0, s, q, X, E, T, out[k])
