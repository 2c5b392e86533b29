"""Builders for the paper's two-cell battery and for chains, rings, stars and lattices.

Every builder returns a plain :func:`chiralnet.network` graph, so its output can be edited
with :func:`add_cell`, :func:`add_chiral_link` and friends. Defaults are the seed paper's
Fig. 2 parameters (units of omega): gamma = 0.04, kappa = 0.003, drive = 0.1.
Links are one-way (chiral) by default; ``nonreciprocal=False`` gives plain coherent links
with J = gamma/2, the paper's reciprocal comparison at equal coupling strength.

Per-cell and per-link arrays
----------------------------
In :func:`chain`, :func:`ring`, :func:`star` and :func:`lattice`, ``omega``, ``kappa``, ``n_th``,
``drive``, ``pump`` and ``m_th`` take a number (every cell alike; a number ``drive`` drives cell 0 only) or
an array with one entry per cell in node order; ``gamma``, ``n_th_link``, ``J``, ``m_th_link`` and
``parametric`` a number or an array with one entry per link in the builder's documented link order.
``pump``, ``m_th``, ``m_th_link`` and ``parametric`` are the general Gaussian terms (two-photon drives,
squeezed baths and link reservoirs, parametric links): any nonzero one makes the network a general
Gaussian one (:mod:`chiralnet.gaussian`). This describes disordered and optimised networks; a
wrong length raises :class:`~chiralnet.errors.NetworkError` naming the parameter, the expected and the
given length.

The registry
------------
:data:`BUILDERS` maps each builder's name to a :class:`BuilderInfo`: the function and its parameters
(:class:`Parameter`: kind, default or :data:`REQUIRED`, and whether it may be an array, of one entry per
cell or per link). Scenario files (:mod:`chiralnet.scenario`), sweeps (:mod:`chiralnet.sweeps`) and
the affine model (:mod:`chiralnet.parametrized`) read it; the builders' signatures are tested against it.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
from dataclasses import dataclass
from numbers import Integral
from typing import Callable

import numpy as np

from . import memory
from .errors import ChiralnetError, NetworkError
from .network import _complex, _real, add_cell, add_chiral_link, add_coherent_link, add_parametric_link, network

__all__ = ["two_cell", "chain", "ring", "star", "lattice", "BUILDERS", "BuilderInfo", "Parameter", "REQUIRED",
           "resolve_builder", "builder_parameters"]


def two_cell(
    *,
    omega: float = 1.0,
    kappa_a: float = 0.003,
    kappa_b: float = 0.003,
    gamma: float = 0.04,
    drive: complex = 0.1,
    J: complex | None = None,
    nonreciprocal: bool = True,
    optimal: bool = False,
    n_th: float = 0.0,
    drive_frequency: float | None = None,
):
    """The seed paper's charger ``"a"`` (driven) and battery ``"b"``.

    Parameters
    ----------
    omega : float
        Frequency of both cells; the drive is resonant unless ``drive_frequency`` is given.
    kappa_a, kappa_b : float
        Local damping of charger and battery.
    gamma : float
        Shared reservoir rate Gamma (nonreciprocal) or, with J unset, J = gamma/2 (reciprocal).
    drive : complex
        Drive amplitude E on the charger.
    J : complex, optional
        Reciprocal case only: the coherent coupling (default gamma/2).
    nonreciprocal : bool
        One-way link a -> b (reservoir plus balancing J), or a plain coherent link.
    optimal : bool
        Nonreciprocal only: Gamma_a = xi gamma, Gamma_b = gamma/xi with xi = sqrt(kappa_a/kappa_b).
    n_th : float
        Occupation of both local baths and of the shared reservoir.
    drive_frequency : float, optional
        omega_L; default ``omega`` (resonant).

    Returns
    -------
    networkx.DiGraph
        Cells ``"a"`` (charger) and ``"b"`` (battery), one link a -> b.

    Examples
    --------
    >>> import chiralnet as cn
    >>> G = cn.two_cell(kappa_a=0.1, kappa_b=0.003, gamma=0.01, optimal=True)
    >>> cn.cells(G), cn.battery_cells(G)
    (['a', 'b'], ['b'])
    >>> round(cn.steady_state(cn.two_cell()).battery_energy, 2)    # 16 Gamma^2 E^2 / Lambda^4
    74.88
    """
    G = network(omega if drive_frequency is None else drive_frequency, name="two_cell")
    add_cell(G, "a", omega=omega, kappa=kappa_a, n_th=n_th, drive=drive, label="charger")
    add_cell(G, "b", omega=omega, kappa=kappa_b, n_th=n_th, battery=True, label="battery")
    if nonreciprocal:
        if J is not None:
            raise NetworkError("two_cell: J is fixed by the balance condition when nonreciprocal=True; drop J")
        add_chiral_link(G, "a", "b", gamma=gamma, n_th=n_th, xi=_two_cell_xi(kappa_a, kappa_b, optimal))
    else:
        if optimal:
            raise NetworkError("two_cell: optimal=True applies to nonreciprocal=True only")
        add_coherent_link(G, "a", "b", gamma / 2 if J is None else J)
    return G


def _two_cell_xi(kappa_a, kappa_b, optimal) -> float:
    """The coupling asymmetry xi of two_cell's chiral link: sqrt(kappa_a/kappa_b) when optimal, else 1."""
    if not optimal:
        return 1.0
    if not (kappa_a > 0 and kappa_b > 0):
        raise NetworkError("two_cell: optimal=True needs kappa_a > 0 and kappa_b > 0 (xi = sqrt(kappa_a/kappa_b))")
    return math.sqrt(kappa_a / kappa_b)


def chain(
    n_cells: int,
    *,
    omega=1.0,
    kappa=0.003,
    gamma=0.04,
    drive=0.1,
    n_th=0.0,
    nonreciprocal: bool = True,
    J=None,
    drive_frequency: float | None = None,
    n_th_link=None,
    battery="all",
    pump=0.0,
    m_th=0.0,
    m_th_link=0.0,
    parametric=None,
):
    """Cells 0 -> 1 -> ... -> n_cells-1; cell 0 is the driven charger, the rest the battery.

    Link k joins cells k -> k+1 (k = 0 .. n_cells-2): per-link arrays have n_cells-1 entries.

    Parameters
    ----------
    n_cells : int
        Number of cells, >= 2.
    omega : float or array (n_cells,)
        Cell frequencies (units of omega), > 0.
    kappa : float or array (n_cells,)
        Local damping rates, >= 0.
    gamma : float or array (n_links,)
        Per link: the reservoir rate Gamma of a one-way link (> 0) or, with ``nonreciprocal=False``
        and J unset, the coherent coupling J = gamma/2.
    drive : complex or array (n_cells,)
        A number drives cell 0 (the charger) only; an array gives every cell's drive amplitude E_i.
    n_th : float or array (n_cells,)
        Occupation of the local baths (>= 0); a number also sets the link reservoirs' occupation.
    n_th_link : float or array (n_links,), optional
        One-way links only: occupation of the link reservoirs (>= 0); default ``n_th``, which must then
        be a number.
    nonreciprocal : bool
        One-way links (a reservoir plus the balancing J = -i gamma/2), or plain coherent links.
    J : complex or array (n_links,), optional
        ``nonreciprocal=False`` only: the coherent couplings (default gamma/2).
    drive_frequency : float, optional
        omega_L; default the frequency of cell 0 (resonant with the charger).
    battery : {"all", "last"} or list of int
        The cells counted in the battery energy: "all" (every cell but the charger, cell 0; the
        default), "last" (the last cell only), or a list of cell numbers.
    pump : complex or array (n_cells,)
        Two-photon drive P of each cell, the term (P a^dag^2 + conj(P) a^2)/2 in the frame of the drive
        (units of omega); a number sets every cell alike. Default 0.
    m_th : complex or array (n_cells,)
        Anomalous correlation M of each local bath (a squeezed bath of occupation ``n_th``; needs
        |M|^2 <= n_th (n_th + 1)); a number sets every cell alike. Default 0.
    m_th_link : complex or array (n_links,)
        One-way links only: anomalous correlation of each link reservoir (a squeezed reservoir of
        occupation ``n_th_link``; needs |M|^2 <= n_th_link (n_th_link + 1)). Default 0.
    parametric : complex or array (n_links,), optional
        A parametric (two-mode squeezing) coupling g a_u^dag a_v^dag + conj(g) a_u a_v on each link, beside
        its one-way or coherent coupling (in the frame of the drive). Default None: none. Any nonzero
        ``pump``, ``m_th``, ``m_th_link`` or ``parametric`` makes the network a general Gaussian one
        (docs/guide/gaussian.md).

    Returns
    -------
    networkx.DiGraph
        Cells 0 .. n_cells-1; link reservoirs R0 .. R(n_cells-2) when nonreciprocal.

    Examples
    --------
    >>> import numpy as np
    >>> import chiralnet as cn
    >>> np.round(cn.steady_state(cn.chain(6)).energies, 1)
    array([21.6, 20.1, 18.7, 17.3, 16.1, 55.8])
    >>> G = cn.chain(4, kappa=[0.003, 0.002, 0.004, 0.003], gamma=[0.04, 0.05, 0.03])   # disorder
    >>> [G.nodes[i]["kappa"] for i in cn.cells(G)], G.nodes["R1"]["gamma"]
    ([0.003, 0.002, 0.004, 0.003], 0.05)
    """
    n = _count(n_cells, "n_cells", 2)
    _preflight(f"chain({n})", n, n - 1)
    return _build("chain", n, _links("chain", n), **_given(locals(), "n_cells"))


def ring(
    n_cells: int,
    *,
    omega=1.0,
    kappa=0.003,
    gamma=0.04,
    drive=0.1,
    n_th=0.0,
    nonreciprocal: bool = True,
    J=None,
    drive_frequency: float | None = None,
    n_th_link=None,
    battery="all",
    pump=0.0,
    m_th=0.0,
    m_th_link=0.0,
    parametric=None,
):
    """A chain closed by the link n_cells-1 -> 0 (energy circulates one way); n_cells >= 3.

    Link k joins cells k -> (k+1) mod n_cells (k = 0 .. n_cells-1): per-link arrays have n_cells
    entries, the last one the closing link.

    Parameters
    ----------
    n_cells : int
        Number of cells, >= 3.
    omega : float or array (n_cells,)
        Cell frequencies (units of omega), > 0.
    kappa : float or array (n_cells,)
        Local damping rates, >= 0.
    gamma : float or array (n_links,)
        Per link: the reservoir rate Gamma of a one-way link (> 0) or, with ``nonreciprocal=False``
        and J unset, the coherent coupling J = gamma/2.
    drive : complex or array (n_cells,)
        A number drives cell 0 (the charger) only; an array gives every cell's drive amplitude E_i.
    n_th : float or array (n_cells,)
        Occupation of the local baths (>= 0); a number also sets the link reservoirs' occupation.
    n_th_link : float or array (n_links,), optional
        One-way links only: occupation of the link reservoirs (>= 0); default ``n_th``, which must then
        be a number.
    nonreciprocal : bool
        One-way links (a reservoir plus the balancing J = -i gamma/2), or plain coherent links.
    J : complex or array (n_links,), optional
        ``nonreciprocal=False`` only: the coherent couplings (default gamma/2).
    drive_frequency : float, optional
        omega_L; default the frequency of cell 0 (resonant with the charger).
    battery : {"all", "last"} or list of int
        The cells counted in the battery energy: "all" (every cell but the charger, cell 0; the
        default), "last" (the last cell only), or a list of cell numbers.
    pump : complex or array (n_cells,)
        Two-photon drive P of each cell, the term (P a^dag^2 + conj(P) a^2)/2 in the frame of the drive
        (units of omega); a number sets every cell alike. Default 0.
    m_th : complex or array (n_cells,)
        Anomalous correlation M of each local bath (a squeezed bath of occupation ``n_th``; needs
        |M|^2 <= n_th (n_th + 1)); a number sets every cell alike. Default 0.
    m_th_link : complex or array (n_links,)
        One-way links only: anomalous correlation of each link reservoir (a squeezed reservoir of
        occupation ``n_th_link``; needs |M|^2 <= n_th_link (n_th_link + 1)). Default 0.
    parametric : complex or array (n_links,), optional
        A parametric (two-mode squeezing) coupling g a_u^dag a_v^dag + conj(g) a_u a_v on each link, beside
        its one-way or coherent coupling (in the frame of the drive). Default None: none. Any nonzero
        ``pump``, ``m_th``, ``m_th_link`` or ``parametric`` makes the network a general Gaussian one
        (docs/guide/gaussian.md).

    Returns
    -------
    networkx.DiGraph
        Cells 0 .. n_cells-1; link reservoirs R0 .. R(n_cells-1) when nonreciprocal.

    Examples
    --------
    >>> import chiralnet as cn
    >>> G = cn.ring(3, gamma=[0.04, 0.04, 0.02])
    >>> G.nodes["R2"]["gamma"], sorted(G.successors("R2"))
    (0.02, [0, 2])
    """
    n = _count(n_cells, "n_cells", 3)
    _preflight(f"ring({n})", n, n)
    return _build("ring", n, _links("ring", n), **_given(locals(), "n_cells"))


def star(
    n_leaves: int,
    *,
    omega=1.0,
    kappa=0.003,
    gamma=0.04,
    drive=0.1,
    n_th=0.0,
    nonreciprocal: bool = True,
    J=None,
    drive_frequency: float | None = None,
    n_th_link=None,
    battery="all",
    pump=0.0,
    m_th=0.0,
    m_th_link=0.0,
    parametric=None,
):
    """A driven hub 0 with links 0 -> 1 .. n_leaves; the leaves are the battery.

    Link k joins the hub to leaf k+1 (k = 0 .. n_leaves-1): per-cell arrays have n_leaves+1 entries
    (the hub first), per-link arrays n_leaves.

    Parameters
    ----------
    n_leaves : int
        Number of leaves, >= 1.
    omega : float or array (n_cells,)
        Cell frequencies (units of omega), > 0.
    kappa : float or array (n_cells,)
        Local damping rates, >= 0.
    gamma : float or array (n_links,)
        Per link: the reservoir rate Gamma of a one-way link (> 0) or, with ``nonreciprocal=False``
        and J unset, the coherent coupling J = gamma/2.
    drive : complex or array (n_cells,)
        A number drives cell 0 (the charger) only; an array gives every cell's drive amplitude E_i.
    n_th : float or array (n_cells,)
        Occupation of the local baths (>= 0); a number also sets the link reservoirs' occupation.
    n_th_link : float or array (n_links,), optional
        One-way links only: occupation of the link reservoirs (>= 0); default ``n_th``, which must then
        be a number.
    nonreciprocal : bool
        One-way links (a reservoir plus the balancing J = -i gamma/2), or plain coherent links.
    J : complex or array (n_links,), optional
        ``nonreciprocal=False`` only: the coherent couplings (default gamma/2).
    drive_frequency : float, optional
        omega_L; default the frequency of cell 0 (resonant with the charger).
    battery : {"all", "last"} or list of int
        The cells counted in the battery energy: "all" (every cell but the charger, cell 0; the
        default), "last" (the last cell only), or a list of cell numbers.
    pump : complex or array (n_cells,)
        Two-photon drive P of each cell, the term (P a^dag^2 + conj(P) a^2)/2 in the frame of the drive
        (units of omega); a number sets every cell alike. Default 0.
    m_th : complex or array (n_cells,)
        Anomalous correlation M of each local bath (a squeezed bath of occupation ``n_th``; needs
        |M|^2 <= n_th (n_th + 1)); a number sets every cell alike. Default 0.
    m_th_link : complex or array (n_links,)
        One-way links only: anomalous correlation of each link reservoir (a squeezed reservoir of
        occupation ``n_th_link``; needs |M|^2 <= n_th_link (n_th_link + 1)). Default 0.
    parametric : complex or array (n_links,), optional
        A parametric (two-mode squeezing) coupling g a_u^dag a_v^dag + conj(g) a_u a_v on each link, beside
        its one-way or coherent coupling (in the frame of the drive). Default None: none. Any nonzero
        ``pump``, ``m_th``, ``m_th_link`` or ``parametric`` makes the network a general Gaussian one
        (docs/guide/gaussian.md).

    Returns
    -------
    networkx.DiGraph
        The hub 0 and leaves 1 .. n_leaves; link reservoirs R0 .. R(n_leaves-1) when nonreciprocal.

    Examples
    --------
    >>> import chiralnet as cn
    >>> G = cn.star(3, gamma=[0.01, 0.02, 0.03])
    >>> cn.cells(G), cn.battery_cells(G)
    ([0, 1, 2, 3], [1, 2, 3])
    """
    n = _count(n_leaves, "n_leaves", 1)
    _preflight(f"star({n})", n + 1, n)
    return _build("star", n + 1, _links("star", n + 1), **_given(locals(), "n_leaves"))


def lattice(
    rows: int,
    cols: int,
    *,
    omega=1.0,
    kappa=0.003,
    gamma=0.04,
    drive=0.1,
    n_th=0.0,
    nonreciprocal: bool = True,
    J=None,
    drive_frequency: float | None = None,
    n_th_link=None,
    battery="all",
    pump=0.0,
    m_th=0.0,
    m_th_link=0.0,
    parametric=None,
):
    """A rows x cols grid, cells numbered r*cols + c, links pointing right and down.

    Cell 0 (top-left corner) is the driven charger; every other cell is battery; ``pos`` is set from
    the grid. Links are ordered: first the right links (r, c) -> (r, c+1) row by row, then the down
    links (r, c) -> (r+1, c) row by row: rows*(cols-1) + (rows-1)*cols links.

    Parameters
    ----------
    rows, cols : int
        Grid size, >= 1 each, rows * cols >= 2.
    omega : float or array (n_cells,)
        Cell frequencies (units of omega), > 0.
    kappa : float or array (n_cells,)
        Local damping rates, >= 0.
    gamma : float or array (n_links,)
        Per link: the reservoir rate Gamma of a one-way link (> 0) or, with ``nonreciprocal=False``
        and J unset, the coherent coupling J = gamma/2.
    drive : complex or array (n_cells,)
        A number drives cell 0 (the charger) only; an array gives every cell's drive amplitude E_i.
    n_th : float or array (n_cells,)
        Occupation of the local baths (>= 0); a number also sets the link reservoirs' occupation.
    n_th_link : float or array (n_links,), optional
        One-way links only: occupation of the link reservoirs (>= 0); default ``n_th``, which must then
        be a number.
    nonreciprocal : bool
        One-way links (a reservoir plus the balancing J = -i gamma/2), or plain coherent links.
    J : complex or array (n_links,), optional
        ``nonreciprocal=False`` only: the coherent couplings (default gamma/2).
    drive_frequency : float, optional
        omega_L; default the frequency of cell 0 (resonant with the charger).
    battery : {"all", "last"} or list of int
        The cells counted in the battery energy: "all" (every cell but the charger, cell 0; the
        default), "last" (the last cell only), or a list of cell numbers.
    pump : complex or array (n_cells,)
        Two-photon drive P of each cell, the term (P a^dag^2 + conj(P) a^2)/2 in the frame of the drive
        (units of omega); a number sets every cell alike. Default 0.
    m_th : complex or array (n_cells,)
        Anomalous correlation M of each local bath (a squeezed bath of occupation ``n_th``; needs
        |M|^2 <= n_th (n_th + 1)); a number sets every cell alike. Default 0.
    m_th_link : complex or array (n_links,)
        One-way links only: anomalous correlation of each link reservoir (a squeezed reservoir of
        occupation ``n_th_link``; needs |M|^2 <= n_th_link (n_th_link + 1)). Default 0.
    parametric : complex or array (n_links,), optional
        A parametric (two-mode squeezing) coupling g a_u^dag a_v^dag + conj(g) a_u a_v on each link, beside
        its one-way or coherent coupling (in the frame of the drive). Default None: none. Any nonzero
        ``pump``, ``m_th``, ``m_th_link`` or ``parametric`` makes the network a general Gaussian one
        (docs/guide/gaussian.md).

    Returns
    -------
    networkx.DiGraph
        Cells 0 .. rows*cols-1 with ``pos`` set; one link reservoir per link when nonreciprocal.

    Examples
    --------
    >>> import chiralnet as cn
    >>> G = cn.lattice(2, 3)
    >>> len(cn.cells(G)), len(cn.reservoirs(G))                   # 2*2 right + 1*3 down links
    (6, 7)
    """
    r = _count(rows, "rows", 1)
    c = _count(cols, "cols", 1)
    if r * c < 2:
        raise NetworkError("lattice: rows * cols must be >= 2")
    _preflight(f"lattice({r}, {c})", r * c, 2 * r * c)
    pos = {i * c + j: (float(j), float(-i)) for i in range(r) for j in range(c)}
    return _build("lattice", r * c, _links("lattice", r, c), pos=pos, **_given(locals(), "rows", "cols", "r", "c"))


# ---------------------------------------------------------------------------------------------
# The registry.


class _Required:
    def __repr__(self):
        return "REQUIRED"

    def __reduce__(self):
        return "REQUIRED"


#: Default of a parameter that has none (it must be given).
REQUIRED = _Required()


@dataclass(frozen=True)
class Parameter:
    """One parameter of a builder.

    Attributes
    ----------
    name : str
    kind : str
        ``"int"``, ``"real"``, ``"positive"`` (> 0), ``"nonneg"`` (>= 0), ``"complex"`` or ``"bool"``.
    default : object
        The default value, or :data:`REQUIRED`.
    per : str or None
        ``"cell"`` or ``"link"``: the value may also be an array with one entry per cell / link;
        None: a single value only.
    doc : str
        One line of description.
    """

    name: str
    kind: str
    default: object = REQUIRED
    per: str | None = None
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class BuilderInfo:
    """A builder and its parameters, described once.

    Attributes
    ----------
    name : str
    function : callable
        The builder; ``function(**kwargs)`` returns a network.
    parameters : dict
        Name -> :class:`Parameter`, in signature order.
    sizes : callable
        ``sizes(**kwargs)`` -> ``{"cell": n_cells, "link": n_links}`` from the structural (integer)
        parameters in ``kwargs``.
    """

    name: str
    function: Callable
    parameters: dict
    sizes: Callable

    @functools.cached_property
    def required(self) -> tuple:
        """Names of the parameters without a default (found once: a gradient reads them per parameter)."""
        return tuple(k for k, p in self.parameters.items() if p.required)

    @property
    def defaults(self) -> dict:
        """Name -> default (:data:`REQUIRED` where there is none)."""
        return {k: p.default for k, p in self.parameters.items()}

    def length(self, name: str, **kwargs) -> int | None:
        """The length an array value of parameter ``name`` must have, given the structural parameters in
        ``kwargs``; None when the parameter takes no array."""
        per = self.parameters[name].per
        return None if per is None else self.sizes(**kwargs)[per]


_COMMON = (
    Parameter("omega", "positive", 1.0, "cell", "cell frequencies (units of omega)"),
    Parameter("kappa", "nonneg", 0.003, "cell", "local damping rates"),
    Parameter("gamma", "nonneg", 0.04, "link", "reservoir rate Gamma of each link (J = gamma/2 if reciprocal)"),
    Parameter("drive", "complex", 0.1, "cell", "drive amplitude: a number drives cell 0, an array every cell"),
    Parameter("n_th", "nonneg", 0.0, "cell", "local bath occupations (a number also sets the links')"),
    Parameter("nonreciprocal", "bool", True, None, "one-way links (True) or coherent links (False)"),
    Parameter("J", "complex", None, "link", "coherent couplings, nonreciprocal=False only (default gamma/2)"),
    Parameter("drive_frequency", "real", None, None, "omega_L (default: omega of cell 0)"),
    Parameter("n_th_link", "nonneg", None, "link", "link reservoir occupations (default n_th)"),
    Parameter("battery", "battery", "all", None,
              "battery cells: 'all' (every cell but the charger, cell 0), 'last', or a list of cell numbers"),
    Parameter("pump", "complex", 0.0, "cell", "two-photon drives P (P a^dag^2 + h.c.)/2 (general Gaussian)"),
    Parameter("m_th", "complex", 0.0, "cell", "anomalous correlations of the local baths (squeezed baths; needs n_th)"),
    Parameter("m_th_link", "complex", 0.0, "link", "anomalous correlations of the link reservoirs (one-way links)"),
    Parameter("parametric", "complex", None, "link", "parametric couplings g a_u^dag a_v^dag + h.c. on the links"),
)


_OPTION_NAMES = frozenset(p.name for p in _COMMON)


def _info(name, function, structural, sizes, common=_COMMON) -> BuilderInfo:
    params = {p.name: p for p in structural + common}
    return BuilderInfo(name, function, params, sizes)


def _n(kwargs, key):
    value = kwargs.get(key, REQUIRED)
    if value is REQUIRED:
        raise NetworkError(f"the size of the network needs {key!r}")
    return _count(value, key, 1)


#: Builder name -> :class:`BuilderInfo`: the one description of every builder's parameters.
BUILDERS = {
    "two_cell": BuilderInfo("two_cell", two_cell, {p.name: p for p in (
        Parameter("omega", "positive", 1.0, None, "frequency of both cells"),
        Parameter("kappa_a", "nonneg", 0.003, None, "local damping of the charger"),
        Parameter("kappa_b", "nonneg", 0.003, None, "local damping of the battery"),
        Parameter("gamma", "nonneg", 0.04, None, "reservoir rate Gamma (J = gamma/2 if reciprocal)"),
        Parameter("drive", "complex", 0.1, None, "drive amplitude E on the charger"),
        Parameter("J", "complex", None, None, "coherent coupling, nonreciprocal=False only (default gamma/2)"),
        Parameter("nonreciprocal", "bool", True, None, "one-way link (True) or coherent link (False)"),
        Parameter("optimal", "bool", False, None, "xi = sqrt(kappa_a/kappa_b) (nonreciprocal only)"),
        Parameter("n_th", "nonneg", 0.0, None, "occupation of both baths and the reservoir"),
        Parameter("drive_frequency", "real", None, None, "omega_L (default omega)"),
    )}, lambda **kw: {"cell": 2, "link": 1}),
    "chain": _info("chain", chain, (Parameter("n_cells", "int", doc="number of cells, >= 2"),),
                   lambda **kw: {"cell": _n(kw, "n_cells"), "link": _n(kw, "n_cells") - 1}),
    "ring": _info("ring", ring, (Parameter("n_cells", "int", doc="number of cells, >= 3"),),
                  lambda **kw: {"cell": _n(kw, "n_cells"), "link": _n(kw, "n_cells")}),
    "star": _info("star", star, (Parameter("n_leaves", "int", doc="number of leaves, >= 1"),),
                  lambda **kw: {"cell": _n(kw, "n_leaves") + 1, "link": _n(kw, "n_leaves")}),
    "lattice": _info("lattice", lattice, (Parameter("rows", "int", doc="grid rows, >= 1"),
                                          Parameter("cols", "int", doc="grid columns, >= 1")),
                     lambda **kw: {"cell": _n(kw, "rows") * _n(kw, "cols"),
                                   "link": _n(kw, "rows") * (_n(kw, "cols") - 1) + (_n(kw, "rows") - 1) * _n(kw, "cols")}),
}


# ---------------------------------------------------------------------------------------------
# Introspection of a base builder (sweeps, gradients, optimisation): one copy, the caller's error class.


def builder_parameters(fn, name: str, *, error: type = ChiralnetError) -> dict:
    """Keyword parameters a builder accepts, name -> default (:data:`REQUIRED` when it has none).

    Built-in builders are described by :data:`BUILDERS`; any other callable by its signature, which must
    name its keywords (no ``**kwargs``). ``error`` is the class raised (sweeps: SweepError; gradients and
    optimisation: ChiralnetError)."""
    if name in BUILDERS and BUILDERS[name].function is fn:
        return BUILDERS[name].defaults
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        raise error(f"builder {name!r} has no signature Python can read; wrap it in a function with named "
                    "keywords") from None
    params = {}
    for pname, p in signature.parameters.items():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            raise error(f"builder {name!r} takes **kwargs; its parameters cannot be checked. Give it named keywords")
        if p.kind is not inspect.Parameter.VAR_POSITIONAL:
            params[pname] = REQUIRED if p.default is inspect.Parameter.empty else p.default
    return params


def _brief(value, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def resolve_builder(ref, where: str = "base builder", *, allow_code: bool = True, error: type = ChiralnetError):
    """(name, callable) for a builder name of :data:`BUILDERS`, ``"module:function"``, or a callable.

    With ``allow_code=False`` (a sweep file read without ``--allow-code``) only the registered builders
    are accepted: ``"module:function"`` would import and call any code named in a data file. ``error`` is
    the class raised (see :func:`builder_parameters`).
    """
    if callable(ref):
        return f"{getattr(ref, '__module__', '?')}:{getattr(ref, '__qualname__', repr(ref))}", ref
    if not isinstance(ref, str):
        raise error(
            f"{where} must be a builder name {sorted(BUILDERS)}, 'module:function' or a callable, got {_brief(ref)}")
    if ref in BUILDERS:
        return ref, BUILDERS[ref].function
    if ":" in ref and not allow_code:
        raise error(
            f"{where} {_brief(ref, 60)} names Python code to import and run, which a sweep file may not do by "
            f"default; use one of {sorted(BUILDERS)}, or pass --allow-code (load_sweep(..., allow_code=True)) "
            "if you trust this file: it runs code from this file")
    if ":" in ref:
        mod, _, attr = ref.partition(":")
        try:
            fn = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as exc:
            raise error(f"{where} {ref!r} cannot be imported ({exc}); check the module path") from None
        if not callable(fn):
            raise error(f"{where} {ref!r} is not callable")
        return ref, fn
    raise error(f"{where}: unknown builder {_brief(ref, 60)}; valid: {sorted(BUILDERS)} or 'module:function'")


# ---------------------------------------------------------------------------------------------
# Shared by the graph builders and the array builders (chiralnet.arrays).


def _given(local_vars: dict, *skip) -> dict:
    """The builder's keyword options from its ``locals()`` (structural parameters skipped)."""
    return {k: v for k, v in local_vars.items() if k not in skip and k in _OPTION_NAMES}


def _links(name, *shape):
    """(u, v) int arrays of a topology builder's links, in its documented order."""
    if name == "chain":
        n = shape[0]
        return np.arange(n - 1), np.arange(1, n)
    if name == "ring":
        n = shape[0]
        return np.arange(n), (np.arange(n) + 1) % n
    if name == "star":
        n = shape[0]
        return np.zeros(n - 1, np.int64), np.arange(1, n)
    r, c = shape
    idx = np.arange(r * c).reshape(r, c)
    return (np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()]),
            np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()]))


@dataclass(frozen=True, eq=False)
class _Layout:
    """The per-cell and per-link values of a topology builder at one point (checked).

    Real values are float arrays, ``drive`` and ``J`` complex arrays.
    """

    n: int
    link_u: np.ndarray
    link_v: np.ndarray
    omega: np.ndarray        # (n,)
    kappa: np.ndarray        # (n,)
    n_th: np.ndarray         # (n,)
    drive: np.ndarray        # (n,)
    drive_frequency: float
    nonreciprocal: bool
    gamma: np.ndarray        # (L,)
    n_th_link: np.ndarray    # (L,)
    J: np.ndarray            # (L,) coherent couplings of reciprocal links (empty when nonreciprocal)
    battery: np.ndarray      # (n,) bool: the cells counted in the battery energy
    # general Gaussian terms (zeros when not given): chiralnet.gaussian
    pump: np.ndarray | None = None        # (n,) complex two-photon drives P
    m_th: np.ndarray | None = None        # (n,) complex anomalous correlations of the local baths
    m_th_link: np.ndarray | None = None   # (L,) complex anomalous correlations of the link reservoirs
    parametric: np.ndarray | None = None  # (L,) complex parametric couplings g on the links

    @property
    def general(self) -> bool:
        """True when a squeezing or parametric term is nonzero (the network is a general Gaussian one)."""
        return any(a is not None and bool(np.any(a != 0)) for a in (self.pump, self.m_th, self.m_th_link,
                                                                      self.parametric))


def _layout(name, n, links, *, omega=1.0, kappa=0.003, gamma=0.04, drive=0.1, n_th=0.0, nonreciprocal=True, J=None,
            drive_frequency=None, n_th_link=None, battery="all", pump=0.0, m_th=0.0, m_th_link=0.0,
            parametric=None) -> _Layout:
    """Check a topology builder's options and expand them to per-cell / per-link arrays."""
    u, v = links
    battery_a = battery_mask(name, battery, n)
    L = u.size
    if not isinstance(nonreciprocal, (bool, np.bool_)):
        raise NetworkError(f"{name}: 'nonreciprocal' must be True or False, got {nonreciprocal!r}")
    nonreciprocal = bool(nonreciprocal)
    if nonreciprocal and J is not None:
        raise NetworkError(f"{name}: J is fixed by the balance condition when nonreciprocal=True; drop J")
    omega_a = _per(name, "omega", omega, n, "cell", "positive")
    kappa_a = _per(name, "kappa", kappa, n, "cell", "nonneg")
    n_th_a = _per(name, "n_th", n_th, n, "cell", "nonneg")
    if np.ndim(drive) == 0:
        drive_a = np.zeros(n, complex)
        drive_a[0] = _complex(drive, f"{name}: 'drive'")
    else:
        drive_a = _per(name, "drive", drive, n, "cell", "complex")
    gamma_a = _per(name, "gamma", gamma, L, "link", "positive" if nonreciprocal else "real")
    if n_th_link is not None and not nonreciprocal:
        raise NetworkError(f"{name}: 'n_th_link' applies to nonreciprocal=True only (coherent links have no "
                           "reservoir); drop n_th_link")
    if n_th_link is None:
        if np.ndim(n_th) != 0 and nonreciprocal:
            raise NetworkError(f"{name}: 'n_th' is given per cell, so the link reservoirs' occupation is not "
                               "implied; give 'n_th_link' (a number, or an array with one entry per link)")
        n_th_link_a = np.full(L, n_th_a[0]) if np.ndim(n_th) == 0 else np.zeros(L)
    else:
        n_th_link_a = _per(name, "n_th_link", n_th_link, L, "link", "nonneg")
    if nonreciprocal:
        J_a = np.zeros(0)
    elif J is None:
        J_a = gamma_a / 2
    else:
        J_a = _per(name, "J", J, L, "link", "complex")
    if drive_frequency is None:
        omega_L = float(omega_a[0])
    else:
        omega_L = _real(drive_frequency, f"{name}: 'drive_frequency'")
    pump_a = _general_term(name, "pump", pump, n, "cell")
    m_th_a = _general_term(name, "m_th", m_th, n, "cell")
    _check_squeezed_baths(name, "m_th", m_th_a, "n_th", n_th_a)
    m_th_link_a = _general_term(name, "m_th_link", m_th_link, L, "link")
    if not nonreciprocal and m_th_link_a.any():
        raise NetworkError(f"{name}: 'm_th_link' applies to nonreciprocal=True only (coherent links have no "
                           "reservoir); drop m_th_link, or squeeze the local baths with m_th")
    _check_squeezed_baths(name, "m_th_link", m_th_link_a, "n_th_link", n_th_link_a)
    parametric_a = _general_term(name, "parametric", parametric, L, "link")
    return _Layout(n, u, v, omega_a, kappa_a, n_th_a, drive_a, omega_L, nonreciprocal, gamma_a, n_th_link_a, J_a,
                   battery_a, pump_a, m_th_a, m_th_link_a, parametric_a)


def _general_term(name, key, value, count, per) -> np.ndarray:
    """A general Gaussian option as a complex array of ``count`` checked entries; None or a plain zero (the
    defaults) without the checks, so that phase-insensitive builds stay as fast as before."""
    if value is None or (type(value) in (int, float, complex) and value == 0):
        return np.zeros(count, complex)
    return _per(name, key, value, count, per, "complex")


def _check_squeezed_baths(name, key, m, occupation_key, n) -> None:
    """A squeezed bath is a state: |m|^2 <= n (n + 1) entry by entry (the tolerance of chiralnet.network);
    NetworkError naming the first entry that breaks it and the occupation it would need."""
    if not m.any():
        return
    m2 = np.abs(m) ** 2
    bad = m2 > n * (n + 1) * (1 + 1e-12) + 1e-300
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        need = (math.sqrt(1 + 4 * m2[i]) - 1) / 2
        raise NetworkError(f"{name}: {key!r}[{i}] = {complex(m[i]):.10g}: a squeezed bath needs |{key}|^2 <= "
                           f"{occupation_key} ({occupation_key} + 1), got {m2[i]:.10g} > {n[i] * (n[i] + 1):.10g}; "
                           f"raise {occupation_key!r}[{i}] to at least {need:.10g} or lower |{key}|")


_CONDITION = {"positive": (lambda x: x > 0, "> 0"), "nonneg": (lambda x: x >= 0, ">= 0")}


def _per(name, key, value, count, per, kind) -> np.ndarray:
    """``value`` (a number or an array of ``count`` entries) as an array of ``count`` checked entries."""
    try:
        return _per_checked(name, key, value, count, per, kind)
    except ChiralnetError:
        raise
    except (TypeError, ValueError, OverflowError):  # ragged lists, integers beyond float range, objects
        raise NetworkError(f"{name}: {key!r} must be a number or a 1-D array of {count} numbers (one per {per}) "
                           f"that a float holds, got {_short(value)}") from None


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _per_checked(name, key, value, count, per, kind) -> np.ndarray:
    if np.ndim(value) == 0:
        if kind == "complex":
            arr = np.full(count, _complex(value, f"{name}: {key!r}"), complex)
        else:
            arr = np.full(count, _real(value, f"{name}: {key!r}"))
        label = f"{name}: {key!r}"
    else:
        if isinstance(value, (str, bytes)):
            raise NetworkError(f"{name}: {key!r} must be a number or an array of numbers, got {value!r}")
        arr = np.asarray(value)
        if arr.ndim != 1:
            raise NetworkError(f"{name}: {key!r} must be a number or a 1-D array with one entry per {per} "
                               f"({count}), got an array of shape {arr.shape}")
        if arr.size != count:
            raise NetworkError(f"{name}: {key!r} has one entry per {per}: expected {count}, got {arr.size}")
        allowed = "iufc" if kind == "complex" else "iuf"
        if arr.dtype.kind not in allowed:
            what = "numbers (complex allowed)" if kind == "complex" else "real numbers"
            raise NetworkError(f"{name}: {key!r} must be an array of {what}, got entries of type {arr.dtype}")
        arr = arr.astype(complex if kind == "complex" else float)
        label = None
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise NetworkError(f"{label or f'{name}: {key!r}[{i}]'} must be finite, got {arr[i]}")
    if kind in _CONDITION:
        ok, text = _CONDITION[kind]
        bad = ~ok(arr)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise NetworkError(f"{label or f'{name}: {key!r}[{i}]'} must be {text}, got {arr[i]}")
    return arr


def _build(name, n, links, pos=None, **options):
    lay = _layout(name, n, links, **options)
    G = network(lay.drive_frequency, name=name)

    def per_cell(key, arr):  # a number given: store it as given (the graph's attributes as before arrays)
        return [options[key]] * n if np.ndim(options[key]) == 0 else arr.tolist()

    omega, kappa, n_th = per_cell("omega", lay.omega), per_cell("kappa", lay.kappa), per_cell("n_th", lay.n_th)
    drive = [options["drive"]] + [0.0] * (n - 1) if np.ndim(options["drive"]) == 0 else _plain(lay.drive)
    pump, m_th = _plain(lay.pump), _plain(lay.m_th)   # zeros are not stored (add_cell)
    for i in range(n):
        add_cell(G, i, omega=omega[i], kappa=kappa[i], n_th=n_th[i], drive=drive[i], battery=bool(lay.battery[i]),
                 pos=None if pos is None else pos[i], pump=pump[i], m_th=m_th[i])
    u, v = lay.link_u.tolist(), lay.link_v.tolist()
    if lay.nonreciprocal:
        for a, b, g, t, m in zip(u, v, lay.gamma.tolist(), lay.n_th_link.tolist(), _plain(lay.m_th_link)):
            add_chiral_link(G, a, b, gamma=g, n_th=t, m_th=m)
    else:
        J = options["J"]
        Js = [J] * len(u) if J is not None and np.ndim(J) == 0 else _plain(lay.J)
        for a, b, Jl in zip(u, v, Js):
            add_coherent_link(G, a, b, Jl)
    for a, b, g in zip(u, v, _plain(lay.parametric)):
        if g != 0:
            add_parametric_link(G, a, b, g)
    return G


def battery_mask(name: str, battery, n: int) -> np.ndarray:
    """The (n,) bool battery flags a builder's ``battery`` option names: "all" (every cell but the charger,
    cell 0: every undriven cell of a builder with one charger), "last" (cell n - 1), or a list of cell
    numbers; NetworkError naming the bad value."""
    mask = np.zeros(n, bool)
    if isinstance(battery, str):
        if battery == "all":
            mask[1:] = True
        elif battery == "last":
            mask[n - 1] = True
        else:
            raise NetworkError(f"{name}: battery must be 'all', 'last' or a list of cell numbers, got {battery!r}")
        return mask
    if isinstance(battery, (bytes, bool, np.bool_)) or not hasattr(battery, "__iter__"):
        raise NetworkError(f"{name}: battery must be 'all', 'last' or a list of cell numbers, got {battery!r}")
    cells = list(battery)
    if not cells:
        raise NetworkError(f"{name}: battery is an empty list; name at least one cell (or 'all', 'last')")
    for c in cells:
        if isinstance(c, (bool, np.bool_)) or not isinstance(c, (Integral, np.integer)) or not 0 <= c < n:
            raise NetworkError(f"{name}: battery cell {c!r} is not a cell of this network (cells 0 .. {n - 1})")
        if mask[c]:
            raise NetworkError(f"{name}: battery lists cell {c} twice")
        mask[c] = True
    return mask


def _plain(arr) -> list:
    """Python numbers of a complex array: floats where the imaginary part is zero."""
    return [x.real if x.imag == 0 else x for x in arr.tolist()]


def _preflight(what, n_cells, n_links) -> None:
    """Refuse a graph too large for memory before building any of it (MemoryLimitError naming the size);
    above ~10^4 cells the array builders of :mod:`chiralnet.arrays` are the faster route."""
    memory.check_cells(n_cells, f"building the graph {what}", n_links=n_links,
                       fixes="fewer cells, or chiralnet.arrays.chain_model / lattice_model (no graph)")


def _count(value, name, minimum) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise NetworkError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_registry():
    """The registry matches the signatures (import-time guard: one description of every parameter)."""
    for name, info in BUILDERS.items():
        sig = inspect.signature(info.function).parameters
        have = {k: (REQUIRED if p.default is inspect.Parameter.empty else p.default) for k, p in sig.items()}
        if have != info.defaults:
            raise AssertionError(f"BUILDERS[{name!r}] does not match the signature of {name}()")


_check_registry()
