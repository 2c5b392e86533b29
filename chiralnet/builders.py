"""Builders for the paper's two-cell battery and for chains, rings, stars and lattices.

Every builder returns a plain :func:`chiralnet.network` graph, so its output can be edited
with :func:`add_cell`, :func:`add_chiral_link` and friends. Defaults are the seed paper's
Fig. 2 parameters (units of omega): gamma = 0.04, kappa = 0.003, drive = 0.1.
Links are one-way (chiral) by default; ``nonreciprocal=False`` gives plain coherent links
with J = gamma/2, the paper's reciprocal comparison at equal coupling strength.
"""

from __future__ import annotations

import math
from numbers import Integral

from .errors import NetworkError
from .network import _real, add_cell, add_chiral_link, add_coherent_link, network

__all__ = ["two_cell", "chain", "ring", "star", "lattice"]


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
    """
    G = network(omega if drive_frequency is None else drive_frequency, name="two_cell")
    add_cell(G, "a", omega=omega, kappa=kappa_a, n_th=n_th, drive=drive, label="charger")
    add_cell(G, "b", omega=omega, kappa=kappa_b, n_th=n_th, battery=True, label="battery")
    if nonreciprocal:
        if J is not None:
            raise NetworkError("two_cell: J is fixed by the balance condition when nonreciprocal=True; drop J")
        xi = 1.0
        if optimal:
            if not (kappa_a > 0 and kappa_b > 0):
                raise NetworkError("two_cell: optimal=True needs kappa_a > 0 and kappa_b > 0 (xi = sqrt(kappa_a/kappa_b))")
            xi = math.sqrt(kappa_a / kappa_b)
        add_chiral_link(G, "a", "b", gamma=gamma, n_th=n_th, xi=xi)
    else:
        if optimal:
            raise NetworkError("two_cell: optimal=True applies to nonreciprocal=True only")
        add_coherent_link(G, "a", "b", gamma / 2 if J is None else J)
    return G


def chain(n_cells: int, **link_options):
    """Cells 0 -> 1 -> ... -> n_cells-1; cell 0 is the driven charger, the rest the battery.

    Parameters
    ----------
    n_cells : int
        Number of cells, >= 2.
    omega, kappa, gamma, drive, n_th, nonreciprocal, J, drive_frequency
        As in :func:`two_cell`; ``n_th`` applies to every bath and reservoir.
    """
    n = _count(n_cells, "n_cells", 2)
    return _build("chain", range(n), [(i, i + 1) for i in range(n - 1)], link_options)


def ring(n_cells: int, **link_options):
    """A chain closed by the link n_cells-1 -> 0 (energy circulates one way); n_cells >= 3.

    Options as in :func:`chain`.
    """
    n = _count(n_cells, "n_cells", 3)
    return _build("ring", range(n), [(i, (i + 1) % n) for i in range(n)], link_options)


def star(n_leaves: int, **link_options):
    """A driven hub 0 with links 0 -> 1..n_leaves; the leaves are the battery. Options as in :func:`chain`."""
    n = _count(n_leaves, "n_leaves", 1)
    return _build("star", range(n + 1), [(0, i) for i in range(1, n + 1)], link_options)


def lattice(rows: int, cols: int, **link_options):
    """A rows x cols grid, cells numbered r*cols + c, links pointing right and down.

    Cell 0 (top-left corner) is the driven charger; every other cell is battery. Options as in
    :func:`chain`; ``pos`` is set from the grid.
    """
    r = _count(rows, "rows", 1)
    c = _count(cols, "cols", 1)
    if r * c < 2:
        raise NetworkError("lattice: rows * cols must be >= 2")
    links = [(i * c + j, i * c + j + 1) for i in range(r) for j in range(c - 1)]
    links += [(i * c + j, (i + 1) * c + j) for i in range(r - 1) for j in range(c)]
    pos = {i * c + j: (float(j), float(-i)) for i in range(r) for j in range(c)}
    return _build("lattice", range(r * c), links, link_options, pos=pos)


#: Options of chain, ring, star and lattice (and of the array builders in chiralnet.arrays),
#: with their defaults: the seed paper's Fig. 2 parameters, units of omega.
LINK_DEFAULTS = dict(omega=1.0, kappa=0.003, gamma=0.04, drive=0.1, n_th=0.0, nonreciprocal=True, J=None,
                     drive_frequency=None)


def _options(name, options) -> dict:
    """LINK_DEFAULTS updated by ``options``; an unknown option or J with nonreciprocal=True raises."""
    unknown = set(options) - set(LINK_DEFAULTS)
    if unknown:
        raise NetworkError(f"{name}: unknown option(s) {sorted(unknown)}; valid: {sorted(LINK_DEFAULTS)}")
    o = {**LINK_DEFAULTS, **options}
    o["gamma"] = _real(o["gamma"], f"{name}: option 'gamma'")  # also J = gamma/2 of coherent links
    if o["nonreciprocal"] and o["J"] is not None:
        raise NetworkError(f"{name}: J is fixed by the balance condition when nonreciprocal=True; drop J")
    return o


def _build(name, nodes, links, options, pos=None):
    o = _options(name, options)
    G = network(o["omega"] if o["drive_frequency"] is None else o["drive_frequency"], name=name)
    for i in nodes:
        add_cell(G, i, omega=o["omega"], kappa=o["kappa"], n_th=o["n_th"], drive=o["drive"] if i == 0 else 0.0,
                 battery=i != 0, pos=None if pos is None else pos[i])
    for u, v in links:
        if o["nonreciprocal"]:
            add_chiral_link(G, u, v, gamma=o["gamma"], n_th=o["n_th"])
        else:
            add_coherent_link(G, u, v, o["gamma"] / 2 if o["J"] is None else o["J"])
    return G


def _count(value, name, minimum) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise NetworkError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
