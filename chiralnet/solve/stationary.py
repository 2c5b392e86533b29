"""The phase-insensitive steady state of a model's arrays: alpha_ss = i M^{-1} E and Nc_ss from
conj(M) X + X M^T = -Q (:func:`steady_arrays`), what :func:`chiralnet.steady_state`, the exact-sparse
method's long steps, the general path (squeezed baths only) and the adjoint gradients build on.

Cascaded networks (M triangular after a topological ordering of the cells, found in O(N + nnz))
are solved by forward substitution in O(nnz) (cells already in cascade order, as in a chain or
lattice, take a single pass that also checks stability and forms the energies), and their
fluctuation matrix by a triangular Lyapunov recursion in O(N nnz); otherwise sparse or dense LU
and Bartels-Stewart.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as la
import scipy.sparse.linalg as spla

from .. import memory
from ..errors import SolverError
from ..linalg.cascade import cascade_order, forward_substitution
from ..linalg.lyapunov import steady_covariance
from ..linalg.stability import check_diagonal, check_stability_arrays
from ..model import Model, _all_finite

__all__ = ["steady_arrays", "STEADY_BYTES_BOUND"]


def _nnz(model: Model) -> int:
    return int(model.M.nnz) if model.is_sparse else int(np.count_nonzero(model.M))


#: Bytes per (N + 1)^2 that bound every estimate of memory.steady_state_bytes (nnz <= N^2; tests/test_memory.py).
STEADY_BYTES_BOUND = 1000


def steady_arrays(model: Model, *, fluctuations: bool = True):
    """(alpha_ss (N,) complex, Nc_ss (N, N) complex or None, method name, energies (N,)) of a model.

    Nc_ss is None at zero temperature (Q = None) or when ``fluctuations`` is False.
    Raises NoSteadyStateError (naming the cell) when M is not stable.
    """
    n = model.n_cells
    thermal = model.Q is not None and fluctuations

    tiny = STEADY_BYTES_BOUND * (n + 1) ** 2 <= memory.limit_bytes()  # bounds every estimate: skip them

    def check_memory(cascaded):
        if tiny:
            return
        memory.check(memory.steady_state_bytes(n, nnz=_nnz(model), thermal=thermal, cascaded=cascaded,
                                               sparse=model.is_sparse),
                     f"steady_state ({n} cells)",
                     "fewer cells, or zero-temperature baths (no N x N fluctuation matrix)")

    check_memory(cascaded=True)  # the smallest estimate; the others are checked when they apply
    # M alpha = i E. One pass: cells already in cascade order (a chain, a lattice), substitution, energies.
    sub = forward_substitution(model.M, model.drive, model.omega, scale=1j)
    order = None if sub is not None else cascade_order(model.M)
    if order is not None:
        sub = forward_substitution(model.M, model.drive, model.omega, order, scale=1j)
    if sub is not None:
        check_diagonal(model.M, model.cells, sub.diag_max_real, sub.diag_max_abs)
        alpha = sub.x
        method = "forward-substitution"
    else:
        check_memory(cascaded=False)
        check_stability_arrays(model.M, model.cells, None)
        if model.is_sparse:
            alpha = spla.spsolve(model.M.tocsc(), 1j * model.drive)
            method = "sparse-lu"
        else:
            alpha = la.solve(model.M, 1j * model.drive)
            method = "dense-lu"
    energies = sub.energy if sub is not None else model.omega * (alpha.real**2 + alpha.imag**2)
    Nc = None
    if thermal:
        Nc, how = steady_covariance(model, np.arange(n) if sub is not None and order is None else order)
        method += "+" + how
        energies = energies + model.omega * Nc.diagonal().real
    if not (_all_finite(alpha) and _all_finite(energies)):
        bad = int(np.flatnonzero(~np.isfinite(energies) | ~np.isfinite(alpha))[0])
        raise SolverError(f"the steady state of cell {model.cells[bad]!r} is not finite (overflow): the "
                          "network's rates or drives are too large or too small to represent; rescale them")
    return alpha, Nc, method, energies
