"""The steady state: alpha_ss = i M^{-1} E and Nc_ss from conj(M) X + X M^T = -Q (:func:`steady_state`,
:func:`check_stability`). The solves themselves are elsewhere: the phase-insensitive one (cascaded or not)
in :mod:`~chiralnet.solve.stationary`, the general Gaussian one in :mod:`~chiralnet.solve.general`.
"""

from __future__ import annotations

import numpy as np

from ..errors import ChiralnetError
from ..linalg.cascade import cascade_order
from ..linalg.stability import check_stability_arrays
from ..model import Model, State, build_model, is_general_model
from ..results import SteadyState, _new_steady
from .general import check_stability_general, steady_general
from .stationary import steady_arrays

__all__ = ["steady_state", "check_stability"]


def _as_model(G_or_model) -> Model:
    return G_or_model if isinstance(G_or_model, Model) or is_general_model(G_or_model) else build_model(G_or_model)


def check_stability(G_or_model) -> None:
    """Raise :class:`NoSteadyStateError` unless every eigenvalue of M has a negative real part.

    M is split into strongly connected blocks (its block-triangular form), so cascaded
    (chiral) networks are checked exactly from the diagonal and are never eigendecomposed.
    The message names the cell on which the failing mode lives.
    """
    model = _as_model(G_or_model)
    if is_general_model(model):
        return check_stability_general(model)
    check_stability_arrays(model.M, model.cells, cascade_order(model.M))


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
    if model.time_dependent:  # a pulse or tone has no fixed point; a silent constant-part answer would mislead
        d = model.drives
        i = [x[0] for x in d.pulses + d.functions] + [int(np.flatnonzero(a)[0]) for *_, a in d.tones + d.squares]
        i = i[0]
        raise ChiralnetError(f"cell {model.cells[i]!r} has a time-dependent drive: steady_state needs constant "
                             "drives; simulate the network instead")
    if is_general_model(model):  # squeezing or parametric terms: quadrature Lyapunov equation
        return steady_general(model)
    alpha, Nc, method, energies = steady_arrays(model)
    fluct = np.zeros(model.n_cells) if Nc is None else Nc.diagonal().real.copy()
    # steady_arrays checked alpha finite; a thermal Nc_ss gets the State's own checks (Hermitian, PSD)
    state = (State._checked(model.cells, alpha, None, 0.0, model.drive_frequency) if Nc is None
             else State(model.cells, alpha, Nc, 0.0, model.drive_frequency))
    return _new_steady({"cells": model.cells, "energies": energies, "amplitudes": alpha, "fluctuations": fluct,
                        "battery": model.battery, "method": method, "state": state, "omega": model.omega,
                        "drive": model.drive, "drive_frequency": model.drive_frequency})
