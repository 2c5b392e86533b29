"""The one adaptive integrator: Dormand-Prince 5(4) with error control, breakpoints and a bounded step.

Every adaptive run in chiralnet goes through :func:`integrate` (as SciPy's ``_ivp/rk.py`` has one
``rk_step`` and one ``_step_impl``): the method ``"rk45"`` (a constant network, amplitudes and, when hot,
the fluctuation matrix) and the share of Gaussian pulses and Python callables of a shaped drive
(:mod:`chiralnet.solve.driven`). The systems it integrates are all

    dy/dt = f(t, y),   f(t, y) = [M y + b - i sum_j e_{cells[j]} g_j(t),   conj(M) Nc + Nc M^T + Q]

(the second block only for a hot network, y = [alpha, vec(Nc)]). The right-hand side is the only thing
that differs between the compiled route and the Python route (a drive that is a Python callable): the
same loop source, :func:`_loop`, is compiled with Numba for the first and run by the interpreter for the
second, where the drive is evaluated in Python and everything else calls the compiled arithmetic.

The step
- is chosen by the error estimate against rtol/atol (Hairer's initial step, SciPy's factor rule), and
  does not grow right after a rejected attempt;
- lands on every breakpoint (pulse centres and edges, a callable's declared breakpoints, the last
  output time) and is bounded inside a pulse's support by its width and everywhere by ``h_max``: a drive
  feature is never stepped over;
- is never shortened for an output time: outputs come from the free 4th-order dense output.
"""

from __future__ import annotations

import types

import numpy as np
import scipy.sparse as sp

from .._jit import jit

__all__ = ["OK", "MAX_STEPS", "STEP_UNDERFLOW", "NOT_FINITE", "TOO_MANY_STEPS", "STATUS", "System", "integrate",
           "dopri5_tableau"]

# Status codes returned by the loop.
OK = 0
MAX_STEPS = 1
STEP_UNDERFLOW = 2
NOT_FINITE = 3
TOO_MANY_STEPS = 4

#: What a failed status means, for the error a caller raises.
STATUS = {
    MAX_STEPS: "reached max_steps before the last output time; raise max_steps, loosen rtol/atol, or check "
               "that the drive has no feature faster than needed",
    STEP_UNDERFLOW: "the step size underflowed: the system is too stiff, or a drive varies too fast, for this "
                    "tolerance",
    NOT_FINITE: "the state became non-finite (inf or NaN); is the network unstable?",
    TOO_MANY_STEPS: "at the pace it has needed so far it would take far more than max_steps steps; declare the "
                    "drive's breakpoints, loosen rtol/atol, or raise max_steps",
}

#: The loop checks its pace every this many steps: a run projected to need more than PACE_FACTOR x
#: max_steps steps stops then (TOO_MANY_STEPS) instead of running to max_steps.
PACE_EVERY = 1000
PACE_FACTOR = 20.0

_C = np.array([0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0])
_A = np.array([
    [0, 0, 0, 0, 0, 0],
    [1 / 5, 0, 0, 0, 0, 0],
    [3 / 40, 9 / 40, 0, 0, 0, 0],
    [44 / 45, -56 / 15, 32 / 9, 0, 0, 0],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729, 0, 0],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656, 0],
    [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
])
_B = np.array([35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0])
_E = np.array([71 / 57600, 0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40])  # b5 - b4
#: Dense output (Hairer's continuous extension, as SciPy's RK45.P): y(t + theta h) = y + h sum_r k_r sum_m
#: P[r, m] theta^(m+1).
_P = np.array([
    [1.0, -2.8535800653862835, 3.0717434641059005, -1.1270175653862835],
    [0.0, 0.0, 0.0, 0.0],
    [0.0, 4.023133379230305, -6.249321565289, 2.675424484351598],
    [0.0, -3.7324019615885042, 10.068970589843675, -5.685526961588504],
    [0.0, 2.5548038301849423, -6.399112377351017, 3.5219323679207912],
    [0.0, -1.3744241142186024, 3.272657752246729, -1.7672812570757455],
    [0.0, 1.3824689317781436, -3.764937863556287, 2.382468931778144],
])
_MIN_FACTOR, _MAX_FACTOR, _SAFETY = 0.2, 10.0, 0.9


def dopri5_tableau():
    """(A (7, 6), B (7,), C (7,), E (7,), P (7, 4)) of Dormand-Prince 5(4), as arrays for the kernels."""
    return _A.copy(), _B.copy(), _C.copy(), _E.copy(), _P.copy()


# ----------------------------------------------------------------------------------------------------
# The arithmetic: compiled, called from the compiled loop and from the interpreted one alike.

@jit
def _apply(sparse, M, Mc, indptr, indices, data, b, Q, thermal, cells, g, y, out):
    """out = f(y) for the system (see the module docstring) with the drive values g (J,) at cells (J,)."""
    n = b.shape[0]
    if sparse:
        for i in range(n):
            acc = b[i]
            for p in range(indptr[i], indptr[i + 1]):
                acc += data[p] * y[indices[p]]
            out[i] = acc
    else:
        for i in range(n):
            acc = b[i]
            for j in range(n):
                acc += M[i, j] * y[j]
            out[i] = acc
    for j in range(cells.shape[0]):
        out[cells[j]] += complex(g[j].imag, -g[j].real)  # -i g
    if thermal:
        Nc = y[n:].reshape((n, n))
        X = Mc @ Nc
        d = X + np.conj(X).T + Q
        out[n:] = d.ravel()


@jit
def _gaussians(amp, t0, width, t, g):
    """g[j] = amp[j] exp(-(t - t0[j])^2 / (2 width[j]^2)) for the first amp.size entries of g."""
    for j in range(amp.shape[0]):
        x = (t - t0[j]) / width[j]
        g[j] = amp[j] * np.exp(-0.5 * x * x)


@jit
def _rhs_compiled(system, drive, t, y, out):
    sparse, M, Mc, indptr, indices, data, b, Q, thermal = system
    cells, amp, t0, width, g = drive
    _gaussians(amp, t0, width, t, g)
    _apply(sparse, M, Mc, indptr, indices, data, b, Q, thermal, cells, g, y, out)


def _rhs_python(system, drive, t, y, out):
    """The Python route's right-hand side: Gaussians and callables evaluated here, the rest compiled."""
    sparse, M, Mc, indptr, indices, data, b, Q, thermal = system
    cells, amp, t0, width, g, functions = drive
    _gaussians(amp, t0, width, t, g)
    n_g = amp.shape[0]
    for j, evaluate in enumerate(functions):
        g[n_g + j] = evaluate(t)
    _apply(sparse, M, Mc, indptr, indices, data, b, Q, thermal, cells, g, y, out)


@jit
def _norm(v, y, y_new, rtol, atol):
    """RMS norm of v scaled by atol + rtol max(|y|, |y_new|)."""
    s = 0.0
    for i in range(v.shape[0]):
        scale = atol + rtol * max(abs(y[i]), abs(y_new[i]))
        e = abs(v[i]) / scale
        s += e * e
    return np.sqrt(s / max(v.shape[0], 1))


@jit
def _stage_input(y, k, s, h, A, out):
    """out = y + h sum_{r < s} A[s, r] k[r]."""
    for i in range(y.shape[0]):
        acc = y[i]
        for r in range(s):
            if A[s, r] != 0.0:
                acc += h * A[s, r] * k[r, i]
        out[i] = acc


@jit
def _combine(y, k, h, B, E, y_new, rtol, atol):
    """y_new = y + h sum_r B[r] k[r]; returns the error norm of h sum_r E[r] k[r]."""
    total = 0.0
    for i in range(y.shape[0]):
        acc = y[i]
        e = 0j
        for r in range(7):
            acc += h * B[r] * k[r, i]
            e += h * E[r] * k[r, i]
        y_new[i] = acc
        scale = atol + rtol * max(abs(y[i]), abs(acc))
        q = abs(e) / scale
        total += q * q
    return np.sqrt(total / max(y.shape[0], 1))


@jit
def _dense(y, k, h, theta, P, keep, row):
    """row = the dense-output value at t + theta h of the step from y with stages k, components ``keep``."""
    w = np.zeros(7)
    for r in range(7):
        p = theta
        acc = 0.0
        for m in range(4):
            acc += P[r, m] * p
            p *= theta
        w[r] = acc
    for q in range(keep.shape[0]):
        i = keep[q]
        acc = 0j
        for r in range(7):
            acc += w[r] * k[r, i]
        row[q] = y[i] + h * acc


@jit
def _keep(y, keep, row):
    for q in range(keep.shape[0]):
        row[q] = y[keep[q]]


@jit
def _copy_stage(k, src, dst):
    for i in range(k.shape[1]):
        k[dst, i] = k[src, i]


@jit
def _bound(t, h_max, win_lo, win_hi, win_h):
    """The largest step allowed from t: h_max, and win_h[w] inside each window [win_lo[w], win_hi[w])."""
    h = h_max
    for w in range(win_lo.shape[0]):
        if win_lo[w] <= t < win_hi[w] and win_h[w] < h:
            h = win_h[w]
    return h


# ----------------------------------------------------------------------------------------------------
# The loop: one source, compiled (Gaussians) or interpreted (Python callables); only the rhs differs.

def _loop(system, drive, y, t0, times, breaks, win_lo, win_hi, win_h, h_max, rtol, atol, max_steps,
          keep, out, stats, tab):
    """Integrate y (dim,) from t0 to times[-1] in place; out[o] = y[keep] at times[o] (all >= t0).

    ``breaks`` (B,): sorted times in (t0, times[-1]) the step lands on; windows bound the step inside them
    (``_bound``). stats: accepted steps, rejected attempts, rhs evaluations, smallest accepted step, largest.
    Returns a status code.
    """
    A, B, C, E, P = tab
    T = times.shape[0]
    dim = y.shape[0]
    o = 0
    while o < T and times[o] <= t0:
        _keep(y, keep, out[o])
        o += 1
    if o == T:
        return OK
    t_end = times[T - 1]
    k = np.empty((7, dim), np.complex128)
    ytmp = np.empty(dim, np.complex128)
    y_new = np.empty(dim, np.complex128)
    _rhs(system, drive, t0, y, k[0])
    stats[2] += 1
    # Initial step (Hairer, Norsett & Wanner II.4), bounded like every other step.
    d0 = _norm(y, y, y, rtol, atol)
    d1 = _norm(k[0], y, y, rtol, atol)
    if d0 < 1e-5 or d1 < 1e-5:
        h = 1e-6 * max(1.0, abs(t0)) if d1 < 1e-5 else max(1e-6, 0.01 / d1)
    else:
        h = 0.01 * d0 / d1
    t = t0
    nb = breaks.shape[0]
    b = 0
    while b < nb and breaks[b] <= t0:
        b += 1
    steps = 0
    while o < T:
        stats[5] = t
        if steps >= max_steps:
            return MAX_STEPS
        if steps > 0 and steps % PACE_EVERY == 0 and t > t0:
            stats[6] = steps * (t_end - t0) / (t - t0)
            if stats[6] > PACE_FACTOR * max_steps:
                return TOO_MANY_STEPS
        stop = breaks[b] if b < nb else t_end
        bound = _bound(t, h_max, win_lo, win_hi, win_h)
        proposed = min(h, bound)
        h = proposed
        landing = h >= stop - t
        if landing:
            h = stop - t
        left = np.nextafter(stop, -np.inf)
        rejected = False
        while True:
            for s in range(1, 7):
                _stage_input(y, k, s, h, A, ytmp)
                # stages at the end of a step landing on a breakpoint see the drive's left limit there
                ts = left if landing and C[s] == 1.0 else t + C[s] * h
                _rhs(system, drive, ts, ytmp, k[s])
            stats[2] += 6
            err = _combine(y, k, h, B, E, y_new, rtol, atol)
            if not np.isfinite(err):
                stats[5] = t
                return NOT_FINITE
            if err <= 1.0:
                break
            stats[1] += 1
            rejected = True
            h *= max(_MIN_FACTOR, _SAFETY * err ** -0.2)
            landing = False
            if h < 1e-14 * max(1.0, abs(t)):
                stats[5] = t
                return STEP_UNDERFLOW
        t_new = stop if landing else t + h
        while o < T and times[o] <= t_new:
            if times[o] == t_new:
                _keep(y_new, keep, out[o])
            else:
                _dense(y, k, h, (times[o] - t) / h, P, keep, out[o])
            o += 1
        y[:] = y_new
        if landing and b < nb:  # a drive may jump at a breakpoint: f there afresh, not the left limit
            _rhs(system, drive, t_new, y, k[0])
            stats[2] += 1
        else:
            _copy_stage(k, 6, 0)  # FSAL: the last stage is f at the new point
        if steps == 0 or h < stats[3]:
            stats[3] = h
        if h > stats[4]:
            stats[4] = h
        t = t_new
        if landing and b < nb:
            b += 1
        steps += 1
        stats[0] += 1
        factor = _MAX_FACTOR if err == 0.0 else min(_MAX_FACTOR, _SAFETY * err ** -0.2)
        if rejected:  # no growth right after a rejection (SciPy's rule)
            factor = min(1.0, factor)
        # a step shortened to land on a breakpoint does not shrink the next proposal
        h = max(h * factor, proposed) if landing and not rejected else h * factor
    return OK


_rhs = _rhs_compiled  # the right-hand side _loop calls (a global, so that the compiled loop is cached)
_loop_compiled = jit(_loop)
#: The same source under the interpreter with the Python right-hand side, for drives that are callables.
_loop_python = types.FunctionType(_loop.__code__, {**_loop.__globals__, "_rhs": _rhs_python}, "_loop_python")


class System:
    """The linear system of :func:`integrate`: dy/dt = M y + b (+ the fluctuation block when ``Q`` given).

    Parameters
    ----------
    M : ndarray (N, N) complex or scipy.sparse CSR
        Generator of the amplitudes (CSR only without the fluctuation block).
    b : ndarray (N,) complex
        Constant forcing.
    Q : ndarray (N, N) complex or None
        Noise matrix: integrate vec(Nc) too (dense M), y = [alpha, vec(Nc)].
    """

    def __init__(self, M, b, Q=None):
        self.n = b.shape[0]
        self.thermal = Q is not None
        empty_c = np.zeros((0, 0), complex)
        empty_i = np.zeros(0, np.int64)
        b = np.ascontiguousarray(b, dtype=complex)
        if sp.issparse(M) and not self.thermal:
            self.args = (True, empty_c, empty_c, M.indptr.astype(np.int64), M.indices.astype(np.int64),
                         M.data.astype(complex), b, empty_c, False)
        else:
            Md = np.ascontiguousarray(M.toarray() if sp.issparse(M) else M, dtype=complex)
            Qd = empty_c if Q is None else np.ascontiguousarray(Q, dtype=complex)
            self.args = (False, Md, np.ascontiguousarray(np.conj(Md)), empty_i, empty_i, np.zeros(0, complex), b,
                         Qd, self.thermal)

    @property
    def dim(self) -> int:
        return self.n + (self.n * self.n if self.thermal else 0)


def integrate(system: System, y0, t0: float, times, *, keep=None, cells=None, pulses=None, functions=(),
              breaks=(), windows=(), h_max=np.inf, rtol: float, atol: float, max_steps: int):
    """Integrate ``system`` from y0 at t0 to every output time with Dormand-Prince 5(4).

    Parameters
    ----------
    system : System
    y0 : ndarray (dim,) complex
        The state at t0 (copied).
    t0 : float
        Absolute start time (1/omega).
    times : ndarray (T,) float
        Absolute output times, >= t0, increasing.
    keep : ndarray (K,) int64, optional
        Components of y written at each output time (default all).
    cells : ndarray (J,) int64, optional
        The cells the time-dependent drive acts on: first the pulses', then the callables'.
    pulses : tuple of arrays (amplitude (G,) complex, t0 (G,), width (G,)), optional
        Gaussian pulses (compiled).
    functions : sequence of callables t -> complex
        Python drive values (each already checked and finite), one per remaining entry of ``cells``.
    breaks : array_like of float
        Times the step lands on.
    windows : sequence of (lo, hi, h)
        The step is at most h inside [lo, hi) (lo and hi should be breaks).
    h_max : float
        The largest step anywhere.
    rtol, atol : float
    max_steps : int

    Returns
    -------
    status : int, out : ndarray (T, K) complex, y : ndarray (dim,) complex (the state at times[-1]),
    stats : dict (steps, rejected, rhs_evaluations, min_step, max_step, end_time: the time reached).
    """
    times = np.ascontiguousarray(times, dtype=float)
    y = np.array(y0, dtype=complex)
    keep = np.arange(y.size, dtype=np.int64) if keep is None else np.ascontiguousarray(keep, dtype=np.int64)
    cells = np.zeros(0, np.int64) if cells is None else np.ascontiguousarray(cells, dtype=np.int64)
    if pulses is None:
        pulses = (np.zeros(0, complex), np.zeros(0), np.ones(0))
    amp, p0, width = (np.ascontiguousarray(pulses[0], dtype=complex), np.ascontiguousarray(pulses[1], dtype=float),
                      np.ascontiguousarray(pulses[2], dtype=float))
    g = np.zeros(cells.size, complex)
    t_end = float(times[-1])
    br = np.unique(np.asarray(breaks, float))
    br = np.ascontiguousarray(br[(br > t0) & (br < t_end)])
    win = np.array([w for w in windows if w[1] > t0 and w[0] < t_end], float).reshape(-1, 3)
    out = np.empty((times.size, keep.size), complex)
    stats = np.zeros(7)
    tab = dopri5_tableau()
    args = (system.args, None, y, float(t0), times, br, np.ascontiguousarray(win[:, 0]),
            np.ascontiguousarray(win[:, 1]), np.ascontiguousarray(win[:, 2]), float(h_max), float(rtol), float(atol),
            int(max_steps), keep, out, stats, tab)
    if functions:
        drive = (cells, amp, p0, width, g, tuple(functions))
        status = _loop_python(args[0], drive, *args[2:])
    else:
        drive = (cells, amp, p0, width, g)
        status = _loop_compiled(args[0], drive, *args[2:])
    info = {"steps": int(stats[0]), "rejected": int(stats[1]), "rhs_evaluations": int(stats[2]),
            "min_step": float(stats[3]), "max_step": float(stats[4]), "end_time": float(stats[5]),
            "projected_steps": float(stats[6])}
    return status, out, y, info
