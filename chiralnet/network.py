"""Describe a multicell battery as a NetworkX graph, and check that it follows the schema.

Schema (a :class:`networkx.DiGraph`)
------------------------------------
Graph attributes
    ``drive_frequency`` (float, units of omega): the one common drive frequency omega_L.
    ``name`` (str, optional).
Cell nodes (``kind="cell"``, the default when ``kind`` is absent)
    ``omega`` (required, > 0): cell frequency. ``kappa`` (>= 0): local damping rate.
    ``n_th`` (>= 0): local bath occupation. ``drive`` (complex): drive amplitude E_i; the
    Hamiltonian term is E_i e^{-i omega_L t} a_i^dag + h.c., so that d alpha_i/dt = ... - i E_i
    (README "Conventions"; checked against QuTiP in tests/test_qutip.py). ``drive`` may also be
    time-dependent: a shape from :mod:`chiralnet.drives`, a sum of them, or a callable f(t) -> complex.
    ``alpha0`` (complex): initial coherent amplitude. ``n0`` (>= 0): initial thermal occupation.
    ``pump`` (complex): two-photon drive P, the term (P a^dag^2 + conj(P) a^2)/2 in the drive frame.
    ``m_th`` (complex): the local bath's anomalous correlation M (|M|^2 <= n_th (n_th + 1)).
    ``xi0`` (complex): initial squeezing xi, the state S(xi) rho_th(n0) S(xi)^dag displaced by alpha0.
    (These three make the network a general Gaussian one: docs/theory/gaussian.md.)
    ``battery`` (bool): counts towards the battery energy. ``pos`` (pair of floats) and
    ``label`` (str): display only.
Reservoir nodes (``kind="reservoir"``)
    ``gamma`` (>= 0): rate Gamma_r. ``n_th`` (>= 0): reservoir occupation. ``m_th`` (complex):
    anomalous correlation of a squeezed reservoir (|M|^2 <= n_th (n_th + 1)).
Edges
    cell -> cell, attribute ``J`` (complex): the coherent term J a_u^dag a_v + conj(J) a_v^dag a_u,
    and/or ``g`` (complex): the parametric term g a_u^dag a_v^dag + conj(g) a_u a_v (two-mode squeezing).
    At most one edge per unordered pair of cells (it may carry both).
    reservoir -> cell, attribute ``p`` (complex): the reservoir's jump operator is
    z_r = sum_i p_i a_i over its out-edges.

Any graph that follows this schema works; the builders in :mod:`chiralnet.builders` only
save typing. Unknown attribute names raise :class:`~chiralnet.errors.NetworkError`, so a typo
such as ``kapa`` is never silently ignored.
"""

from __future__ import annotations

import cmath
import math
from collections.abc import Mapping
from numbers import Integral, Number, Real
from typing import NamedTuple

import networkx as nx
import numpy as np

from .drives import is_time_dependent
from .errors import NetworkError

__all__ = [
    "network",
    "add_cell",
    "add_coherent_link",
    "add_reservoir",
    "add_chiral_link",
    "add_parametric_link",
    "validate_network",
    "read_network",
    "NetworkParts",
    "cells",
    "reservoirs",
    "battery_cells",
]

GRAPH_KEYS = {"drive_frequency", "name"}
CELL_DEFAULTS = {
    "omega": None,
    "kappa": 0.0,
    "n_th": 0.0,
    "drive": 0.0,
    "alpha0": 0.0,
    "n0": 0.0,
    "battery": False,
    "pos": None,
    "label": None,
    # general Gaussian terms (stored only when nonzero; see chiralnet.gaussian)
    "pump": 0j,
    "m_th": 0j,
    "xi0": 0j,
}
RESERVOIR_DEFAULTS = {"gamma": None, "n_th": 0.0, "m_th": 0j}
COMPLEX_KEYS = {"drive", "alpha0", "J", "p", "pump", "m_th", "xi0", "g"}
#: Attributes that make a network a general Gaussian one (squeezing, parametric terms): cells, reservoirs, links.
ANOMALOUS_CELL_KEYS = ("pump", "m_th", "xi0")
ANOMALOUS_RESERVOIR_KEYS = ("m_th",)
ANOMALOUS_LINK_KEYS = ("g",)
_CELL_KEYS = frozenset(CELL_DEFAULTS) | {"kind"}
_RESERVOIR_KEYS = frozenset(RESERVOIR_DEFAULTS) | {"kind"}
_OMEGA, _GAMMA, _J_KEYS, _P_KEYS = ("omega",), ("gamma",), frozenset({"J"}), frozenset({"p"})
_LINK_KEYS = frozenset({"J", "g"})  # a coherent link J, a parametric link g, or both
_PLAIN_NUMBERS = (int, float, complex)      # exact types: never a time-dependent drive
_FLOAT_OR_COMPLEX = (float, complex)
_NONNEGATIVE_KEYS = frozenset({"kappa", "n_th", "n0"})
_INF = math.inf


def network(drive_frequency: float = 1.0, *, name: str | None = None) -> nx.DiGraph:
    """Return an empty network ready for cells.

    Parameters
    ----------
    drive_frequency : float
        Common drive frequency omega_L, in units of omega.
    name : str, optional
        A label kept in ``G.graph["name"]``.

    Examples
    --------
    >>> import chiralnet as cn
    >>> G = cn.network(drive_frequency=1.0)
    >>> cn.add_cell(G, "a", omega=1.0, kappa=0.003, drive=0.1)
    >>> cn.add_cell(G, "b", omega=1.0, kappa=0.003, battery=True)
    >>> cn.add_chiral_link(G, "a", "b", gamma=0.04)
    'R0'
    """
    G = nx.DiGraph()
    G.graph["drive_frequency"] = _real(drive_frequency, "graph attribute 'drive_frequency'")
    if name is not None:
        G.graph["name"] = str(name)
    return G


def add_cell(
    G: nx.DiGraph,
    node,
    *,
    omega: float,
    kappa: float = 0.0,
    n_th: float = 0.0,
    drive: complex = 0.0,
    alpha0: complex = 0.0,
    n0: float = 0.0,
    battery: bool = False,
    pos=None,
    label: str | None = None,
    pump: complex = 0j,
    m_th: complex = 0j,
    xi0: complex = 0j,
) -> None:
    """Add cell ``node``: a driven, damped bosonic mode.

    Parameters
    ----------
    omega : float
        Cell frequency (units of omega), > 0.
    kappa : float
        Local damping rate, >= 0.
    n_th : float
        Occupation of the local bath, >= 0.
    drive : complex, Drive or callable
        Drive amplitude E_i at the common drive frequency; or a time-dependent drive from
        :mod:`chiralnet.drives` (``gaussian``, ``square``, ``tone``, sums) or a callable f(t) -> complex.
    alpha0 : complex
        Initial coherent amplitude <a_i>(0).
    n0 : float
        Initial thermal occupation (added to |alpha0|^2).
    battery : bool
        Whether the cell counts towards the battery energy.
    pos : (float, float), optional
        Position for drawing.
    label : str, optional
        Display name.
    pump : complex
        Two-photon (degenerate parametric) drive P: the term (P a^dag^2 + conj(P) a^2)/2 in the frame
        of the drive (units of omega). Alone on a cell it is stable for |P| < sqrt(kappa^2/4 + Delta^2),
        Delta = omega - omega_L.
    m_th : complex
        Anomalous correlation M of the local bath (a squeezed bath of occupation ``n_th``): alone it
        relaxes the cell to <a^dag a> = n_th, <a a> = M. Needs |M|^2 <= n_th (n_th + 1).
    xi0 : complex
        Initial squeezing xi = r e^{i phi}: the cell starts in D(alpha0) S(xi) rho_th(n0) S(xi)^dag
        D(alpha0)^dag, S(xi) = exp((conj(xi) a^2 - xi a^dag^2)/2).

    Notes
    -----
    Any nonzero ``pump``, ``m_th`` or ``xi0`` makes the network a general Gaussian one
    (:mod:`chiralnet.gaussian`); ``simulate`` and ``steady_state`` then take its path.

    Examples
    --------
    >>> import chiralnet as cn
    >>> G = cn.network(drive_frequency=1.0)
    >>> cn.add_cell(G, "a", omega=1.0, kappa=1.0, n_th=0.3, m_th=0.2 + 0.1j)
    >>> cn.add_cell(G, "b", omega=1.0, kappa=1.0, n_th=0.1, m_th=0.5)
    Traceback (most recent call last):
    ...
    chiralnet.errors.NetworkError: cell 'b': the squeezed bath needs |m_th|^2 <= n_th (n_th + 1), got |m_th|^2 = 0.25 > 0.11; raise 'n_th' to at least 0.2071067812 or lower |m_th|
    """
    _check_name(node, "cell")
    if node in G:
        raise NetworkError(f"node {node!r} already exists; pick another name for the new cell")
    attrs = dict(kind="cell", omega=omega, kappa=kappa, n_th=n_th, drive=drive, alpha0=alpha0,
                 n0=n0, battery=battery)
    if pos is not None:
        attrs["pos"] = _pos(pos, f"cell {node!r} attribute 'pos'")
    if label is not None:
        attrs["label"] = str(label)
    for key, value in (("pump", pump), ("m_th", m_th), ("xi0", xi0)):
        if isinstance(value, bool) or not isinstance(value, Number) or value != 0:  # zero: not stored
            attrs[key] = value
    _check_cell(node, attrs)
    attrs["battery"] = bool(battery)
    G.add_node(node, **attrs)


def add_coherent_link(G: nx.DiGraph, u, v, J: complex) -> None:
    """Add the coherent term ``J a_u^dag a_v + conj(J) a_v^dag a_u`` between cells u and v."""
    _require_cell(G, u, f"coherent link ({u!r}, {v!r})")
    _require_cell(G, v, f"coherent link ({u!r}, {v!r})")
    if u == v:
        raise NetworkError(f"coherent link ({u!r}, {v!r}) is a self-loop; a cell's own frequency is 'omega'")
    J = _complex(J, f"coherent link ({u!r}, {v!r}) attribute 'J'")
    edge = _pair_edge(G, u, v)
    if edge is not None and "J" not in G.edges[edge]:  # a parametric link: the coherent term joins it
        G.edges[edge]["J"] = J if edge == (u, v) else J.conjugate()
        return
    if edge is not None:
        raise NetworkError(
            f"cells {u!r} and {v!r} already have a coherent link; combine both couplings into one J"
        )
    G.add_edge(u, v, J=J)


def add_parametric_link(G: nx.DiGraph, u, v, g: complex) -> None:
    """Add the parametric (two-mode squeezing) term ``g a_u^dag a_v^dag + conj(g) a_u a_v`` between cells
    u and v (in the frame of the drive; symmetric in u and v).

    A lab-frame position coupling ``g (a_u + a_u^dag)(a_v + a_v^dag)`` is a coherent link J = g plus a
    parametric link g (with ``drive_frequency=0``, the lab frame); the two may share one pair of cells.
    The link makes the network a general Gaussian one (:mod:`chiralnet.gaussian`). Two resonant cells of
    damping kappa stay stable for |g| < kappa/2.

    Parameters
    ----------
    g : complex
        Coupling amplitude (units of omega).

    Examples
    --------
    >>> import chiralnet as cn
    >>> G = cn.network(drive_frequency=0.0)
    >>> cn.add_cell(G, "a", omega=1.0, n0=1.0)
    >>> cn.add_cell(G, "b", omega=1.0, battery=True)
    >>> cn.add_coherent_link(G, "a", "b", 0.1)
    >>> cn.add_parametric_link(G, "a", "b", 0.1)
    >>> G.edges["a", "b"]
    {'J': (0.1+0j), 'g': (0.1+0j)}
    """
    where = f"parametric link ({u!r}, {v!r})"
    _require_cell(G, u, where)
    _require_cell(G, v, where)
    if u == v:
        raise NetworkError(f"{where} is a self-loop; a two-photon drive on one cell is add_cell(..., pump=P)")
    g = _complex(g, f"{where} attribute 'g'")
    edge = _pair_edge(G, u, v)
    if edge is None:
        G.add_edge(u, v, g=g)
    elif "g" in G.edges[edge]:
        raise NetworkError(f"cells {u!r} and {v!r} already have a parametric link; combine both into one g")
    else:
        G.edges[edge]["g"] = g  # g a_u^dag a_v^dag is symmetric in u and v: no conjugate


def _pair_edge(G, u, v):
    """The edge joining cells u and v in either direction, or None."""
    if G.has_edge(u, v):
        return (u, v)
    if G.has_edge(v, u):
        return (v, u)
    return None


def add_reservoir(G: nx.DiGraph, couplings: dict, *, gamma: float, n_th: float = 0.0, name=None,
                  m_th: complex = 0j):
    """Add a shared reservoir with jump operator ``z = sum_i p_i a_i``.

    Parameters
    ----------
    couplings : dict
        Maps each cell the reservoir touches to its complex amplitude p_i.
    gamma : float
        Reservoir rate Gamma_r, >= 0.
    n_th : float
        Reservoir occupation, >= 0.
    name : hashable, optional
        Node name of the reservoir; default the first free name of ``"R0", "R1", ...``.
    m_th : complex
        Anomalous correlation M of a squeezed reservoir (|M|^2 <= n_th (n_th + 1)); nonzero makes the
        network a general Gaussian one (:mod:`chiralnet.gaussian`).

    Returns
    -------
    The reservoir's node name.
    """
    if not isinstance(couplings, Mapping) or not couplings:
        raise NetworkError(f"a reservoir needs a non-empty dict cell -> p as 'couplings', got {couplings!r}")
    if name is None:
        name = _free_reservoir_name(G)
    elif _check_name(name, "reservoir") or name in G:
        raise NetworkError(f"node {name!r} already exists; pick another name for the reservoir")
    attrs = dict(kind="reservoir", gamma=gamma, n_th=n_th)
    if isinstance(m_th, bool) or not isinstance(m_th, Number) or m_th != 0:
        attrs["m_th"] = m_th
    _check_reservoir(name, attrs)
    edges = []
    for cell, p in couplings.items():
        _require_cell(G, cell, f"reservoir {name!r}")
        edges.append((name, cell, {"p": _complex(p, f"reservoir {name!r} coupling to cell {cell!r}")}))
    G.add_node(name, **attrs)
    G.add_edges_from(edges)
    return name


def add_chiral_link(G: nx.DiGraph, u, v, *, gamma: float, n_th: float = 0.0, xi: float = 1.0, name=None,
                    m_th: complex = 0j):
    """Add a one-way link u -> v: a shared reservoir balanced by a coherent coupling.

    The reservoir couples with p_u = sqrt(xi), p_v = -1/sqrt(xi) (so mu = -p_v conj(p_u) = 1,
    Gamma_u = xi gamma, Gamma_v = gamma/xi) and the coherent link has J = -i gamma/2.
    Then M[u, v] = -iJ + mu gamma/2 = 0 (v never acts on u) and M[v, u] = gamma.

    Parameters
    ----------
    gamma : float
        Reservoir rate Gamma, > 0.
    n_th : float
        Reservoir occupation.
    xi : float
        Coupling asymmetry, > 0; the paper's optimum is xi = sqrt(kappa_u / kappa_v).
    m_th : complex
        Anomalous correlation of a squeezed reservoir (|M|^2 <= n_th (n_th + 1)).

    Returns
    -------
    The reservoir's node name.
    """
    xi = _real(xi, f"chiral link ({u!r}, {v!r}) 'xi'")
    if not xi > 0:
        raise NetworkError(f"chiral link ({u!r}, {v!r}): 'xi' must be > 0, got {xi}")
    gamma = _real(gamma, f"chiral link ({u!r}, {v!r}) 'gamma'")
    if not gamma > 0:
        raise NetworkError(f"chiral link ({u!r}, {v!r}): 'gamma' must be > 0, got {gamma}")
    _require_cell(G, u, f"chiral link ({u!r}, {v!r})")
    _require_cell(G, v, f"chiral link ({u!r}, {v!r})")
    if u == v:
        raise NetworkError(f"chiral link ({u!r}, {v!r}) is a self-loop; link two different cells")
    if G.has_edge(u, v) or G.has_edge(v, u):
        raise NetworkError(f"cells {u!r} and {v!r} already have a coherent link, and a chiral link adds "
                           "another (its balancing J); remove that link first or use add_reservoir")
    s = math.sqrt(xi)
    name = add_reservoir(G, {u: s, v: -1.0 / s}, gamma=gamma, n_th=n_th, name=name, m_th=m_th)
    add_coherent_link(G, u, v, -0.5j * gamma)
    return name


def cells(G: nx.DiGraph) -> list:
    """Cell nodes in graph order (the default node order of every array)."""
    return [n for n, k in G.nodes(data="kind", default="cell") if k == "cell"]


def reservoirs(G: nx.DiGraph) -> list:
    """Reservoir nodes in graph order."""
    return [n for n, k in G.nodes(data="kind", default="cell") if k == "reservoir"]


def battery_cells(G: nx.DiGraph) -> list:
    """Cells marked ``battery=True``; all cells when none is marked."""
    marked = [n for n in cells(G) if G.nodes[n].get("battery", False)]
    return marked or cells(G)


def validate_network(G) -> None:
    """Raise :class:`NetworkError` naming the first cell, link or key that breaks the schema."""
    read_network(G)


class NetworkParts(NamedTuple):
    """What one validating walk over a network collects (:func:`read_network`), in graph order.

    ``cells`` (N,) and ``cell_attrs`` (N,): cell nodes and their attribute dicts; ``reservoirs`` (R,) and
    ``reservoir_attrs`` (R,); ``links``: three lists (u, v, J), per coherent link in edge order the indices in
    ``cells`` of its two cells and J (complex); ``couplings``: three lists (r, c, p), per reservoir edge grouped
    by reservoir in reservoir order the index in ``reservoirs``, the index in ``cells`` and p (complex);
    ``drive_frequency``: omega_L (float); ``constant_drives``: True when every drive is a plain number;
    ``anomalous``: True when a squeezing or parametric term is nonzero (the general Gaussian class).
    """

    cells: list
    cell_attrs: list
    reservoirs: list
    reservoir_attrs: list
    links: tuple
    couplings: tuple
    drive_frequency: float
    constant_drives: bool
    anomalous: bool


def read_network(G) -> NetworkParts:
    """Check ``G`` against the schema in one walk over its nodes and edges, and return what that walk read.

    Raises :class:`NetworkError` naming the first cell, link or key that breaks the schema (nodes first,
    in graph order, then edges). :func:`chiralnet.build_model` assembles from the returned parts, so a
    graph is walked once per model, not once to check it and again to read it.
    """
    if not isinstance(G, nx.DiGraph) or G.is_multigraph():
        raise NetworkError(
            f"a chiralnet network is a networkx.DiGraph, got {type(G).__name__}; start from chiralnet.network()"
        )
    if not G.graph.keys() <= GRAPH_KEYS:
        key = next(k for k in G.graph if k not in GRAPH_KEYS)
        raise NetworkError(f"unknown graph attribute {key!r}; known: {sorted(GRAPH_KEYS)}")
    omega_L = _real(G.graph.get("drive_frequency", 1.0), "graph attribute 'drive_frequency'")
    # NetworkX's own node and successor dicts (G._node, G._succ): the public views cost a few
    # microseconds per call, as much as the checks themselves on a small network.
    succ = G._succ
    kind_of, pos = {}, {}  # node -> kind; node -> index in cells or reservoirs
    cells, cell_attrs, res, res_attrs = [], [], [], []
    constant, anomalous = True, False
    for node, attrs in G._node.items():
        kind = attrs.get("kind", "cell")
        kind_of[node] = kind
        if kind == "cell":
            if not _plain_cell(attrs):
                constant = _check_cell(node, attrs) and constant
                anomalous = anomalous or any(attrs.get(k, 0) != 0 for k in ANOMALOUS_CELL_KEYS)
            elif not anomalous and ("pump" in attrs or "xi0" in attrs):  # (a plain cell may hold these two)
                anomalous = attrs.get("pump", 0) != 0 or attrs.get("xi0", 0) != 0
            pos[node] = len(cells)
            cells.append(node)
            cell_attrs.append(attrs)
        elif kind == "reservoir":
            if not _plain_reservoir(attrs):
                _check_reservoir(node, attrs)
                anomalous = anomalous or any(attrs.get(k, 0) != 0 for k in ANOMALOUS_RESERVOIR_KEYS)
            if not succ[node]:
                raise NetworkError(f"reservoir {node!r} couples to no cell; add edges reservoir -> cell with 'p'")
            pos[node] = len(res)
            res.append(node)
            res_attrs.append(attrs)
        else:
            raise NetworkError(f"node {node!r} has kind={kind!r}; use 'cell' or 'reservoir'")
    if not cells:
        raise NetworkError("the network has no cells; add some with chiralnet.add_cell")
    lu, lv, lJ, cr, cc, cp = [], [], [], [], [], []
    for u, nbrs in succ.items():
        ku = kind_of[u]
        for v, attrs in nbrs.items():
            kv = kind_of[v]
            if u == v:
                raise NetworkError(f"link ({u!r}, {v!r}) is a self-loop; links join two different nodes")
            if ku == "cell" and kv == "cell":
                J = attrs.get("J")
                if len(attrs) == 1 and type(J) in _FLOAT_OR_COMPLEX and cmath.isfinite(J):
                    J = complex(J)
                else:
                    _check_keys(attrs, _LINK_KEYS, f"coherent link ({u!r}, {v!r})",
                                required=() if "g" in attrs else _J_KEYS)
                    if "g" in attrs:
                        anomalous = anomalous or attrs["g"] != 0
                        _complex(attrs["g"], f"parametric link ({u!r}, {v!r}) attribute 'g'")
                    J = _complex(attrs["J"], f"coherent link ({u!r}, {v!r}) attribute 'J'") if "J" in attrs else None
                if u in succ[v]:
                    raise NetworkError(
                        f"cells {u!r} and {v!r} have coherent links both ways; keep one edge with the combined J"
                    )
                if J is not None:  # a parametric link alone (g) is read by chiralnet.gaussian
                    lu.append(pos[u])
                    lv.append(pos[v])
                    lJ.append(J)
            elif ku == "reservoir" and kv == "cell":
                p = attrs.get("p")
                if len(attrs) == 1 and type(p) in _FLOAT_OR_COMPLEX and cmath.isfinite(p):
                    p = complex(p)
                else:
                    _check_keys(attrs, _P_KEYS, f"coupling ({u!r}, {v!r})", required=_P_KEYS)
                    p = _complex(attrs["p"], f"coupling of reservoir {u!r} to cell {v!r}, attribute 'p'")
                cr.append(pos[u])
                cc.append(pos[v])
                cp.append(p)
            elif kv == "reservoir" and ku == "cell":
                raise NetworkError(f"edge ({u!r}, {v!r}) points into reservoir {v!r}; couplings go reservoir -> cell")
            else:
                raise NetworkError(f"edge ({u!r}, {v!r}) joins two reservoirs; a reservoir couples to cells only")
    return NetworkParts(cells, cell_attrs, res, res_attrs, (lu, lv, lJ), (cr, cc, cp), omega_L, constant, anomalous)


_PLAIN_CELL_KEYS = frozenset({"kind", "omega", "kappa", "n_th", "drive", "alpha0", "n0", "battery", "label", "pos",
                              "pump", "xi0"})
_NOT_LABELS = (float, complex, bool)


def _plain_cell(attrs) -> bool:
    """A fast pre-check: True when every attribute of a cell is a plain Python value the schema accepts
    (positive finite float ``omega``; non-negative finite floats; finite float or complex ``drive``,
    ``alpha0``, ``pump`` and ``xi0``; bool ``battery``; ``pos`` None; a ``label`` that is not a number). False
    sends the cell to
    :func:`_check_cell`, which names what is wrong, or accepts a less common valid value (an integer, a NumPy
    scalar, a time-dependent drive). Messages are written in one place only; this costs about 0.9 us a cell
    instead of 5 (one lookup per key, not a loop over the items with a branch per key)."""
    if not attrs.keys() <= _PLAIN_CELL_KEYS:
        return False
    get = attrs.get
    omega, kappa, n_th, n0 = get("omega"), get("kappa", 0.0), get("n_th", 0.0), get("n0", 0.0)
    drive, alpha0, pump, xi0 = get("drive", 0.0), get("alpha0", 0.0), get("pump", 0.0), get("xi0", 0.0)
    return (type(pump) in _FLOAT_OR_COMPLEX and cmath.isfinite(pump) and type(xi0) in _FLOAT_OR_COMPLEX
            and cmath.isfinite(xi0) and type(omega) is float and type(kappa) is float and type(n_th) is float
            and type(n0) is float
            and type(get("battery", False)) is bool and 0.0 < omega < _INF and 0.0 <= kappa < _INF
            and 0.0 <= n_th < _INF and 0.0 <= n0 < _INF and type(drive) in _FLOAT_OR_COMPLEX
            and cmath.isfinite(drive) and type(alpha0) in _FLOAT_OR_COMPLEX and cmath.isfinite(alpha0)
            and get("pos") is None and type(get("label")) not in _NOT_LABELS)


def _plain_reservoir(attrs) -> bool:
    """As :func:`_plain_cell`, for a reservoir: non-negative finite float ``gamma`` and ``n_th``."""
    if "gamma" not in attrs:
        return False
    for key, value in attrs.items():
        if key == "kind":
            continue
        if not (type(value) is float and (key == "gamma" or key == "n_th") and 0.0 <= value < _INF):
            return False
    return True


def _check_cell(node, attrs) -> bool:
    """Check a cell's attributes; return True when its drive is a plain number (not time-dependent)."""
    where = f"cell {node!r}"
    _check_keys(attrs, _CELL_KEYS, where, required=_OMEGA)
    omega = _real(attrs["omega"], f"{where} attribute 'omega'")
    if not omega > 0:
        raise NetworkError(f"{where} attribute 'omega' must be > 0 (units of omega), got {omega}")
    for key in ("kappa", "n_th", "n0"):
        if key in attrs:
            _nonnegative(attrs[key], f"{where} attribute {key!r}")
    constant = True
    if "drive" in attrs:
        drive = attrs["drive"]
        if type(drive) in _PLAIN_NUMBERS or not is_time_dependent(drive):
            _complex(drive, f"{where} attribute 'drive'")
        else:
            constant = False
    if "alpha0" in attrs:
        _complex(attrs["alpha0"], f"{where} attribute 'alpha0'")
    if attrs.get("pos") is not None:
        _pos(attrs["pos"], f"{where} attribute 'pos'")
    if "battery" in attrs and not _is_flag(attrs["battery"]):
        raise NetworkError(f"{where} attribute 'battery' must be True or False, got {attrs['battery']!r}")
    _check_anomalous(where, attrs, ANOMALOUS_CELL_KEYS)
    return constant


def _check_reservoir(node, attrs) -> None:
    where = f"reservoir {node!r}"
    _check_keys(attrs, _RESERVOIR_KEYS, where, required=_GAMMA)
    _nonnegative(attrs["gamma"], f"{where} attribute 'gamma'")
    if "n_th" in attrs:
        _nonnegative(attrs["n_th"], f"{where} attribute 'n_th'")
    _check_anomalous(where, attrs, ANOMALOUS_RESERVOIR_KEYS)


def _check_anomalous(where, attrs, keys) -> None:
    """The general Gaussian attributes of a cell or reservoir: finite complex numbers, and a squeezed bath
    that is a state (|m_th|^2 <= n_th (n_th + 1), up to rounding)."""
    for key in keys:
        if key in attrs:
            _complex(attrs[key], f"{where} attribute {key!r}")
    if "m_th" in attrs:
        m2 = abs(complex(attrs["m_th"])) ** 2
        n = float(attrs.get("n_th", 0.0))
        if m2 > n * (n + 1) * (1 + 1e-12) + 1e-300:
            need = (math.sqrt(1 + 4 * m2) - 1) / 2
            raise NetworkError(f"{where}: the squeezed bath needs |m_th|^2 <= n_th (n_th + 1), got |m_th|^2 = "
                               f"{m2:.10g} > {n * (n + 1):.10g}; raise 'n_th' to at least {need:.10g} or lower |m_th|")


def _check_keys(attrs, known, where, required=()) -> None:
    if not attrs.keys() <= known:  # one set operation; the loop below only finds the key to name
        for key in attrs:
            if key not in known:
                raise NetworkError(f"{where}: unknown attribute {key!r}; known: {sorted(known)}")
    for key in required:
        if key not in attrs:
            raise NetworkError(f"{where}: missing required attribute {key!r}")


def _check_name(node, what) -> None:
    """A node name NetworkX accepts: hashable and not None (else NetworkX raises TypeError or ValueError)."""
    if node is None:
        raise NetworkError(f"a {what} name cannot be None; use a string or an integer")
    try:
        hash(node)
    except TypeError:
        raise NetworkError(f"{what} name {_short(node)} of type {type(node).__name__} is not hashable; "
                           "use a string, an integer or a tuple of them") from None


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_flag(value) -> bool:
    """True, False, numpy booleans, or the integers 0 and 1 (never an array: its truth is ambiguous)."""
    if isinstance(value, (bool, np.bool_)):
        return True
    return isinstance(value, Integral) and int(value) in (0, 1)


def _real(value, where) -> float:
    if type(value) is float and math.isfinite(value):  # the common case, without the ABC checks below
        return value
    if isinstance(value, bool) or not isinstance(value, Real):
        raise NetworkError(f"{where} must be a real number, got {_short(value)}")
    try:
        value = float(value)
    except OverflowError:  # an integer beyond the float range (10**400)
        raise NetworkError(f"{where} must be finite, got an integer too large for a float "
                           f"({len(str(abs(int(value))))} digits)") from None
    if not math.isfinite(value):
        raise NetworkError(f"{where} must be finite, got {value}")
    return value


def _nonnegative(value, where) -> float:
    value = _real(value, where)
    if value < 0:
        raise NetworkError(f"{where} must be >= 0, got {value}")
    return value


def _complex(value, where) -> complex:
    if type(value) in _FLOAT_OR_COMPLEX and cmath.isfinite(value):  # the common case, without the ABC checks
        return complex(value)
    if isinstance(value, bool) or not isinstance(value, Number):
        raise NetworkError(f"{where} must be a number (complex allowed), got {_short(value)}")
    try:
        value = complex(value)
    except (OverflowError, TypeError, ValueError):
        raise NetworkError(f"{where} must be a finite number, got {_short(value)}") from None
    if not cmath.isfinite(value):
        raise NetworkError(f"{where} must be finite, got {value}")
    return value


def _pos(value, where) -> tuple:
    try:
        pair = not isinstance(value, (str, bytes, Mapping)) and len(value) == 2
    except TypeError:  # no len(): a number, a 0-d array
        pair = False
    if not pair:
        raise NetworkError(f"{where} must be a pair of numbers (x, y), got {_short(value)}")
    return tuple(_real(x, where) for x in value)


def _free_reservoir_name(G) -> str:
    """A name "R<k>" not in G, found in O(log k) lookups (a linear scan made building chains quadratic).

    Gallop to some hi with "R<hi>" free, then bisect between a taken lo and a free hi; the bisection
    keeps "R<lo>" taken and "R<hi>" free, so it ends on a free name even if the taken names have gaps.
    """
    if "R0" not in G:
        return "R0"
    lo, hi = 0, 1
    while f"R{hi}" in G:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if f"R{mid}" in G:
            lo = mid
        else:
            hi = mid
    return f"R{hi}"


def _require_cell(G, node, where) -> None:
    _check_name(node, "cell")
    if node not in G:
        raise NetworkError(f"{where}: cell {node!r} does not exist; add it first with chiralnet.add_cell")
    if G.nodes[node].get("kind", "cell") != "cell":
        raise NetworkError(f"{where}: node {node!r} is a {G.nodes[node]['kind']}, not a cell")
