"""The scattering (input-output) view of a network: transmission, reflection and isolation between ports.

(The module is ``response``, as in the target layout's ``solve/response.py``: a module named
``scattering`` would shadow the function ``chiralnet.scattering`` once imported by path.)

The port of a cell is its local damping channel (rate kappa). A probe field a_in at frequency
omega_L + delta enters port q; in the frame rotating at omega_L (units of omega, hbar = 1)::

    d alpha/dt = M alpha - K^{1/2} a_in,      a_out = a_in + K^{1/2} alpha,
    S(delta)   = I + K^{1/2} (M + i delta)^{-1} K^{1/2}        (on the port cells)

with K = diag(kappa). ``S[f, p, q]`` is the amplitude that leaves port p per unit amplitude entering
port q at ``detunings[f]``: |S_pq|^2 is the power transmission q -> p (reflection when p = q).
The response is the stationary one, so M must be stable (every eigenvalue with Re < 0).

Solvers
-------
- ``"cascaded"``: M is triangular once the cells are in topological order (a one-way network):
  forward substitution, O(nnz) per frequency and input port, in a Numba kernel over all
  frequencies and input ports at once (starting at the input port's place in the order, ending
  at the last port). A balanced chiral link's M[u, v] is an exact zero (from the
  assembly, as for :func:`chiralnet.steady_state`), so it gives S = 0 exactly backwards.
- ``"dense"``: batched dense LU (NumPy) over chunks of frequencies, for small N.
- ``"sparse"``: one sparse LU (SuperLU) per frequency, for large networks with feedback loops.
- ``"auto"`` (default): cascaded when M is triangular after permutation, else dense up to
  ``config.SCATTERING_DENSE_MAX_CELLS`` cells, else sparse.

Examples
--------
A matched isolator (docs/theory/beyond.md, "Scattering"): two resonant cells, kappa each, one-way link with Gamma = kappa.

>>> import numpy as np, chiralnet as cn
>>> G = cn.network(drive_frequency=1.0)
>>> cn.add_cell(G, "a", omega=1.0, kappa=0.01)
>>> cn.add_cell(G, "b", omega=1.0, kappa=0.01)
>>> cn.add_chiral_link(G, "a", "b", gamma=0.01)
'R0'
>>> res = cn.scattering(G, [0.0, 0.01])
>>> res.transmission("a", "b", db=False)      # |S_ba|^2 = kappa^4 / (kappa^2 + delta^2)^2
array([1.  , 0.25])
>>> res.transmission("b", "a", db=False)      # exactly one-way
array([0., 0.])
>>> cn.isolation(G, "a", "b", [0.0])
array([inf])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numba import prange

from .. import config, memory
from ..checks import count, flag
from ..memory import format_bytes
from .._jit import jit, renamed
from ..errors import ChiralnetError, NetworkError, SolverError
from ..linalg.cascade import cascade_order
from ..linalg.csr import csr_parts, flush, pruned_csr
from ..gaussian import is_general_model
from ..model import Model, build_model
from ..network import CELL_DEFAULTS
from .steady import check_stability

__all__ = ["scattering", "isolation", "isolation_bandwidth", "ScatteringResult", "IsolationBand", "SCATTERING_METHODS"]

#: Solvers of :func:`scattering` (``method=``), besides ``"auto"``.
SCATTERING_METHODS = ("cascaded", "dense", "sparse")



# ---------------------------------------------------------------------------------------------
# Result.


@dataclass(frozen=True, eq=False)
class ScatteringResult:
    """Scattering matrices of a network at many probe detunings.

    Attributes
    ----------
    S : ndarray (n_freq, P, P) complex
        ``S[f, p, q]``: amplitude out of port p per unit amplitude into port q at ``detunings[f]``.
    ports : tuple, length P
        Cell names of the ports, in the order of S's axes.
    detunings : ndarray (n_freq,) float
        Probe frequency minus omega_L (units of omega).
    kappa : ndarray (P,) float
        Port rates (the cells' local damping).
    method : str
        The solver that ran: ``"cascaded"``, ``"dense"`` or ``"sparse"``; ``"gaussian-dense"`` for a
        network with squeezing or parametric terms.
    idler : ndarray (n_freq, P, P) complex or None
        Networks with parametric terms (pumps, parametric links) also convert: ``idler[f, p, q]`` is the
        amplitude out of port p at ``detunings[f]`` per unit conjugate amplitude a_in^dag into port q at
        ``-detunings[f]`` (:func:`chiralnet.solve.general.scattering_general`); None otherwise. With it,
        sum_q |S_pq|^2 - |idler_pq|^2 = 1 when every loss is a port (a phase-preserving amplifier: gain
        |S|^2 = G, conversion |idler|^2 = G - 1).
    """

    S: np.ndarray
    ports: tuple
    detunings: np.ndarray
    kappa: np.ndarray
    method: str
    idler: np.ndarray | None = None

    def index(self, port) -> int:
        """Position of ``port`` (a cell name) in :attr:`ports`."""
        try:
            return self.ports.index(port)
        except ValueError:
            raise ChiralnetError(f"{port!r} is not a port of this result; ports are {_few(self.ports)}") from None

    def amplitude(self, u, v) -> np.ndarray:
        """S_vu over the detunings, shape (n_freq,) complex: from port ``u`` into port ``v``."""
        return self.S[:, self.index(v), self.index(u)]

    def transmission(self, u, v, *, db: bool = True) -> np.ndarray:
        """Power transmission from port ``u`` to port ``v``, |S_vu|^2, shape (n_freq,).

        In dB (10 log10, -inf where S_vu is exactly 0) by default; ``db=False`` gives the power ratio.
        ``transmission(u, u)`` is the reflection of port ``u``.
        """
        db = flag(db, "db", "ScatteringResult.transmission")
        amp = np.abs(self.amplitude(u, v))
        return _db(amp) if db else amp**2

    def reflection(self, u, *, db: bool = True) -> np.ndarray:
        """|S_uu|^2 (dB by default), shape (n_freq,)."""
        return self.transmission(u, u, db=db)

    def phase(self, u, v) -> np.ndarray:
        """arg S_vu in radians (in (-pi, pi]), shape (n_freq,)."""
        return np.angle(self.amplitude(u, v))

    def isolation(self, u, v) -> np.ndarray:
        """Isolation of the link u -> v: 10 log10(|S_vu|^2 / |S_uv|^2) in dB, shape (n_freq,).

        +inf where only S_uv is exactly 0 (exactly one-way u -> v), -inf where only S_vu is, NaN
        where both are (no transmission either way).
        """
        if self.index(u) == self.index(v):
            raise ChiralnetError(f"isolation needs two different ports, got {u!r} twice")
        return _isolation_db(self.amplitude(u, v), self.amplitude(v, u))


@dataclass(frozen=True)
class IsolationBand:
    """The band of detunings around ``center`` over which a link u -> v stays one-way to ``level_db``.

    Attributes
    ----------
    low, high : float
        Edges of the band: isolation(u -> v) >= level_db on [low, high], located to ``xtol``.
        An edge that was not reached within the searched window [center - span, center + span]
        is that window's end, and its ``*_found`` flag is False.
    low_found, high_found : bool
        Whether the isolation crosses the level at that edge inside the window.
    width : float
        high - low (a lower bound unless both edges were found; 0 when the level fails at ``center``).
    center, level_db, span : float
        The arguments of the search.
    isolation_center : float
        The isolation at ``center`` in dB (+inf for an exactly one-way link).
    """

    low: float
    high: float
    low_found: bool
    high_found: bool
    width: float
    center: float
    level_db: float
    span: float
    isolation_center: float


# ---------------------------------------------------------------------------------------------
# Public functions.


def scattering(G, detunings, ports=None, *, kappa=None, method: str = "auto",
               parallel: bool | None = None) -> ScatteringResult:
    """Scattering matrix S(delta) = I + K^{1/2} (M + i delta)^{-1} K^{1/2} between ports.

    Parameters
    ----------
    G : networkx.DiGraph or Model
        The network, or its :class:`~chiralnet.Model` (which keeps kappa, the port rates, in ``Model.kappa``).
    detunings : float or array_like (n_freq,)
        Probe frequency minus omega_L, units of omega; finite real numbers.
    ports : sequence of cell names, optional
        The port cells, each with kappa > 0, no repeats; default every cell with kappa > 0
        (in cell order).
    kappa : array_like (N,) float, optional
        Local damping of every cell in cell order, with a Model only (default ``Model.kappa``); not
        allowed with a graph (the graph's cells carry it).
    method : {"auto", "cascaded", "dense", "sparse"}
        The solver (see the module docstring); ``"cascaded"`` raises unless M is triangular after
        permutation.
    parallel : bool, optional
        Threads over frequencies in the cascaded kernel; default from ``config.SCATTERING_PARALLEL_MIN_WORK``.

    Returns
    -------
    ScatteringResult
        ``S`` (n_freq, P, P) complex, ``ports``, ``detunings``, ``kappa`` (P,), ``method``.

    Raises
    ------
    ChiralnetError
        A port that is not a cell or has kappa = 0, non-finite detunings, an unknown method, or
        S too large for memory (``MemoryLimitError``: choose fewer ports or detunings).
    NoSteadyStateError
        M is not stable: no stationary response (names the cell).
    """
    if parallel is not None:
        parallel = flag(parallel, "parallel", "scattering")
    model, kap = _model_and_kappa(G, kappa, "scattering")
    delta = _detunings(detunings)
    port_idx = _ports(model, kap, ports)
    if is_general_model(model):  # squeezing or parametric terms: signal and idler blocks
        from .general import scattering_general

        if method != "auto":
            raise ChiralnetError(f"a network with squeezing or parametric terms is solved densely; method must be "
                                 f"'auto', got {method!r}")
        S, idler = scattering_general(model, kap, port_idx, delta)
        return ScatteringResult(S, tuple(model.cells[i] for i in port_idx), delta, kap[port_idx], "gaussian-dense",
                                idler)
    return _solve(model, kap, port_idx, delta, method, parallel)


def isolation(G, u, v, detunings, *, kappa=None, method: str = "auto") -> np.ndarray:
    """Isolation of the link u -> v in dB: 10 log10(|S_vu|^2 / |S_uv|^2), shape (n_freq,).

    Positive when more power goes u -> v than v -> u; +inf where S_uv is exactly 0 (an exactly
    one-way link: a cascaded network with no path v -> u), -inf where only S_vu is exactly 0, NaN
    where both are. ``u`` and ``v`` must be cells with kappa > 0 (their ports).

    Parameters
    ----------
    G : networkx.DiGraph or Model
    u, v : cell names
    detunings : float or array_like (n_freq,)
    kappa, method
        As in :func:`scattering`.
    """
    if u == v:
        raise ChiralnetError(f"isolation needs two different cells, got {u!r} twice")
    return scattering(G, detunings, [u, v], kappa=kappa, method=method).isolation(u, v)


def isolation_bandwidth(G, u, v, level_db: float = 20.0, *, span: float, center: float = 0.0,
                        n_grid: int = 801, xtol: float | None = None, kappa=None,
                        method: str = "auto") -> IsolationBand:
    """The band of probe detunings around ``center`` over which u -> v stays one-way to ``level_db``.

    Definition: the largest interval [low, high] that contains ``center`` and on which
    ``isolation(G, u, v, delta) >= level_db`` for every delta, searched within the window
    [center - span, center + span]. The isolation is evaluated on ``n_grid`` equally spaced
    detunings over the window (``center`` is one of them); each edge is then located by bisection
    between the last grid point inside the band and the first outside, to ``xtol``. Features
    narrower than the grid spacing 2 span / (n_grid - 1) can be missed: refine the grid to find them.
    An exactly one-way link (isolation +inf everywhere) has no edge: the band is the whole window,
    with ``low_found = high_found = False``. When the level fails at ``center`` the band is empty
    (low = high = center, width 0).

    Parameters
    ----------
    G : networkx.DiGraph or Model
    u, v : cell names
        The link, from u to v (both ports: kappa > 0).
    level_db : float
        The isolation required, dB (e.g. 20: power leaking back 100 times below the forward power).
    span : float
        Half width of the searched window, > 0 (units of omega).
    center : float
        The detuning the band must contain (default 0: the drive frequency omega_L).
    n_grid : int
        Grid points over the window, >= 3 (rounded up to an odd number so ``center`` is on it).
    xtol : float, optional
        Edge accuracy (default 1e-12 span).
    kappa, method
        As in :func:`scattering`.

    Returns
    -------
    IsolationBand
    """
    level_db = _finite(level_db, "level_db")
    span = _finite(span, "span")
    center = _finite(center, "center")
    if not span > 0:
        raise ChiralnetError(f"isolation_bandwidth: 'span' must be > 0, got {span}")
    n_grid = count(n_grid, "'n_grid'", "isolation_bandwidth", minimum=3, limit=config.ISOLATION_MAX_GRID,
                   limit_name="ISOLATION_MAX_GRID",
                   cost=lambda k: f"{k:.3g} scattering solves and {format_bytes(_GRID_BYTES * k)} of detunings, "
                                  "S matrices and isolations")
    xtol = 1e-12 * span if xtol is None else _finite(xtol, "xtol")
    if not xtol > 0:
        raise ChiralnetError(f"isolation_bandwidth: 'xtol' must be > 0, got {xtol}")
    if u == v:
        raise ChiralnetError(f"isolation_bandwidth needs two different cells, got {u!r} twice")
    model, kap = _model_and_kappa(G, kappa, "isolation_bandwidth")
    port_idx = _ports(model, kap, [u, v])
    half = (int(n_grid) - 1) // 2 + ((int(n_grid) - 1) % 2)
    grid = center + span * np.linspace(-1.0, 1.0, 2 * half + 1)
    grid[half] = center

    def iso(delta):
        res = _solve(model, kap, port_idx, np.asarray(delta, float), method, None)
        return _isolation_db(res.S[:, 1, 0], res.S[:, 0, 1])

    ok = iso(grid) >= level_db  # NaN (no transmission either way) counts as failing
    iso_center = float(iso(np.array([center]))[0])
    if not ok[half]:
        return IsolationBand(center, center, True, True, 0.0, center, level_db, span, iso_center)

    def edge(step):
        k = half
        while 0 <= k + step < grid.size and ok[k + step]:
            k += step
        if not 0 <= k + step < grid.size:
            return float(grid[k]), False
        inside, outside = grid[k], grid[k + step]
        while abs(outside - inside) > xtol:
            mid = 0.5 * (inside + outside)
            if mid == inside or mid == outside:
                break
            if iso(np.array([mid]))[0] >= level_db:
                inside = mid
            else:
                outside = mid
        return float(0.5 * (inside + outside)), True

    low, low_found = edge(-1)
    high, high_found = edge(+1)
    return IsolationBand(low, high, low_found, high_found, high - low, center, level_db, span, iso_center)


# ---------------------------------------------------------------------------------------------
# Input checks.

#: Bytes per grid point of isolation_bandwidth: the detuning, S (2 x 2 complex), the isolation and its test.
_GRID_BYTES = 8 + 4 * 16 + 8 + 1


def _few(items, n=8) -> str:
    items = list(items)
    return "[" + ", ".join(map(repr, items[:n])) + (", ...]" if len(items) > n else "]")


def _finite(x, name) -> float:
    try:
        ok = not isinstance(x, (bool, np.bool_)) and isinstance(x, Real) and math.isfinite(float(x))
    except OverflowError:  # an integer beyond the float range
        ok = False
    if not ok:
        raise ChiralnetError(f"{name!r} must be a finite real number that a float holds, got {_brief(x)}")
    return float(x)


def _brief(value, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def _model_and_kappa(G, kappa, where):
    """(Model, kappa (N,) float) from a graph or a Model (+ kappa)."""
    if isinstance(G, Model) or is_general_model(G):
        model = G
        kap = getattr(model, "kappa", None) if kappa is None else kappa
        if kap is None:
            raise ChiralnetError(
                f"{where}: a Model does not record the cells' local damping kappa (the port rates); "
                "pass kappa=[...] (one per cell, in model.cells order) or the graph instead")
        try:
            kap = np.asarray(kap)
        except (ValueError, TypeError, OverflowError):  # ragged rows
            raise ChiralnetError(f"{where}: 'kappa' must be {model.n_cells} real numbers (one per cell), got "
                                 f"{_brief(kap)}") from None
        if kap.shape != (model.n_cells,) or not np.isrealobj(kap) or kap.dtype.kind not in "iuf":
            raise ChiralnetError(f"{where}: 'kappa' must be {model.n_cells} real numbers (one per cell), "
                                 f"got shape {kap.shape} {kap.dtype}")
        kap = kap.astype(float)
        bad = np.flatnonzero(~np.isfinite(kap) | (kap < 0))
        if bad.size:
            raise ChiralnetError(f"{where}: kappa of cell {model.cells[bad[0]]!r} must be finite and >= 0, "
                                 f"got {kap[bad[0]]}")
        return model, kap
    if kappa is not None:
        raise ChiralnetError(f"{where}: 'kappa' is read from the graph's cells; pass it only with a Model")
    model = build_model(G)
    kap = np.array([G.nodes[c].get("kappa", CELL_DEFAULTS["kappa"]) for c in model.cells], float)
    return model, kap


def _detunings(detunings) -> np.ndarray:
    try:
        d = np.asarray(detunings)
    except (ValueError, TypeError, OverflowError):  # ragged rows
        raise ChiralnetError(f"'detunings' must be a number or a 1-D array of real numbers, got {_brief(detunings)}") from None
    if d.ndim > 1:
        raise ChiralnetError(f"'detunings' must be a number or a 1-D array, got shape {d.shape}")
    if d.dtype == bool or not (np.issubdtype(d.dtype, np.integer) or np.issubdtype(d.dtype, np.floating)):
        raise ChiralnetError(f"'detunings' must be real numbers (units of omega), got dtype {d.dtype}")
    d = np.atleast_1d(d).astype(float)
    if d.size == 0:
        raise ChiralnetError("'detunings' is empty; give at least one probe detuning")
    bad = np.flatnonzero(~np.isfinite(d))
    if bad.size:
        raise ChiralnetError(f"'detunings' must be finite; detunings[{bad[0]}] = {d[bad[0]]}")
    return d


def _ports(model: Model, kap: np.ndarray, ports) -> np.ndarray:
    """Cell indices of the ports (checked: cells, kappa > 0, no repeats)."""
    if ports is None:
        idx = np.flatnonzero(kap > 0)
        if idx.size == 0:
            raise ChiralnetError("no cell has kappa > 0, so the network has no ports (a port is a cell's "
                                 "local damping channel); give some cells kappa > 0")
        return idx
    if isinstance(ports, (str, bytes)) or not hasattr(ports, "__iter__"):
        raise ChiralnetError(f"'ports' must be a list of cell names, got {ports!r}")
    ports = list(ports)
    if not ports:
        raise ChiralnetError("'ports' is empty; name at least one cell")
    position = {c: i for i, c in enumerate(model.cells)}
    idx = []
    for p in ports:
        try:
            i = position.get(p)
        except TypeError:  # unhashable
            i = None
        if i is None:
            raise NetworkError(f"port {p!r} is not a cell; cells are {_few(model.cells)}")
        if not kap[i] > 0:
            raise ChiralnetError(f"port {p!r} has kappa = {kap[i]:g}: no local damping channel to probe "
                                 "(a port needs kappa > 0)")
        if i in idx:
            raise ChiralnetError(f"port {p!r} is listed twice")
        idx.append(i)
    return np.array(idx, np.int64)


# ---------------------------------------------------------------------------------------------
# Solvers.


def _solve(model, kap, port_idx, delta, method, parallel) -> ScatteringResult:
    if method != "auto" and method not in SCATTERING_METHODS:
        raise ChiralnetError(f"unknown scattering method {method!r}; expected one of auto, {', '.join(SCATTERING_METHODS)}")
    n, P, F = model.n_cells, port_idx.size, delta.size
    memory.check({f"S ({F} x {P} x {P} complex)": 16.0 * F * P * P},
                 f"scattering ({n} cells, {P} ports, {F} detunings)", "fewer ports (ports=[...]) or detunings")
    check_stability(model)
    M = pruned_csr(model.M)
    order = cascade_order(M) if method in ("auto", "cascaded") else None
    if method == "cascaded" and order is None:
        raise SolverError("scattering: method 'cascaded' needs a one-way (cascaded) network, but M has a "
                          "feedback loop; use method 'auto', 'dense' or 'sparse'")
    if method == "auto":
        method = "cascaded" if order is not None else ("dense" if n <= config.SCATTERING_DENSE_MAX_CELLS else "sparse")
    sqrt_k = np.sqrt(kap[port_idx])
    if method == "cascaded":
        S = _cascaded(M, order, port_idx, sqrt_k, delta, parallel)
    elif method == "dense":
        S = _dense(M, port_idx, sqrt_k, delta)
    else:
        S = _sparse(M, port_idx, sqrt_k, delta)
    if not np.isfinite(S).all():
        f = int(np.flatnonzero(~np.isfinite(S).all(axis=(1, 2)))[0])
        raise SolverError(f"scattering: S is not finite at detuning {delta[f]:g} (M + i delta is singular there)")
    return ScatteringResult(S=S, ports=tuple(model.cells[i] for i in port_idx), detunings=delta,
                            kappa=kap[port_idx], method=method)


def _cascade_scatter(indptr, indices, data, diag, delta, port_pos, sqrt_k, last, S):
    """S[f, p, q] = [p == q] + sqrt_k[p] x_p,  (L + diag + i delta_f) x = sqrt_k[q] e_q, for all f, q.

    L (CSR: indptr, indices, data) is the strictly lower triangle of M in cascade order, ``diag``
    its diagonal; ``port_pos`` the ports' rows in that order. For input port q the substitution
    starts at row port_pos[q] (x is zero above it) and stops at ``last``, the last port row.
    Frequencies are independent (prange in the parallel variant).
    """
    F = delta.shape[0]
    P = port_pos.shape[0]
    for f in prange(F):
        inv = np.empty(last + 1, np.complex128)
        x = np.zeros(last + 1, np.complex128)
        for i in range(last + 1):
            d = diag[i] + 1j * delta[f]
            r = 1.0 / (d.real * d.real + d.imag * d.imag)
            inv[i] = complex(d.real * r, -d.imag * r)
        for q in range(P):
            s = port_pos[q]
            x[:] = 0.0
            x[s] = sqrt_k[q] * inv[s]
            for i in range(s + 1, last + 1):
                acc = 0j
                for p in range(indptr[i], indptr[i + 1]):
                    acc -= data[p] * x[indices[p]]
                x[i] = flush(acc * inv[i])
            for p in range(P):
                S[f, p, q] = sqrt_k[p] * x[port_pos[p]]
            S[f, q, q] += 1.0


_cascade_scatter_serial = jit(_cascade_scatter)
_cascade_scatter_parallel = jit(parallel=True)(renamed(_cascade_scatter, "_parallel"))


def _cascaded(M, order, port_idx, sqrt_k, delta, parallel):
    A = sp.csr_array(M[order][:, order])
    A.sort_indices()
    diag = np.ascontiguousarray(A.diagonal(), dtype=complex)
    L = sp.tril(A, k=-1, format="csr")
    upper = sp.triu(A, k=1)
    if upper.nnz and np.abs(upper.data).max() > 0:  # pruned_csr + cascade_order share the threshold
        raise SolverError("scattering: M is not triangular in its cascade order")  # pragma: no cover
    indptr, indices, data = csr_parts(L)
    pos = np.empty(order.size, np.int64)
    pos[order] = np.arange(order.size)
    port_pos = pos[port_idx]
    last = int(port_pos.max())
    F, P = delta.size, port_idx.size
    memory.check({"S": 16.0 * F * P * P, "work vectors": 32.0 * (last + 1) * max(1, min(F, 64))},
                 f"scattering (cascaded, {order.size} cells, {P} ports, {F} detunings)", "fewer ports or detunings")
    if parallel is None:
        work = F * float(np.sum(last + 1 - port_pos))
        parallel = work >= config.SCATTERING_PARALLEL_MIN_WORK and F >= 4
    S = np.empty((F, P, P), complex)
    kernel = _cascade_scatter_parallel if parallel else _cascade_scatter_serial
    kernel(indptr, indices.astype(np.int64), data, diag, delta, port_pos, sqrt_k.astype(float), last, S)
    return S


def _dense(M, port_idx, sqrt_k, delta):
    A = M.toarray() if sp.issparse(M) else np.asarray(M, complex)
    n, P, F = A.shape[0], port_idx.size, delta.size
    B = np.zeros((n, P), complex)
    B[port_idx, np.arange(P)] = sqrt_k
    chunk = max(1, min(F, config.SCATTERING_DENSE_BATCH_ENTRIES // max(1, n * n)))
    memory.check({"batch of M + i delta": 16.0 * chunk * n * n * 2, "S": 16.0 * F * P * P},
                 f"scattering (dense LU, {n} cells)", "method='sparse'")
    S = np.empty((F, P, P), complex)
    eye = np.eye(n)
    for f0 in range(0, F, chunk):
        d = delta[f0:f0 + chunk]
        X = np.linalg.solve(A[None, :, :] + 1j * d[:, None, None] * eye, np.broadcast_to(B, (d.size, n, P)))
        S[f0:f0 + chunk] = sqrt_k[None, :, None] * X[:, port_idx, :]
    S[:, np.arange(P), np.arange(P)] += 1.0
    return S


def _sparse(M, port_idx, sqrt_k, delta):
    A = sp.csc_array(M, dtype=complex)
    n, P, F = A.shape[0], port_idx.size, delta.size
    memory.check({"sparse LU factors (estimate)": 20.0 * A.nnz * 24, "solutions (N x P)": 16.0 * n * P,
                  "S": 16.0 * F * P * P},
                 f"scattering (sparse LU, {n} cells, {P} ports)", "fewer ports")
    B = np.zeros((n, P), complex)
    B[port_idx, np.arange(P)] = sqrt_k
    eye = sp.identity(n, dtype=complex, format="csc")
    S = np.empty((F, P, P), complex)
    for f, d in enumerate(delta):
        try:
            X = spla.splu(sp.csc_array(A + 1j * d * eye)).solve(B)
        except RuntimeError as exc:  # exactly singular
            raise SolverError(f"scattering: M + i delta is singular at detuning {d:g} ({exc})") from None
        S[f] = sqrt_k[:, None] * X[port_idx, :]
    S[:, np.arange(P), np.arange(P)] += 1.0
    return S


# ---------------------------------------------------------------------------------------------
# dB helpers.


def _db(amplitude) -> np.ndarray:
    """20 log10 |amplitude| (= 10 log10 of the power, without squaring tiny amplitudes to zero)."""
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(np.abs(amplitude))


def _isolation_db(forward, backward) -> np.ndarray:
    """10 log10(|forward|^2 / |backward|^2): +inf / -inf where exactly one vanishes, NaN where both do."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _db(forward) - _db(backward)
