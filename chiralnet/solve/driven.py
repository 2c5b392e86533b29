"""Time-dependent drives (:mod:`chiralnet.drives`): linearity splits the amplitudes into parts.

d alpha/dt = M alpha - i E0 - i sum_k A_k e^{-i dw_k t} - i sum_s A_s 1[start_s <= t < stop_s] - i sum_j e_j f_j(t)

is linear in the forcing, so alpha is the sum of

- the constant-drive run from the initial state (the chosen exact method or rk45; it also carries Nc,
  which no drive changes);
- one run per tone, from zero: beta = alpha e^{i dw t} obeys d beta/dt = (M + i dw) beta - i A, a
  constant drive in the tone's own frame, solved by the same exact method (no inversion, so exact at
  resonance too); alpha_tone(t) = e^{-i dw t} beta(t). Far off resonance (|dw| >= 2 ||M||_2) the tone's
  frame would need e^{(M + i dw) t} at phases |dw| t beyond what expm resolves; there the particular
  solution x e^{-i dw t}, (M + i dw) x = i A (well conditioned), plus a run of M from -x is used;
- two runs per square pulse, from zero: the response R to the constant drive A switched on at start,
  minus the same response switched on at stop;
- Gaussian pulses and Python callables: the one adaptive integrator
  (:func:`chiralnet.solve.dopri5.integrate`) on their share from zero, alpha only, with error control on
  ``rtol``/``atol`` and the free 4th-order dense output at the output times. It lands on every pulse's
  centre and the ends of its support and bounds the step there (:func:`drive_steps`), and on a
  callable's declared breakpoints: no feature is stepped over. Gaussians are evaluated inside the
  compiled loop; callables from Python once per stage.

Time t of a drive is absolute: a run that starts at ``t_offset`` (``state0.time``, or a protocol phase's
start) evaluates the drive at t_offset + local time.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .. import config
from ..drives import evaluate_function
from ..errors import SolverError
from ..gaussian import Conjugate
from ..model import Model, State
from .base import Trace
from ..linalg.csr import one_norm
from .dopri5 import OK, STATUS, TOO_MANY_STEPS, System, integrate

__all__ = ["run_driven"]

#: The local error per step is held to SAFETY * (atol + rtol |y|): the global error of the dense output
#: then stays below rtol of the amplitude scale (measured: ~1.4 rtol without it, Gaussian pulse).
SAFETY = 0.2

def drive_steps(d, t_start: float, t_end: float):
    """Where the adaptive integration of schedule ``d`` on [t_start, t_end] must land and how long its
    steps may be: (breaks, windows, h_max, described) for :func:`~chiralnet.solve.dopri5.integrate`.

    - a Gaussian pulse (t0, width) is resolved on its support [t0 - c width, t0 + c width]
      (c = ``config.PULSE_SUPPORT_WIDTHS``): the support's ends and centre are breakpoints and the step
      inside is at most ``config.PULSE_MAX_STEP`` widths;
    - a callable's declared ``breakpoints`` are landed on, its ``max_step`` bounds every step; a callable
      that declares no max_step bounds it by ``config.CALLABLE_MAX_STEP`` (documented; reported).
    """
    breaks, windows = [], []
    c = config.PULSE_SUPPORT_WIDTHS
    for _, _, t0, width in d.pulses:
        lo, hi = t0 - c * width, t0 + c * width
        if hi > t_start and lo < t_end:
            breaks += [lo, t0, hi]
            windows.append((lo, hi, config.PULSE_MAX_STEP * width))
    h_max, source = np.inf, "none"
    for _, _, f, points, step in d.functions:
        breaks += list(points)
        if step is None:
            step, source = config.CALLABLE_MAX_STEP, "config.CALLABLE_MAX_STEP"
        elif source == "none":
            source = "declared"
        h_max = min(h_max, step)
    return np.array(breaks, float), windows, h_max, source


def _integrate(model: Model, d, times, t_offset, rtol, atol, max_steps):
    """The share of the Gaussians and callables of schedule ``d``, from zero at t_offset: (T, N) complex
    and stats. ``times`` (T,) are local (from t_offset)."""
    cells = np.array([c for c, *_ in d.pulses] + [c for c, *_ in d.functions], np.int64)
    pulses = (np.array([a for _, a, _, _ in d.pulses], complex), np.array([x for _, _, x, _ in d.pulses], float),
              np.array([w for *_, w in d.pulses], float))
    functions = [_checked(f, f"drive of cell {name!r}") for _, name, f, _, _ in d.functions]
    absolute = t_offset + times
    breaks, windows, h_max, source = drive_steps(d, float(t_offset), float(absolute[-1]))
    least = (absolute[-1] - t_offset) / h_max if np.isfinite(h_max) else 0.0
    if least > max_steps:
        raise SolverError(
            f"the drive's step bound max_step = {h_max:g} (1/omega, {source}) needs at least {least:.3g} steps "
            f"to reach t = {absolute[-1]:g}, more than max_steps = {max_steps}: raise max_steps, or declare a "
            "larger max_step (drives.function(f, max_step=...)) if the drive allows it")
    status, out, _, stats = integrate(System(model.M, np.zeros(model.n_cells, complex)),
                                      np.zeros(model.n_cells, complex), float(t_offset), absolute, cells=cells,
                                      pulses=pulses, functions=functions, breaks=breaks, windows=windows, h_max=h_max,
                                      rtol=rtol, atol=atol, max_steps=max_steps)
    if status != OK:
        # the doubled model of a general network drives Conjugate(cell) too: name the cell
        names = (model.cells[c] for c in cells.tolist())
        who = ", ".join(f"cell {c!r}" for c in dict.fromkeys(c.cell if isinstance(c, Conjugate) else c for c in names))
        raise SolverError(f"the integration of the drive of {who} stopped at t = {stats['end_time']:.6g} "
                          f"(after {stats['steps']} steps, the last ones {stats['min_step']:.3g} long): "
                          f"{STATUS[status]}" + (f" (about {stats['projected_steps']:.2g} steps, max_steps = "
                                                 f"{max_steps})" if status == TOO_MANY_STEPS else ""))
    info = {"drive_" + k: v for k, v in stats.items() if k not in ("end_time", "projected_steps")}
    info["drive_h_max"] = float(h_max) if np.isfinite(h_max) else None  # None: no bound beyond the pulses
    info["drive_h_max_source"] = source
    info["drive_breakpoints"] = int(breaks.size)
    return out, info


def _checked(f, where):
    def value(t):
        return evaluate_function(f, t, where)

    return value


def check_tolerances(model, rtol=None, atol=None, max_steps=None):
    """The (rtol, atol, max_steps) of the integration of ``model``'s shaped drives, defaults filled in, checked."""
    rtol = config.RTOL if rtol is None else rtol
    atol = config.ATOL if atol is None else atol
    if max_steps is None:  # a Python callable is evaluated 6 times a step: its work is bounded tighter
        max_steps = config.CALLABLE_MAX_STEPS if model.drives.functions else config.RK45_MAX_STEPS
    if not (0 < rtol < 1 and 0 < atol < np.inf):
        raise SolverError(f"rtol must be in (0, 1) and atol a finite number > 0, got rtol={rtol}, atol={atol}")
    if not 1 <= max_steps < 2**62:
        raise SolverError(f"max_steps must be a finite number >= 1, got {max_steps}")
    return rtol, atol, int(max_steps)


def run_driven(model: Model, state0: State, times, run, t_offset=0.0, rtol=None, atol=None,
               max_steps=None) -> Trace:
    """Simulate a model with time-dependent drives (see the module docstring).

    ``run(model, state, times) -> Trace`` runs a constant-drive model with the chosen method
    (amplitudes stored); ``times`` (T,) are local (from the state), the drive sees t_offset + times.
    """
    tolerances = check_tolerances(model, rtol, atol, max_steps)
    const = dataclasses.replace(model, drives=None)
    base = run(const, state0, times)
    alpha = np.array(base.amplitudes, complex)
    stats = {**base.stats, **drive_share(model, times, run, t_offset, *tolerances, alpha)}
    fluct = base.fluctuations
    energies = model.omega * (alpha.real**2 + alpha.imag**2 + fluct)
    final = State(model.cells, alpha[-1].copy(), base.final_state.Nc)
    return Trace(alpha, energies, fluct, final, stats, base.battery_block)


def drive_share(model: Model, times, run, t_offset, rtol, atol, max_steps, alpha):
    """Add to ``alpha`` (T, N) complex, in place, the amplitudes that ``model.drives`` adds from zero at
    t_offset (local ``times`` (T,)): tones and squares by ``run`` (an exact method on constant-drive models),
    Gaussians and callables by the adaptive integrator. Returns the stats of these runs."""
    d = model.drives
    n = model.n_cells
    stats = {}
    coherent = dataclasses.replace(model, drives=None, Q=None)
    zero = State(model.cells, np.zeros(n, complex))
    norm = np.sqrt(one_norm(model.M) * one_norm(model.M.T)) if d.tones else 0.0  # >= ||M||_2
    for dw, amps in d.tones:
        shift = 1j * dw * (sp.identity(n, complex, format="csr") if model.is_sparse else np.eye(n))
        amps = amps * np.exp(-1j * dw * t_offset)
        if abs(dw) >= 2.0 * norm:
            # far off resonance: the particular solution x e^{-i dw t}, (M + i dw) x = i A, is well conditioned
            # (sigma_min >= |dw| / 2), and the homogeneous part is a plain run of M from -x. The tone's own
            # frame would need e^{(M + i dw) t}, whose phase |dw| t can be far beyond what expm resolves.
            A = model.M + shift
            x = spla.spsolve(sp.csc_array(A), 1j * amps) if model.is_sparse else np.linalg.solve(A, 1j * amps)
            free = dataclasses.replace(coherent, drive=np.zeros(n, complex))
            alpha += np.exp(-1j * dw * times)[:, None] * x - run(free, State(model.cells, x), times).amplitudes
        else:
            framed = dataclasses.replace(coherent, M=model.M + shift, drive=amps)
            beta = run(framed, zero, times).amplitudes
            alpha += beta * np.exp(-1j * dw * times)[:, None]
    absolute = t_offset + times
    for start, stop, amps in d.squares:
        if stop <= t_offset:
            continue
        on = dataclasses.replace(coherent, drive=amps)
        for edge, sign in ((max(start, t_offset), 1.0), (stop, -1.0)):
            since = absolute - edge
            later = since > 0
            if later.any():
                alpha[later] += sign * run(on, zero, since[later]).amplitudes
    if d.integrated:
        part, more = _integrate(coherent, d, times, t_offset, SAFETY * rtol, SAFETY * atol, int(max_steps))
        alpha += part
        stats.update(more)
    stats.update(tone_runs=len(d.tones), square_runs=len(d.squares))
    return stats
