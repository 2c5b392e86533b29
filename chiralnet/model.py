"""Graph -> plain arrays: the generator (:class:`Model`), and the state it acts on (:class:`State`).

This is the last layer that knows about NetworkX. With N cells in node order ``cells``
and the frame rotating at the drive frequency omega_L (README "Conventions")::

    d alpha/dt = M alpha - i E,            M = -i H - D/2
    dNc/dt     = conj(M) Nc + Nc M^T + Q

H = diag(omega - omega_L) + Jmat, D = diag(kappa) + sum_r Gamma_r conj(p_r) p_r^T,
Q = diag(kappa n_th) + sum_r Gamma_r n_r p_r p_r^H.
"""

from __future__ import annotations

import cmath
import dataclasses
import functools
import weakref
from dataclasses import dataclass
from operator import is_

import networkx as nx
import numpy as np
import scipy.sparse as sp

from . import config
from ._jit import jit
from .drives import schedule
from .errors import NetworkError
from .network import CELL_DEFAULTS, RESERVOIR_DEFAULTS
from .network import read_network

__all__ = ["Model", "State", "build_model", "assemble_model", "initial_state", "check_fluctuations"]


def is_general_model(obj) -> bool:
    """Whether ``obj`` is a :class:`chiralnet.gaussian.GaussianModel` (by a class marker, not isinstance: the
    check holds when the module is imported twice, as pytest's doctest collection does)."""
    return getattr(type(obj), "_GENERAL_GAUSSIAN", False) is True


def gaussian_model(G, model):
    """The general Gaussian model of graph ``G`` whose phase-insensitive part is ``model``."""
    from .gaussian import gaussian_model as build

    return build(G, model)


@dataclass(frozen=True, eq=False)
class Model:
    """The generator of N cells: arrays that every solver works on (no state: see :class:`State`).

    Attributes
    ----------
    cells : tuple, length N
        Node names; index i of every array is cell ``cells[i]``.
    omega : ndarray (N,) float
        Lab-frame cell frequencies (units of omega); E_i = omega_i <a_i^dag a_i>.
    drive_frequency : float
        omega_L.
    M : ndarray (N, N) complex or scipy.sparse.csr_array
        Generator of the mean amplitudes in the rotating frame.
    drive : ndarray (N,) complex
        Drive amplitudes E_i.
    Q : ndarray (N, N) complex, csr_array, or None
        Noise matrix; None when every bath and reservoir is at zero temperature.
    battery : ndarray (N,) bool
        Cells counted in the battery energy.
    kappa : ndarray (N,) float or None
        Local damping rates (the cells' ports in :func:`chiralnet.scattering`); None when unknown.
    drives : DriveSchedule or None
        The time-dependent part of the drive (tones, pulses, callables; see :mod:`chiralnet.drives`),
        None when every drive is constant; ``drive`` then holds the constant part only.
    initial : State or None
        The state a run starts from at t = 0 when no ``state0`` is given: the graph's ``alpha0``/``n0``
        for a model built from a graph (:func:`build_model`), None (the vacuum) for one assembled from
        arrays.
    """

    cells: tuple
    omega: np.ndarray
    drive_frequency: float
    M: object
    drive: np.ndarray
    Q: object
    battery: np.ndarray
    kappa: np.ndarray | None = None
    drives: object = None
    initial: State | None = None

    def drive_at(self, times) -> np.ndarray:
        """Drive amplitudes E: (N,) when constant, (T, N) at simulation ``times`` when time-dependent."""
        if self.drives is None:
            return self.drive
        return self.drive + self.drives.at(times, self.n_cells)

    @property
    def time_dependent(self) -> bool:
        """True when some cell's drive is not a constant (see :mod:`chiralnet.drives`)."""
        return self.drives is not None

    @property
    def n_cells(self) -> int:
        return len(self.cells)

    @property
    def is_sparse(self) -> bool:
        return type(self.M) is not np.ndarray and sp.issparse(self.M)

    @property
    def thermal(self) -> bool:
        """True when a bath or reservoir is hot (Q != 0): the fluctuations Nc are driven."""
        return self.Q is not None

    @functools.cached_property
    def forcing(self) -> np.ndarray:
        """The constant term -i E of d alpha/dt = M alpha - i E, shape (N,) complex: computed once per model
        (half a microsecond of a small run) and shared, as ``drive`` is; left writeable, since Numba compiles
        a kernel again for a read-only array (seconds of a new process), but never written."""
        return -1j * self.drive

    def dense_M(self) -> np.ndarray:
        """M as a dense (N, N) complex array."""
        return self.M.toarray() if self.is_sparse else self.M

    def dense_Q(self) -> np.ndarray:
        """Q as a dense (N, N) complex array (zeros at zero temperature)."""
        if self.Q is None:
            return np.zeros((self.n_cells, self.n_cells), complex)
        return self.Q.toarray() if sp.issparse(self.Q) else self.Q

    def index(self, cell) -> int:
        """Position of ``cell`` in the node order."""
        try:
            return self.cells.index(cell)
        except ValueError:
            shown = f"{list(self.cells)[:10]}" + ("..." if len(self.cells) > 10 else "")
            raise NetworkError(f"cell {cell!r} is not in this model; cells are {shown}") from None


@dataclass(frozen=True, eq=False)
class State:
    """The Gaussian state of N cells: mean amplitudes, fluctuations and (when squeezed) anomalous moments.

    A run starts from a state and ends with one (``SimulationResult.final_state``), so runs chain:
    ``simulate(G, times, state0=result.final_state)`` continues where ``result`` stopped.

    Attributes
    ----------
    cells : tuple, length N
        Cell names, in the order of the arrays (the model's node order).
    alpha : ndarray (N,) complex
        Mean amplitudes <a_i> in the frame rotating at the drive frequency.
    Nc : ndarray (N, N) complex Hermitian, or None
        Fluctuations Nc_jk = <a_j^dag a_k> - conj(alpha_j) alpha_k; None means zero (a coherent state).
    time : float
        The time the state is at (1/omega, finite; default 0). ``simulate(..., state0=s)`` starts at
        ``s.time`` and propagates to every output time (all at or after it); a drive is a function of
        this absolute time. A result's ``final_state`` is at its last output time, a steady state at 0
        (it does not change in time); :meth:`at` places a state at another time.
    frame : float or None
        The drive frequency omega_L of the rotating frame ``alpha`` is in (None: the frame of the network
        it is used with). A run of a network with another omega_L converts it,
        alpha -> alpha exp(i (omega_L' - omega_L) time), Mc -> Mc exp(2i (omega_L' - omega_L) time): the
        lab-frame moments are continuous.
    Mc : ndarray (N, N) complex symmetric, or None
        Anomalous moments Mc_jk = <a_j a_k> - alpha_j alpha_k (squeezing, two-mode squeezing) in the
        rotating frame; None means zero (every state of a phase-insensitive network). A state with Mc
        runs on the general Gaussian path (:mod:`chiralnet.gaussian`).
    """

    cells: tuple
    alpha: np.ndarray
    Nc: np.ndarray | None = None
    time: float = 0.0
    frame: float | None = None
    Mc: np.ndarray | None = None

    def __post_init__(self):
        t = self.time
        if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)) or not np.isfinite(t):
            raise NetworkError(f"State.time must be a finite number (1/omega), got {t!r}")
        object.__setattr__(self, "time", float(t))
        n = len(self.cells)
        alpha = np.asarray(self.alpha)
        if alpha.shape != (n,) or not _all_finite(alpha):
            raise NetworkError(f"State.alpha must be {n} finite complex numbers (one per cell), got shape {alpha.shape}")
        if self.Nc is not None:
            Nc = np.asarray(self.Nc)
            if Nc.shape != (n, n) or not _all_finite(Nc):
                raise NetworkError(f"State.Nc must be a finite ({n}, {n}) matrix or None, got shape {Nc.shape}")
            check_fluctuations(Nc, self.cells)
        if self.Mc is not None:
            Mc = np.asarray(self.Mc)
            if Mc.shape != (n, n) or not np.isfinite(Mc).all():
                raise NetworkError(f"State.Mc must be a finite ({n}, {n}) matrix or None, got shape {Mc.shape}")
            if not np.allclose(Mc, Mc.T, rtol=1e-10, atol=1e-12 * (1 + np.abs(Mc).max())):
                raise NetworkError("State.Mc must be symmetric (Mc_jk = <da_j da_k> = Mc_kj); symmetrise it as "
                                   "(Mc + Mc.T) / 2")

    @classmethod
    def _checked(cls, cells, alpha, Nc=None, time=0.0, frame=None, Mc=None) -> "State":
        """A State of values already checked as ``__post_init__`` checks them (another State's arrays, or a
        run's final arrays whose energies the result checks), built without checking them again: a small
        run makes three States, and the checks (``eigvalsh`` of Nc) cost more than its arithmetic.
        ``time`` must already be a float."""
        state = object.__new__(cls)
        state.__dict__.update(cells=cells, alpha=alpha, Nc=Nc, time=time, frame=frame, Mc=Mc)
        return state

    @property
    def n_cells(self) -> int:
        return len(self.cells)

    @property
    def occupations(self) -> np.ndarray:
        """<a_i^dag a_i> = |alpha_i|^2 + Nc_ii, shape (N,)."""
        occ = self.alpha.real**2 + self.alpha.imag**2
        return occ if self.Nc is None else occ + self.Nc.diagonal().real

    def dense_Nc(self) -> np.ndarray:
        """Nc as a dense (N, N) complex array (zeros for a coherent state)."""
        return np.zeros((self.n_cells,) * 2, complex) if self.Nc is None else np.asarray(self.Nc, complex)

    def dense_Mc(self) -> np.ndarray:
        """Mc as a dense (N, N) complex array (zeros for an unsqueezed state)."""
        return np.zeros((self.n_cells,) * 2, complex) if self.Mc is None else np.asarray(self.Mc, complex)

    def at(self, time: float) -> "State":
        """The same amplitudes and fluctuations placed at ``time`` (1/omega): e.g. a steady state, or
        a state saved from another run, started at a later time. Arrays are shared, not copied."""
        return dataclasses.replace(self, time=time)

    def for_cells(self, cells) -> "State":
        """This state with its arrays in the order ``cells`` (the same set of names); else NetworkError."""
        cells = tuple(cells)
        if cells == self.cells:
            return self
        if len(cells) != len(self.cells) or set(cells) != set(self.cells):
            missing = [c for c in cells if c not in set(self.cells)]
            extra = [c for c in self.cells if c not in set(cells)]
            raise NetworkError(f"the state does not belong to this network: cells {missing[:5]} have no "
                               f"amplitude in it and it has cells {extra[:5]} the network lacks")
        pos = {c: i for i, c in enumerate(self.cells)}
        idx = np.array([pos[c] for c in cells])
        Nc = None if self.Nc is None else self.Nc[np.ix_(idx, idx)]
        Mc = None if self.Mc is None else np.asarray(self.Mc)[np.ix_(idx, idx)]
        return State(cells, self.alpha[idx], Nc, self.time, self.frame, Mc)

    def in_frame(self, drive_frequency: float) -> "State":
        """This state with ``alpha`` in the frame rotating at ``drive_frequency`` (see ``frame``)."""
        if self.frame is None or self.frame == drive_frequency:
            if self.frame == drive_frequency:
                return self
            return State._checked(self.cells, self.alpha, self.Nc, self.time, drive_frequency, self.Mc)
        turn = np.exp(1j * (drive_frequency - self.frame) * self.time)
        Mc = None if self.Mc is None else np.asarray(self.Mc) * turn**2  # <a a> turns like alpha^2
        return dataclasses.replace(self, alpha=self.alpha * turn, frame=drive_frequency, Mc=Mc)


def check_fluctuations(Nc: np.ndarray, cells) -> None:
    """NetworkError unless ``Nc`` (N, N) is a fluctuation matrix <a_j^dag a_k> - conj(alpha_j) alpha_k: Hermitian
    and positive semidefinite, each to ``config.STATE_NC_RTOL`` relative to its largest entry (plus
    the smallest normal double: subnormal rounding is zero).

    The eigenvalues (eigvalsh, O(N^3)) are taken up to ``config.STATE_NC_EIG_MAX_CELLS`` cells; a larger Nc is
    checked in O(N^2) for Hermiticity and a non-negative diagonal (the occupations) only."""
    if Nc.dtype == object or Nc.dtype.kind not in "iufc":
        raise NetworkError(f"State.Nc must be a numeric matrix, got dtype {Nc.dtype}")
    n = Nc.shape[0]
    if n == 0:
        return
    scale = float(np.abs(Nc).max())
    if scale == 0.0:
        return
    tol = config.STATE_NC_RTOL * scale + np.finfo(float).tiny  # subnormal rounding (|x| < 2.2e-308) is zero
    worst, where = 0.0, (0, 0)
    for r0 in range(0, n, 1024):  # row blocks: no second N x N array for a large Nc
        block = np.abs(Nc[r0:r0 + 1024] - Nc[:, r0:r0 + 1024].conj().T)
        k = int(np.argmax(block))
        if block.flat[k] > worst:
            worst, where = float(block.flat[k]), (r0 + k // n, k % n)
    if worst > tol:
        i, j = where
        raise NetworkError(f"State.Nc is not Hermitian: Nc[{cells[i]!r}, {cells[j]!r}] = {complex(Nc[i, j]):.6g} but "
                           f"conj(Nc[{cells[j]!r}, {cells[i]!r}]) = {complex(np.conj(Nc[j, i])):.6g} (tolerance "
                           f"config.STATE_NC_RTOL = {config.STATE_NC_RTOL} x max|Nc|); symmetrise it, (Nc + Nc^H) / 2")
    diag = Nc.diagonal().real
    if diag.min() < -tol:
        i = int(np.argmin(diag))
        raise NetworkError(f"State.Nc has a negative occupation on cell {cells[i]!r}: Nc_ii = {diag[i]:.6g} < 0 "
                           "(Nc_ii = <a_i^dag a_i> - |alpha_i|^2 is a variance, >= 0)")
    if n <= config.STATE_NC_EIG_MAX_CELLS:
        low = float(np.linalg.eigvalsh(0.5 * (Nc + Nc.conj().T)).min())
        if low < -tol:
            raise NetworkError(f"State.Nc is not positive semidefinite: its lowest eigenvalue is {low:.6g} < 0 "
                               f"(tolerance config.STATE_NC_RTOL = {config.STATE_NC_RTOL} x max|Nc|); a fluctuation "
                               "matrix is a covariance, so every eigenvalue must be >= 0")


def _all_finite(a) -> bool:
    """np.isfinite(a).all(), for a few numbers (every run makes three States) without two NumPy calls."""
    if a.size <= 16 and a.dtype.kind in "fc":
        return all(map(cmath.isfinite, a.ravel().tolist()))
    return bool(np.isfinite(a).all())


def initial_state(G_or_model) -> State:
    """The state a network starts from at t = 0: coherent amplitudes ``alpha0`` and thermal occupations
    ``n0`` of its cells (Nc = diag(n0), None when all are zero). A :class:`Model` built from a graph
    keeps its graph's (``Model.initial``); one assembled from arrays starts from the vacuum."""
    if isinstance(G_or_model, Model) or is_general_model(G_or_model):
        if G_or_model.initial is not None:
            return G_or_model.initial
        return State(G_or_model.cells, np.zeros(G_or_model.n_cells, complex))
    parts = read_network(G_or_model)  # validates
    if parts.anomalous:  # squeezed starts (xi0): the general Gaussian model's own
        return build_model(G_or_model).initial
    return graph_state(G_or_model, tuple(parts.cells))


def graph_state(G, order) -> State:
    """initial_state of a validated graph ``G`` with its cells in ``order`` (no second validation)."""
    nodes = G._node  # NetworkX's node dict: its NodeView costs a lookup per cell as much as the rest
    a0, z0 = CELL_DEFAULTS["alpha0"], CELL_DEFAULTS["n0"]
    alpha0 = np.array([nodes[c].get("alpha0", a0) for c in order], complex)
    n0 = [nodes[c].get("n0", z0) for c in order]
    # the schema (checked) holds alpha0 finite and n0 >= 0 finite: diag(n0) is a valid Nc, no State checks again
    if not any(n0):  # the common case, without an (N, N) array
        return State._checked(tuple(order), alpha0, None)
    n0 = np.array(n0, float)
    return State._checked(tuple(order), alpha0, np.diag(n0).astype(complex) if (n0 > 0).any() else None)


def build_model(G, *, nodelist=None, sparse: bool | None = None) -> Model:
    """Validate ``G`` and assemble its :class:`Model`.

    Parameters
    ----------
    G : networkx.DiGraph
        A network following the schema of :mod:`chiralnet.network`.
    nodelist : sequence, optional
        Cell order; default graph order. Must list every cell exactly once.
    sparse : bool, optional
        CSR (True) or dense (False) M and Q; default sparse above ``config.DENSE_MAX_CELLS`` cells.

    Returns
    -------
    Model, or a :class:`chiralnet.gaussian.GaussianModel` when ``G`` has squeezing or parametric terms
    (``pump``, ``m_th``, ``xi0``, a parametric link ``g``).

    Notes
    -----
    A small graph built again unchanged (every node, edge and attribute the same object as at its last build)
    is not read and checked again: its model is remembered and handed out as a new Model with copies of the
    arrays. Any change to the graph, however small, builds and checks it anew (``_MEMO`` below).
    """
    snapshot = entry = None
    if nodelist is None and sparse is None and type(G) is nx.DiGraph:
        entry = _MEMO.get(G)
        if entry is not None and entry[4] > 0:  # a graph that changed at its last looks: no snapshot this time
            entry[4] -= 1
        else:
            snapshot = _snapshot(G)
            if entry is not None and _same(entry, snapshot):
                entry[3] = 0
                return _copy_model(entry[2])
    parts = read_network(G)  # one walk: checks the schema and collects what the assembly reads
    order, attrs = parts.cells, parts.cell_attrs
    if nodelist is not None:
        nodelist = list(nodelist)
        if len(set(nodelist)) != len(nodelist) or set(nodelist) != set(order):
            missing = set(order) - set(nodelist)
            extra = set(nodelist) - set(order)
            raise NetworkError(
                f"nodelist must list every cell once; missing {sorted(map(repr, missing))}, "
                f"not cells or repeated {sorted(map(repr, extra)) or 'none'}"
            )
        if nodelist != order:
            of = dict(zip(order, attrs))
            order, attrs = nodelist, [of[c] for c in nodelist]
    cd = CELL_DEFAULTS
    omega = np.array([a["omega"] for a in attrs], float)
    kappa = np.array([a.get("kappa", cd["kappa"]) for a in attrs], float)
    n_th = np.array([a.get("n_th", cd["n_th"]) for a in attrs], float)
    omega_L = parts.drive_frequency
    values = [a.get("drive", cd["drive"]) for a in attrs]
    if parts.constant_drives:  # plain numbers: what schedule() returns for them, without its per-cell checks
        drive, drives = np.array(values, complex), None
    else:
        drive, drives = schedule(values, order, omega_L)
    battery = np.array([bool(a.get("battery", cd["battery"])) for a in attrs])

    # Coherent links (-i J at (u, v) and -i conj(J) at (v, u)) and reservoir couplings (grouped by reservoir), by
    # index as read_network found them: cells in graph order, renumbered to a nodelist's.
    i64 = np.int64
    lu, lv, lJ = (np.array(parts.links[0], i64), np.array(parts.links[1], i64), np.array(parts.links[2], complex))
    cres, ccell, cp = (np.array(parts.couplings[0], i64), np.array(parts.couplings[1], i64),
                       np.array(parts.couplings[2], complex))
    if order is not parts.cells:  # a nodelist: graph-order index -> its index
        index = {c: i for i, c in enumerate(order)}
        renumber = np.array([index[c] for c in parts.cells], i64)
        lu, lv, ccell = renumber[lu], renumber[lv], renumber[ccell]
    rd = RESERVOIR_DEFAULTS
    rate = np.array([a["gamma"] for a in parts.reservoir_attrs], float)
    occupation = np.array([a.get("n_th", rd["n_th"]) for a in parts.reservoir_attrs], float)
    model = assemble_model(
        tuple(order), omega=omega, kappa=kappa, n_th=n_th, drive=drive, battery=battery,
        drive_frequency=omega_L, link_u=lu, link_v=lv, link_J=lJ, rate=rate, occupation=occupation,
        coupling_reservoir=cres, coupling_cell=ccell, coupling_p=cp, sparse=sparse, drives=drives,
    )
    object.__setattr__(model, "initial", graph_state(G, model.cells))  # a new, unshared object: set once
    if parts.anomalous:  # squeezing or parametric terms: the general Gaussian model (chiralnet.gaussian)
        model = gaussian_model(G, model)
    if snapshot is not None:
        _remember(G, snapshot, model, 0 if entry is None else entry[3] + 1)
    return model


# build_model's memo of small graphs: graph -> [snapshot, config key, a private Model no caller holds, misses,
# skip]. A graph has no version counter, so a call compares a snapshot of every object the graph holds (the graph
# attributes; each node's name, attribute names and values; each edge's ends, attribute names and values, in dict
# order) with the one taken when the model was built, by identity: the memo keeps those objects alive, so an
# identical list is the same graph, read by read_network in the same order to the same checked values (only
# objects of immutable types are remembered: a list or a drive object could change in place). Any change (a value
# set again, even to an equal number; a node or edge added or removed) is a miss: the graph is read and checked
# anew. A hit hands out a new Model with copies of the private arrays (no caller can change the memo). A graph
# that misses again and again (changed before every call: an optimisation loop) is not snapshotted for the next
# 2^misses - 1 calls (at most 15): the snapshot (~0.3 us per node or edge) would only add to every build.
_MEMO = weakref.WeakKeyDictionary()
_IMMUTABLE = frozenset({float, complex, int, bool, str, type(None)})


def _snapshot(G) -> list:
    """Every object graph ``G`` holds, flat, in dict order, each dict preceded by its length (see ``_MEMO``), so
    two graphs of different shape never flatten to the same list (a length above 256 is a new int object each
    time: a miss, never a false hit): ~0.3 us per node or edge."""
    out = []
    ext, app = out.extend, out.append
    g = G.graph
    app(len(g))
    ext(g)
    ext(g.values())
    app(len(G._node))
    for node, attrs in G._node.items():
        app(node)
        app(len(attrs))
        ext(attrs)
        ext(attrs.values())
    for u, nbrs in G._succ.items():
        app(u)
        app(len(nbrs))
        for v, attrs in nbrs.items():
            app(v)
            app(len(attrs))
            ext(attrs)
            ext(attrs.values())
    return out


def _memo_key():
    """The tunables build_model's result depends on (a change rebuilds)."""
    return config.DENSE_MAX_CELLS, config.SMALL_MAX_CELLS


def _same(entry, snapshot) -> bool:
    """Whether ``snapshot`` is the memo entry's, object for object, under the same tunables."""
    old = entry[0]
    return old is not None and len(old) == len(snapshot) and entry[1] == _memo_key() and all(map(is_, snapshot, old))


def _remember(G, snapshot, model, misses) -> None:
    """Keep a private copy of ``model`` for ``G`` (a small dense model of constant drives whose graph holds
    only objects of immutable types; tuples of them, as ``pos``, included); ``misses``: the entry's misses in
    a row before this one (the next 2^misses - 1 calls take no snapshot). A model it does not keep (too large,
    a general Gaussian one, shaped drives) counts as a miss: its graph is not snapshotted on every build."""
    misses = min(misses, 4)
    _MEMO[G] = [None, None, None, misses, (1 << misses) - 1]  # (kept as a miss unless the model is kept below)
    if (type(model) is not Model or model.drives is not None or type(model.M) is not np.ndarray
            or model.n_cells > config.SMALL_MAX_CELLS or model.initial is None):
        return
    types = set(map(type, snapshot))
    if not types <= _IMMUTABLE:
        if not types <= _IMMUTABLE | {tuple}:
            return
        for obj in snapshot:
            if type(obj) is tuple and not set(map(type, obj)) <= _IMMUTABLE:
                return
    _MEMO[G] = [snapshot, _memo_key(), _copy_model(model), misses, (1 << misses) - 1]


def _copy_model(model):
    """A new Model (and initial State) with copies of ``model``'s arrays: the cells tuple and numbers shared."""
    d = model.__dict__
    init = d["initial"]
    state = State._checked(init.cells, init.alpha.copy(), None if init.Nc is None else init.Nc.copy(), init.time,
                           init.frame, None if init.Mc is None else init.Mc.copy())
    Q = d["Q"]
    copy = object.__new__(Model)
    object.__setattr__(copy, "__dict__", {
        "cells": d["cells"], "omega": d["omega"].copy(), "drive_frequency": d["drive_frequency"],
        "M": d["M"].copy(), "drive": d["drive"].copy(), "Q": None if Q is None else Q.copy(),
        "battery": d["battery"].copy(), "kappa": None if d["kappa"] is None else d["kappa"].copy(),
        "drives": None, "initial": state})
    return copy


def assemble_model(cells, *, omega, kappa, n_th, drive, battery, drive_frequency, link_u, link_v,
                   link_J, rate, occupation, coupling_reservoir, coupling_cell, coupling_p, sparse=None,
                   drives=None) -> Model:
    """Assemble a :class:`Model` from plain arrays (no graph): the one place M and Q are built.

    :func:`build_model` calls it after reading a graph; the array-level builders of
    :mod:`chiralnet.arrays` call it directly for networks too large for NetworkX.

    Parameters
    ----------
    cells : tuple, length N
        Cell names in node order.
    omega, kappa, n_th : ndarray (N,) float
        Per-cell frequency, local damping, bath occupation.
    drive : ndarray (N,) complex
        Drive amplitudes.
    battery : ndarray (N,) bool
        Battery cells; all cells when none is marked.
    drive_frequency : float
        omega_L.
    link_u, link_v : ndarray (L,) int; link_J : ndarray (L,) complex
        Coherent links J a_u^dag a_v + h.c., by cell index.
    rate, occupation : ndarray (R,) float
        Reservoir rates Gamma_r and occupations n_r.
    coupling_reservoir, coupling_cell : ndarray (C,) int; coupling_p : ndarray (C,) complex
        Reservoir couplings p_{r,i}, grouped (sorted) by reservoir index.
    sparse : bool, optional
        CSR (True) or dense (False) M and Q; default sparse above ``config.DENSE_MAX_CELLS`` cells.
    drives : DriveSchedule, optional
        The time-dependent part of the drive (:func:`chiralnet.drives.schedule`); ``drive`` is then
        the constant part.
    """
    n = len(cells)
    battery = np.asarray(battery, bool).copy()
    if not battery.any():
        battery[:] = True
    f64, i64, c128 = np.float64, np.int64, np.complex128
    omega = np.ascontiguousarray(omega, f64)
    kappa = np.ascontiguousarray(kappa, f64)
    cres = np.ascontiguousarray(coupling_reservoir, i64)
    cp = np.ascontiguousarray(coupling_p, c128)
    rate = np.ascontiguousarray(rate, f64)
    first, second, mixed = _pair_index(cres, cp)  # every ordered pair of couplings of one reservoir
    occupation = np.ascontiguousarray(occupation, f64)
    # A coupling with both a real and an imaginary part makes the pair products round differently in NumPy
    # (its SIMD loops fuse multiply-adds) and in Numba: then NumPy forms them, so that M and Q keep the bits
    # of the array assembly; otherwise every product is exact-rounded alike and the kernel forms them.
    numpy_pairs = mixed and first.size > 0
    if numpy_pairs:
        pr = cres[first]
        with np.errstate(over="ignore", invalid="ignore"):  # _check_finite reports an overflow, naming the cell
            pair_vals, pair_q = _pair_terms(rate[pr], occupation[pr], cp[first], cp[second])
    else:
        pair_vals = pair_q = np.zeros(0, c128)
    if sparse is None:
        sparse = n > config.DENSE_MAX_CELLS
    # Small dense models are summed straight into (N, N) arrays: scipy.sparse costs ~20-100 us of fixed
    # overhead per matrix, most of a small network's whole run. Same terms, same order of summation.
    dense = not sparse and n <= config.SMALL_MAX_CELLS
    terms = (omega, kappa, np.ascontiguousarray(n_th, f64), float(drive_frequency), np.ascontiguousarray(link_u, i64),
             np.ascontiguousarray(link_v, i64), np.ascontiguousarray(link_J, c128),
             np.ascontiguousarray(coupling_cell, i64), first, second)
    Q = None
    if dense and not numpy_pairs:  # the terms and their sums in one kernel call (no term arrays handed back)
        M, Q, fits, fits_q, dense = _dense_terms(n, *terms, cres, rate, occupation, cp)
        Q = Q if Q.shape[0] else None
    elif dense:
        rows, cols, vals, q_rows, q_cols, q_vals, noisy = _terms(*terms, numpy_pairs, pair_vals, pair_q, cres, rate,
                                                                 occupation, cp)
        M, fits, ordered = _dense_sum(n, rows, cols, vals, True)
        if noisy and ordered:
            Q, fits_q, ordered = _dense_sum(n, q_rows, q_cols, q_vals, False)
        dense = ordered
    if dense:  # the kernel also sums |entries| by row and column; _check_finite words a failure
        if not fits:
            _check_finite(cells, M, "the generator M")
        if Q is not None and not fits_q:
            _check_finite(cells, Q, "the noise matrix Q (rates times occupations)")
    else:
        rows, cols, vals, q_rows, q_cols, q_vals, noisy = _terms(*terms, numpy_pairs, pair_vals, pair_q, cres, rate,
                                                                 occupation, cp)
        Q = None
        M = _cancelled_to_zero(rows, cols, vals, n)
        if noisy:
            Q = sp.coo_array((q_vals, (q_rows, q_cols)), shape=(n, n)).tocsr()
            Q.sum_duplicates()
        _check_finite(cells, M, "the generator M")
        if Q is not None:
            _check_finite(cells, Q, "the noise matrix Q (rates times occupations)")
    if not sparse and not dense:
        M = M.toarray()
        Q = None if Q is None else Q.toarray()
    # Model(...) without its frozen __init__ (one object.__setattr__ per field, 1.5 us of a small network's build)
    model = object.__new__(Model)
    object.__setattr__(model, "__dict__", {
        "cells": tuple(cells), "omega": omega, "drive_frequency": float(drive_frequency), "M": M, "drive": drive,
        "Q": Q, "battery": battery, "kappa": np.asarray(kappa, float), "drives": drives, "initial": None})
    return model


def _check_finite(cells, A, what):
    """NetworkError naming the first cell whose row or column of the assembled ``A`` (CSR, or a small dense
    array) is not finite, or sums to more than a float holds (every solver forms such sums: norms,
    Gershgorin discs, products)."""
    dense = isinstance(A, np.ndarray)
    with np.errstate(over="ignore", invalid="ignore"):
        if dense:
            mag = np.abs(A)
            rows, cols = mag.sum(axis=1), mag.sum(axis=0)
        else:
            mag = np.abs(A.data)
            rows = np.bincount(np.repeat(np.arange(A.shape[0]), np.diff(A.indptr)), weights=mag,
                               minlength=A.shape[0])
            cols = np.bincount(A.indices, weights=mag, minlength=A.shape[1])
    limit = np.finfo(float).max / 2
    if rows.max(initial=0.0) < limit and cols.max(initial=0.0) < limit:  # finite sums: every entry is finite
        return
    if dense:
        finite = np.isfinite(A)
        bad_row = None if finite.all() else int(np.argwhere(~finite)[0, 0])  # row-major: as CSR's data order
    else:
        bad = np.flatnonzero(~np.isfinite(A.data))
        bad_row = int(np.searchsorted(A.indptr, bad[0], side="right") - 1) if bad.size else None
    if bad_row is not None:
        raise NetworkError(f"{what} is not finite in the row of cell {cells[bad_row]!r}: its rates, couplings or "
                           "occupations are too large to represent (rescale the network)")
    for sums, kind in ((rows, "row"), (cols, "column")):
        big = ~(sums < limit)  # inf, NaN, or no room for the sums solvers form
        if big.any():
            i = int(np.flatnonzero(big)[0])
            raise NetworkError(f"{what} overflows in the {kind} of cell {cells[i]!r} (|entries| sum to more than "
                               "1e308): its rates or couplings are too large to represent (rescale the network)")


def _cancelled_to_zero(rows, cols, vals, n):
    """CSR sum of the terms (rows, cols, vals); an entry whose terms cancel to the rounding of the terms
    themselves (|sum| <= 8 eps sum|terms|, as a balanced chiral link leaves at M[u, v]) is an exact zero.

    The test is each entry's own: a weak but real coupling next to a large, far-detuned entry is kept
    (no threshold relative to max|M|), and cascade detection and forward substitution then need exact
    zeros only. A chain loses a third of its entries.
    """
    M = sp.coo_array((vals, (rows, cols)), shape=(n, n)).tocsr()
    M.sum_duplicates()
    scale = sp.coo_array((np.abs(vals), (rows, cols)), shape=(n, n)).tocsr()
    scale.sum_duplicates()
    # same sparsity pattern and order: both are the canonical CSR of the same (rows, cols)
    cancelled = np.abs(M.data) <= 8 * np.finfo(float).eps * scale.data
    M.data[cancelled] = 0
    M.eliminate_zeros()
    return M


def _pair_terms(rate, occupation, pj, pk):
    """The terms of a pair (j, k) of couplings of reservoir r: -Gamma_r conj(p_j) p_k / 2 in M and
    Gamma_r n_r p_j conj(p_k) in Q. Written once; run on arrays by NumPy and on numbers by
    :func:`_terms` (compiled as :func:`_pair_terms_jit`)."""
    return -0.5 * rate * np.conj(pj) * pk, rate * occupation * pj * np.conj(pk)


_pair_terms_jit = jit(_pair_terms)


@jit
def _pair_index(cres, cp):
    """(first, second, mixed): first, second (P,) int64 list every ordered pair (j, k) of couplings within one
    reservoir, for couplings grouped by reservoir (``cres`` (C,) int64 sorted): for each coupling j in
    order, k runs over its group. mixed: some amplitude of ``cp`` (C,) complex has both a nonzero real and
    a nonzero imaginary part (see :func:`assemble_model`)."""
    mixed = False
    for j in range(cp.shape[0]):
        mixed = mixed or (cp[j].real != 0 and cp[j].imag != 0)
    n_coup = cres.shape[0]
    n_pairs = 0
    s = 0
    while s < n_coup:
        e = s
        while e < n_coup and cres[e] == cres[s]:
            e += 1
        n_pairs += (e - s) * (e - s)
        s = e
    first = np.empty(n_pairs, np.int64)
    second = np.empty(n_pairs, np.int64)
    k = 0
    s = 0
    while s < n_coup:
        e = s
        while e < n_coup and cres[e] == cres[s]:
            e += 1
        for a in range(s, e):
            for b in range(s, e):
                first[k] = a
                second[k] = b
                k += 1
        s = e
    return first, second, mixed


@jit
def _terms(omega, kappa, n_th, omega_L, lu, lv, lJ, ccell, first, second, given, pair_vals, pair_q, cres, rate,
           occupation, cp):
    """Every term of M and Q as (row, column, value) triplets, in the order their duplicates are summed.

    omega, kappa, n_th (N,) float; omega_L float; lu, lv (L,) int64 and lJ (L,) complex: coherent links;
    ccell, cres (C,) int64 and cp (C,) complex: the cell, reservoir and amplitude of each coupling; rate,
    occupation (R,) float; first, second (P,) int64: the coupling pairs (:func:`_pair_index`), whose terms
    (:func:`_pair_terms`) are pair_vals and pair_q (P,) complex when ``given``, else formed here. M's
    terms (N + 2L + P,): -i (omega_i - omega_L) - kappa_i / 2 at (i, i), -i J at (u, v), -i conj(J) at
    (v, u), the pair terms at (cell of j, cell of k); Q's terms (N + P,): kappa_i n_th_i at (i, i), the
    pair terms. Returns (rows, cols, vals, q_rows, q_cols, q_vals, noisy), noisy: some Q term is nonzero
    (or NaN).
    """
    n = omega.shape[0]
    n_links = lu.shape[0]
    n_pairs = first.shape[0]
    size = n + 2 * n_links + n_pairs
    rows = np.empty(size, np.int64)
    cols = np.empty(size, np.int64)
    vals = np.empty(size, np.complex128)
    q_rows = np.empty(n + n_pairs, np.int64)
    q_cols = np.empty(n + n_pairs, np.int64)
    q_vals = np.empty(n + n_pairs, np.complex128)
    noisy = False
    for i in range(n):
        rows[i] = i
        cols[i] = i
        vals[i] = -1j * (omega[i] - omega_L) - kappa[i] / 2
        q = kappa[i] * n_th[i]
        q_rows[i] = i
        q_cols[i] = i
        q_vals[i] = q
        noisy = noisy or q != 0
    for k in range(n_links):
        rows[n + k] = lu[k]
        cols[n + k] = lv[k]
        vals[n + k] = -1j * lJ[k]
        rows[n + n_links + k] = lv[k]
        cols[n + n_links + k] = lu[k]
        vals[n + n_links + k] = -1j * np.conj(lJ[k])
    base = n + 2 * n_links
    for k in range(n_pairs):
        j = ccell[first[k]]
        m = ccell[second[k]]
        rows[base + k] = j
        cols[base + k] = m
        if given:
            v, q = pair_vals[k], pair_q[k]
        else:
            r = cres[first[k]]
            v, q = _pair_terms_jit(rate[r], occupation[r], cp[first[k]], cp[second[k]])
        vals[base + k] = v
        q_rows[n + k] = j
        q_cols[n + k] = m
        q_vals[n + k] = q
        noisy = noisy or q != 0
    return rows, cols, vals, q_rows, q_cols, q_vals, noisy


@jit
def _dense_terms(n, omega, kappa, n_th, omega_L, lu, lv, lJ, ccell, first, second, cres, rate, occupation, cp):
    """:func:`_terms` (pair terms formed here) and :func:`_dense_sum` of M and Q in one kernel call, for a small
    dense model: (M (N, N), Q (N, N), or (0, 0) when no term of Q is nonzero, fits, fits_q, ordered), as those
    kernels return them; not ordered: a row of more than 16 terms (the caller takes the CSR route)."""
    empty = np.zeros(0, np.complex128)
    rows, cols, vals, q_rows, q_cols, q_vals, noisy = _terms(omega, kappa, n_th, omega_L, lu, lv, lJ, ccell, first,
                                                             second, False, empty, empty, cres, rate, occupation, cp)
    M, fits, ordered = _dense_sum(n, rows, cols, vals, True)
    Q = np.zeros((0, 0), np.complex128)
    fits_q = True
    if noisy and ordered:
        Q, fits_q, ordered = _dense_sum(n, q_rows, q_cols, q_vals, False)
    return M, Q, fits, fits_q, ordered


@jit
def _dense_sum(n, rows, cols, vals, cancel):
    """Dense (N, N) sum of the terms, each entry summed in the order of its terms (as CSR's sum of
    duplicates does); with ``cancel``, an entry is zeroed by the rule of :func:`_cancelled_to_zero`.

    Returns (A, fits, ordered): fits is True when every row and column of |A| sums to less than 1e308 / 2,
    so that A passes :func:`_check_finite` (finite sums: finite entries); False sends A there for the
    message. ordered is False (and A unfinished) when a row has more than 16 terms: CSR's sum of duplicates
    then sorts the row in an order of its own (std::sort; up to 16 terms it keeps their order), so the
    caller takes that route, for the same bits.
    """
    count = np.zeros(n, np.int64)
    for e in range(rows.shape[0]):
        count[rows[e]] += 1
        if count[rows[e]] > 16:
            return np.zeros((0, 0), np.complex128), False, False
    A = np.zeros((n, n), np.complex128)
    scale = np.zeros((n, n) if cancel else (0, 0))
    for e in range(rows.shape[0]):
        A[rows[e], cols[e]] += vals[e]
        if cancel:
            scale[rows[e], cols[e]] += abs(vals[e])
    if cancel:
        eps8 = 8 * np.finfo(np.float64).eps
        for i in range(n):
            for j in range(n):
                if abs(A[i, j]) <= eps8 * scale[i, j]:
                    A[i, j] = 0
    limit = np.finfo(np.float64).max / 2
    fits = True
    for i in range(n):
        row = 0.0
        col = 0.0
        for j in range(n):
            row += abs(A[i, j])
            col += abs(A[j, i])
        fits = fits and row < limit and col < limit
    return A, fits, True
