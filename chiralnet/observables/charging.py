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

import dataclasses
import math

import numpy as np

from .. import config
from ..checks import array, count, flag, number
from ..linalg.stability import strong_blocks
from ..gaussian import is_general_model
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


# ---------------------------------------------------------------------------------------------
# The time rule: a State is at state.time, output times are absolute, a run starts where its state is.


def start_state(model, own, state0, where):
    """(state in the model's cell order, the time t0 it is at): ``state0`` or the network's own ``own``.

    Internal propagation always calls ``simulate(model, [t0, ...], state0=state)`` with the first output
    time at the state's own time, so nothing here moves a state in time. (A steady state of chiralnet
    before the time rule sat at ``time = inf``: it is read at t = 0, where the steady state now sits.)"""
    from ..model import State

    if state0 is None:
        state = own
    elif not isinstance(state0, State):
        raise ChiralnetError(f"{where}: state0 must be a chiralnet.State (e.g. result.final_state or "
                             f"steady_state(G).state), got {type(state0).__name__}")
    else:
        state = state0.for_cells(model.cells)
    if hasattr(state, "in_frame"):  # a State that records its rotating frame: into the model's (the kernels need it)
        state = state.in_frame(model.drive_frequency)
    t0 = float(state.time)
    if not math.isfinite(t0):
        state, t0 = dataclasses.replace(state, time=0.0), 0.0
    return state, t0


def phase_insensitive(model, state, where):
    """(model, state) as the phase-insensitive machinery here takes them: a general Gaussian network (squeezing,
    pumps, parametric links; or a squeezed start) becomes its doubled model of 2N modes b = (a, a^dag) and the
    state (alpha, conj alpha), X = [[Nc, conj Mc], [Mc, Nc^T + I]] (:func:`chiralnet.gaussian.doubled_model`):
    its battery energy (the first N modes; the copies have omega = 0), steady state and stored power are those
    of the general network, exactly. Shaped drives are refused (no steady state, no closed forms)."""
    from ..gaussian import doubled_model, doubled_state, general_model, is_general_model

    if not (is_general_model(model) or getattr(state, "Mc", None) is not None):
        return model, state
    gm = general_model(model)
    if gm.time_dependent:
        raise ChiralnetError(f"{where} takes a network with constant drives (it needs the steady state or closed "
                             "forms); this one has time-dependent drives (chiralnet.drives): use the energies of "
                             "chiralnet.simulate over time instead")
    d = doubled_model(gm)
    return d, doubled_state(state, d)


def advance(model, state, dt, method):
    """(battery energy, state) ``dt`` after ``state`` (at ``state.time``), by ``simulate``'s exact solution."""
    from ..solve import simulate

    t = float(state.time)
    if not t + dt > t:
        return _battery(model, state), state
    res = simulate(model, np.array([t, t + dt]), state0=state, method=method, store_amplitudes=False)
    return float(res.battery_energy[-1]), res.final_state


def refine_crossing(model, state_left, t_left, width, target, *, method=None):
    """Bisect the first crossing of ``target`` by the battery energy within (0, width] after
    ``state_left`` (below target, at time ``t_left``), with exact propagation, until the time
    t_left + offset is resolved to machine precision: returns that time (1/omega)."""
    thermal = model.thermal or state_left.Nc is not None
    method = method or _exact_method(model, thermal)
    left = dataclasses.replace(state_left, time=float(t_left))
    lo, hi = 0.0, float(width)
    base = float(t_left)
    while True:
        mid = 0.5 * (lo + hi)
        if base + mid == base + lo or base + mid == base + hi:
            return base + hi
        if advance(model, left, mid, method)[0] >= target:
            hi = mid
        else:
            lo = mid


def slowest_decay(model) -> float:
    """-max Re eig(M) (> 0 for a stable network); dense eigenvalues (small networks only)."""
    return float(-np.linalg.eigvals(model.dense_M()).real.max())


def decay_rate(model) -> float | None:
    """-max Re eig(M) where it is cheap: the diagonal of a cascaded (triangular after reordering) M at any
    size, dense eigenvalues up to ``config.AUTO_DENSE_MAX_CELLS`` x 4 cells; None otherwise (a larger network
    with feedback, whose grid is then not checked)."""
    from ..linalg.cascade import cascade_order

    if cascade_order(model.M) is not None:
        return float(-np.asarray(model.M.diagonal()).real.max())
    if model.n_cells <= 4 * config.AUTO_DENSE_MAX_CELLS:
        return slowest_decay(model)
    return None


def check_steps(model, steps, where) -> int:
    """``steps`` (default ``config.T90_STEPS``): an integer in [2, config.OBSERVABLE_MAX_STEPS], refused
    above it with the cost of the grid."""
    from ..memory import format_bytes

    steps = config.T90_STEPS if steps is None else steps
    n = model.n_cells

    def cost(k):
        return (f"{k:.3g} steps of the exact propagation of {n} cells, and off the batched kernels "
                f"{format_bytes(3 * 8 * (k + 1) * n)} of energies and occupations at the grid's times")

    return count(steps, "steps", where, minimum=2, limit=config.OBSERVABLE_MAX_STEPS,
                 limit_name="OBSERVABLE_MAX_STEPS", cost=cost)


def check_horizon(model, horizon, steps, where) -> float | None:
    """The searched duration after the start (1/omega): a finite number > 0, or None for the default
    ``config.T90_HORIZON_DECAYS`` slowest decay times (then returned as None: the batched kernels take
    their own). Refused when the grid horizon / steps would not resolve the charging (spacing more than
    ``config.OBSERVABLE_MAX_STEP_DECAYS`` slowest decay times), with the largest horizon that does; checked
    where the decay rate is cheap (:func:`decay_rate`: cascaded networks, or small ones)."""
    if horizon is None:
        if model.n_cells > config.DEFAULT_HORIZON_MAX_CELLS:
            raise ChiralnetError(f"{where} on {model.n_cells} cells needs a horizon (1/omega): the default one "
                                 "takes the eigenvalues of M (config.DEFAULT_HORIZON_MAX_CELLS)")
        return None
    horizon = number(horizon, "horizon", where, positive=True)
    rate = decay_rate(model)
    if rate is not None and rate > 0 and horizon / steps * rate > config.OBSERVABLE_MAX_STEP_DECAYS:
        largest = config.OBSERVABLE_MAX_STEP_DECAYS * steps / rate
        raise ChiralnetError(
            f"{where}: horizon = {horizon:.6g} over steps = {steps} spaces the grid {horizon / steps:.3g} apart, "
            f"{horizon / steps * rate:.3g} slowest decay times (1/{rate:.3g}) of M: it would step over the whole "
            f"charging. The largest horizon these steps resolve is {largest:.6g} (config.OBSERVABLE_MAX_STEP_DECAYS "
            f"= {config.OBSERVABLE_MAX_STEP_DECAYS}); give a shorter horizon or more steps")
    return horizon


def check_steady(steady, model, where):
    """``steady`` (a SteadyState of this model's cells, or None: solved here)."""
    from ..results import SteadyState
    from ..solve import steady_state

    if steady is None:
        return steady_state(model)
    if not isinstance(steady, SteadyState):
        raise ChiralnetError(f"{where}: steady must be a SteadyState (chiralnet.steady_state(G)), got "
                             f"{type(steady).__name__}")
    if set(steady.cells) != set(model.cells):
        raise ChiralnetError(f"{where}: steady belongs to another network (its cells differ); pass "
                             "steady_state(G) of this network")
    return steady


def default_horizon(model) -> float:
    return config.T90_HORIZON_DECAYS / slowest_decay(model)


def time_to_fraction(G_or_model, fraction: float = FRACTION, *, state0=None, steady=None, horizon=None,
                     steps: int | None = None) -> float | None:
    """First time (1/omega) the battery energy reaches ``fraction`` of its steady value, searched from the
    start state's time t0 over [t0, t0 + horizon]; None if not within the horizon. Exact (see the module
    docstring).

    Parameters
    ----------
    G_or_model : networkx.DiGraph or Model
    fraction : float
        In (0, 1]; 0.9 gives ``time_to_90``.
    state0 : State, optional
        The state the search starts from, at ``state0.time`` = t0 (default: the network's own initial state
        at t0 = 0). It is passed to :func:`chiralnet.simulate` as it is; the time returned is absolute
        (>= t0).
    steady : SteadyState, optional
        Its steady state, when already solved.
    horizon : float, optional
        Length of the searched interval (1/omega), finite and > 0 (default ``config.T90_HORIZON_DECAYS``
        slowest decay times of M); refused when horizon / steps exceeds
        ``config.OBSERVABLE_MAX_STEP_DECAYS`` slowest decay times (the grid would not resolve the charging).
    steps : int
        Grid intervals over the horizon before the bisection, in [2, ``config.OBSERVABLE_MAX_STEPS``].

    Raises
    ------
    ChiralnetError
        A fraction outside (0, 1], a horizon that is not a finite positive number or that the grid does not
        resolve, steps that are not an integer >= 2 or above the limit (the message gives the cost and the
        largest value that fits).
    NoSteadyStateError
        When the network has no steady state.

    Examples
    --------
    >>> import chiralnet as cn
    >>> round(time_to_fraction(cn.two_cell(gamma=0.01, kappa_a=0.1, kappa_b=0.003, optimal=True)), 4)
    1268.033
    """
    from ..solve import simulate
    from ..solve.base import model_and_state

    where = "time_to_fraction"
    fraction = number(fraction, "fraction", where)
    if not 0 < fraction <= 1:
        raise ChiralnetError(f"{where}: fraction must be in (0, 1], got {fraction!r}")
    model, own = model_and_state(G_or_model)
    state, t0 = start_state(model, own, state0, where)
    if steady is not None or is_general_model(model) or state.Mc is not None:  # checked before doubling
        steady = check_steady(steady, model, where)
    model, state = phase_insensitive(model, state, where)
    steps = check_steps(model, steps, where)
    horizon = check_horizon(model, horizon, steps, where)
    thermal = model.thermal or state.Nc is not None
    if not thermal and model.n_cells <= config.BATCH_MAX_CELLS:
        found = _kernel_time(model, state, fraction, horizon, steps)
        return None if found is None else t0 + found
    if steady is None:
        steady = check_steady(steady, model, where)
    target = fraction * steady.battery_energy
    if _battery(model, state) >= target:
        return t0
    horizon = default_horizon(model) if horizon is None else horizon
    method = _exact_method(model, thermal)
    grid = t0 + np.linspace(0.0, float(horizon), int(steps) + 1)
    run = simulate(model, grid, state0=state, method=method, store_amplitudes=False)
    hit = np.flatnonzero(run.battery_energy >= target)
    if hit.size == 0:
        return None
    k = int(hit[0])
    left = state if k == 1 else simulate(model, grid[:k], state0=state, method=method,
                                         store_amplitudes=False).final_state
    h = grid[k] - grid[k - 1]
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
    stay = flag(stay, "stay", "charging_time")
    target = number(target, "target", "charging_time")
    fraction = number(fraction, "fraction", "charging_time")
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
    t = array(times, "times", "charging_time")
    e = array(energy, "energy", "charging_time")
    if t.ndim != 1 or e.shape != t.shape:
        raise ChiralnetError(f"charging_time: times and energy must be 1-D arrays of one length, got shapes "
                             f"{t.shape} and {e.shape}")
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
    """The time (1/omega) from which the battery energy of ``result`` stays at or above ``fraction`` of its
    steady value up to the last output time, to solver precision; None when it ends below that level.

    The output samples bracket the last upward crossing (between the last sample below the level and the
    next one); the network is then propagated exactly (:func:`chiralnet.simulate`, exact methods) from the
    state at that sample: 64 sub-intervals find the last sign change inside the bracket and Brent's method
    solves E_B(t) = level on it to a few ulp of t. A dip below the level and back between two samples
    that the sub-intervals also miss is not seen (sample the run more finely). When every sample is
    above the level the first output time is returned (the run says nothing about earlier times).

    Parameters
    ----------
    G_or_model : networkx.DiGraph or Model
        The network ``result`` was simulated from (constant drives: it needs a steady state).
    result : SimulationResult
        ``simulate(G_or_model, times, state0=state0)``.
    fraction : float
        In (0, 1].
    state0 : State, optional
        The state ``result`` started from (default: the network's own at t = 0). The state at the
        bracketing sample is recomputed from it, and its battery energy must match the result's there
        (relative 1e-6): a result of another network or start state is refused, not refined wrongly.
    steady : SteadyState, optional

    Examples
    --------
    >>> import numpy as np, chiralnet as cn
    >>> G = cn.two_cell()
    >>> res = cn.simulate(G, np.linspace(0.0, 2000.0, 21))
    >>> round(time_staying_above(G, res), 6)
    219.180169
    """
    from scipy.optimize import brentq

    from ..results import SimulationResult
    from ..solve import simulate
    from ..solve.base import model_and_state

    where = "time_staying_above"
    if not isinstance(result, SimulationResult):
        raise ChiralnetError(f"{where} takes a SimulationResult (simulate(G, times)), got {type(result).__name__}")
    fraction = number(fraction, "fraction", where)
    if not 0 < fraction <= 1:
        raise ChiralnetError(f"{where}: fraction must be in (0, 1], got {fraction!r}")
    model, own = model_and_state(G_or_model)
    if not set(result.cells) <= set(model.cells):
        raise ChiralnetError(f"{where}: the result belongs to another network (cells {list(result.cells)[:5]} "
                             f"are not all cells of this one)")
    state, t0 = start_state(model, own, state0, where)
    steady = check_steady(steady, model, where)
    model, state = phase_insensitive(model, state, where)
    target = fraction * steady.battery_energy
    t, e, k = _bracket(result.times, result.battery_energy, target, True)
    if k is None:
        return None
    if k == 0:
        return float(t[0])
    thermal = model.thermal or state.Nc is not None
    method = _exact_method(model, thermal)
    if t[k - 1] < t0:
        raise ChiralnetError(f"{where}: the result has output times before state0.time = {t0}: it was not "
                             "simulated from this state0; pass the state it started from")
    left = state if t[k - 1] == t0 else simulate(model, np.array([t0, t[k - 1]]), state0=state, method=method,
                                                 store_amplitudes=False).final_state
    scale = max(abs(e[k - 1]), abs(target), 1e-300)
    if abs(_battery(model, left) - e[k - 1]) > 1e-6 * scale:
        raise ChiralnetError(f"{where}: the result's battery energy at t = {t[k - 1]:.6g} ({e[k - 1]:.10g}) is not "
                             f"that of this network from this state0 ({_battery(model, left):.10g}): pass the "
                             "network and the state0 the result was simulated with")
    left = dataclasses.replace(left, time=float(t[k - 1]))
    sub = t[k - 1] + np.linspace(0.0, t[k] - t[k - 1], 65)
    run = simulate(model, sub, state0=left, method=method, store_amplitudes=False)
    below = np.flatnonzero(run.battery_energy[:-1] < target)
    if below.size == 0:
        return float(t[k - 1])
    j = int(below[-1])
    a = left if j == 0 else simulate(model, sub[:j + 1], state0=left, method=method,
                                     store_amplitudes=False).final_state
    a = dataclasses.replace(a, time=float(sub[j]))

    def f(x):
        return advance(model, a, x, method)[0] - target

    width = sub[j + 1] - sub[j]
    if f(width) < 0:  # the sub-grid's last point and the sample disagree by rounding: the sample's time
        return float(t[k])
    eps = np.finfo(float).eps
    dt = brentq(f, 0.0, width, xtol=4 * eps * abs(sub[j + 1]), rtol=4 * eps)
    return float(sub[j] + dt)
