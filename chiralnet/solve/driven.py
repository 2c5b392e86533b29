"""Time-dependent drives (:mod:`chiralnet.drives`): linearity splits the amplitudes into parts.

d alpha/dt = M alpha - i E0 - i sum_k A_k e^{-i dw_k t} - i sum_s A_s 1[start_s <= t < stop_s] - i sum_j e_j f_j(t)

is linear in the forcing, so alpha is the sum of

- the constant-drive run from the initial state (the chosen exact method or rk45; it also carries Nc,
  which no drive changes);
- one run per tone, from zero: beta = alpha e^{i dw t} obeys d beta/dt = (M + i dw) beta - i A, a
  constant drive in the tone's own frame, solved by the same exact method (no inversion, so exact at
  resonance too); alpha_tone(t) = e^{-i dw t} beta(t);
- two runs per square pulse, from zero: the response R to the constant drive A switched on at start,
  minus the same response switched on at stop;
- Gaussian pulses and Python callables: an adaptive Dormand-Prince 5(4) integration of their share
  from zero, alpha only, with error control on ``rtol``/``atol`` and the free 4th-order dense output
  at the output times (the step is never shortened to reach one). Gaussians are evaluated inside the
  compiled loop; callables from Python once per stage.

Time t of a drive is the simulation time: a run that starts at ``t_offset`` (a protocol phase, or
``state0`` at ``times[0]``) evaluates the drive at t_offset + local time.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from .. import config
from .._jit import jit
from ..drives import evaluate_function
from ..errors import SolverError
from ..model import Model, State
from .base import Trace
from .rk45 import _C, MAX_STEPS, NOT_FINITE, OK, STEP_UNDERFLOW, dopri5_tableau

__all__ = ["run_driven"]

#: The local error per step is held to SAFETY * (atol + rtol |y|): the global error of the dense output
#: then stays below rtol of the amplitude scale (measured: ~1.4 rtol without it, Gaussian pulse).
SAFETY = 0.2

#: Dense output of Dormand-Prince 5(4) (Hairer's continuous extension, as scipy's RK45.P):
#: y(t + theta h) = y + h sum_r k_r sum_m P[r, m] theta^(m+1).
_P = np.array([
    [1.0, -2.8535800653862835, 3.0717434641059005, -1.1270175653862835],
    [0.0, 0.0, 0.0, 0.0],
    [0.0, 4.023133379230305, -6.249321565289, 2.675424484351598],
    [0.0, -3.7324019615885042, 10.068970589843675, -5.685526961588504],
    [0.0, 2.5548038301849423, -6.399112377351017, 3.5219323679207912],
    [0.0, -1.3744241142186024, 3.272657752246729, -1.7672812570757455],
    [0.0, 1.3824689317781436, -3.764937863556287, 2.382468931778144],
])


@jit
def _rhs(sparse, M, indptr, indices, data, cells, g, y, out):
    """out = M y - i sum_j e_{cells[j]} g[j]."""
    n = y.shape[0]
    if sparse:
        for i in range(n):
            acc = 0j
            for p in range(indptr[i], indptr[i + 1]):
                acc += data[p] * y[indices[p]]
            out[i] = acc
    else:
        for i in range(n):
            acc = 0j
            for j in range(n):
                acc += M[i, j] * y[j]
            out[i] = acc
    for j in range(cells.shape[0]):
        out[cells[j]] += complex(g[j].imag, -g[j].real)


@jit
def _attempt(sparse, M, indptr, indices, data, cells, y, k, h, G, A, B, E, ytmp, y_new, rtol, atol):
    """One Dormand-Prince step of length h from y (k[0] = f(t, y) given; G[s] the drive at stage s).
    Fills k[1..6] (k[6] = f(t + h, y_new)) and y_new; returns the error norm."""
    dim = y.shape[0]
    for s in range(1, 7):
        for i in range(dim):
            acc = y[i]
            for r in range(s):
                if A[s, r] != 0.0:
                    acc += h * A[s, r] * k[r, i]
            ytmp[i] = acc
        _rhs(sparse, M, indptr, indices, data, cells, G[s], ytmp, k[s])
    total = 0.0
    for i in range(dim):
        acc = y[i]
        e = 0j
        for r in range(7):
            acc += h * B[r] * k[r, i]
            e += h * E[r] * k[r, i]
        y_new[i] = acc
        scale = atol + rtol * max(abs(y[i]), abs(acc))
        q = abs(e) / scale
        total += q * q
    return np.sqrt(total / dim)


@jit
def _dense(y, k, h, theta, P, out):
    """out = the dense-output value at t + theta h of the step from y with stages k."""
    w = np.zeros(7)
    for r in range(7):
        p = theta
        acc = 0.0
        for m in range(4):
            acc += P[r, m] * p
            p *= theta
        w[r] = acc
    for i in range(y.shape[0]):
        acc = 0j
        for r in range(7):
            acc += w[r] * k[r, i]
        out[i] = y[i] + h * acc


@jit
def _gaussians(amp, t0, width, t, out):
    for j in range(amp.shape[0]):
        x = (t - t0[j]) / width[j]
        out[j] = amp[j] * np.exp(-0.5 * x * x)


@jit
def _initial_step(y, f0, rtol, atol, t_end):
    d0 = 0.0
    d1 = 0.0
    for i in range(y.shape[0]):
        scale = atol + rtol * abs(y[i])
        d0 += (abs(y[i]) / scale) ** 2
        d1 += (abs(f0[i]) / scale) ** 2
    d0 = np.sqrt(d0 / y.shape[0])
    d1 = np.sqrt(d1 / y.shape[0])
    h = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    if d1 >= 1e-5 and d0 < 1e-5:  # from rest: the step whose Euler increment is ~ the tolerance
        h = max(1e-6, 0.01 / d1)
    return min(h, t_end) if t_end > 0 else h


@jit
def _start(times, y, out):
    """out[o] = y for the output times at t = 0; returns the index of the first later one."""
    o = 0
    while o < times.shape[0] and times[o] <= 0.0:
        out[o] = y
        o += 1
    return o


@jit
def _accept(times, o, t, h, t_end, en, y, y_new, k, P, out):
    """Accept the step from t of length h (error norm ``en`` <= 1): dense output at every output time in
    (t, t + h], y <- y_new, the last stage becomes the first (FSAL). Returns (t + h, the next output
    index, the next step length)."""
    t_new = t_end if h >= t_end - t else t + h
    T = times.shape[0]
    while o < T and times[o] <= t_new:
        if times[o] == t_new:
            out[o] = y_new
        else:
            _dense(y, k, h, (times[o] - t) / h, P, out[o])
        o += 1
    y[:] = y_new
    k[0, :] = k[6, :]
    return t_new, o, h * (10.0 if en == 0.0 else min(10.0, 0.9 * en ** -0.2))


@jit
def _dopri_gaussian(sparse, M, indptr, indices, data, cells, amp, t0, width, t_off, y0, times, rtol, atol,
                    max_steps, A, B, C, E, P, out, stats):
    """Integrate d y/dt = M y - i sum_j e_{cells[j]} g_j(t_off + t) from y(0) = y0, Gaussians g_j;
    out (T, N) receives y at ``times`` by dense output. stats = accepted, rejected, rhs evaluations.
    Returns (status, y at times[-1])."""
    dim = y0.shape[0]
    J = cells.shape[0]
    T = times.shape[0]
    y = y0.copy()
    k = np.empty((7, dim), np.complex128)
    ytmp = np.empty(dim, np.complex128)
    y_new = np.empty(dim, np.complex128)
    G = np.zeros((7, J), np.complex128)
    _gaussians(amp, t0, width, t_off, G[0])
    _rhs(sparse, M, indptr, indices, data, cells, G[0], y, k[0])
    stats[2] += 1
    t_end = times[T - 1]
    h = _initial_step(y, k[0], rtol, atol, t_end)
    t = 0.0
    o = _start(times, y, out)
    steps = 0
    while o < T:
        if steps >= max_steps:
            return MAX_STEPS, y
        h = min(h, t_end - t)
        while True:
            for s in range(1, 7):
                _gaussians(amp, t0, width, t_off + t + C[s] * h, G[s])
            en = _attempt(sparse, M, indptr, indices, data, cells, y, k, h, G, A, B, E, ytmp, y_new, rtol, atol)
            stats[2] += 6
            if not np.isfinite(en):
                return NOT_FINITE, y
            if en <= 1.0:
                break
            stats[1] += 1
            h *= max(0.2, 0.9 * en ** -0.2)
            if h < 1e-14 * max(1.0, abs(t)):
                return STEP_UNDERFLOW, y
        t, o, h = _accept(times, o, t, h, t_end, en, y, y_new, k, P, out)
        steps += 1
        stats[0] += 1
    return OK, y


def _dopri_python(sparse, M, indptr, indices, data, cells, amp, t0, width, functions, t_off, y0, times, rtol,
                  atol, max_steps, A, B, C, E, P, out, stats):
    """The loop of :func:`_dopri_gaussian` in Python, for drives that include Python callables
    (evaluated once per stage, then the compiled step)."""
    nG = amp.size
    dim = y0.shape[0]
    T = times.size
    y = y0.copy()
    k = np.empty((7, dim), complex)
    ytmp = np.empty(dim, complex)
    y_new = np.empty(dim, complex)
    G = np.zeros((7, cells.size), complex)
    where = [f"drive of cell {name!r}" for _, name, _ in functions]

    def fill(row, t):
        if nG:
            G[row, :nG] = amp * np.exp(-0.5 * ((t - t0) / width) ** 2)
        for j, (_, _, f) in enumerate(functions):
            G[row, nG + j] = evaluate_function(f, t, where[j])

    fill(0, t_off)
    _rhs(sparse, M, indptr, indices, data, cells, G[0], y, k[0])
    stats[2] += 1
    t_end = float(times[-1])
    h = _initial_step(y, k[0], rtol, atol, t_end)
    t = 0.0
    o = _start(times, y, out)
    steps = 0
    while o < T:
        if steps >= max_steps:
            return MAX_STEPS, y
        h = min(h, t_end - t)
        while True:
            for s in range(1, 7):
                fill(s, t_off + t + C[s] * h)
            en = _attempt(sparse, M, indptr, indices, data, cells, y, k, h, G, A, B, E, ytmp, y_new, rtol, atol)
            stats[2] += 6
            if not np.isfinite(en):
                return NOT_FINITE, y
            if en <= 1.0:
                break
            stats[1] += 1
            h *= max(0.2, 0.9 * en ** -0.2)
            if h < 1e-14 * max(1.0, abs(t)):
                return STEP_UNDERFLOW, y
        t, o, h = _accept(times, o, t, h, t_end, en, y, y_new, k, P, out)
        steps += 1
        stats[0] += 1
    return OK, y


_STATUS = {
    MAX_STEPS: "reached max_steps before the last output time; raise max_steps or loosen rtol/atol",
    STEP_UNDERFLOW: "step size underflow; the drive varies too fast for this tolerance",
    NOT_FINITE: "the state became non-finite (inf or NaN); is the network unstable?",
}


def _integrate(model: Model, d, times, t_offset, rtol, atol, max_steps):
    """The share of the Gaussians and callables of schedule ``d``, from zero: (T, N) complex and stats."""
    cells = np.array([c for c, *_ in d.pulses] + [c for c, *_ in d.functions], np.int64)
    amp = np.array([a for _, a, _, _ in d.pulses], complex)
    t0 = np.array([x for _, _, x, _ in d.pulses], float)
    width = np.array([w for *_, w in d.pulses], float)
    n = model.n_cells
    if model.is_sparse:
        M = model.M
        args = (True, np.zeros((0, 0), complex), M.indptr.astype(np.int64), M.indices.astype(np.int64),
                M.data.astype(complex))
    else:
        empty = np.zeros(0, np.int64)
        args = (False, np.ascontiguousarray(model.M, dtype=complex), empty, empty, np.zeros(0, complex))
    A, B, E = dopri5_tableau()
    out = np.empty((times.size, n), complex)
    stats = np.zeros(3, np.int64)
    y0 = np.zeros(n, complex)
    if d.functions:
        status, _ = _dopri_python(*args, cells, amp, t0, width, d.functions, float(t_offset), y0, times, rtol, atol,
                                  max_steps, A, B, _C, E, _P, out, stats)
    else:
        status, _ = _dopri_gaussian(*args, cells, amp, t0, width, float(t_offset), y0, times, float(rtol),
                                    float(atol), max_steps, A, B, _C, E, _P, out, stats)
    if status != OK:
        raise SolverError(f"time-dependent drive integration failed: {_STATUS[status]}")
    return out, {"drive_steps": int(stats[0]), "drive_rejected": int(stats[1]),
                 "drive_rhs_evaluations": int(stats[2])}


def run_driven(model: Model, state0: State, times, run, t_offset=0.0, rtol=None, atol=None,
               max_steps=None) -> Trace:
    """Simulate a model with time-dependent drives (see the module docstring).

    ``run(model, state, times) -> Trace`` runs a constant-drive model with the chosen method
    (amplitudes stored); ``times`` (T,) are local (from the state), the drive sees t_offset + times.
    """
    rtol = config.RTOL if rtol is None else rtol
    atol = config.ATOL if atol is None else atol
    max_steps = config.RK45_MAX_STEPS if max_steps is None else max_steps
    if not (0 < rtol < 1 and 0 < atol < np.inf):
        raise SolverError(f"rtol must be in (0, 1) and atol a finite number > 0, got rtol={rtol}, atol={atol}")
    if not 1 <= max_steps < 2**62:
        raise SolverError(f"max_steps must be a finite number >= 1, got {max_steps}")
    d = model.drives
    const = dataclasses.replace(model, drives=None)
    base = run(const, state0, times)
    alpha = np.array(base.amplitudes, complex)
    stats = dict(base.stats)
    coherent = dataclasses.replace(const, Q=None)
    zero = State(model.cells, np.zeros(model.n_cells, complex))
    n = model.n_cells
    for dw, amps in d.tones:
        shift = 1j * dw * (sp.identity(n, complex, format="csr") if model.is_sparse else np.eye(n))
        framed = dataclasses.replace(coherent, M=model.M + shift, drive=amps * np.exp(-1j * dw * t_offset))
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
        part, more = _integrate(const, d, times, t_offset, SAFETY * rtol, SAFETY * atol, int(max_steps))
        alpha += part
        stats.update(more)
    stats.update(tone_runs=len(d.tones), square_runs=len(d.squares))
    fluct = base.fluctuations
    energies = model.omega * (alpha.real**2 + alpha.imag**2 + fluct)
    final = State(model.cells, alpha[-1].copy(), base.final_state.Nc)
    return Trace(alpha, energies, fluct, final, stats, base.battery_block)
