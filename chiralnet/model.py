"""Graph -> plain arrays: the generator (:class:`Model`), and the state it acts on (:class:`State`).

This is the last layer that knows about NetworkX. With N cells in node order ``cells``
and the frame rotating at the drive frequency omega_L (README "Conventions")::

    d alpha/dt = M alpha - i E,            M = -i H - D/2
    dNc/dt     = conj(M) Nc + Nc M^T + Q

H = diag(omega - omega_L) + Jmat, D = diag(kappa) + sum_r Gamma_r conj(p_r) p_r^T,
Q = diag(kappa n_th) + sum_r Gamma_r n_r p_r p_r^H.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from . import config
from .drives import schedule
from .errors import NetworkError
from .network import CELL_DEFAULTS, RESERVOIR_DEFAULTS
from .network import cells as cell_nodes
from .network import validate_network

__all__ = ["Model", "State", "build_model", "assemble_model", "initial_state"]


def has_anomalous_terms(G) -> bool:
    """Whether graph ``G`` has a term beyond the phase-insensitive class (chiralnet.gaussian)."""
    from .gaussian import has_anomalous_terms as check

    return check(G)


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
        return sp.issparse(self.M)

    @property
    def thermal(self) -> bool:
        """True when a bath or reservoir is hot (Q != 0): the fluctuations Nc are driven."""
        return self.Q is not None

    @property
    def forcing(self) -> np.ndarray:
        """The constant term -i E of d alpha/dt = M alpha - i E, shape (N,)."""
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
        if alpha.shape != (n,) or not np.isfinite(alpha).all():
            raise NetworkError(f"State.alpha must be {n} finite complex numbers (one per cell), got shape {alpha.shape}")
        if self.Nc is not None:
            Nc = np.asarray(self.Nc)
            if Nc.shape != (n, n) or not np.isfinite(Nc).all():
                raise NetworkError(f"State.Nc must be a finite ({n}, {n}) matrix or None, got shape {Nc.shape}")
        if self.Mc is not None:
            Mc = np.asarray(self.Mc)
            if Mc.shape != (n, n) or not np.isfinite(Mc).all():
                raise NetworkError(f"State.Mc must be a finite ({n}, {n}) matrix or None, got shape {Mc.shape}")
            if not np.allclose(Mc, Mc.T, rtol=1e-10, atol=1e-12 * (1 + np.abs(Mc).max())):
                raise NetworkError("State.Mc must be symmetric (Mc_jk = <da_j da_k> = Mc_kj); symmetrise it as "
                                   "(Mc + Mc.T) / 2")

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
            return self if self.frame == drive_frequency else dataclasses.replace(self, frame=drive_frequency)
        turn = np.exp(1j * (drive_frequency - self.frame) * self.time)
        Mc = None if self.Mc is None else np.asarray(self.Mc) * turn**2  # <a a> turns like alpha^2
        return dataclasses.replace(self, alpha=self.alpha * turn, frame=drive_frequency, Mc=Mc)


def initial_state(G_or_model) -> State:
    """The state a network starts from at t = 0: coherent amplitudes ``alpha0`` and thermal occupations
    ``n0`` of its cells (Nc = diag(n0), None when all are zero). A :class:`Model` built from a graph
    keeps its graph's (``Model.initial``); one assembled from arrays starts from the vacuum."""
    from .gaussian import is_general_model

    if isinstance(G_or_model, Model) or is_general_model(G_or_model):
        if G_or_model.initial is not None:
            return G_or_model.initial
        return State(G_or_model.cells, np.zeros(G_or_model.n_cells, complex))
    validate_network(G_or_model)
    if has_anomalous_terms(G_or_model):  # squeezed starts (xi0): the general Gaussian model's own
        return build_model(G_or_model).initial
    return graph_state(G_or_model, tuple(cell_nodes(G_or_model)))


def graph_state(G, order) -> State:
    """initial_state of a validated graph ``G`` with its cells in ``order`` (no second validation)."""
    nodes = G.nodes
    alpha0 = np.array([nodes[c].get("alpha0", CELL_DEFAULTS["alpha0"]) for c in order], complex)
    n0 = np.array([nodes[c].get("n0", CELL_DEFAULTS["n0"]) for c in order], float)
    return State(tuple(order), alpha0, np.diag(n0).astype(complex) if (n0 > 0).any() else None)


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
    """
    validate_network(G)
    order = cell_nodes(G)
    if nodelist is not None:
        nodelist = list(nodelist)
        if len(set(nodelist)) != len(nodelist) or set(nodelist) != set(order):
            missing = set(order) - set(nodelist)
            extra = set(nodelist) - set(order)
            raise NetworkError(
                f"nodelist must list every cell once; missing {sorted(map(repr, missing))}, "
                f"not cells or repeated {sorted(map(repr, extra)) or 'none'}"
            )
        order = nodelist
    index = {c: i for i, c in enumerate(order)}
    nodes = G.nodes
    omega = np.array([nodes[c]["omega"] for c in order], float)
    kappa = np.array([nodes[c].get("kappa", CELL_DEFAULTS["kappa"]) for c in order], float)
    n_th = np.array([nodes[c].get("n_th", CELL_DEFAULTS["n_th"]) for c in order], float)
    omega_L = float(G.graph.get("drive_frequency", 1.0))
    drive, drives = schedule([nodes[c].get("drive", CELL_DEFAULTS["drive"]) for c in order], order, omega_L)
    battery = np.array([bool(nodes[c].get("battery", CELL_DEFAULTS["battery"])) for c in order])

    # Coherent links: -i J at (u, v) and -i conj(J) at (v, u).
    links = [(index[u], index[v], complex(J)) for u, v, J in G.edges(data="J") if J is not None]
    lu, lv, lJ = (np.array(x) for x in zip(*links)) if links else (np.zeros(0, int),) * 2 + (np.zeros(0, complex),)

    # Reservoir couplings, grouped by reservoir.
    res_names = [r for r, k in nodes(data="kind", default="cell") if k == "reservoir"]
    rate = np.array([nodes[r]["gamma"] for r in res_names], float)
    occupation = np.array([nodes[r].get("n_th", RESERVOIR_DEFAULTS["n_th"]) for r in res_names], float)
    coup_res, coup_cell, coup_p = [], [], []
    for r_idx, r in enumerate(res_names):
        for _, c, p in G.out_edges(r, data="p"):
            coup_res.append(r_idx)
            coup_cell.append(index[c])
            coup_p.append(complex(p))
    model = assemble_model(
        tuple(order), omega=omega, kappa=kappa, n_th=n_th, drive=drive, battery=battery,
        drive_frequency=omega_L, link_u=lu, link_v=lv, link_J=lJ, rate=rate, occupation=occupation,
        coupling_reservoir=np.array(coup_res, int), coupling_cell=np.array(coup_cell, int),
        coupling_p=np.array(coup_p, complex), sparse=sparse, drives=drives,
    )
    object.__setattr__(model, "initial", graph_state(G, model.cells))  # a new, unshared object: set once
    if has_anomalous_terms(G):  # squeezing or parametric terms: the general Gaussian model (chiralnet.gaussian)
        return gaussian_model(G, model)
    return model


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
    lu, lv, lJ = link_u, link_v, link_J
    coup_res, coup_cell, coup_p = coupling_reservoir, coupling_cell, coupling_p
    first, second = _pairs_within_groups(coup_res)
    pair_res = coup_res[first]
    pj, pk = coup_p[first], coup_p[second]
    cj, ck = coup_cell[first], coup_cell[second]

    diag = np.arange(n)
    rows = np.concatenate([diag, lu, lv, cj])
    cols = np.concatenate([diag, lv, lu, ck])
    vals = np.concatenate([
        -1j * (omega - drive_frequency) - kappa / 2,
        -1j * lJ,
        -1j * np.conj(lJ),
        -0.5 * rate[pair_res] * np.conj(pj) * pk,
    ])
    M = _cancelled_to_zero(rows, cols, vals, n)

    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported by _check_finite, naming the cell
        q_local = kappa * n_th
        q_pair = rate[pair_res] * occupation[pair_res] * pj * np.conj(pk)
    Q = None
    if np.any(q_local != 0) or np.any(q_pair != 0):
        Q = sp.coo_array(
            (np.concatenate([q_local.astype(complex), q_pair]), (np.concatenate([diag, cj]), np.concatenate([diag, ck]))),
            shape=(n, n),
        ).tocsr()
        Q.sum_duplicates()

    _check_finite(cells, M, "the generator M")
    if Q is not None:
        _check_finite(cells, Q, "the noise matrix Q (rates times occupations)")
    if sparse is None:
        sparse = n > config.DENSE_MAX_CELLS
    if not sparse:
        M = M.toarray()
        Q = None if Q is None else Q.toarray()
    return Model(
        cells=tuple(cells), omega=omega, drive_frequency=float(drive_frequency), M=M, drive=drive, Q=Q, battery=battery,
        kappa=np.asarray(kappa, float),
        drives=drives,
    )


def _check_finite(cells, A, what):
    """NetworkError naming the first cell whose row or column of the assembled CSR ``A`` is not finite, or
    sums to more than a float holds (every solver forms such sums: norms, Gershgorin discs, products)."""
    bad = np.flatnonzero(~np.isfinite(A.data))
    if bad.size:
        row = int(np.searchsorted(A.indptr, bad[0], side="right") - 1)
        raise NetworkError(f"{what} is not finite in the row of cell {cells[row]!r}: its rates, couplings or "
                           "occupations are too large to represent (rescale the network)")
    with np.errstate(over="ignore"):
        mag = np.abs(A.data)
        rows = np.bincount(np.repeat(np.arange(A.shape[0]), np.diff(A.indptr)), weights=mag, minlength=A.shape[0])
        cols = np.bincount(A.indices, weights=mag, minlength=A.shape[1])
    for sums, kind in ((rows, "row"), (cols, "column")):
        big = ~(sums < np.finfo(float).max / 2)  # inf, NaN, or no room for the sums solvers form
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


def _pairs_within_groups(group):
    """For group labels (E,), sorted, return index arrays (first, second) of every ordered pair in a group."""
    if group.size == 0:
        return np.zeros(0, int), np.zeros(0, int)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    sizes = np.diff(np.r_[starts, group.size])
    size_of = np.repeat(sizes, sizes)                       # (E,) size of each element's group
    start_of = np.repeat(starts, sizes)                     # (E,) first element of its group
    first = np.repeat(np.arange(group.size), size_of)       # each element paired size times
    block_start = np.repeat(np.cumsum(size_of) - size_of, size_of)
    second = np.repeat(start_of, size_of) + (np.arange(first.size) - block_start)
    return first, second
