"""Time for the battery to charge: the first time its energy reaches a fraction of the steady value.

Exact wherever it is reported (``chiralnet run``, sweeps, :func:`time_to_fraction`): the crossing is
bracketed on a uniform grid of ``steps`` intervals over a horizon, stepped with the exact propagation
alpha(t) = alpha_ss + e^{M t}(alpha_0 - alpha_ss) (and Nc with the exact propagators when the network
is hot), then bisected on the exact propagation until the time is resolved to machine precision.

* Zero temperature and at most :data:`config.BATCH_MAX_CELLS` cells: the batched Numba kernels of
  :mod:`chiralnet.solve.batched` (``steady_batch``, ``time_to_fraction_batch``) with one point, the
  very code a sweep runs, so ``run`` and ``sweep`` give the same number.
* Otherwise (hot baths, thermal start, large sparse networks): the same grid and bisection through
  :func:`chiralnet.simulate` with an exact method (``"exact"`` or ``"exact-sparse"``) from the state
  at the left end of the bracket.

The default horizon is ``config.T90_HORIZON_DECAYS`` slowest decay times of M (-1 / max Re eig M).
"""

from __future__ import annotations

import numpy as np

from .. import config
from ..linalg.stability import strong_blocks
from ..errors import ChiralnetError, NoSteadyStateError

__all__ = ["time_to_fraction", "time_staying_above", "charging_time", "refine_crossing", "FRACTION"]

#: Default fraction of the steady battery energy (time_to_90).
FRACTION = 0.9


def _battery(model, state):
    occ = state.occupations
    return float((model.omega * occ)[model.battery].sum())


def _exact_method(model, thermal):
    from ..solve.exact import exact_fits

    return "exact" if exact_fits(model, np.array([1.0]), None, thermal) and model.n_cells <= 400 else "exact-sparse"


def _energy_after(model, state, dt, method):
    from ..solve import simulate

    res = simulate(model, np.array([0.0, dt]), state0=state, method=method)
    return float(res.battery_energy[-1]), res.final_state


def refine_crossing(model, state_left, t_left, width, target, *, method=None):
    """Bisect the first crossing of ``target`` by the battery energy within (0, width] after
    ``state_left`` (below target, at time ``t_left``), with exact propagation, until the time
    t_left + offset is resolved to machine precision: returns that time (1/omega)."""
    thermal = model.thermal or state_left.Nc is not None
    method = method or _exact_method(model, thermal)
    lo, hi = 0.0, float(width)
    base = float(t_left)
    while True:
        mid = 0.5 * (lo + hi)
        if base + mid == base + lo or base + mid == base + hi:
            return base + hi
        if _energy_after(model, state_left, mid, method)[0] >= target:
            hi = mid
        else:
            lo = mid


def slowest_decay(model) -> float:
    """-max Re eig(M) (> 0 for a stable network); dense eigenvalues (small networks only)."""
    return float(-np.linalg.eigvals(model.dense_M()).real.max())


def time_to_fraction(G_or_model, fraction: float = FRACTION, *, state0=None, steady=None, horizon=None,
                     steps: int | None = None) -> float | None:
    """First time (1/omega) the battery energy reaches ``fraction`` of its steady value; None if not within
    the horizon. Exact (see the module docstring).

    Parameters
    ----------
    G_or_model : networkx.DiGraph or Model
    fraction : float
        In (0, 1]; 0.9 gives ``time_to_90``.
    state0 : State, optional
        The state at t = 0 (default: the network's own initial state; the vacuum for a Model).
    steady : SteadyState, optional
        Its steady state, when already solved.
    horizon : float, optional
        Searched interval [0, horizon] (default ``config.T90_HORIZON_DECAYS`` slowest decay times of M).
    steps : int
        Grid intervals over the horizon before the bisection.

    Raises
    ------
    NoSteadyStateError
        When the network has no steady state.

    Examples
    --------
    >>> import chiralnet as cn
    >>> round(time_to_fraction(cn.two_cell(gamma=0.01, kappa_a=0.1, kappa_b=0.003, optimal=True)), 4)
    1268.033
    """
    steps = config.T90_STEPS if steps is None else steps
    from ..solve import simulate, steady_state
    from ..solve.base import model_and_state

    if not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
        raise ChiralnetError(f"fraction must be a number in (0, 1], got {fraction!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise ChiralnetError(f"steps must be an integer >= 2, got {steps!r}")
    model, own = model_and_state(G_or_model)
    state = own if state0 is None else state0.for_cells(model.cells)
    thermal = model.thermal or state.Nc is not None
    if not thermal and model.n_cells <= config.BATCH_MAX_CELLS:
        return _kernel_time(model, state, fraction, horizon, steps)
    steady = steady or steady_state(model)
    target = fraction * steady.battery_energy
    if _battery(model, state) >= target:
        return 0.0
    if horizon is None:
        if model.n_cells > 2000:
            raise ChiralnetError(f"time_to_fraction on {model.n_cells} cells needs a horizon (1/omega): the "
                                 "default one takes the eigenvalues of M")
        horizon = config.T90_HORIZON_DECAYS / slowest_decay(model)
    method = _exact_method(model, thermal)
    grid = np.linspace(0.0, float(horizon), int(steps) + 1)
    run = simulate(model, grid, state0=state, method=method, store_amplitudes=False)
    hit = np.flatnonzero(run.battery_energy >= target)
    if hit.size == 0:
        return None
    k = int(hit[0])
    left = state if k == 1 else simulate(model, grid[:k], state0=state, method=method,
                                         store_amplitudes=False).final_state
    h = grid[1] - grid[0]
    return float(refine_crossing(model, left, grid[k - 1], h, target, method=method))


def _kernel_time(model, state, fraction, horizon, steps):
    from ..solve import batched as K

    M = np.ascontiguousarray(model.dense_M(), complex)[None]
    n = model.n_cells
    alpha = np.empty((1, n), complex)
    decay = np.empty(1)
    status = np.empty(1, np.int8)
    ptr, idx = strong_blocks(M[0] != 0)
    K.steady_batch(M, np.ascontiguousarray(model.forcing[None], complex), ptr, idx, alpha, decay, status)
    if status[0] != K.OK:
        raise NoSteadyStateError("time_to_fraction: the network has no steady state (an eigenvalue of M has "
                                 "real part >= 0); see chiralnet.check_stability")
    h = np.array([float(horizon) if horizon else config.T90_HORIZON_DECAYS / decay[0]])
    out = np.empty(1)
    st = np.empty(1, np.int8)
    K.time_to_fraction_batch(M, alpha, np.ascontiguousarray(state.alpha[None], complex),
                             np.ascontiguousarray(model.omega[None], float), model.battery, status,
                             float(fraction), h, int(steps), out, st)
    return None if st[0] != K.OK else float(out[0])



def charging_time(times, energy, target: float, fraction: float = FRACTION, *, stay: bool = False) -> float | None:
    """First time at which a sampled ``energy`` reaches ``fraction * target`` (linear interpolation), or None.

    For measured or sampled traces only: the time to 90% of a network is :func:`time_to_fraction`
    (exact). With ``stay=True``: the time from which ``energy`` stays at or above that level up to the
    last sample (an oscillating, reciprocal battery crosses the level early and may fall back below it).

    Parameters
    ----------
    times : array_like (T,)
        Times, 1/omega.
    energy : array_like (T,)
        Energy over time (e.g. the battery total), units of omega.
    target : float
        Reference energy, usually the steady battery energy.
    fraction : float
        Fraction of ``target`` to reach, default 0.9.

    Examples
    --------
    >>> charging_time([0.0, 1.0, 2.0], [0.0, 0.5, 1.0], target=1.0)
    1.8
    >>> charging_time([0, 1, 2, 3, 4], [0.0, 1.0, 0.5, 1.0, 1.0], target=1.0, stay=True)
    2.8
    """
    t, e, k = _bracket(times, energy, fraction * target, stay)
    if k is None:
        return None
    if k == 0:
        return float(t[0])
    level = fraction * target
    t0, t1, e0, e1 = t[k - 1], t[k], e[k - 1], e[k]
    return float(t0 + (level - e0) * (t1 - t0) / (e1 - e0))


def _bracket(times, energy, level, stay):
    """(t, e, k): the first sample k at or above ``level`` (with ``stay``: from which it stays there), or None."""
    t = np.asarray(times, float)
    e = np.asarray(energy, float)
    if not level > 0:
        return t, e, None
    hit = np.flatnonzero(e >= level)
    if hit.size == 0:
        return t, e, None
    k = int(hit[0])
    if stay:
        below = np.flatnonzero(e < level)
        if below.size and below[-1] == e.size - 1:
            return t, e, None
        k = int(below[-1]) + 1 if below.size else 0
    return t, e, k


def time_staying_above(G_or_model, result, fraction: float = FRACTION, *, state0=None, steady=None) -> float | None:
    """The time from which the battery energy of ``result`` stays at or above ``fraction`` of its steady
    value up to the last output time: bracketed by the output samples, refined exactly (bisection on the
    exact propagation from the state at the sample before). None when it ends below that level.

    ``state0`` is the state at t = 0 from which ``result`` was simulated (default: the network's own).
    """
    from ..solve import simulate, steady_state
    from ..solve.base import model_and_state

    model, own = model_and_state(G_or_model)
    state = own if state0 is None else state0.for_cells(model.cells)
    steady = steady or steady_state(model)
    target = fraction * steady.battery_energy
    t, _, k = _bracket(result.times, result.battery_energy, target, True)
    if k is None:
        return None
    if k == 0:
        return float(t[0])
    thermal = model.thermal or state.Nc is not None
    method = _exact_method(model, thermal)
    left = state if t[k - 1] == 0 else simulate(model, np.array([0.0, t[k - 1]]), state0=state, method=method,
                                                 store_amplitudes=False).final_state
    # The last upward crossing in (t[k-1], t[k]]: bisect on "at or above from here to t[k]" is not
    # monotone in general; with one crossing in the interval (the sampling resolves it) it is the first.
    width = t[k] - t[k - 1]
    return float(refine_crossing(model, left, t[k - 1], width, target, method=method))
