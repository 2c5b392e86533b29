"""The steady fluctuation matrix, conj(M) X + X M^T = -Q (:func:`steady_covariance`: triangular or dense, one
home for the solvers that need it), and dense Lyapunov solves of small complex matrices without SciPy's
per-call wrapping.

:func:`solve_continuous_lyapunov` makes the LAPACK calls of ``scipy.linalg.solve_continuous_lyapunov``
(``zgees`` Schur form, ``u^H q u``, ``ztrsyl``, ``u y u^H``) in the same order with the same arguments, so its
result has the same bits (tests/test_linalg.py compares them), but skips the input validation and
array-API wrapping SciPy repeats per call (~25 of ~40 us at 4 cells), and asks ``zgees`` for its workspace
once per size. Anything but two finite complex128 (N, N) arrays goes to SciPy itself.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
from scipy.linalg import get_lapack_funcs

from .._jit import jit
from .cascade import lyapunov_cascaded

__all__ = ["solve_continuous_lyapunov", "steady_covariance", "symmetrize"]

_GEES, _TRSYL = get_lapack_funcs(("gees", "trsyl"), (np.zeros((1, 1), complex),))
_LWORK = {}  # N -> the workspace zgees asks for (a function of N alone)


def _no_sort(x, y=None):
    return None


def solve_continuous_lyapunov(a, q):
    """X with a X + X a^H = q, as ``scipy.linalg.solve_continuous_lyapunov(a, q)`` (same bits); ``a`` and
    ``q`` finite (as assembled models are: checked at assembly)."""
    if not (type(a) is np.ndarray and type(q) is np.ndarray and a.dtype.char == "D" and q.dtype.char == "D"
            and a.ndim == 2 and a.shape == q.shape and a.shape[0] == a.shape[1] and a.shape[0] > 0):
        return la.solve_continuous_lyapunov(a, q)
    n = a.shape[0]
    lwork = _LWORK.get(n)
    if lwork is None:  # what scipy.linalg.schur asks for on every call
        lwork = _LWORK[n] = _GEES(lambda x: None, a, lwork=-1)[-2][0].real.astype(np.int_)
    res = _GEES(_no_sort, a, lwork=lwork, overwrite_a=False, sort_t=0)
    if res[-1] != 0:  # SciPy words the failure
        return la.solve_continuous_lyapunov(a, q)
    r, u = res[0], res[-3]
    f = u.conj().T.dot(q.dot(u))
    y, scale, info = _TRSYL(r, r, f, tranb="C")
    if info < 0:
        return la.solve_continuous_lyapunov(a, q)
    if info == 1:
        warnings.warn('Input "a" has an eigenvalue pair whose sum is very close to or exactly zero. The solution '
                      'is obtained via perturbing the coefficients.', RuntimeWarning, stacklevel=2)
    y *= scale
    return u.dot(y).dot(u.conj().T)


def steady_covariance(model, order):
    """Nc_ss from conj(M) X + X M^T = -Q (M stable) of a phase-insensitive model, and the solver's name.

    Triangular recursion in O(N nnz) when ``order`` (the cascade order) is given, else Bartels-Stewart
    (:func:`solve_continuous_lyapunov`, SciPy's bits). ``model`` needs ``M`` (dense or CSR), ``Q`` (dense,
    CSR or None) and ``n_cells``.
    """
    if model.Q is None:
        return np.zeros((model.n_cells,) * 2, complex), "zero-noise"
    Q = model.Q.toarray() if sp.issparse(model.Q) else model.Q
    if order is not None:
        cov = lyapunov_cascaded(np.conj(model.M), -Q, order)
        how = "triangular-lyapunov"
    else:
        M = model.M.toarray() if sp.issparse(model.M) else model.M
        cov = solve_continuous_lyapunov(np.conj(M), -Q)
        how = "bartels-stewart"
    return symmetrize(cov, True), how


@jit
def _symmetrize(A, B, out, hermitian):
    """out = the Hermitian (or symmetric) part of A + B, B (0, 0) for none; out may be A or B."""
    n = A.shape[0]
    add = B.shape[0] > 0
    tile = 64
    for i0 in range(0, n, tile):
        for j0 in range(0, i0 + 1, tile):
            for i in range(i0, min(n, i0 + tile)):
                for j in range(j0, min(i + 1, j0 + tile)):
                    a = A[i, j] + B[i, j] if add else A[i, j]
                    b = A[j, i] + B[j, i] if add else A[j, i]
                    z = 0.5 * (a + (np.conj(b) if hermitian else b))
                    out[i, j] = z
                    out[j, i] = np.conj(z) if hermitian else z


def symmetrize(A, hermitian, plus=None, out=None):
    """A (N, N) made Hermitian, (A + A^H)/2 (``hermitian``), or symmetric, (A + A^T)/2, in place and returned: one
    tiled pass, no N x N temporaries (a real A's Hermitian part is its symmetric part). ``plus``: of A + plus
    instead; ``out``: written there instead (it may be ``plus``)."""
    out = A if out is None else out
    if A.shape[0]:
        _symmetrize(A, np.zeros((0, 0), A.dtype) if plus is None else plus, out, bool(hermitian))
    return out
