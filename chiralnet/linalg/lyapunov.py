"""The steady fluctuation matrix: conj(M) X + X M^T = -Q, triangular or dense (one home for both solvers)."""

from __future__ import annotations

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

from .cascade import lyapunov_cascaded

__all__ = ["steady_covariance"]


def steady_covariance(model, order):
    """Nc_ss from conj(M) X + X M^T = -Q (M stable) of a phase-insensitive model, and the solver's name.

    Triangular recursion in O(N nnz) when ``order`` (the cascade order) is given, else Bartels-Stewart.
    ``model`` needs ``M`` (dense or CSR), ``Q`` (dense, CSR or None) and ``n_cells``.
    """
    if model.Q is None:
        return np.zeros((model.n_cells,) * 2, complex), "zero-noise"
    Q = model.Q.toarray() if sp.issparse(model.Q) else model.Q
    if order is not None:
        cov = lyapunov_cascaded(np.conj(model.M), -Q, order)
        how = "triangular-lyapunov"
    else:
        M = model.M.toarray() if sp.issparse(model.M) else model.M
        cov = la.solve_continuous_lyapunov(np.conj(M), -Q)
        how = "bartels-stewart"
    return 0.5 * (cov + np.conj(cov).T), how
