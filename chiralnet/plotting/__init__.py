"""Figures of stored energy: over time, over cells x time, along a chain, on the network, and eta vs C.

Every function builds a :class:`matplotlib.figure.Figure` directly (no pyplot, no global state, no
display: the figures render with the Agg canvas on a headless machine) and returns it, unless an
``ax`` is passed, in which case it draws there and returns ``ax.figure``. Save with
:func:`save_figure`, which writes atomically. Units: energies in units of omega (hbar = 1),
times in 1/omega.
"""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure

from ..files import atomic_path

__all__ = [
    "plot_energies",
    "plot_heatmap",
    "plot_profile",
    "plot_network",
    "plot_eta_vs_cooperativity",
    "link_directions",
    "save_figure",
    "TIME_LABEL",
    "ENERGY_LABEL",
]

TIME_LABEL = r"time $t$ ($1/\omega$)"
ENERGY_LABEL = r"stored energy ($\hbar\omega$)"


def _axes(ax, figsize=(6.4, 4.0)):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _labels(cells):
    return [str(c) for c in cells]


def plot_energies(result, *, cells=None, total: bool = True, battery: bool = True, max_cells: int = 12,
                  title: str | None = None, ax=None) -> Figure:
    """Energy of each cell over time, with the battery total and the total.

    Parameters
    ----------
    result : SimulationResult
        ``energies`` (T, N) over ``times`` (T,).
    cells : sequence, optional
        Cells to draw (default all, or the first ``max_cells`` and the last one when N is larger).
    total, battery : bool
        Also draw the sum over all cells (dashed) and over the battery cells (thick).
    max_cells : int
        Most curves drawn when ``cells`` is not given.
    """
    fig, ax = _axes(ax)
    if cells is None:
        chosen = list(range(len(result.cells)))
        if len(chosen) > max_cells:
            chosen = chosen[: max_cells - 1] + [chosen[-1]]
    else:
        chosen = [result._index(c) for c in cells]
    cmap = mpl.colormaps["viridis"]
    for k, i in enumerate(chosen):
        color = cmap(k / max(1, len(chosen) - 1) * 0.9)
        ax.plot(result.times, result.energies[:, i], color=color, lw=1.2, label=f"cell {result.cells[i]}")
    if battery and 1 < result.battery.sum() < result.battery.size:  # one battery cell: its own line says it
        ax.plot(result.times, result.battery_energy, color="C3", lw=2.2, label="battery total")
    if total:
        ax.plot(result.times, result.total_energy, color="k", lw=1.4, ls="--", label="total")
    ax.set_xlabel(TIME_LABEL)
    ax.set_ylabel(ENERGY_LABEL)
    ax.set_xlim(result.times[0], result.times[-1])
    _shade_phases(ax, result)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small", ncol=2 if len(chosen) > 6 else 1, frameon=False)
    if title:
        ax.set_title(title)
    return fig


def _shade_phases(ax, result) -> None:
    """Alternate light bands behind a protocol's phases, each named at the top (no-op otherwise)."""
    if getattr(result, "phase_ends", None) is None:
        return
    starts = [0.0, *result.phase_ends[:-1].tolist()]
    for k, (a, b) in enumerate(zip(starts, result.phase_ends.tolist())):
        if b <= result.times[0] or a >= result.times[-1]:
            continue
        ax.axvspan(a, b, color="0.5" if k % 2 else "C0", alpha=0.08, lw=0, zorder=0)
        mid = (max(a, result.times[0]) + min(b, result.times[-1])) / 2
        ax.text(mid, 0.98, result.phase_names[k], transform=ax.get_xaxis_transform(), ha="center", va="top",
                fontsize=8, color="0.3")


def plot_heatmap(result, *, title: str | None = None, ax=None) -> Figure:
    """Energy over cells x time as a colour map (cells on the vertical axis, in node order)."""
    fig, ax = _axes(ax)
    n = len(result.cells)
    t = result.times
    im = ax.imshow(result.energies.T, aspect="auto", origin="lower", interpolation="nearest", cmap="magma",
                   extent=(t[0], t[-1], -0.5, n - 0.5))
    ax.set_xlabel(TIME_LABEL)
    ax.set_ylabel("cell")
    if n <= 20:
        ax.set_yticks(range(n), _labels(result.cells))
    fig.colorbar(im, ax=ax, label=ENERGY_LABEL)
    if title:
        ax.set_title(title)
    return fig


def plot_profile(steady, *, result=None, title: str | None = None, ax=None) -> Figure:
    """Steady energy per cell along the node order (a chain's profile), battery cells filled.

    Parameters
    ----------
    steady : SteadyState
        ``energies`` (N,).
    result : SimulationResult, optional
        Also mark the energies at its last time.
    """
    fig, ax = _axes(ax)
    x = np.arange(len(steady.cells))
    colors = np.where(steady.battery, "C0", "0.65")
    ax.bar(x, steady.energies, color=colors, width=0.75)
    if result is not None:
        (last,) = ax.plot(x, result.energies[-1], "o", color="C3", ms=4, label=f"t = {result.times[-1]:g} $1/\\omega$")
    ax.set_xlabel("cell")
    ax.set_ylabel(ENERGY_LABEL)
    if len(x) <= 30:
        ax.set_xticks(x, _labels(steady.cells))
    from matplotlib.patches import Patch

    handles = [Patch(color="C0", label="battery cell, steady state"), Patch(color="0.65", label="other cell, steady state")]
    if result is not None:
        handles.append(last)
    ax.legend(handles=handles, fontsize="small", frameon=False)
    if title:
        ax.set_title(title)
    return fig


def link_directions(model, *, rtol: float = 1e-12):
    """Split the couplings of a model into one-way and two-way links, from M itself.

    A pair of cells (u, v) is linked when M[u, v] or M[v, u] is nonzero. The link is one-way
    u -> v when M[v, u] != 0 and M[u, v] == 0 (u drives v and v never acts back on u, as
    :func:`chiralnet.add_chiral_link` makes it); zero means below ``rtol`` times the largest off-diagonal |M|.

    Parameters
    ----------
    model : Model or networkx.DiGraph

    Returns
    -------
    one_way : list of (u, v)
        Energy flows u -> v only.
    two_way : list of (u, v)
        Reciprocal links, each pair once.

    Examples
    --------
    >>> import chiralnet as cn
    >>> from chiralnet.plotting import link_directions
    >>> link_directions(cn.two_cell())
    ([('a', 'b')], [])
    >>> link_directions(cn.two_cell(nonreciprocal=False))
    ([], [('a', 'b')])
    """
    import scipy.sparse as sp

    from ..gaussian import is_general_model
    from ..model import Model, build_model

    if not isinstance(model, Model) and not is_general_model(model):
        model = build_model(model)
    # a general Gaussian model: the directions of its phase-insensitive part (parametric links: plot_network)
    coo = sp.coo_array(model.drift if is_general_model(model) else model.M)
    off = coo.row != coo.col
    rows, cols, vals = coo.row[off], coo.col[off], np.abs(coo.data[off])
    if vals.size == 0:
        return [], []
    tol = rtol * vals.max()
    strength = {}
    for i, j, a in zip(rows.tolist(), cols.tolist(), vals.tolist()):
        strength[(i, j)] = strength.get((i, j), 0.0) + a
    one_way, two_way, seen = [], [], set()
    for (i, j) in sorted(strength):
        pair = (min(i, j), max(i, j))
        if pair in seen:
            continue
        seen.add(pair)
        forward = strength.get((j, i), 0.0) > tol  # M[j, i]: i acts on j
        backward = strength.get((i, j), 0.0) > tol  # M[i, j]: j acts on i
        u, v = model.cells[i], model.cells[j]
        if forward and backward:
            two_way.append((u, v))
        elif forward:
            one_way.append((u, v))
        elif backward:
            one_way.append((v, u))
    return one_way, two_way


def _layout(G, cell_list, one_way, two_way):
    import networkx as nx

    pos = {c: G.nodes[c].get("pos") for c in cell_list}
    if all(p is not None for p in pos.values()):
        return {c: np.asarray(p, float) for c, p in pos.items()}
    H = nx.Graph()
    H.add_nodes_from(cell_list)
    H.add_edges_from(one_way + two_way)
    n = len(cell_list)
    degrees = [d for _, d in H.degree()]
    if n >= 2 and nx.is_connected(H):
        if H.number_of_edges() == n - 1 and max(degrees) <= 2:  # a path: a straight line
            ends = [c for c in cell_list if H.degree(c) == 1]
            order = nx.shortest_path(H, ends[0], ends[1])
            start = next((c for c in cell_list if c in ends), ends[0])
            if order[0] != start:
                order = order[::-1]
            return {c: np.array([float(k), 0.0]) for k, c in enumerate(order)}
        if H.number_of_edges() == n and all(d == 2 for d in degrees):  # a cycle
            return nx.circular_layout(H)
        if max(degrees) == n - 1 and H.number_of_edges() == n - 1:  # a star
            return nx.shell_layout(H, [[c for c in cell_list if H.degree(c) == n - 1],
                                       [c for c in cell_list if H.degree(c) != n - 1]])
    if n <= 300:
        return nx.kamada_kawai_layout(H)
    return nx.spring_layout(H, seed=0)


def plot_network(G, energies=None, *, title: str | None = None, ax=None, cmap: str = "viridis") -> Figure:
    """Draw the cells coloured by stored energy; one-way links as arrows, reciprocal links as lines.

    Directions come from the model's M (:func:`link_directions`), not from graph metadata.
    Reservoirs are not drawn: they appear as the links they create.

    Parameters
    ----------
    G : networkx.DiGraph
        The network; cells with a ``pos`` attribute are drawn there, otherwise a layout is chosen.
    energies : array_like (N,), optional
        Energy per cell in the model's node order (e.g. ``steady_state(G).energies``).
    """
    from matplotlib.patches import FancyArrowPatch

    from ..model import build_model

    model = build_model(G)
    cell_list = list(model.cells)
    one_way, two_way = link_directions(model)
    pos = _layout(G, cell_list, one_way, two_way)
    n = len(cell_list)
    fig, ax = _axes(ax, figsize=(6.4, 4.8))
    xy = np.array([pos[c] for c in cell_list])
    span = float(np.ptp(xy, axis=0).max()) if n > 1 else 1.0
    size = float(np.clip(900 / np.sqrt(n), 40, 700))
    radius_pts = np.sqrt(size) / 2
    for u, v in two_way:
        ax.plot(*np.array([pos[u], pos[v]]).T, color="0.45", lw=1.5, zorder=1)
    parametric = []
    if getattr(type(model), "_GENERAL_GAUSSIAN", False):  # parametric links g a_u^dag a_v^dag + h.c.: dotted
        rows, cols = np.nonzero(np.triu(model.pairing, 1))
        parametric = [(cell_list[i], cell_list[j]) for i, j in zip(rows.tolist(), cols.tolist())]
    for u, v in parametric:  # bowed, so that a link's own arrow or line does not hide it
        ax.add_patch(FancyArrowPatch(pos[u], pos[v], arrowstyle="-", connectionstyle="arc3,rad=0.3", color="C2",
                                     lw=1.5, ls=":", shrinkA=radius_pts + 1, shrinkB=radius_pts + 1, zorder=1.5))
    for u, v in one_way:
        ax.add_patch(FancyArrowPatch(pos[u], pos[v], arrowstyle="-|>", mutation_scale=14, color="C3", lw=1.6,
                                     shrinkA=radius_pts + 1, shrinkB=radius_pts + 1, zorder=2))
    values = np.zeros(n) if energies is None else np.asarray(energies, float)
    norm = mpl.colors.Normalize(vmin=0.0, vmax=max(float(values.max()), 1e-300))
    edge = ["k" if model.battery[i] and not model.battery.all() else "0.6" for i in range(n)]
    sc = ax.scatter(xy[:, 0], xy[:, 1], s=size, c=values, cmap=cmap, norm=norm, edgecolors=edge, linewidths=1.5,
                    zorder=3)
    driven = np.flatnonzero(np.abs(model.drive) > 0)
    if driven.size:
        ax.scatter(xy[driven, 0], xy[driven, 1], s=size * 1.9, facecolors="none", edgecolors="C1", linewidths=2,
                   zorder=2.5, label="driven")
    if n <= 40:
        for c, (x, y) in zip(cell_list, xy):
            ax.annotate(str(G.nodes[c].get("label") or c), (x, y), xytext=(0, radius_pts + 4),
                        textcoords="offset points", ha="center", va="bottom", fontsize="small")
    if energies is not None:
        fig.colorbar(sc, ax=ax, label=ENERGY_LABEL, shrink=0.85)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="C3", marker=">", lw=1.6, label="one-way link")]
    if two_way:
        handles.append(Line2D([], [], color="0.45", lw=1.5, label="reciprocal link"))
    if parametric:
        handles.append(Line2D([], [], color="C2", lw=1.5, ls=":", label="parametric link"))
    if driven.size:
        handles.append(Line2D([], [], ls="", marker="o", mfc="none", mec="C1", mew=2, ms=10, label="driven cell"))
    if not model.battery.all():
        handles.append(Line2D([], [], ls="", marker="o", mfc="w", mec="k", mew=1.5, ms=8, label="battery cell"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=len(handles),
              fontsize="small", frameon=False)
    pad = 0.15 * span + 0.3
    ax.set_xlim(xy[:, 0].min() - pad, xy[:, 0].max() + pad)
    ax.set_ylim(xy[:, 1].min() - pad, xy[:, 1].max() + pad)
    ax.set_aspect("equal", adjustable="box")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def plot_eta_vs_cooperativity(C, curves: dict, *, points: dict | None = None, title: str | None = None,
                              ax=None) -> Figure:
    """Steady-state ratios eta against the cooperativity C (log axis), closed forms and simulated points.

    Parameters
    ----------
    C : array_like (K,)
        Cooperativity values C = 4 |J|^2 / (kappa_a kappa_b) for the curves.
    curves : dict
        Label -> eta values (K,) (closed forms, drawn as lines).
    points : dict, optional
        Label -> (C values, eta values) (simulated, drawn as markers).
    """
    fig, ax = _axes(ax)
    C = np.asarray(C, float)
    for k, (label, eta) in enumerate(curves.items()):
        ax.plot(C, eta, color=f"C{k}", lw=1.6, label=label)
    for k, (label, (c, eta)) in enumerate((points or {}).items()):
        ax.plot(c, eta, "o", color=f"C{k}", mfc="none", ms=6, label=label)
    ax.axhline(4.0, color="0.5", lw=0.8, ls=":", label="fourfold limit")
    ax.axhline(1.0, color="0.5", lw=0.8, ls="-")
    ax.set_xscale("log")
    ax.set_xlabel(r"cooperativity $\mathcal{C} = 4|J|^2/\kappa_a\kappa_b$")
    ax.set_ylabel(r"$\eta_{BB}(\infty) = E_B^{nr}/E_B$")
    top = max(5.2, 1.3 * max([np.nanmax(v) for v in curves.values()] or [4.0]))
    ax.set_ylim(0, top)
    ax.legend(fontsize="small", frameon=False, loc="upper center", ncol=2)
    if title:
        ax.set_title(title)
    return fig


def save_figure(fig: Figure, path, *, dpi: int = 150) -> None:
    """Save ``fig`` to ``path`` (format from the suffix, e.g. .png or .pdf) through a temporary file."""
    from pathlib import Path

    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi)
