"""Protocols: networks held one after another (charge, store, discharge...), the state carried over.

``protocol([(G_1, duration_1), (G_2, duration_2), ...])`` holds network G_k for ``duration_k``;
phases run back to back from t = 0. ``simulate(protocol, times)`` runs each phase with the method
it picks (or the one asked for) from the state the previous phase ended in (alpha and Nc), so
piecewise-constant protocols are exact with the exact methods: each phase is one ordinary run,
restarted at its boundary, and costs what a run over its own output times costs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from numbers import Real

import numpy as np

from ..errors import ChiralnetError, SolverError
from ..model import Model, State, build_model, graph_state
from ..network import cells as cell_nodes
from ..network import validate_network
from ..results import SimulationResult
from .base import check_times
from .run import check_finite, run_model, trace_energies

__all__ = ["Protocol", "protocol", "run_protocol"]


@dataclass(frozen=True, eq=False)
class Protocol:
    """Phases of a charging protocol, from :func:`protocol`.

    Attributes
    ----------
    models : tuple of Model, length P
        The generator of each phase (cells in the order of the first phase).
    durations : ndarray (P,) float
        How long each phase is held (1/omega).
    names : tuple of str, length P
        Phase names (default "phase 0", "phase 1", ...).
    initial_state : State
        The state at t = 0: the first phase's ``alpha0``/``n0`` (the vacuum for a Model).
    """

    models: tuple
    durations: np.ndarray
    names: tuple
    initial_state: State

    @property
    def cells(self) -> tuple:
        return self.models[0].cells

    @property
    def n_phases(self) -> int:
        return len(self.models)

    @property
    def ends(self) -> np.ndarray:
        """Protocol time at which each phase ends, shape (P,)."""
        return np.cumsum(self.durations)

    @property
    def starts(self) -> np.ndarray:
        """Protocol time at which each phase starts, shape (P,)."""
        return np.r_[0.0, self.ends[:-1]]

    @property
    def duration(self) -> float:
        """The end of the last phase."""
        return float(self.ends[-1])


def _phase_model(G, where, cells0=None):
    if isinstance(G, Model):
        return G, None
    try:
        validate_network(G)
        order = list(cell_nodes(G))
    except ChiralnetError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    if cells0 is not None:
        missing = [c for c in cells0 if c not in set(order)]
        extra = [c for c in order if c not in set(cells0)]
        if missing or extra:
            raise ChiralnetError(_cell_mismatch(where, missing, extra))
        order = list(cells0)
    try:
        model = build_model(G, nodelist=order)
    except ChiralnetError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    return model, G


def _cell_mismatch(where, missing, extra) -> str:
    parts = []
    if missing:
        parts.append(f"lacks cell{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing[:5]))} of phase 0")
    if extra:
        parts.append(f"has cell{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra[:5]))} that phase 0 lacks")
    return (f"{where} {' and '.join(parts)}; every phase must have the same cells (add an unlinked, "
            "undriven cell where one is not used)")


def protocol(phases) -> Protocol:
    """Phases held one after another: ``[(G_1, duration_1), (G_2, duration_2), ...]``.

    Parameters
    ----------
    phases : sequence of (network, duration) or (network, duration, name)
        Each network a graph chiralnet accepts or a :class:`~chiralnet.model.Model`, held for
        ``duration`` (1/omega, finite, > 0). All phases must have the same cells (names); a phase
        may differ in anything else (drives, damping, baths, links, reservoirs, battery flags).
        Build phases from one graph with ``G.copy()`` or the builders.

    Returns
    -------
    Protocol
        Pass it to :func:`~chiralnet.simulate` in place of a network. The state (alpha and Nc)
        carries over at each boundary; the run starts at t = 0 from the first phase's ``alpha0``/``n0``
        (or from ``state0``). Drives see the protocol time t.

    Examples
    --------
    >>> import numpy as np, chiralnet as cn
    >>> charge = cn.two_cell()
    >>> store = charge.copy()
    >>> store.nodes["a"]["drive"] = 0.0
    >>> p = cn.protocol([(charge, 1000.0), (store, 500.0, "store")])
    >>> res = cn.simulate(p, np.linspace(0, 1500, 7))
    >>> res.phase.tolist(), res.phase_ends.tolist()
    ([0, 0, 0, 0, 0, 1, 1], [1000.0, 1500.0])
    """
    if isinstance(phases, (str, bytes)) or not hasattr(phases, "__iter__"):
        raise ChiralnetError(f"protocol takes a list of (network, duration) pairs, got {phases!r}")
    phases = list(phases)
    if not phases:
        raise ChiralnetError("protocol needs at least one (network, duration) phase")
    models, durations, names, cells0, first_graph = [], [], [], None, None
    for k, item in enumerate(phases):
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise ChiralnetError(f"phase {k}: expected (network, duration) or (network, duration, name), got {item!r}")
        G, duration = item[0], item[1]
        name = str(item[2]) if len(item) == 3 else f"phase {k}"
        where = f"phase {k}" + (f" ({name!r})" if len(item) == 3 else "")
        if isinstance(duration, bool) or not isinstance(duration, Real) or not math.isfinite(duration) \
                or not duration > 0:
            raise ChiralnetError(f"{where}: duration must be a finite number > 0 (1/omega), got {duration!r}")
        model, graph = _phase_model(G, where, cells0)
        if cells0 is None:
            cells0, first_graph = model.cells, graph
        elif set(model.cells) != set(cells0):
            missing = [c for c in cells0 if c not in set(model.cells)]
            extra = [c for c in model.cells if c not in set(cells0)]
            raise ChiralnetError(_cell_mismatch(where, missing, extra))
        models.append(model)
        durations.append(float(duration))
        names.append(name)
    m0 = models[0]
    state = graph_state(first_graph, m0.cells) if first_graph is not None else State(m0.cells, np.zeros(m0.n_cells, complex))
    return Protocol(tuple(models), np.array(durations), tuple(names), state)


def _columns(trace, e, perm):
    """Trace arrays (amplitudes, energies ``e``, fluctuations) with cells reordered by ``perm`` (None: as is)."""
    a, f = trace.amplitudes, np.asarray(trace.fluctuations)
    if perm is None:
        return a, e, f
    return (None if a is None else a[:, perm]), e[:, perm], f[:, perm]


def run_protocol(proto: Protocol, times, state0, method, given, store, keep_block=None) -> SimulationResult:
    """simulate(protocol, ...): run each phase from the state the previous one ended in."""

    t = check_times(times)
    ends, starts = proto.ends, proto.starts
    end = float(ends[-1])
    if t[-1] > end * (1 + 4 * np.finfo(float).eps):
        k = int(np.flatnonzero(t > end * (1 + 4 * np.finfo(float).eps))[0])
        raise SolverError(f"times[{k}] = {t[k]} is past the end of the protocol at t = {end} "
                          f"(phases end at {ends.tolist()})")
    if state0 is None:
        state = proto.initial_state
    elif isinstance(state0, State):
        state = state0.for_cells(proto.cells)
    else:
        raise SolverError(f"state0 must be a chiralnet.State (e.g. result.final_state), got {type(state0).__name__}")
    P, N, T = proto.n_phases, len(proto.cells), t.size
    phase = np.minimum(np.searchsorted(ends, t, side="left"), P - 1)
    amplitudes = np.empty((T, N), complex) if store else None
    energies = np.empty((T, N))
    fluct = None
    phase_energies = np.full((P, N), np.nan)
    phase_states = [None] * P
    methods, stats = [], []
    drive = np.empty((T, N), complex)  # E(t) per output time: phases switch drives
    first = proto.models[0]
    order0 = np.array([first.cells.index(c) for c in proto.cells])
    battery = first.battery[order0]
    # the battery block of Nc is kept when every phase has the same battery cells in the same order
    same_battery = all(m.cells == proto.cells and np.array_equal(m.battery, battery) for m in proto.models)
    blocks = None
    last = int(phase[-1])
    bounds = np.searchsorted(phase, np.arange(P + 1), side="left")
    for p in range(last + 1):
        model = proto.models[p]
        perm = None if model.cells == proto.cells else np.array([model.cells.index(c) for c in proto.cells])
        lo, hi = bounds[p], bounds[p + 1]
        local = t[lo:hi] - starts[p]
        if p == 0:
            local = np.maximum(local, 0.0)
        dur = proto.durations[p]
        extra = p < last and (local.size == 0 or local[-1] < dur * (1 - 8 * np.finfo(float).eps))
        run_times = np.r_[local, dur] if extra else local
        trace, name = run_model(model, state.for_cells(model.cells), run_times, method, given, store,
                                t_offset=float(starts[p]), keep_block=keep_block)
        e_all = trace_energies(trace, model)
        check_finite(e_all, model.cells, run_times + starts[p])
        methods.append(name)
        stats.append(trace.stats)
        a, e, f = _columns(trace, e_all, perm)
        k = hi - lo
        cols = slice(None) if perm is None else perm
        d = model.drive_at(run_times[:k] + starts[p])
        drive[lo:hi] = d[:, cols] if d.ndim == 2 else d[cols][None]
        if trace.battery_block is not None and same_battery:  # Nc[B, B] per time, B in proto.cells order
            if blocks is None:
                blocks = np.zeros((T,) + trace.battery_block.shape[1:], complex)
            blocks[lo:hi] = trace.battery_block[:k]
        if store:
            amplitudes[lo:hi] = a[:k]
        energies[lo:hi] = e[:k]
        if fluct is None and f.ndim == 2 and (f.strides[0] != 0 or f.strides[1] != 0):
            fluct = np.zeros((T, N))
        if fluct is not None:
            fluct[lo:hi] = f[:k]
        state = trace.final_state.for_cells(proto.cells)
        if p < last or abs(local[-1] - dur) <= 8 * np.finfo(float).eps * dur:
            phase_energies[p] = e[-1]
            phase_states[p] = dataclasses.replace(state, time=float(ends[p]))
    if fluct is None:
        fluct = np.broadcast_to(np.zeros(1), (T, N))
    final = dataclasses.replace(state, time=float(t[-1]))
    return SimulationResult(
        times=t, cells=proto.cells, energies=energies, amplitudes=amplitudes, fluctuations=fluct,
        battery=battery, method="+".join(dict.fromkeys(methods)),
        stats={"phase_methods": methods, "phase_stats": stats}, final_state=final,
        phase=phase.astype(np.int64), phase_ends=ends.copy(), phase_names=proto.names,
        phase_energies=phase_energies, phase_states=tuple(phase_states),
        battery_fluctuations=blocks, omega=first.omega[order0], drive=drive, drive_frequency=first.drive_frequency,
    )
