"""Small frozen result objects returned by :func:`simulate` and :func:`steady_state`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ChiralnetError
from .model import State

__all__ = ["SimulationResult", "SteadyState"]


class _CellLookup:
    cells: tuple

    def _index(self, cell) -> int:
        try:
            return self.cells.index(cell)
        except ValueError:
            raise ChiralnetError(f"cell {cell!r} is not in this result; cells are {list(self.cells)[:10]}") from None


@dataclass(frozen=True, eq=False)
class SimulationResult(_CellLookup):
    """Energies over time, from :func:`chiralnet.simulate`.

    Attributes
    ----------
    times : ndarray (T,)
        Output times (1/omega).
    cells : tuple, length N
        Node order of every per-cell axis.
    energies : ndarray (T, N)
        Stored energy E_i = omega_i (|alpha_i|^2 + Nc_ii), units of omega.
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
        Solver counters: ``propagators`` ("exact"); ``terms``, ``substeps``, ``matrix_terms`` (thermal)
        and ``format`` ("exact-sparse"); ``steps``, ``rejected``, ``rhs_evaluations`` ("rk45").
    final_state : State
        The state at the last output time (alpha and, when integrated, Nc): pass it as
        ``simulate(..., state0=result.final_state)`` to continue the run.
    battery_fluctuations : ndarray (T, B, B) complex or None
        The battery block Nc[B, B] at every output time (B = the battery cells in node order), kept by
        default whenever the fluctuations are integrated (a hot bath or a thermal start): what the
        collective ergotropy needs, |B|^2 numbers per time, never N x N. None at zero temperature (Nc = 0).
    omega : ndarray (N,) float or None
        Lab-frame cell frequencies (for the ergotropy).
    drive : ndarray (N,) complex or None
        Drive amplitudes E_i (for the injected power).
    drive_frequency : float or None
        omega_L.
    phase : ndarray (T,) int or None
        For a :func:`~chiralnet.protocol`: the phase each output time belongs to (a time on a
        boundary belongs to the phase that ends there); None for a single network.
    phase_ends : ndarray (P,) float or None
        Protocol time at which each phase ends (1/omega).
    phase_names : tuple of str or None
        Phase names.
    phase_energies : ndarray (P, N) or None
        Energy of every cell at the end of each phase (NaN for phases after the last output time).
    phase_states : tuple of State or None
        The state at the end of each phase (None after the last output time).
    """

    times: np.ndarray
    cells: tuple
    energies: np.ndarray
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
    phase: np.ndarray | None = None
    phase_ends: np.ndarray | None = None
    phase_names: tuple | None = None
    phase_energies: np.ndarray | None = None
    phase_states: tuple | None = None

    @property
    def total_energy(self) -> np.ndarray:
        """Sum of every cell's energy, shape (T,)."""
        return self.energies.sum(axis=1)

    @property
    def phase_battery_energy(self) -> np.ndarray | None:
        """Battery energy at the end of each protocol phase, shape (P,) (None for a single network)."""
        return None if self.phase_energies is None else self.phase_energies[:, self.battery].sum(axis=1)

    @property
    def battery_energy(self) -> np.ndarray:
        """Sum over the battery cells, shape (T,)."""
        return self.energies[:, self.battery].sum(axis=1)

    def energy(self, cell) -> np.ndarray:
        """Energy of one cell over time, shape (T,)."""
        return self.energies[:, self._index(cell)]

    def to_dataframe(self):
        """Energies as a pandas DataFrame indexed by time, one column per cell (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.energies, index=pd.Index(self.times, name="time"), columns=list(self.cells))

    def to_xarray(self):
        """An xarray Dataset with energies, amplitudes and fluctuations on (time, cell) (needs xarray)."""
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
        return xr.Dataset(
            data,
            coords=coords,
            attrs={"method": self.method},
        )


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
