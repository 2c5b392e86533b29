"""The method contract, the time grid, and the model/state a run starts from.

A simulation method is a :class:`Method`: a name, the options it accepts and a ``run`` function::

    run(model, state0, times, options) -> Trace

- ``model``: a :class:`~chiralnet.model.Model` (the generator only).
- ``state0``: the :class:`~chiralnet.model.State` the run starts from; ``times`` are measured from it
  (local times: the caller subtracts ``state0.time``, and drives see ``state0.time + times``).
- ``times``: (T,) float, finite, >= 0, strictly increasing (already checked; :func:`check_times`).
- ``options``: a dict with ``grid`` (the :func:`distinct_steps` of ``times``), ``store_amplitudes``
  (bool) and the method's own options (``Method.options``), each None when not given; a method
  never sees an option it did not declare (``simulate`` rejects those).

It returns a :class:`Trace`: the amplitudes (T, N) complex (or None when not stored), energies
(T, N), the incoherent occupations diag Nc (T, N), the state after the last output time, a
dict of counters and, when Nc is integrated, the battery block Nc[B, B] at every output time
(T, B, B) complex, B = the battery cells in node order (``options["block"]``, (B,) int64): what the
ergotropy needs, never N x N per time. A method raises :class:`~chiralnet.errors.SolverError` when it cannot deliver
the requested accuracy; it never returns a non-finite number. Methods are registered in
:data:`chiralnet.solve.METHODS`; a new method is one file with one ``Method`` and one registry line.
As SciPy's ``OdeSolver`` documents its subclasses, each method module documents its options.

``options["cells"]`` is None or the (k,) int64 columns that ``simulate(..., cells=...)`` keeps. A
method may ignore it (``simulate`` then sums the totals and keeps the columns), or honour it:
per-cell arrays with k columns, ``Trace.energy_totals`` (T, 2) (the total energy of all cells and
of all battery cells) summed in its kernel, and energies None where its amplitudes are kept
(derived from them on access).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import config
from .._jit import jit
from ..errors import SolverError
from ..model import Model, State, build_model, initial_state, is_general_model

__all__ = ["Method", "Trace", "check_times", "distinct_steps", "model_and_state", "start_state", "battery_block"]


@dataclass(slots=True)
class Trace:
    """What a method returns (see the module docstring); ``fluctuations`` may be a broadcast zero view.

    Not frozen: a frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field) costs 1.5 us, a tenth
    of a small run; a trace is made once per run and read only (``dataclasses.replace`` for a changed copy)."""

    amplitudes: np.ndarray | None
    energies: np.ndarray
    fluctuations: np.ndarray
    final_state: State
    stats: dict = field(default_factory=dict)
    battery_block: np.ndarray | None = None
    energy_totals: np.ndarray | None = None  # (T, 2): all cells, all battery cells; see "cells" below
    anomalous: np.ndarray | None = None  # (T, k) complex Mc_ii: the general Gaussian path only
    anomalous_block: np.ndarray | None = None  # (T, B, B) complex Mc[B, B] beside battery_block (general path)


@dataclass(frozen=True)
class Method:
    """A registered simulation method: ``run(model, state0, times, options) -> Trace``."""

    name: str
    run: Callable
    options: frozenset = frozenset()
    summary: str = ""


def model_and_state(G_or_model) -> tuple[Model, State]:
    """The model of a graph or model, and the state it starts from at t = 0 (:func:`initial_state`: the
    graph's ``alpha0``/``n0``, kept by a model built from it; the vacuum for an array-built model)."""
    if isinstance(G_or_model, Model):
        return G_or_model, initial_state(G_or_model)
    model = G_or_model if is_general_model(G_or_model) else build_model(G_or_model)
    return model, initial_state(model)


def start_state(state0, own: State, model: Model) -> State:
    """The state a run of ``model`` starts from: ``state0`` (at ``state0.time``) or the network's own (at
    t = 0), in the model's cell order and drive frame; SolverError for anything that is not a State."""
    if state0 is None:
        state = own
    elif isinstance(state0, State):
        state = state0
    else:
        raise SolverError(f"state0 must be a chiralnet.State (e.g. result.final_state), got {type(state0).__name__}")
    return state.for_cells(model.cells).in_frame(model.drive_frequency)


def check_times(times, start: float = 0.0, given_state: bool = False) -> np.ndarray:
    """``times`` as a (T,) float array: real, finite, strictly increasing and at or after ``start`` (the
    time of the state the run starts from); else SolverError."""
    if (type(times) is np.ndarray and times.dtype.char == "d" and times.ndim == 1 and times.flags.c_contiguous
            and 0 < times.size <= config.SMALL_GRID_MAX_TIMES and _times_valid(times, float(start))):
        return times  # what np.asarray(times, dtype=float) returns for such an array, in one kernel call
    try:
        if np.iscomplexobj(times):
            raise SolverError(f"times must be real numbers (1/omega), got complex values {_short(times)}")
        with np.errstate(over="raise"):
            t = np.asarray(times, dtype=float)
    except (TypeError, ValueError, OverflowError, FloatingPointError) as exc:
        if isinstance(exc, SolverError):
            raise
        raise SolverError("times must be a 1-D array of real numbers (1/omega) that a float holds, got "
                          f"{_short(times)}") from None
    if t.ndim != 1 or t.size == 0:
        raise SolverError(f"times must be a non-empty 1-D array (1/omega), got shape {t.shape}")
    if not np.isfinite(t).all():
        bad = np.flatnonzero(~np.isfinite(t))
        raise SolverError(f"times[{bad[0]}] = {t[bad[0]]} is not finite")
    if t[0] < start:
        if given_state:
            raise SolverError(
                f"times[0] = {t[0]} is before state0.time = {start}: times are absolute and a run starts where "
                f"its state is; give times from {start} on, or place the state with state0.at(t)")
        raise SolverError(f"times[0] = {t[0]} is negative; a run without state0 starts at t = 0 from the "
                          "network's initial state")
    if not (t[1:] > t[:-1]).all():
        bad = np.flatnonzero(t[1:] <= t[:-1])
        raise SolverError(
            f"times must increase strictly: times[{bad[0] + 1}] = {t[bad[0] + 1]} <= times[{bad[0]}] = {t[bad[0]]}"
        )
    return t


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@jit
def _times_valid(t, start):
    """Whether the (T,) float times ``t`` are finite, at or after ``start`` and strictly increasing (the checks
    of :func:`check_times`, which words the failure)."""
    if not (t[0] >= start) or not np.isfinite(t[0]):
        return False
    for i in range(1, t.shape[0]):
        if not (t[i] > t[i - 1]) or not np.isfinite(t[i]):
            return False
    return True


@jit
def _block_sum(a, lo, n):
    """One leaf of :func:`_pairwise_sum` (n <= 128): eight accumulators, as NumPy sums a block."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - (n % 8):
        j = lo + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@jit
def _pairwise_sum(a, lo, n):
    """sum(a[lo:lo + n]) in NumPy's order (halves down to blocks of at most 128, each summed with eight
    accumulators), so that ``(0.0 + _pairwise_sum(a, lo, n)) / n`` has the bits of ``a[lo:lo + n].mean()``.
    The halving runs on an explicit stack: Numba's cache crashes on recursive kernels (numba#6061)."""
    work = np.empty((128, 3), np.int64)  # (lo, n, 0: evaluate | 1: add the last two values); depth ~log2(n)
    vals = np.empty(128)
    top, nv = 1, 0
    work[0, 0], work[0, 1], work[0, 2] = lo, n, 0
    while top > 0:
        top -= 1
        l, m, op = work[top, 0], work[top, 1], work[top, 2]
        if op == 1:
            nv -= 1
            vals[nv - 1] = vals[nv - 1] + vals[nv]
        elif m <= 128:
            vals[nv] = _block_sum(a, l, m)
            nv += 1
        else:
            half = m // 2
            half -= half % 8
            work[top, 0], work[top, 1], work[top, 2] = 0, 0, 1  # then add them, left + right
            work[top + 1, 0], work[top + 1, 1], work[top + 1, 2] = l + half, m - half, 0  # then the right half
            work[top + 2, 0], work[top + 2, 1], work[top + 2, 2] = l, half, 0  # the left half first
            top += 3
    return vals[0]


@jit
def _uniform_steps(times, out, kind):
    """The uniform case of :func:`distinct_steps` in one pass, with its arithmetic: 1 (``out[0]``, every step
    alike), 2 (``out[:2]``, the first step apart; writes ``kind``), 0 (not uniform: take the general route)."""
    n = times.shape[0]
    steps = np.empty(n)
    steps[0] = times[0]
    for i in range(1, n):
        steps[i] = times[i] - times[i - 1]
    rest = (0.0 + _pairwise_sum(steps, 1, n - 1)) / (n - 1)
    ulp8 = 8 * np.finfo(np.float64).eps
    for i in range(1, n):
        if not (abs(steps[i] - rest) <= ulp8 * abs(times[i])):
            return 0
    if abs(steps[0] - rest) <= ulp8 * abs(times[0]):
        out[0] = rest
        return 1
    out[0] = steps[0]
    out[1] = rest
    for i in range(1, n):
        kind[i] = 1
    return 2


@jit
def _checked_uniform_steps(times, start, out, kind):
    """:func:`_times_valid` then :func:`_uniform_steps` in one kernel call (the small route of simulate):
    -1 when the times fail a check (:func:`check_times` words it), else what ``_uniform_steps`` returns."""
    if not _times_valid(times, start):
        return -1
    return _uniform_steps(times, out, kind)


def checked_grid(times, start: float):
    """(times, distinct_steps(times)) of times checked from ``start`` as :func:`check_times` checks them (the
    state at ``start``, no state0 given), for a short C-contiguous float64 grid in one kernel call; None for
    any other grid or a uniform one (the callers take check_times and distinct_steps apart)."""
    if (type(times) is np.ndarray and times.dtype.char == "d" and times.ndim == 1 and times.flags.c_contiguous
            and 2 <= times.size <= config.SMALL_GRID_MAX_TIMES):
        out, kind = np.empty(2), np.zeros(times.size, np.int64)
        k = _checked_uniform_steps(times, start, out, kind)
        if k > 0:
            return times, (out[:k], kind)
    return None


def distinct_steps(times):
    """Distinct step lengths (K,) and, per output time, which one leads to it (T,) int64.

    Step k runs from times[k-1] (0 for k = 0) to times[k]. Two steps count as one only when they
    differ by less than the rounding of the times that bound them (8 ulp of the later end point
    of each, as np.linspace leaves): a uniform grid gives K <= 2, and a late output time never
    merges early steps (each step is compared at its own scale, not at that of max(times)).
    """
    if (type(times) is np.ndarray and times.dtype.char == "d" and times.ndim == 1 and times.flags.c_contiguous
            and 2 <= times.size <= config.SMALL_GRID_MAX_TIMES):  # short grids: the uniform case in one kernel
        out, kind = np.empty(2), np.zeros(times.size, np.int64)
        k = _uniform_steps(times, out, kind)
        if k:
            return out[:k], kind
    return _distinct_steps_numpy(times)


def _distinct_steps_numpy(times):
    """:func:`distinct_steps` in NumPy calls, for every grid (the route of long and non-uniform ones)."""
    steps = np.empty_like(times)
    steps[0] = times[0]
    np.subtract(times[1:], times[:-1], out=steps[1:])
    tol = 8 * np.finfo(float).eps * np.abs(times)  # (T,) the rounding of each step's end point
    if steps.size > 1:  # uniform after the first step: the common case, one pass
        rest = float(steps[1:].mean())
        if (np.abs(steps[1:] - rest) <= tol[1:]).all():
            if abs(steps[0] - rest) <= tol[0]:
                return np.array([rest]), np.zeros(steps.size, np.int64)
            kind = np.ones(steps.size, np.int64)
            kind[0] = 0
            return np.array([steps[0], rest]), kind
    order = np.argsort(steps, kind="stable")
    s, tl = steps[order], tol[order]
    new_group = np.r_[True, np.diff(s) > np.minimum(tl[1:], tl[:-1])]
    label = np.cumsum(new_group) - 1
    first = np.flatnonzero(new_group)
    last = np.r_[first[1:] - 1, s.size - 1]
    group_tol = np.minimum.reduceat(tl, first)
    if np.any(s[last] - s[first] > group_tol):  # a slowly varying grid chained into one group: no merging
        unique, label = np.unique(s, return_inverse=True)
    else:
        unique = np.where(s[first] == 0.0, 0.0, np.bincount(label, weights=s) / np.bincount(label))
    kind = np.empty(steps.size, np.int64)
    kind[order] = label
    return unique, kind


def battery_block(battery, columns, keep_block):
    """(block (B,) int64, keep: bool): the battery cells among the kept ``columns`` (all cells when None), in
    node order, whose fluctuation block a run keeps; empty when not kept (``keep_block`` None: kept up to
    ``config.BATTERY_BLOCK_MAX_CELLS`` cells)."""
    block = np.flatnonzero(battery) if columns is None else columns[battery[columns]]
    keep = block.size <= config.BATTERY_BLOCK_MAX_CELLS if keep_block is None else bool(keep_block)
    return (block.astype(np.int64) if keep else np.zeros(0, np.int64)), keep
