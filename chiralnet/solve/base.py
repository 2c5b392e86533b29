"""The method contract, the time grid, and the model/state a run starts from.

A simulation method is a :class:`Method`: a name, the options it accepts and a ``run`` function::

    run(model, state0, times, options) -> Trace

- ``model``: a :class:`~chiralnet.model.Model` (the generator only).
- ``state0``: the :class:`~chiralnet.model.State` at time 0 of ``times`` (times are measured from it).
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

from ..errors import SolverError
from ..model import Model, State, build_model, graph_state, initial_state

__all__ = ["Method", "Trace", "check_times", "distinct_steps", "model_and_state"]


@dataclass(frozen=True)
class Trace:
    """What a method returns (see the module docstring); ``fluctuations`` may be a broadcast zero view."""

    amplitudes: np.ndarray | None
    energies: np.ndarray
    fluctuations: np.ndarray
    final_state: State
    stats: dict = field(default_factory=dict)
    battery_block: np.ndarray | None = None
    energy_totals: np.ndarray | None = None  # (T, 2): all cells, all battery cells; see "cells" below


@dataclass(frozen=True)
class Method:
    """A registered simulation method: ``run(model, state0, times, options) -> Trace``."""

    name: str
    run: Callable
    options: frozenset = frozenset()
    summary: str = ""


def model_and_state(G_or_model) -> tuple[Model, State]:
    """The model of a graph or model, and its own initial state (a model's is the vacuum)."""
    if isinstance(G_or_model, Model):
        return G_or_model, initial_state(G_or_model)
    model = build_model(G_or_model)
    return model, graph_state(G_or_model, model.cells)


def check_times(times) -> np.ndarray:
    """``times`` as a (T,) float array: real, finite, >= 0, strictly increasing; else SolverError."""
    if np.iscomplexobj(times):
        raise SolverError(f"times must be real numbers (1/omega), got complex values {times!r}")
    try:
        t = np.asarray(times, dtype=float)
    except (TypeError, ValueError, OverflowError):
        raise SolverError(f"times must be a 1-D array of numbers, got {times!r}") from None
    if t.ndim != 1 or t.size == 0:
        raise SolverError(f"times must be a non-empty 1-D array (1/omega), got shape {t.shape}")
    if not np.isfinite(t).all():
        bad = np.flatnonzero(~np.isfinite(t))
        raise SolverError(f"times[{bad[0]}] = {t[bad[0]]} is not finite")
    if t[0] < 0:
        raise SolverError(f"times[0] = {t[0]} is negative; simulation time starts at t = 0")
    if not (t[1:] > t[:-1]).all():
        bad = np.flatnonzero(t[1:] <= t[:-1])
        raise SolverError(
            f"times must increase strictly: times[{bad[0] + 1}] = {t[bad[0] + 1]} <= times[{bad[0]}] = {t[bad[0]]}"
        )
    return t


def distinct_steps(times):
    """Distinct step lengths (K,) and, per output time, which one leads to it (T,) int64.

    Step k runs from times[k-1] (0 for k = 0) to times[k]. Two steps count as one only when they
    differ by less than the rounding of the times that bound them (8 ulp of the later end point
    of each, as np.linspace leaves): a uniform grid gives K <= 2, and a late output time never
    merges early steps (each step is compared at its own scale, not at that of max(times)).
    """
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
