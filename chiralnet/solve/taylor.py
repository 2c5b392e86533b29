"""The step policy shared by the exact sparse stepping of amplitudes and of fluctuations.

Substeps keep ||M h||_1 <= ``config.TAYLOR_THETA`` (and the total bounded before any work); a step the
grid repeats gets a sparse propagator when it pays (:func:`step_propagator`); the kernels report
:data:`OK`, :data:`NO_CONVERGENCE` or :data:`NOT_FINITE`, which :func:`check_status` turns into a
:class:`~chiralnet.errors.SolverError` naming the output time.
"""

from __future__ import annotations

import numpy as np

from .. import config
from ..errors import SolverError
from ..linalg.csr import one_norm, shifted
from ..linalg.propagator import sparse_propagator

__all__ = ["OK", "NO_CONVERGENCE", "NOT_FINITE", "substeps", "bounded_substeps", "step_propagator", "check_status"]

# Status codes of the Taylor kernels.
OK = 0
NO_CONVERGENCE = 1
NOT_FINITE = 2


def substeps(norm, steps, jump=None):
    """Substeps per distinct step (K,) int64 so that norm * h / n_sub <= config.TAYLOR_THETA; -1 where
    ``jump`` (K,) bool marks a step that lands on the steady state. Raises SolverError, before any
    work, when the total would exceed ``config.MAX_TAYLOR_SUBSTEPS`` (no int64 wrap-around)."""
    need = np.maximum(1.0, np.ceil(norm * np.asarray(steps, float) / config.TAYLOR_THETA))  # float: no overflow
    if jump is not None:
        need[jump] = -1.0
    return need


def bounded_substeps(need, step_kind, what):
    total = float(np.maximum(need, 0.0)[np.asarray(step_kind)].sum())
    if not total <= config.MAX_TAYLOR_SUBSTEPS:
        raise SolverError(
            f"exact-sparse stepping of {what} would need {total:.3g} Taylor substeps (more than "
            f"config.MAX_TAYLOR_SUBSTEPS = {config.MAX_TAYLOR_SUBSTEPS:.3g}): the output times are too far apart "
            "for a network without a proven decay rate (an undamped mode); use closer output times, "
            "steady_state() for the long-time limit, or damp every cell (kappa > 0)"
        )
    return need.astype(np.int64)


def step_propagator(M, steps, step_kind, n_sub, columns=1):
    """(kind, P, applications) for the step length that recurs most, when a sparse propagator pays:
    the step recurs at least ``config.PROPAGATOR_MIN_USES`` times, the work it saves (cells x
    ``columns`` x uses: ``columns`` = 1 for amplitudes, N for the fluctuation matrix) reaches
    ``config.PROPAGATOR_MIN_WORK`` (below, building P costs more than the series it replaces), the step
    does not land on the steady state (``n_sub`` < 0) and P = e^{M h / applications} stays sparse
    (:func:`~chiralnet.linalg.propagator.sparse_propagator`); else None. ``applications`` substeps keep
    ||(M - mu) h / applications||_1 <= ``config.TAYLOR_THETA``."""
    uses = np.bincount(step_kind, minlength=len(steps))
    kind = int(uses.argmax()) if uses.size else -1
    if kind < 0 or uses[kind] < config.PROPAGATOR_MIN_USES or n_sub[kind] < 0 or not steps[kind] > 0:
        return None
    if float(M.shape[0]) * columns * uses[kind] < config.PROPAGATOR_MIN_WORK:
        return None
    B, mu = shifted(M)
    applications = int(substeps(one_norm(B), [steps[kind]])[0])
    P, _ = sparse_propagator(B, mu, steps[kind] / applications)
    return None if P is None else (kind, P, applications)


def check_status(status, k):
    if status == NO_CONVERGENCE:
        raise SolverError(
            f"the Taylor series of e^(M dt) did not converge within config.TAYLOR_MAX_TERMS terms at output "
            f"{k}; lower config.TAYLOR_THETA or use method='rk45'"
        )
    if status == NOT_FINITE:
        raise SolverError(f"the state became non-finite at output {k}; is the network unstable?")
