"""Charging power and efficiency of the battery, exact (closed forms of the linear moment equations).

With B the battery cells and E_B = sum_{i in B} omega_i (|alpha_i|^2 + Nc_ii):

* Stored power dE_B/dt, from the moment equations at each time (no finite difference)::

      d|alpha_i|^2/dt = 2 Re(conj(alpha_i) (M alpha - i E)_i)
      dNc_ii/dt       = 2 Re(sum_k conj(M_ik) Nc_ki) + Q_ii

  The second needs the rows Nc[B, S] with S = B plus the cells that feed the battery (M[B, k] != 0),
  which a run keeps as the block Nc[S, S] at each output time (|S|^2 numbers per time, never N x N).
* Average power since t = 0: (E_B(t) - E_B(0)) / t (= E_B(t)/t from an empty battery; its limit at t = 0
  is dE_B/dt(0)).
* Maximum average power: the largest (E_B(t) - E_B(0))/t over t and the time it is reached. At an interior
  maximum the derivative (t P(t) - E_B(t) + E_B(0)) / t^2 vanishes: the stored power equals the average
  power there. The grid of ``steps`` intervals over the horizon (the time_to_90 grid) brackets the largest
  grid value; the root of g(t) = t P(t) - (E_B(t) - E_B(0)) next to it is then found on the exact
  propagation from the state at the bracket's left end, to the last bits of the time (not an argmax on
  the grid): bisection in the batched kernel, Brent's method (fewer runs) on the general path. With
  several local maxima (an oscillating, reciprocal battery) it is the largest on the grid.
* Injected energy: int_0^T P_in dt with P_in = -2 omega_L Im(conj(E) . alpha) linear in alpha, and
  d alpha/dt = M alpha - i E, so int_0^T alpha dt = M^{-1} (alpha(T) - alpha(0) + i E T) exactly (one
  linear solve, the same as alpha_ss T + M^{-1}(e^{MT} - I)(alpha_0 - alpha_ss)).
* Charging efficiency: W_B(t_90) / int_0^{t_90} P_in dt with t_90 the exact time to 90%
  (:func:`chiralnet.observables.time_to_fraction`) and W_B the collective (Gaussian) ergotropy of the
  battery cells at t_90 (the stored energy at zero temperature). From an empty battery with resonant
  cells it lies in [0, 1]: the drive's energy is stored or lost. P_in counts omega_L per photon and E_B
  omega_i per photon, so a battery detuned above the drive can exceed 1 (the rotating-wave coupling
  supplies the difference), as can a hot, detuned network whose correlated noise carries ergotropy.

Zero temperature and at most :data:`~chiralnet.observables.config.BATCH_MAX_CELLS` cells:
``max_average_power`` and ``efficiency`` run the batched Numba kernels of :mod:`chiralnet.solve.batched`
with one point (the code a sweep runs); otherwise the exact methods of :func:`chiralnet.simulate`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from .. import config
from ..linalg.stability import strong_blocks
from ..errors import ChiralnetError, NoSteadyStateError
from . import charging

__all__ = ["stored_power", "average_power", "max_average_power", "injected_energy", "efficiency", "PowerPeak"]



class PowerPeak(NamedTuple):
    """The maximum average power (units of omega^2) and the time it is reached (1/omega)."""

    power: float
    time: float


def _model_state(G_or_model, state0):
    from ..solve.base import model_and_state

    model, own = model_and_state(G_or_model)
    if getattr(model, "time_dependent", False):
        raise ChiralnetError("stored power, average power, injected energy and efficiency take a constant drive "
                             "(closed forms of d alpha/dt = M alpha - iE); this network has time-dependent drives "
                             "(chiralnet.drives): use the energies of chiralnet.simulate over time instead")
    return model, (own if state0 is None else state0.for_cells(model.cells))


def _thermal(model, state) -> bool:
    return model.thermal or state.Nc is not None


def _rows(model, idx):
    """M[idx, :] as a CSR array (sparse models) or dense rows."""
    return model.M[idx] if model.is_sparse else model.M[idx, :]


def _feeding_block(model):
    """(bat (B,), S (|S|,), MBS (B, |S|) dense, posB (B,)): S = battery cells then the cells feeding them."""
    bat = np.flatnonzero(model.battery)
    rows = _rows(model, bat)
    cols = np.unique(rows.nonzero()[1]) if model.is_sparse else np.flatnonzero(np.any(rows != 0, axis=0))
    S = np.r_[bat, np.setdiff1d(cols, bat)].astype(np.int64)
    MBS = rows[:, S].toarray() if model.is_sparse else rows[:, S]
    return bat, S, np.asarray(MBS, complex), np.arange(bat.size)


def _coherent_power(model, alpha):
    """2 sum_B omega_i Re(conj(alpha_i) (M alpha - iE)_i) for alpha (T, N) -> (T,)."""
    bat = np.flatnonzero(model.battery)
    rows = _rows(model, bat)
    drift = (rows @ alpha.T).T + model.forcing[bat]
    a = alpha[:, bat]
    return 2.0 * (model.omega[bat] * (a.conj() * drift).real).sum(axis=-1)


def _noise_power(model, block, MBS, posB):
    """sum_B omega_i dNc_ii/dt from X = Nc[S, S] (T, |S|, |S|) (S ordered battery first) -> (T,)."""
    bat = np.flatnonzero(model.battery)
    rate = 2.0 * np.einsum("ik,tki->ti", np.conj(MBS), block[:, :, posB]).real
    if model.Q is not None:
        rate = rate + _q_diag(model, bat)
    return (model.omega[bat] * rate).sum(axis=-1)


def _q_diag(model, bat):
    return np.asarray(model.Q.diagonal() if sp.issparse(model.Q) else np.diagonal(model.Q))[bat].real


def _state_energy_power(model, state):
    """(E_B, dE_B/dt) of one State (full alpha and Nc)."""
    a = state.alpha[None]
    e = float((model.omega * state.occupations)[model.battery].sum())
    p = float(_coherent_power(model, a)[0])
    if state.Nc is not None or model.Q is not None:
        bat = np.flatnonzero(model.battery)
        Nc = state.dense_Nc()
        rows = _rows(model, bat)
        # sum_k conj(M_ik) Nc_ki for i in B
        s = (rows.conj().multiply(Nc[:, bat].T)).sum(axis=1) if model.is_sparse else (rows.conj() * Nc[:, bat].T).sum(1)
        rate = 2.0 * np.asarray(s).ravel().real
        if model.Q is not None:
            rate = rate + _q_diag(model, bat)
        p += float((model.omega[bat] * rate).sum())
    return e, p


def _method(model, times, grid, thermal):
    from ..solve.exact import exact_fits

    ok = model.n_cells <= 400 and exact_fits(model, times, grid, thermal)
    return "exact" if ok else "exact-sparse"


def _trace(model, state, times):
    """Battery energy and stored power (T,) at ``times`` (t = 0 is ``state``), exact."""
    from ..solve.base import check_times, distinct_steps
    from ..solve import METHODS

    t = check_times(times)
    thermal = _thermal(model, state)
    grid = distinct_steps(t)
    options = {"grid": grid, "store_amplitudes": True}
    if thermal:
        bat, S, MBS, posB = _feeding_block(model)
        if t.size * S.size**2 > config.POWER_MAX_BLOCK_ENTRIES:
            raise ChiralnetError(f"stored_power of a hot network keeps Nc[S, S] for the {S.size} battery and feeding "
                                 f"cells at {t.size} times ({t.size * S.size**2:.3g} numbers > config.POWER_MAX_BLOCK_ENTRIES); "
                                 "ask for fewer times")
        options["block"] = S
    trace = METHODS[_method(model, t, grid, thermal)].run(model, state, t, options)
    energy = trace.energies[:, model.battery].sum(axis=1)
    power = _coherent_power(model, trace.amplitudes)
    if thermal:
        power = power + _noise_power(model, trace.battery_block, MBS, posB)
    return energy, power


def stored_power(G_or_model, times, *, state0=None) -> np.ndarray:
    """The battery's stored power dE_B/dt (units of omega^2) at each time, exact (module docstring).

    Parameters
    ----------
    G_or_model : networkx.DiGraph or Model
    times : array_like (T,) or SimulationResult
        Times (1/omega) from the state at t = 0, strictly increasing and >= 0; or a result of
        ``simulate(G, times)``, whose amplitudes give the coherent part (zero temperature). A hot run keeps
        Nc[B, B] only and the noise part needs Nc[B, k] for the cells k that feed the battery: pass the
        times instead (``stored_power(G, result.times)`` keeps that block).
    state0 : State, optional
        The state at t = 0 (default: the network's own initial state).

    Returns
    -------
    ndarray (T,)

    Examples
    --------
    >>> import numpy as np, chiralnet as cn
    >>> np.round(stored_power(cn.two_cell(), [0.0, 50.0, 500.0]), 6)   # empty, charging, nearly full
    array([0.      , 0.344725, 0.000742])
    """
    from ..results import SimulationResult

    model, state = _model_state(G_or_model, state0)
    if not isinstance(times, SimulationResult):
        return _trace(model, state, times)[1]
    res = times
    if tuple(res.cells) != tuple(model.cells):
        raise ChiralnetError("stored_power: the result belongs to another network (its cells differ)")
    if res.amplitudes is None:
        raise ChiralnetError("stored_power needs the amplitudes of the run, which simulate(..., store_amplitudes="
                             "False) drops; simulate with store_amplitudes=True (the default) or pass the times")
    power = _coherent_power(model, res.amplitudes)
    hot = res.final_state is not None and res.final_state.Nc is not None
    if hot or model.Q is not None:
        bat, S, MBS, posB = _feeding_block(model)
        if res.battery_fluctuations is None and S.size == bat.size:
            raise ChiralnetError(f"stored_power of a hot run needs the battery block of Nc at each time, which this "
                                 f"result lacks (kept by default for at most config.BATTERY_BLOCK_MAX_CELLS = "
                                 f"{config.BATTERY_BLOCK_MAX_CELLS} battery cells; this battery has {bat.size}): "
                                 "simulate(..., battery_fluctuations=True), or pass the times instead: "
                                 "stored_power(G, result.times) integrates them exactly")
        if S.size > bat.size or res.battery_fluctuations is None:
            outside = [model.cells[k] for k in S[bat.size:]][:5]
            raise ChiralnetError(f"stored_power of a hot run needs Nc[B, k] for the cells {outside} that feed the "
                                 "battery, and a result keeps Nc[B, B] only (result.battery_fluctuations); pass "
                                 "the times instead: stored_power(G, result.times) integrates them exactly")
        power = power + _noise_power(model, res.battery_fluctuations, MBS, posB)
    return power


def average_power(G_or_model, times, *, state0=None) -> np.ndarray:
    """Average charging power (E_B(t) - E_B(0)) / t since t = 0 (units of omega^2), at each time; at t = 0
    its limit dE_B/dt(0). ``times`` as in :func:`stored_power` (a result needs its amplitudes only where
    t = 0 is an output time).

    Examples
    --------
    >>> import numpy as np, chiralnet as cn
    >>> np.round(average_power(cn.two_cell(), [100.0, 3000.0]), 6)
    array([0.300107, 0.02496 ])
    """
    from ..results import SimulationResult

    model, state = _model_state(G_or_model, state0)
    e0 = float((model.omega * state.occupations)[model.battery].sum())
    if isinstance(times, SimulationResult):
        t, energy = np.asarray(times.times, float), times.battery_energy
        zero = t == 0
        p0 = stored_power(model, [0.0], state0=state)[0] if zero.any() else np.nan
    else:
        energy, power = _trace(model, state, times)
        t = np.asarray(times, float)
        zero = t == 0
        p0 = power[zero][0] if zero.any() else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(zero, p0, (energy - e0) / np.where(zero, 1.0, t))


def _horizon(model, horizon, what):
    if horizon is not None:
        if not (isinstance(horizon, (int, float)) and np.isfinite(horizon) and horizon > 0):
            raise ChiralnetError(f"{what}: horizon must be a positive number (1/omega), got {horizon!r}")
        return float(horizon)
    if model.n_cells > 2000:
        raise ChiralnetError(f"{what} on {model.n_cells} cells needs a horizon (1/omega): the default one takes the "
                             "eigenvalues of M")
    return config.T90_HORIZON_DECAYS / charging.slowest_decay(model)


def _check_steps(steps):
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise ChiralnetError(f"steps must be an integer >= 2, got {steps!r}")


def max_average_power(G_or_model, *, state0=None, horizon=None, steps: int | None = None) -> PowerPeak | None:
    """The largest average power (E_B(t) - E_B(0))/t over t in (0, horizon] and the time it is reached:
    a :class:`PowerPeak` (power in omega^2, time in 1/omega), or None when the average power still rises at
    the horizon. Located exactly: the grid brackets it, root finding on the exact propagation solves
    t dE_B/dt = E_B(t) - E_B(0) to the last bits of t (module docstring).

    Parameters
    ----------
    G_or_model : networkx.DiGraph or Model
    state0 : State, optional
        The state at t = 0 (default: the network's own).
    horizon : float, optional
        Searched interval (default ``HORIZON_DECAYS`` slowest decay times of M, as time_to_90).
    steps : int
        Grid intervals over the horizon.

    Examples
    --------
    >>> import chiralnet as cn
    >>> peak = max_average_power(cn.two_cell())
    >>> round(peak.power, 6), round(peak.time, 3)
    (0.345589, 149.468)
    """
    steps = config.T90_STEPS if steps is None else steps
    from ..solve import simulate

    _check_steps(steps)
    model, state = _model_state(G_or_model, state0)
    thermal = _thermal(model, state)
    if not thermal and model.n_cells <= config.BATCH_MAX_CELLS:
        return _kernel_peak(model, state, horizon, steps)
    h_total = _horizon(model, horizon, "max_average_power")
    grid = np.linspace(0.0, h_total, int(steps) + 1)
    method = _method(model, grid, None, thermal)
    e0, p0 = _state_energy_power(model, state)
    run = simulate(model, grid, state0=state, method=method, store_amplitudes=False)
    f = np.empty(grid.size)
    f[0] = p0
    f[1:] = (run.battery_energy[1:] - e0) / grid[1:]
    k = int(np.argmax(f))
    if k == grid.size - 1:
        return None
    if k == 0:
        return PowerPeak(float(p0), 0.0)
    h = grid[1] - grid[0]
    left = state if k == 1 else simulate(model, grid[:k], state0=state, method=method,
                                         store_amplitudes=False).final_state
    base = grid[k - 1]

    def at(dt):
        s = left if dt == 0 else simulate(model, np.array([0.0, dt]), state0=left, method=method,
                                          store_amplitudes=False).final_state
        e, p = _state_energy_power(model, s)
        t = base + dt
        return e, t * p - (e - e0)

    g_lo, g_mid = at(0.0)[1], at(h)[1]
    lo, hi, g_lo, g_hi = (h, 2 * h, g_mid, at(2 * h)[1]) if g_mid > 0 else (0.0, h, g_lo, g_mid)
    if g_lo > 0 and g_hi < 0:  # Brent's method (each evaluation is a run): to the last bits of t
        from scipy.optimize import brentq

        dt = brentq(lambda x: at(x)[1], lo, hi, xtol=4 * np.finfo(float).eps * (base + hi), rtol=4 * np.finfo(float).eps)
    else:  # no sign change (g = 0 at the bracket's end): that end
        dt = lo if g_lo == 0 else hi
    e = at(dt)[0]
    return PowerPeak(float((e - e0) / (base + dt)), float(base + dt))


def _kernel_setup(model, state):
    from ..solve import batched as K

    M = np.ascontiguousarray(model.dense_M(), complex)[None]
    alpha = np.empty((1, model.n_cells), complex)
    decay = np.empty(1)
    status = np.empty(1, np.int8)
    ptr, idx = strong_blocks(M[0] != 0)
    b = np.ascontiguousarray(model.forcing[None], complex)
    K.steady_batch(M, b, ptr, idx, alpha, decay, status)
    if status[0] != K.OK:
        raise NoSteadyStateError("the network has no steady state (an eigenvalue of M has real part >= 0); see "
                                 "chiralnet.check_stability")
    a0 = np.ascontiguousarray(state.alpha[None], complex)
    w = np.ascontiguousarray(model.omega[None], float)
    return K, M, b, alpha, decay, status, a0, w


def _kernel_peak(model, state, horizon, steps):
    K, M, b, alpha, decay, status, a0, w = _kernel_setup(model, state)
    h = np.array([float(horizon) if horizon else config.T90_HORIZON_DECAYS / decay[0]])
    power, time, st = np.empty(1), np.empty(1), np.empty(1, np.int8)
    K.max_average_power_batch(M, b, alpha, a0, w, model.battery, status, h, int(steps), power, time, st)
    return None if st[0] != K.OK else PowerPeak(float(power[0]), float(time[0]))


def injected_energy(G_or_model, t: float, *, state0=None) -> float:
    """Energy the drive injects over [0, t], int_0^t P_in dt (units of omega), exact:
    -2 omega_L Im(conj(E) . M^{-1}(alpha(t) - alpha(0) + i E t)).

    Examples
    --------
    >>> import chiralnet as cn
    >>> round(injected_energy(cn.two_cell(), 1000.0), 4)
    886.9659
    """
    from ..solve import simulate

    model, state = _model_state(G_or_model, state0)
    t = float(t)
    if not (np.isfinite(t) and t >= 0):
        raise ChiralnetError(f"injected_energy: t must be a finite time >= 0 (1/omega), got {t!r}")
    if t == 0:
        return 0.0
    end = simulate(model, np.array([0.0, t]), state0=state,
                   method=_method(model, np.array([t]), None, False)).final_state.alpha
    return _injected(model, state.alpha, end, t)


def _injected(model, a0, aT, t):
    import scipy.sparse.linalg as spla

    rhs = aT - a0 - model.forcing * t
    x = spla.spsolve(sp.csc_array(model.M), rhs) if model.is_sparse else np.linalg.solve(model.M, rhs)
    return float(-2.0 * model.drive_frequency * (np.conj(model.drive) * x).imag.sum())


def efficiency(G_or_model, *, state0=None, steady=None, fraction: float = charging.FRACTION, horizon=None,
               steps: int | None = None, t90: float | None = None) -> float | None:
    """Charging efficiency W_B(t_90) / int_0^{t_90} P_in dt (module docstring); None when the battery does
    not reach ``fraction`` of its steady energy within the horizon, NaN when it starts there (t_90 = 0).

    Parameters
    ----------
    G_or_model : networkx.DiGraph or Model
    state0 : State, optional
    steady : SteadyState, optional
    fraction, horizon, steps
        As :func:`chiralnet.observables.time_to_fraction`.
    t90 : float, optional
        The time to ``fraction``, when already known.

    Examples
    --------
    >>> import chiralnet as cn
    >>> round(efficiency(cn.two_cell()), 6)      # the seed paper's pair: 42% of the drive's work stored
    0.418557
    """
    steps = config.T90_STEPS if steps is None else steps
    from ..solve import simulate

    model, state = _model_state(G_or_model, state0)
    thermal = _thermal(model, state)
    if t90 is None:
        t90 = charging.time_to_fraction(model, fraction, state0=state, steady=steady, horizon=horizon, steps=steps)
    if t90 is None:
        return None
    if t90 == 0:
        return float("nan")
    if not thermal and model.n_cells <= config.BATCH_MAX_CELLS:
        K, M, b, alpha, decay, status, a0, w = _kernel_setup(model, state)
        out = np.empty(1)
        K.efficiency_batch(M, b, np.array([model.drive_frequency]), alpha, a0, w, model.battery, status,
                           np.array([float(t90)]), out)
        return float(out[0])
    end = simulate(model, np.array([0.0, t90]), state0=state,
                   method=_method(model, np.array([t90]), None, thermal)).final_state
    from .work import gaussian_ergotropy

    bat = np.flatnonzero(model.battery)
    if end.Nc is None:
        work = float((model.omega[bat] * np.abs(end.alpha[bat]) ** 2).sum())
    else:
        work = float(gaussian_ergotropy(model.omega[bat], end.alpha[bat], np.asarray(end.Nc)[np.ix_(bat, bat)]))
    return work / _injected(model, state.alpha, end.alpha, t90)
