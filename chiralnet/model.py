"""Graph -> plain arrays: the generator M, drive, noise matrix Q and initial state.

This is the last layer that knows about NetworkX. With N cells in node order ``cells``
and the frame rotating at the drive frequency omega_L (README "Conventions")::

    d alpha/dt = M alpha - i E,            M = -i H - D/2
    dNc/dt     = conj(M) Nc + Nc M^T + Q

H = diag(omega - omega_L) + Jmat, D = diag(kappa) + sum_r Gamma_r conj(p_r) p_r^T,
Q = diag(kappa n_th) + sum_r Gamma_r n_r p_r p_r^H.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from . import config
from .errors import NetworkError
from .network import CELL_DEFAULTS, RESERVOIR_DEFAULTS
from .network import cells as cell_nodes
from .network import validate_network

__all__ = ["Model", "build_model", "assemble_model"]


@dataclass(frozen=True, eq=False)
class Model:
    """Arrays describing N cells; everything below this layer works on these.

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
    alpha0 : ndarray (N,) complex
        Initial coherent amplitudes.
    n0 : ndarray (N,) float
        Initial thermal occupations (the initial Nc is diag(n0)).
    battery : ndarray (N,) bool
        Cells counted in the battery energy.
    """

    cells: tuple
    omega: np.ndarray
    drive_frequency: float
    M: object
    drive: np.ndarray
    Q: object
    alpha0: np.ndarray
    n0: np.ndarray
    battery: np.ndarray

    @property
    def n_cells(self) -> int:
        return len(self.cells)

    @property
    def is_sparse(self) -> bool:
        return sp.issparse(self.M)

    @property
    def thermal(self) -> bool:
        """True when fluctuations Nc are needed (a hot bath or a thermal initial state)."""
        return self.Q is not None or bool((self.n0 > 0).any())  # ndarray.any: no np.any dispatch (hot)

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
    drive = np.array([nodes[c].get("drive", CELL_DEFAULTS["drive"]) for c in order], complex)
    alpha0 = np.array([nodes[c].get("alpha0", CELL_DEFAULTS["alpha0"]) for c in order], complex)
    n0 = np.array([nodes[c].get("n0", CELL_DEFAULTS["n0"]) for c in order], float)
    battery = np.array([bool(nodes[c].get("battery", CELL_DEFAULTS["battery"])) for c in order])
    omega_L = float(G.graph.get("drive_frequency", 1.0))

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
    return assemble_model(
        tuple(order), omega=omega, kappa=kappa, n_th=n_th, drive=drive, alpha0=alpha0, n0=n0, battery=battery,
        drive_frequency=omega_L, link_u=lu, link_v=lv, link_J=lJ, rate=rate, occupation=occupation,
        coupling_reservoir=np.array(coup_res, int), coupling_cell=np.array(coup_cell, int),
        coupling_p=np.array(coup_p, complex), sparse=sparse,
    )


def assemble_model(cells, *, omega, kappa, n_th, drive, alpha0, n0, battery, drive_frequency, link_u, link_v,
                   link_J, rate, occupation, coupling_reservoir, coupling_cell, coupling_p, sparse=None) -> Model:
    """Assemble a :class:`Model` from plain arrays (no graph): the one place M and Q are built.

    :func:`build_model` calls it after reading a graph; the array-level builders of
    :mod:`chiralnet.sparse` call it directly for networks too large for NetworkX.

    Parameters
    ----------
    cells : tuple, length N
        Cell names in node order.
    omega, kappa, n_th, n0 : ndarray (N,) float
        Per-cell frequency, local damping, bath occupation, initial thermal occupation.
    drive, alpha0 : ndarray (N,) complex
        Drive amplitudes and initial coherent amplitudes.
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
    M = sp.coo_array((vals, (rows, cols)), shape=(n, n)).tocsr()
    M.sum_duplicates()
    M.eliminate_zeros()  # a chiral link cancels M[u, v] exactly: a third fewer entries in a chain

    q_local = kappa * n_th
    q_pair = rate[pair_res] * occupation[pair_res] * pj * np.conj(pk)
    Q = None
    if np.any(q_local != 0) or np.any(q_pair != 0):
        Q = sp.coo_array(
            (np.concatenate([q_local.astype(complex), q_pair]), (np.concatenate([diag, cj]), np.concatenate([diag, ck]))),
            shape=(n, n),
        ).tocsr()
        Q.sum_duplicates()

    if sparse is None:
        sparse = n > config.DENSE_MAX_CELLS
    if not sparse:
        M = M.toarray()
        Q = None if Q is None else Q.toarray()
    return Model(
        cells=tuple(cells), omega=omega, drive_frequency=float(drive_frequency), M=M, drive=drive, Q=Q,
        alpha0=alpha0, n0=n0, battery=battery,
    )


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
