"""Figures of the scattering view: |S_vu|^2 in dB against detuning, isolation, and an isolation map.

Same rules as :mod:`chiralnet.plotting`: each function builds a :class:`matplotlib.figure.Figure`
(no pyplot), or draws on ``ax`` and returns ``ax.figure``; save with
:func:`chiralnet.plotting.save_figure`. Exact zeros (a one-way link) have no finite dB value: the
curve is left out and its legend entry says "= 0 (exactly)"; an infinite isolation is drawn at the
top of the axes and marked in the legend.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from . import _axes, save_figure

__all__ = ["plot_transmission", "plot_isolation", "plot_isolation_map", "save_figure", "DETUNING_LABEL",
           "default_pairs"]

DETUNING_LABEL = r"probe detuning $\delta = \omega_p - \omega_L$ ($\omega$)"


def default_pairs(result, max_ports: int = 4) -> list:
    """Every ordered (from, to) pair of the first ``max_ports`` ports, reflections included."""
    ports = result.ports[:max_ports]
    return [(u, v) for u in ports for v in ports]


def plot_transmission(result, pairs=None, *, title: str | None = None, ax=None) -> Figure:
    """|S_vu|^2 in dB against detuning for ``pairs`` of (u, v) = (from, to) ports (default
    :func:`default_pairs`); (u, u) is the reflection of u."""
    fig, ax = _axes(ax)
    pairs = default_pairs(result) if pairs is None else list(pairs)
    x = result.detunings
    for u, v in pairs:
        y = result.transmission(u, v)
        label = rf"$|S_{{{v},{u}}}|^2$" if len(str(u)) + len(str(v)) < 12 else f"|S({u} -> {v})|^2"
        if not np.isfinite(y).any():
            ax.plot([], [], ls="--", label=label + " = 0 (exactly)")
            continue
        ax.plot(x, y, label=label)
    ax.set_xlabel(DETUNING_LABEL)
    ax.set_ylabel("power transmission (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def plot_isolation(result, pairs, *, level_db: float | None = None, title: str | None = None, ax=None) -> Figure:
    """Isolation of each link (u, v) = (from, to) in dB against detuning; ``level_db`` draws a
    dashed line at that level. +inf (exactly one-way) is drawn at the top of the axes."""
    fig, ax = _axes(ax)
    x = result.detunings
    curves = {(u, v): result.isolation(u, v) for u, v in pairs}
    finite = np.concatenate([c[np.isfinite(c)] for c in curves.values()] + [np.zeros(0)])
    top = (finite.max() if finite.size else 0.0) + 10.0
    if level_db is not None:
        top = max(top, level_db + 10.0)
    for (u, v), c in curves.items():
        label = f"{u} -> {v}"
        if np.isposinf(c).any():
            label += " (inf: exactly one-way)" if np.isposinf(c).all() else " (inf where exactly one-way)"
        ax.plot(x, np.where(np.isposinf(c), top, c), label=label)
    if level_db is not None:
        ax.axhline(level_db, color="k", ls="--", lw=0.8, label=f"{level_db:g} dB")
    ax.set_xlabel(DETUNING_LABEL)
    ax.set_ylabel("isolation (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def plot_isolation_map(result, *, detuning: float = 0.0, max_ports: int = 40, title: str | None = None,
                       ax=None, cmap: str = "RdBu_r") -> Figure:
    """Isolation between every pair of ports at the grid detuning nearest ``detuning``, as a matrix.

    Entry (row v, column u) is isolation(u -> v) in dB (antisymmetric); exactly one-way pairs are
    marked with an infinity sign, pairs with no transmission either way are left blank.
    """
    fig, ax = _axes(ax, figsize=(5.6, 4.8))
    f = int(np.argmin(np.abs(result.detunings - detuning)))
    ports = result.ports[:max_ports]
    P = len(ports)
    S = result.S[f, :P, :P]
    with np.errstate(divide="ignore", invalid="ignore"):
        db = 20.0 * np.log10(np.abs(S))
        iso = db - db.T  # iso[v, u] = 10 log10(|S_vu|^2 / |S_uv|^2)
    np.fill_diagonal(iso, np.nan)
    finite = iso[np.isfinite(iso)]
    lim = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
    shown = np.clip(np.where(np.isnan(iso), np.nan, iso), -lim, lim)
    im = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, vmin=-lim, vmax=lim)
    if P <= 12:
        for v in range(P):
            for u in range(P):
                if np.isinf(iso[v, u]):
                    ax.text(u, v, "+∞" if iso[v, u] > 0 else "−∞", ha="center", va="center", fontsize=11,
                            color="white")
    names = [str(p) for p in ports]
    ax.set_xticks(range(P), names, rotation=90 if P > 6 else 0)
    ax.set_yticks(range(P), names)
    ax.set_xlabel("from port u")
    ax.set_ylabel("to port v")
    fig.colorbar(im, ax=ax, label=r"isolation $u \to v$ (dB)")
    ax.set_title(title or rf"isolation at $\delta$ = {result.detunings[f]:.4g}")
    return fig
