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
from ..gaussian import is_general_model
from ..model import Model, State, build_model
from ..network import cells as cell_nodes
from ..network import validate_network
from ..model import initial_state
from ..results import ProtocolResult
from .base import check_times, start_state
from .general import needs_general
from .run import check_finite, options_used as _options_used, run_model, trace_energies

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
        The state at t = 0: the first phase's ``alpha0``/``n0`` (its Model's ``initial``; the vacuum for
        an array-built Model).
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
    if isinstance(G, Model) or is_general_model(G):
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


def _fits(x) -> bool:
    """A finite real number that a float holds (an int beyond 1e308 does not)."""
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


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
    models, durations, names, cells0 = [], [], [], None
    for k, item in enumerate(phases):
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise ChiralnetError(f"phase {k}: expected (network, duration) or (network, duration, name), got {item!r}")
        G, duration = item[0], item[1]
        name = str(item[2]) if len(item) == 3 else f"phase {k}"
        where = f"phase {k}" + (f" ({name!r})" if len(item) == 3 else "")
        if isinstance(duration, bool) or not isinstance(duration, Real) or not _fits(duration) or not duration > 0:
            raise ChiralnetError(f"{where}: duration must be a finite number > 0 (1/omega), got {duration!r}")
        model, graph = _phase_model(G, where, cells0)
        if cells0 is None:
            cells0 = model.cells
        elif set(model.cells) != set(cells0):
            missing = [c for c in cells0 if c not in set(model.cells)]
            extra = [c for c in model.cells if c not in set(cells0)]
            raise ChiralnetError(_cell_mismatch(where, missing, extra))
        models.append(model)
        durations.append(float(duration))
        names.append(name)
    return Protocol(tuple(models), np.array(durations), tuple(names), initial_state(models[0]))


def _columns(trace, e, perm):
    """Trace arrays (amplitudes, energies ``e``, fluctuations) with cells reordered by ``perm`` (None: as is)."""
    a, f = trace.amplitudes, np.asarray(trace.fluctuations)
    if perm is None:
        return a, e, f
    return (None if a is None else a[:, perm]), e[:, perm], f[:, perm]


def run_protocol(proto: Protocol, times, state0, method, given, store, keep_block=None) -> ProtocolResult:
    """simulate(protocol, ...): from the state at its time (state0, or the protocol's initial state at
    t = 0), run each phase from the state the previous one ended in, in the phase's drive frame."""
    state = start_state(state0, proto.initial_state, proto.models[0])
    start = state.time
    ends, starts = proto.ends, proto.starts
    end = float(ends[-1])
    if start > end:
        raise SolverError(f"state0.time = {start} is after the end of the protocol at t = {end}")
    t = check_times(times, start, state0 is not None)
    if t[-1] > end * (1 + 4 * np.finfo(float).eps):
        k = int(np.flatnonzero(t > end * (1 + 4 * np.finfo(float).eps))[0])
        raise SolverError(f"times[{k}] = {t[k]} is past the end of the protocol at t = {end} "
                          f"(phases end at {ends.tolist()})")
    P, N, T = proto.n_phases, len(proto.cells), t.size
    phase = np.minimum(np.searchsorted(ends, t, side="left"), P - 1)
    first = min(int(np.searchsorted(ends, start, side="left")), P - 1)  # the phase the start lies in
    amplitudes = np.empty((T, N), complex) if store else None
    energies = np.empty((T, N))
    fluct = None
    phase_energies = np.full((P, N), np.nan)
    phase_states = [None] * P
    methods, stats, options = [], [], {}
    drive = np.empty((T, N), complex)  # E(t) per output time: phases switch drives
    order = [None if m.cells == proto.cells else np.array([m.cells.index(c) for c in proto.cells])
             for m in proto.models]
    batteries = np.array([m.battery if o is None else m.battery[o] for m, o in zip(proto.models, order)])
    frequencies = np.array([m.drive_frequency for m in proto.models])
    # the battery block of Nc is kept when every phase has the same battery cells in the same order
    same_battery = all(m.cells == proto.cells for m in proto.models) and (batteries == batteries[0]).all()
    blocks = None
    anomalous = anomalous_blocks = None  # Mc_ii and Mc[B, B], from the first phase on the general path
    last = int(phase[-1])
    bounds = np.searchsorted(phase, np.arange(P + 1), side="left")
    for p in range(first, last + 1):
        model, perm = proto.models[p], order[p]
        lo, hi = bounds[p], bounds[p + 1]
        begin = max(float(starts[p]), start)  # where this phase's run starts
        state = state.for_cells(model.cells).in_frame(model.drive_frequency)
        local = np.maximum(t[lo:hi] - begin, 0.0)  # >= 0: rounding at a boundary
        dur = float(ends[p]) - begin
        extra = p < last and (local.size == 0 or local[-1] < dur * (1 - 8 * np.finfo(float).eps))
        run_times = np.r_[local, dur] if extra else local
        if run_times.size == 0 or run_times[-1] <= 0.0 and hi == lo:
            continue  # the run starts at this phase's end: nothing to do in it
        # a constant phase on the general path is exact: the tolerances given for the shaped phases are not its
        own = given if model.time_dependent or not needs_general(model, state) else {}
        trace, name = run_model(model, state, run_times, method, own, store, t_offset=begin, keep_block=keep_block)
        e_all = trace_energies(trace, model)
        check_finite(e_all, model.cells, run_times + begin)
        methods.append(name)
        stats.append(trace.stats)
        options.update(_options_used(name, given, model))
        a, e, f = _columns(trace, e_all, perm)
        k = hi - lo
        cols = slice(None) if perm is None else perm
        d = model.drive_at(run_times[:k] + begin)
        drive[lo:hi] = d[:, cols] if d.ndim == 2 else d[cols][None]
        if trace.battery_block is not None and same_battery:  # Nc[B, B] per time, B in proto.cells order
            if blocks is None:
                blocks = np.zeros((T,) + trace.battery_block.shape[1:], complex)
            blocks[lo:hi] = trace.battery_block[:k]
        if trace.anomalous is not None:  # a phase on the general Gaussian path (earlier phases: Mc = 0)
            if anomalous is None:
                anomalous = np.zeros((T, N), complex)
            anomalous[lo:hi] = (trace.anomalous if perm is None else trace.anomalous[:, perm])[:k]
            if trace.anomalous_block is not None and same_battery:
                if anomalous_blocks is None:
                    anomalous_blocks = np.zeros((T,) + trace.anomalous_block.shape[1:], complex)
                anomalous_blocks[lo:hi] = trace.anomalous_block[:k]
        if store:
            amplitudes[lo:hi] = a[:k]
        energies[lo:hi] = e[:k]
        if fluct is None and f.ndim == 2 and (f.strides[0] != 0 or f.strides[1] != 0):
            fluct = np.zeros((T, N))
        if fluct is not None:
            fluct[lo:hi] = f[:k]
        state = dataclasses.replace(trace.final_state.for_cells(proto.cells), time=begin + float(run_times[-1]),
                                    frame=model.drive_frequency)
        if p < last or abs(run_times[-1] - dur) <= 8 * np.finfo(float).eps * max(dur, 1.0):
            phase_energies[p] = e[-1]
            phase_states[p] = dataclasses.replace(state, time=float(ends[p]))
    if fluct is None:
        fluct = np.broadcast_to(np.zeros(1), (T, N))
    final = dataclasses.replace(state, time=float(t[-1]))
    m0 = proto.models[first]
    o0 = slice(None) if order[first] is None else order[first]
    return ProtocolResult(
        times=t, cells=proto.cells, energies=energies, amplitudes=amplitudes, fluctuations=fluct,
        battery=batteries[first], method="+".join(dict.fromkeys(methods)),
        stats={"phase_methods": methods, "phase_stats": stats}, final_state=final,
        battery_fluctuations=blocks, omega=m0.omega[o0], drive=drive, drive_frequency=frequencies[phase],
        options={**options, "start": start},
        phase=phase.astype(np.int64), phase_ends=ends.copy(), phase_names=proto.names,
        phase_energies=phase_energies, phase_states=tuple(phase_states), phase_drive_frequencies=frequencies,
        phase_batteries=batteries, anomalous=anomalous,
        battery_anomalous=anomalous_blocks if blocks is not None else None,
    )
