"""Small frozen result objects returned by :func:`simulate` and :func:`steady_state`."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np

from ._jit import jit
from .errors import ChiralnetError, SolverError
from .model import State

__all__ = ["SimulationResult", "ProtocolResult", "SteadyState"]


class _CellLookup:
    cells: tuple

    def _index(self, cell) -> int:
        try:
            return self.cells.index(cell)
        except ValueError:
            raise ChiralnetError(f"cell {cell!r} is not in this result; cells are {list(self.cells)[:10]}") from None


@jit
def _energies_of(a, omega, f, thermal, out):
    """out = omega |a|^2 (+ omega f): one pass, no temporaries, the kernels' arithmetic."""
    for k in range(a.shape[0]):
        for i in range(a.shape[1]):
            z = a[k, i]
            e = omega[i] * (z.real * z.real + z.imag * z.imag)
            if thermal:
                e += omega[i] * f[k, i]
            out[k, i] = e


class _DerivedEnergies:
    """The ``energies`` field of :class:`SimulationResult`: stored when given, else derived on first access
    from the amplitudes and fluctuations, E = omega (|alpha|^2 + Nc_ii) (the kernels' arithmetic, so the
    same bits), and kept. A run that keeps its amplitudes then does not hold the energies twice."""

    def __get__(self, obj, objtype=None):
        if obj is None:
            raise AttributeError("energies")  # a required dataclass field, no default
        value = obj.__dict__.get("_energies")
        if value is None:
            from . import memory

            a = obj.amplitudes
            f = np.asarray(obj.fluctuations)
            thermal = any(f.strides)  # not the broadcast zeros of a coherent state
            value = memory.empty(a.shape)
            _energies_of(a, np.asarray(obj.omega, float), f if thermal else np.zeros((1, 1)), thermal, value)
            obj.__dict__["_energies"] = value
        return value

    def __set__(self, obj, value):
        obj.__dict__["_energies"] = value


@dataclass(frozen=True, eq=False)
class SimulationResult(_CellLookup):
    """Energies over time, from :func:`chiralnet.simulate`.

    Attributes
    ----------
    times : ndarray (T,)
        Output times (1/omega).
    cells : tuple, length N
        Node order of every per-cell axis: the network's cells, or those chosen with
        ``simulate(..., cells=...)`` (then every per-cell array below has only their columns).
    energies : ndarray (T, N)
        Stored energy E_i = omega_i (|alpha_i|^2 + Nc_ii), units of omega. When the amplitudes are kept
        it is derived from them on first access (and then kept), not stored twice.
    amplitudes : ndarray (T, N) complex or None
        Mean amplitudes alpha_i in the frame rotating at the drive frequency
        (None after ``simulate(..., store_amplitudes=False)``).
    fluctuations : ndarray (T, N)
        Incoherent occupations Nc_ii (zero for a coherent state).
    battery : ndarray (N,) bool
        Cells counted in ``battery_energy``.
    method : str
        The method that ran (``"auto"`` resolved).
    stats : dict
        Solver counters: ``propagators`` ("exact"); ``terms``, ``substeps``, ``matrix_terms`` (thermal),
        ``propagator_products`` and ``matrix_propagator_products`` (products with a sparse propagator),
        ``propagator_entries`` and ``format`` ("exact-sparse"); ``steps``, ``rejected``,
        ``rhs_evaluations`` ("rk45").
    final_state : State
        The state at the last output time (alpha and, when integrated, Nc): pass it as
        ``simulate(..., state0=result.final_state)`` to continue the run.
    battery_fluctuations : ndarray (T, B, B) complex or None
        The battery block Nc[B, B] at every output time (B = the battery cells in node order), kept
        whenever the fluctuations are integrated (a hot bath or a thermal start) and the battery has at
        most ``config.BATTERY_BLOCK_MAX_CELLS`` cells, or when asked (``simulate(...,
        battery_fluctuations=True)``): what the collective ergotropy needs, |B|^2 numbers per time.
        None at zero temperature (Nc = 0) and when not kept.
    omega : ndarray (N,) float or None
        Lab-frame cell frequencies (for the ergotropy).
    drive : ndarray (N,) complex or None
        Drive amplitudes E_i (for the injected power).
    drive_frequency : float or None
        omega_L.
    energy_totals : ndarray (T, 2) or None
        Total energy of all cells and of all battery cells at each time, summed in the kernel (what
        ``total_energy`` and ``battery_energy`` return; None: they are summed from ``energies``).
    options : dict
        What ran: the options of the method (``rtol``, ``atol``, ``max_steps`` where an adaptive
        integration ran, with the values used), ``start`` (the time the run started from).
    anomalous : ndarray (T, N) complex or None
        The anomalous moments Mc_ii = <da_i da_i> (squeezing) of each cell, rotating frame: kept by the
        general Gaussian path (``method == "exact-gaussian"``), None on the phase-insensitive one (Mc = 0).
    battery_anomalous : ndarray (T, B, B) complex or None
        The battery block Mc[B, B] at every output time, beside ``battery_fluctuations`` (general path).
    """

    times: np.ndarray
    cells: tuple
    energies: np.ndarray | None = _DerivedEnergies()
    amplitudes: np.ndarray | None
    fluctuations: np.ndarray
    battery: np.ndarray
    method: str
    stats: dict = field(default_factory=dict)
    final_state: State | None = None
    battery_fluctuations: np.ndarray | None = None
    omega: np.ndarray | None = None
    drive: np.ndarray | None = None
    drive_frequency: float | None = None
    energy_totals: np.ndarray | None = None
    options: dict = field(default_factory=dict)
    anomalous: np.ndarray | None = None
    battery_anomalous: np.ndarray | None = None

    #: A single network's result has no phases (see :class:`ProtocolResult`).
    phase = None

    @property
    def total_energy(self) -> np.ndarray:
        """Sum of every cell's energy, shape (T,): over all cells of the network, also after
        ``simulate(..., cells=...)``."""
        if self.energy_totals is not None:
            return self.energy_totals[:, 0]
        return self.energies.sum(axis=1)

    @property
    def battery_energy(self) -> np.ndarray:
        """Sum over the battery cells, shape (T,): over all battery cells of the network, also after
        ``simulate(..., cells=...)``."""
        if self.energy_totals is not None:
            return self.energy_totals[:, 1]
        return self.energies[:, self.battery].sum(axis=1)

    def energy(self, cell) -> np.ndarray:
        """Energy of one cell over time, shape (T,)."""
        return self.energies[:, self._index(cell)]

    def to_dataframe(self):
        """Energies as a pandas DataFrame indexed by time, one column per cell (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.energies, index=pd.Index(self.times, name="time"), columns=list(self.cells))

    def to_xarray(self):
        """An xarray Dataset with energies, amplitudes and fluctuations on (time, cell) (needs xarray), and
        ``anomalous`` (Mc_ii, complex) on (time, cell) after a run on the general Gaussian path."""
        import xarray as xr

        labels = [str(c) for c in self.cells]
        if len(set(labels)) < len(labels):
            raise ChiralnetError("to_xarray labels cells by str(name), and two cells share a label "
                                 "(e.g. 1 and '1'); rename one of them")
        coords = {"time": self.times, "cell": labels}
        data = {
            "energy": (("time", "cell"), self.energies),
            "amplitude": (("time", "cell"), self.amplitudes),
            "fluctuation": (("time", "cell"), np.asarray(self.fluctuations)),
            "battery": (("cell",), self.battery),
        }
        if self.amplitudes is None:  # simulate(..., store_amplitudes=False)
            del data["amplitude"]
        if getattr(self, "anomalous", None) is not None:  # the general Gaussian path: Mc_ii = <da_i da_i>
            data["anomalous"] = (("time", "cell"), np.asarray(self.anomalous))
        return xr.Dataset(
            data,
            coords=coords,
            attrs={"method": self.method},
        )


@dataclass(frozen=True, eq=False)
class ProtocolResult(SimulationResult):
    """Energies over time of a :func:`~chiralnet.protocol` (phases held one after another), from
    :func:`chiralnet.simulate`. Every attribute of :class:`SimulationResult`, with these differences:

    Attributes
    ----------
    battery : ndarray (N,) bool
        The battery cells of the first phase run; ``battery_energy`` sums at each time over the battery
        of the phase that time belongs to (``phase_batteries``).
    drive : ndarray (T, N) complex
        Drive amplitudes E_i(t) at each output time, in the frame of its phase.
    drive_frequency : ndarray (T,) float
        omega_L of the phase each output time belongs to (amplitudes and drive are in its frame).
    method : str
        The methods of the phases run, joined by "+"; ``stats["phase_methods"]`` per phase.
    phase : ndarray (T,) int
        The phase each output time belongs to (a time on a boundary belongs to the phase that ends
        there).
    phase_ends : ndarray (P,) float
        Protocol time at which each phase ends (1/omega).
    phase_names : tuple of str
    phase_energies : ndarray (P, N)
        Energy of every cell at the end of each phase (NaN for phases the run did not reach the end of).
    phase_states : tuple of State or None
        The state at the end of each phase (None where not reached).
    phase_drive_frequencies : ndarray (P,) float
        omega_L of each phase.
    phase_batteries : ndarray (P, N) bool
        The battery cells of each phase.
    """

    phase: np.ndarray | None = None
    phase_ends: np.ndarray | None = None
    phase_names: tuple | None = None
    phase_energies: np.ndarray | None = None
    phase_states: tuple | None = None
    phase_drive_frequencies: np.ndarray | None = None
    phase_batteries: np.ndarray | None = None

    @property
    def battery_energy(self) -> np.ndarray:
        """Sum over the battery cells of each time's phase, shape (T,)."""
        return (self.energies * self.phase_batteries[self.phase]).sum(axis=1)

    @property
    def phase_battery_energy(self) -> np.ndarray:
        """Battery energy at the end of each phase (its own battery cells), shape (P,)."""
        return (self.phase_energies * self.phase_batteries).sum(axis=1)


@dataclass(frozen=True, eq=False)
class SteadyState(_CellLookup):
    """The steady state, from :func:`chiralnet.steady_state`.

    Attributes
    ----------
    cells : tuple, length N
    energies : ndarray (N,)
        Steady stored energy per cell, units of omega.
    amplitudes : ndarray (N,) complex
        alpha_ss = i M^{-1} E (rotating frame).
    fluctuations : ndarray (N,)
        Diagonal of Nc_ss.
    battery : ndarray (N,) bool
    method : str
        How it was solved.
    state : State
        The steady state as a :class:`~chiralnet.model.State` (Nc_ss, or None at zero temperature),
        to start a run from: ``simulate(G, times, state0=ss.state)``.
    omega : ndarray (N,) float or None
        Lab-frame cell frequencies.
    drive : ndarray (N,) complex or None
        Drive amplitudes E_i.
    drive_frequency : float or None
        omega_L.
    """

    cells: tuple
    energies: np.ndarray
    amplitudes: np.ndarray
    fluctuations: np.ndarray
    battery: np.ndarray
    method: str
    state: State | None = None
    omega: np.ndarray | None = None
    drive: np.ndarray | None = None
    drive_frequency: float | None = None

    @property
    def total_energy(self) -> float:
        """Sum of every cell's steady energy, units of omega."""
        return float(self.energies.sum())

    @property
    def battery_energy(self) -> float:
        """Sum over the battery cells, units of omega."""
        return float(self.energies[self.battery].sum())

    def energy(self, cell) -> float:
        """Steady energy of one cell, units of omega."""
        return float(self.energies[self._index(cell)])


def cell_columns(cells_of_model: tuple, cells) -> np.ndarray | None:
    """Columns (k,) int64 of the chosen ``cells`` in the model's node order (None: all cells), for
    ``simulate(..., cells=...)``; a cell not in the network or a repeated cell raises."""
    if cells is None:
        return None
    if isinstance(cells, (str, bytes)) or not hasattr(cells, "__iter__"):
        raise ChiralnetError(f"cells must be a list of cell names, got {cells!r}")
    cells = list(cells)
    pos = {c: i for i, c in enumerate(cells_of_model)}
    unhashable = [c for c in cells if not isinstance(c, Hashable)]
    if unhashable:
        raise ChiralnetError(f"cells must be a list of cell names, got {unhashable[0]!r} among them")
    missing = [c for c in cells if c not in pos]
    if missing:
        raise ChiralnetError(f"cells {missing[:5]} are not in the network; cells are {list(cells_of_model)[:10]}")
    if len(set(cells)) != len(cells):
        raise ChiralnetError(f"cells has repeated entries: {cells[:10]}")
    if not cells:
        raise ChiralnetError("cells is empty; give at least one cell, or cells=None for all of them")
    return np.array([pos[c] for c in cells], np.int64)


@jit
def _all_finite_2d(a):
    """np.isfinite(a).all() for a (T, N) float array, without NumPy's temporary and two calls."""
    for k in range(a.shape[0]):
        for i in range(a.shape[1]):
            if not np.isfinite(a[k, i]):
                return False
    return True


def _finite(a) -> bool:
    if type(a) is np.ndarray and a.ndim == 2 and a.dtype.char == "d":
        return _all_finite_2d(a)
    return bool(np.isfinite(a).all())


def _new_steady(fields: dict) -> SteadyState:
    """``SteadyState(**fields)`` with every field given, ``fields`` taken as its ``__dict__`` (as
    :func:`_new_result`: the frozen ``__init__`` costs 2 us, a tenth of a small steady state)."""
    result = object.__new__(SteadyState)
    object.__setattr__(result, "__dict__", fields)
    return result


def _new_result(fields: dict) -> SimulationResult:
    """``SimulationResult(**fields)`` with every field given, without the dataclass ``__init__`` (17 frozen
    ``object.__setattr__`` calls, ~2.5 us: a tenth of a two-cell run) or a keyword call (17 keywords packed,
    ~1 us); ``fields`` is taken as the result's ``__dict__``, ``energies`` under ``_energies`` where its
    descriptor keeps it."""
    result = object.__new__(SimulationResult)
    object.__setattr__(result, "__dict__", fields)
    return result


def simulation_result(trace, model, times, method: str, store: bool, columns, options=None) -> SimulationResult:
    """The :class:`SimulationResult` of a method's trace (``chiralnet.solve.base.Trace``).

    A trace has all N columns, or (methods that honour ``options["cells"]``) only ``columns`` plus
    ``energy_totals`` over all cells; its energies may be None when its amplitudes are kept (then
    they are derived on access). Raises SolverError on a non-finite energy, naming the cell.
    """
    end = trace.final_state  # a State, checked when the method made it (or made of arrays the checks below cover)
    energies, amplitudes, fluct, totals = trace.energies, trace.amplitudes, trace.fluctuations, trace.energy_totals
    battery, omega, drive = model.battery, model.omega, model.drive_at(times)
    if columns is not None:
        if totals is None:  # a full-width trace: sum over every cell, then keep the chosen columns
            totals = np.stack([energies.sum(axis=1), energies[:, battery].sum(axis=1)], axis=1)
        if energies is not None and energies.shape[1] != columns.size:
            energies = energies[:, columns]
        if amplitudes is not None and amplitudes.shape[1] != columns.size:
            amplitudes = amplitudes[:, columns]
        if fluct.shape[1] != columns.size:
            fluct = fluct[:, columns]
        battery, omega, drive = battery[columns], omega[columns], drive[..., columns]
    cells = model.cells if columns is None else tuple(model.cells[i] for i in columns)
    result = _new_result({
        "times": times, "cells": cells, "_energies": energies, "amplitudes": amplitudes if store else None,
        "fluctuations": fluct, "battery": battery, "method": method, "stats": trace.stats,
        "final_state": State._checked(end.cells, end.alpha, end.Nc, float(times[-1]), model.drive_frequency, end.Mc),
        "battery_fluctuations": trace.battery_block, "omega": omega, "drive": drive,
        "drive_frequency": model.drive_frequency, "energy_totals": totals, "options": dict(options or {}),
        "anomalous": trace.anomalous, "battery_anomalous": trace.anomalous_block})
    bad = None
    if totals is not None and not _finite(totals):
        bad = np.argwhere(~np.isfinite(result.energies))  # the per-cell sums overflowed: find the cell
        bad = bad if bad.size else np.argwhere(~np.isfinite(totals[:, :1]))
    elif energies is not None and not _finite(energies):
        bad = np.argwhere(~np.isfinite(energies))
    if bad is not None:
        k, i = bad[0]
        raise SolverError(
            f"energy of cell {cells[i]!r} is not finite at t = {times[k]}; the network is unstable "
            "or its rates overflow (see chiralnet.check_stability)"
        )
    return result
