"""The steady state: alpha_ss = i M^{-1} E and Nc_ss from conj(M) X + X M^T = -Q.

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
from ..errors import ChiralnetError, SolverError
from ..linalg.cascade import cascade_order, forward_substitution
from ..linalg.lyapunov import steady_covariance
from ..linalg.stability import check_diagonal, check_stability_arrays
from ..model import Model, State, _all_finite, build_model
from ..results import SteadyState
from ..gaussian import is_general_model

__all__ = ["steady_state", "check_stability", "steady_arrays"]


def _as_model(G_or_model) -> Model:
    return G_or_model if isinstance(G_or_model, Model) or is_general_model(G_or_model) else build_model(G_or_model)


def _nnz(model: Model) -> int:
    return int(model.M.nnz) if model.is_sparse else int(np.count_nonzero(model.M))


def check_stability(G_or_model) -> None:
    """Raise :class:`NoSteadyStateError` unless every eigenvalue of M has a negative real part.

    M is split into strongly connected blocks (its block-triangular form), so cascaded
    (chiral) networks are checked exactly from the diagonal and are never eigendecomposed.
    The message names the cell on which the failing mode lives.
    """
    model = _as_model(G_or_model)
    if is_general_model(model):
        from .general import check_stability_general

        return check_stability_general(model)
    check_stability_arrays(model.M, model.cells, cascade_order(model.M))


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


def steady_state(G_or_model) -> SteadyState:
    """Steady state of the network: alpha_ss = i M^{-1} E and Nc_ss from conj(M) X + X M^T = -Q.

    Cascaded networks are solved by forward substitution in O(nnz) and their fluctuation matrix by a
    triangular Lyapunov recursion in O(N nnz); others by sparse or dense LU and Bartels-Stewart.

    Returns
    -------
    SteadyState
        ``energies`` (N,), ``amplitudes`` (N,), ``total_energy``, ``battery_energy``, ``state``
        (a :class:`~chiralnet.model.State` to start a run from); ``method`` names the solve
        ("forward-substitution", "sparse-lu" or "dense-lu", plus the Lyapunov solver when there is
        thermal noise).

    Raises
    ------
    NoSteadyStateError
        If an eigenvalue of M has real part >= 0, naming the cell it lives on; for a network with pumps or
        parametric links, naming the term that drives the unstable mode and its threshold.

    A network with squeezing or parametric terms is solved on its quadratures (``method`` is
    "gaussian-lyapunov"; ``state.Mc`` holds the anomalous moments).

    Examples
    --------
    >>> import chiralnet as cn
    >>> ss = cn.steady_state(cn.two_cell())
    >>> round(ss.battery_energy, 2), ss.method
    (74.88, 'forward-substitution')
    """
    model = _as_model(G_or_model)
    if is_general_model(model):  # squeezing or parametric terms: quadrature Lyapunov equation
        from .general import steady_general

        return steady_general(model)
    if model.time_dependent:  # a pulse or tone has no fixed point; a silent constant-part answer would mislead
        d = model.drives
        i = [x[0] for x in d.pulses + d.functions] + [int(np.flatnonzero(a)[0]) for *_, a in d.tones + d.squares]
        i = i[0]
        raise ChiralnetError(f"cell {model.cells[i]!r} has a time-dependent drive: steady_state needs constant "
                             "drives; simulate the network instead")
    alpha, Nc, method, energies = steady_arrays(model)
    fluct = np.zeros(model.n_cells) if Nc is None else Nc.diagonal().real.copy()
    # steady_arrays checked alpha finite; a thermal Nc_ss gets the State's own checks (Hermitian, PSD)
    state = (State._checked(model.cells, alpha, None, 0.0, model.drive_frequency) if Nc is None
             else State(model.cells, alpha, Nc, 0.0, model.drive_frequency))
    return SteadyState(cells=model.cells, energies=energies, amplitudes=alpha, fluctuations=fluct,
                       battery=model.battery, method=method, state=state,
                       omega=model.omega, drive=model.drive, drive_frequency=model.drive_frequency)
