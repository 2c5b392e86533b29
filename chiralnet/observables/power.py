"""Charging power and efficiency of the battery, exact (closed forms of the linear moment equations).

With B the battery cells and E_B = sum_{i in B} omega_i (|alpha_i|^2 + Nc_ii):

* Stored power dE_B/dt, from the moment equations at each time (no finite difference)::

      d|alpha_i|^2/dt = 2 Re(conj(alpha_i) (M alpha - i E)_i)
      dNc_ii/dt       = 2 Re(sum_k conj(M_ik) Nc_ki) + Q_ii

  The second needs the rows Nc[B, S] with S = B plus the cells that feed the battery (M[B, k] != 0),
  which a run keeps as the block Nc[S, S] at each output time (|S|^2 numbers per time, never N x N).
* Average power since the start t0 (the start state's time, ``state0.time``; 0 for the network's own
  initial state): (E_B(t) - E_B(t0)) / (t - t0) (= E_B(t)/t from an empty battery at t0 = 0; its limit at
  t = t0 is dE_B/dt(t0)). Every time taken or returned is absolute (the time rule of
  :func:`chiralnet.simulate`): the functions pass ``state0`` on to simulate and never move it in time.
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

import dataclasses

import numpy as np
import scipy.sparse as sp

from .. import config
from ..checks import array, number
from ..linalg.stability import strong_blocks
from ..errors import ChiralnetError, NoSteadyStateError, SolverError
from . import charging

__all__ = ["stored_power", "average_power", "max_average_power", "injected_energy", "efficiency", "PowerPeak"]



class PowerPeak(NamedTuple):
    """The maximum average power (units of omega^2) and the time it is reached (1/omega)."""

    power: float
    time: float


def _model_state(G_or_model, state0, where):
    """(model, start state, its time t0): constant drives only; ``state0`` as the time rule has it."""
    from ..solve.base import model_and_state

    model, own = model_and_state(G_or_model)
    if getattr(model, "time_dependent", False):
        raise ChiralnetError(f"{where}: stored power, average power, injected energy and efficiency take a constant "
                             "drive (closed forms of d alpha/dt = M alpha - iE); this network has time-dependent drives "
                             "(chiralnet.drives): use the energies of chiralnet.simulate over time instead")
    state, t0 = charging.start_state(model, own, state0, where)
    return (*charging.phase_insensitive(model, state, where), t0)


def _doubled(model) -> bool:
    """Whether ``model`` is a general network's doubled model (:func:`charging.phase_insensitive`)."""
    from ..gaussian import Conjugate

    return bool(model.n_cells) and isinstance(model.cells[-1], Conjugate)


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


def _times(times, t0, where):
    """``times`` checked as simulate checks them, and at or after the start state's time ``t0``."""
    from ..results import SimulationResult
    from ..solve.base import check_times

    if isinstance(times, SimulationResult):
        raise ChiralnetError(f"{where} takes a network and times, not a SimulationResult (whose start state it "
                             f"cannot know): pass {where}(G, result.times, state0=<the state the run started "
                             "from>), which integrates the network exactly from that state")
    t = check_times(array(times, "times", where))
    if t[0] < t0:
        raise SolverError(f"{where}: times[0] = {t[0]} is before state0.time = {t0}: times are absolute and the "
                          f"run starts where its state is; give times from {t0} on")
    return t


def _trace(model, state, t0, times, where):
    """Battery energy and stored power (T,) at the absolute ``times`` (>= t0) from ``state`` at t0, exact."""
    from ..solve.base import distinct_steps
    from ..solve import METHODS, simulate

    t = _times(times, t0, where)
    thermal = _thermal(model, state)
    if not thermal:  # simulate, from the state at its own time (t0 first, so either time rule reads it alike)
        lead = t[0] > t0
        run_t = np.r_[t0, t] if lead else t
        run = simulate(model, run_t, state0=state, method=_method(model, run_t - t0, None, False))
        amps = run.amplitudes[1:] if lead else run.amplitudes
        energy = run.battery_energy[1:] if lead else run.battery_energy
        return energy, _coherent_power(model, amps)
    rel = t - t0  # the method contract: times measured from the state the run starts from
    grid = distinct_steps(rel)
    options = {"grid": grid, "store_amplitudes": True}
    bat, S, MBS, posB = _feeding_block(model)
    if t.size * S.size**2 > config.POWER_MAX_BLOCK_ENTRIES:
        raise ChiralnetError(f"{where} of a hot network keeps Nc[S, S] for the {S.size} battery and feeding "
                             f"cells at {t.size} times ({t.size * S.size**2:.3g} numbers > config.POWER_MAX_BLOCK_ENTRIES); "
                             "ask for fewer times")
    options["block"] = S
    trace = METHODS[_method(model, rel, grid, thermal)].run(model, state, rel, options)
    energy = trace.energies[:, model.battery].sum(axis=1)
    power = _coherent_power(model, trace.amplitudes) + _noise_power(model, trace.battery_block, MBS, posB)
    return energy, power


def stored_power(G_or_model, times, *, state0=None) -> np.ndarray:
    """The battery's stored power dE_B/dt (units of omega^2) at each time, exact (module docstring).

    Parameters
    ----------
    G_or_model : networkx.DiGraph or Model
    times : array_like (T,)
        Absolute output times (1/omega), strictly increasing, at or after the start state's time. Not a
        SimulationResult: a result does not say which state it started from (pass ``result.times`` and
        that state); a hot run also keeps only Nc[B, B], and the noise part needs Nc[B, k] for the cells k
        that feed the battery, which this integration keeps.
    state0 : State, optional
        The state the run starts from, at ``state0.time`` (default: the network's own initial state at
        t = 0), passed on to :func:`chiralnet.simulate` as it is.

    Returns
    -------
    ndarray (T,)

    Examples
    --------
    >>> import numpy as np, chiralnet as cn
    >>> np.round(stored_power(cn.two_cell(), [0.0, 50.0, 500.0]), 6)   # empty, charging, nearly full
    array([0.      , 0.344725, 0.000742])
    """
    model, state, t0 = _model_state(G_or_model, state0, "stored_power")
    return _trace(model, state, t0, times, "stored_power")[1]


def average_power(G_or_model, times, *, state0=None) -> np.ndarray:
    """Average charging power since the start, (E_B(t) - E_B(t0)) / (t - t0) (units of omega^2), at each
    time; at t = t0 its limit dE_B/dt(t0). t0 is the start state's time (``state0.time``, 0 by default).

    Parameters
    ----------
    G_or_model : networkx.DiGraph or Model
    times : array_like (T,)
        Absolute output times (1/omega), strictly increasing, >= t0; not a SimulationResult (as
        :func:`stored_power`: pass ``result.times`` and the state the run started from).
    state0 : State, optional
        The state the run starts from, passed on to :func:`chiralnet.simulate` as it is.

    Examples
    --------
    >>> import numpy as np, chiralnet as cn
    >>> np.round(average_power(cn.two_cell(), [100.0, 3000.0]), 6)
    array([0.300107, 0.02496 ])
    """
    model, state, t0 = _model_state(G_or_model, state0, "average_power")
    e0 = float((model.omega * state.occupations)[model.battery].sum())
    energy, power = _trace(model, state, t0, times, "average_power")
    t = np.asarray(times, float)
    zero = t == t0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(zero, power, (energy - e0) / np.where(zero, 1.0, t - t0))


def max_average_power(G_or_model, *, state0=None, horizon=None, steps: int | None = None) -> PowerPeak | None:
    """The largest average power since the start, (E_B(t) - E_B(t0))/(t - t0) over t in (t0, t0 + horizon],
    and the time it is reached: a :class:`PowerPeak` (power in omega^2, absolute time in 1/omega), or None
    when the average power still rises at the horizon. Located exactly: the grid brackets it, root finding
    on the exact propagation solves (t - t0) dE_B/dt = E_B(t) - E_B(t0) to the last bits of t (module
    docstring).

    Parameters
    ----------
    G_or_model : networkx.DiGraph or Model
    state0 : State, optional
        The state at the start t0 = ``state0.time`` (default: the network's own at t0 = 0), passed on to
        :func:`chiralnet.simulate` as it is.
    horizon : float, optional
        Length of the searched interval after t0 (1/omega), finite and > 0 (default
        ``config.T90_HORIZON_DECAYS`` slowest decay times of M, as time_to_90); refused when horizon / steps
        is more than ``config.OBSERVABLE_MAX_STEP_DECAYS`` slowest decay times (the grid would step over the
        charging), with the largest horizon the steps resolve.
    steps : int
        Grid intervals over the horizon, in [2, ``config.OBSERVABLE_MAX_STEPS``] (default
        ``config.T90_STEPS``); more is refused before any work, with its cost.

    Raises
    ------
    ChiralnetError
        A horizon or steps as above, time-dependent drives.

    Examples
    --------
    >>> import chiralnet as cn
    >>> peak = max_average_power(cn.two_cell())
    >>> round(peak.power, 6), round(peak.time, 3)
    (0.345589, 149.468)
    """
    from ..solve import simulate

    where = "max_average_power"
    model, state, t0 = _model_state(G_or_model, state0, where)
    steps = charging.check_steps(model, steps, where)
    horizon = charging.check_horizon(model, horizon, steps, where)
    thermal = _thermal(model, state)
    if not thermal and model.n_cells <= config.BATCH_MAX_CELLS:
        peak = _kernel_peak(model, state, horizon, steps)
        return None if peak is None else PowerPeak(peak.power, t0 + peak.time)
    h_total = charging.default_horizon(model) if horizon is None else horizon
    rel = np.linspace(0.0, h_total, int(steps) + 1)
    grid = t0 + rel
    method = _method(model, rel, None, thermal)
    e0, p0 = _state_energy_power(model, state)
    run = simulate(model, grid, state0=state, method=method, store_amplitudes=False)
    f = np.empty(grid.size)
    f[0] = p0
    f[1:] = (run.battery_energy[1:] - e0) / rel[1:]
    k = int(np.argmax(f))
    if k == grid.size - 1:
        return None
    if k == 0:
        return PowerPeak(float(p0), t0)
    h = rel[1] - rel[0]
    left = state if k == 1 else simulate(model, grid[:k], state0=state, method=method,
                                         store_amplitudes=False).final_state
    left = dataclasses.replace(left, time=float(grid[k - 1]))
    base = rel[k - 1]

    def at(dt):
        s = left if dt == 0 else charging.advance(model, left, dt, method)[1]
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
    return PowerPeak(float((e - e0) / (base + dt)), float(t0 + base + dt))


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
    """Energy the drive injects from the start t0 to ``t``, int_t0^t P_in dt (units of omega), exact:
    -2 omega_L Im(conj(E) . M^{-1}(alpha(t) - alpha(t0) + i E (t - t0))).

    ``t`` is an absolute time (1/omega), finite and >= t0 = ``state0.time`` (0 for the network's own
    initial state); ``state0`` is passed on to :func:`chiralnet.simulate` as it is.

    Examples
    --------
    >>> import chiralnet as cn
    >>> round(injected_energy(cn.two_cell(), 1000.0), 4)
    886.9659
    """
    from ..solve import simulate

    model, state, t0 = _model_state(G_or_model, state0, "injected_energy")
    t = number(t, "t", "injected_energy")
    if not t >= t0:
        raise ChiralnetError(f"injected_energy: t = {t!r} is before the start state's time {t0} (1/omega); "
                             f"give a time >= {t0}")
    if t == t0:
        return 0.0
    end = simulate(model, np.array([t0, t]), state0=state,
                   method=_method(model, np.array([t - t0]), None, False)).final_state
    return _injected(model, state, end, t - t0)


def _injected(model, start, end, t):
    """int P_in dt over ``t`` from State ``start`` to ``end`` (module docstring); on a doubled general model
    the pumps' and parametric links' work too (:func:`_injected_general`)."""
    import scipy.sparse.linalg as spla

    if _doubled(model):
        return _injected_general(model, start, end, t)
    a0, aT = start.alpha, end.alpha
    rhs = aT - a0 - model.forcing * t
    x = spla.spsolve(sp.csc_array(model.M), rhs) if model.is_sparse else np.linalg.solve(model.M, rhs)
    return float(-2.0 * model.drive_frequency * (np.conj(model.drive) * x).imag.sum())


def efficiency(G_or_model, *, state0=None, steady=None, fraction: float = charging.FRACTION, horizon=None,
               steps: int | None = None, t90: float | None = None) -> float | None:
    """Charging efficiency W_B(t_90) / int_t0^{t_90} P_in dt (module docstring); None when the battery does
    not reach ``fraction`` of its steady energy within the horizon, NaN when it starts there (t_90 = t0:
    no work injected, the ratio 0/0 is undefined).

    Parameters
    ----------
    G_or_model : networkx.DiGraph or Model
    state0 : State, optional
        The start, at t0 = ``state0.time`` (default: the network's own at t0 = 0).
    steady : SteadyState, optional
    fraction, horizon, steps
        As :func:`chiralnet.observables.time_to_fraction` (checked the same way).
    t90 : float, optional
        The (absolute) time to ``fraction``, when already known: finite and >= t0.

    Examples
    --------
    >>> import chiralnet as cn
    >>> round(efficiency(cn.two_cell()), 6)      # the seed paper's pair: 42% of the drive's work stored
    0.418557
    """
    from ..solve import simulate

    where = "efficiency"
    model, state, t0 = _model_state(G_or_model, state0, where)
    thermal = _thermal(model, state)
    if t90 is None:
        doubled = _doubled(model)  # a general network: time_to_fraction doubles it itself (steady has N cells)
        t90 = charging.time_to_fraction(G_or_model if doubled else model, fraction,
                                        state0=state0 if doubled else state, steady=steady, horizon=horizon,
                                        steps=steps)
    else:
        t90 = number(t90, "t90", where)
        if not t90 >= t0:
            raise ChiralnetError(f"{where}: t90 = {t90!r} is before the start state's time {t0}")
    if t90 is None:
        return None
    if t90 == t0:
        return float("nan")
    duration = t90 - t0
    if not thermal and model.n_cells <= config.BATCH_MAX_CELLS:
        K, M, b, alpha, decay, status, a0, w = _kernel_setup(model, state)
        out = np.empty(1)
        K.efficiency_batch(M, b, np.array([model.drive_frequency]), alpha, a0, w, model.battery, status,
                           np.array([float(duration)]), out)
        return float(out[0])
    end = simulate(model, np.array([t0, t90]), state0=state,
                   method=_method(model, np.array([duration]), None, thermal)).final_state
    from .work import gaussian_ergotropy

    from ..gaussian import undoubled_moments
    from .gaussian import gaussian_ergotropy_squeezed

    bat = np.flatnonzero(model.battery)
    if _doubled(model):  # a general network: squeezing counts in the ergotropy
        alpha, Nc, Mc = undoubled_moments(end.alpha, end.dense_Nc())
        ix = np.ix_(bat, bat)
        work = float(gaussian_ergotropy_squeezed(model.omega[bat], alpha[bat], Nc[ix], Mc[ix]))
    elif end.Nc is None:
        work = float((model.omega[bat] * np.abs(end.alpha[bat]) ** 2).sum())
    else:
        work = float(gaussian_ergotropy(model.omega[bat], end.alpha[bat], np.asarray(end.Nc)[np.ix_(bat, bat)]))
    return work / _injected(model, state, end, duration)


def _injected_general(model, start, end, t):
    """The work of every time-dependent Hamiltonian term of a general network over ``t`` (1/omega), from the
    doubled model's States ``start`` and ``end`` (b = (a, a^dag), X = <db^dag db^T>), exact:

        W = -2 omega_L Im( conj(E) . int alpha dt + sum_ij conj(G_ij) int <a_i a_j> dt )

    (coherent drives; pumps G_ii and parametric links G_uv = G_vu, each driven at 2 omega_L in the lab frame,
    docs/theory/gaussian.md). int b dt = M2^-1 (b(t) - b(0) - f t), f = -i E2; the raw second moments
    Z = conj(b) b^T + X obey dZ/dt = conj(M2) Z + Z M2^T + Q2 + conj(f) b^T + conj(b) f^T, so their integral Y
    solves the Sylvester equation conj(M2) Y + Y M2^T = Z(t) - Z(0) - Q2 t - conj(f) (int b)^T - conj(int b) f^T,
    and int <a_i a_j> dt = Y[N + i, j]."""
    M2 = model.dense_M()
    n = model.n_cells // 2
    f = model.forcing
    if not np.linalg.eigvals(M2).real.max() < 0:
        raise ChiralnetError("injected_energy of a general Gaussian network integrates its moments in closed form, "
                             "which needs a decaying network (every eigenvalue of the drift with negative real part; "
                             "see chiralnet.check_stability)")
    b0, b1 = start.alpha, end.alpha
    Ib = np.linalg.solve(M2, b1 - b0 - f * t)
    Z0 = np.outer(np.conj(b0), b0) + start.dense_Nc()
    Z1 = np.outer(np.conj(b1), b1) + end.dense_Nc()
    Q2 = np.zeros_like(M2) if model.Q is None else np.asarray(model.dense_Q(), complex)
    rhs = Z1 - Z0 - Q2 * t - np.outer(np.conj(f), Ib) - np.outer(np.conj(Ib), f)
    import scipy.linalg as la

    Y = la.solve_sylvester(np.conj(M2), M2.T, rhs)
    G = 1j * M2[:n, n:]  # M2 = [[M, -iG], [i conj G, conj M]]
    E = model.drive[:n]
    return float(-2.0 * model.drive_frequency * (np.vdot(E, Ib[:n]) + (np.conj(G) * Y[n:, :n]).sum()).imag)
