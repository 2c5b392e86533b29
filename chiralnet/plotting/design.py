"""Figures of sweeps and optimisation runs: axis labels with units, one panel per quantity, and the
optimised per-cell / per-link values.

Units follow the project's conventions: frequencies, rates, couplings and drive amplitudes in units of
omega, times in 1/omega, energies in units of omega (hbar = 1), powers in omega^2; ratios and
efficiencies are dimensionless.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

__all__ = ["PARAMETER_UNITS", "parameter_label", "quantity_label", "plot_sweep", "plot_optimization"]

#: Builder parameter -> its unit in axis labels (None: a count, a flag or a name, no unit).
PARAMETER_UNITS = {
    "omega": "omega", "kappa": "omega", "kappa_a": "omega", "kappa_b": "omega", "gamma": "omega", "J": "omega",
    "drive": "omega", "drive_frequency": "omega", "n_th": "mean quanta", "n_th_link": "mean quanta",
    "n_cells": None, "n_leaves": None, "rows": None, "cols": None, "nonreciprocal": None, "optimal": None,
    "builder": None,
}


def parameter_label(name: str) -> str:
    """``"gamma (omega)"``: a swept or optimised parameter with its unit (``n_cells`` has none).

    Examples
    --------
    >>> from chiralnet.plotting.design import parameter_label
    >>> parameter_label("gamma"), parameter_label("n_cells"), parameter_label("n_th")
    ('gamma (omega)', 'n_cells', 'n_th (mean quanta)')
    """
    unit = PARAMETER_UNITS.get(name)
    return name if unit is None else f"{name} ({unit})"


def quantity_label(name: str) -> str:
    """``"battery_energy (omega)"``: a quantity of :data:`chiralnet.observables.QUANTITIES` with its unit
    (``"dimensionless"`` for ratios and efficiencies); a name the registry lacks is returned as it is.

    Examples
    --------
    >>> from chiralnet.plotting.design import quantity_label
    >>> quantity_label("time_to_90"), quantity_label("ratio_reciprocal")
    ('time_to_90 (1/omega)', 'ratio_reciprocal (dimensionless)')
    """
    from ..observables import QUANTITIES

    q = QUANTITIES.get(name)
    if q is None:
        return name
    return f"{name} ({'dimensionless' if q.units == '1' else q.units})"


def plot_sweep(result, quantities=None) -> Figure:
    """One panel per quantity of a :class:`~chiralnet.sweeps.SweepResult` (each drawn by its ``plot``).

    Parameters
    ----------
    result : SweepResult
    quantities : sequence of str, optional
        Default: every quantity of the result, in the order the sweep asked for them.

    Returns
    -------
    matplotlib.figure.Figure
        Panels stacked in up to two columns; axes labelled with units.
    """
    names = list(result.data) if quantities is None else list(quantities)
    if not names:
        raise KeyError("no quantity to plot")
    cols = 1 if len(names) == 1 else 2
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(6 * cols, 4.0 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, q in zip(axes, names):
        result.plot(q, ax=ax)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    return fig


def plot_optimization(result, *, objective: str, builder: str | None = None, bounds: dict | None = None,
                      title: str | None = None) -> Figure:
    """The objective against iterations, and the optimised values of every parameter against the start.

    Parameters
    ----------
    result : chiralnet.OptimizeResult
        ``history`` (iteration, fun), ``x`` and ``x0`` (parameter -> value or array, per cell or per link).
    objective : str
        The objective's name (its unit from :data:`chiralnet.observables.QUANTITIES`).
    builder : str, optional
        The builder, to say whether an array is per cell or per link (:data:`chiralnet.builders.BUILDERS`).
    bounds : dict, optional
        parameter -> (low, high), drawn as dashed lines.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Panel 1: the objective per iteration; then one panel per optimised parameter: the start and the
        optimum per entry (cell or link index), or as two bars for a scalar.
    """
    from ..builders import BUILDERS

    names = list(result.x)
    fig = Figure(figsize=(6.4, 3.4 * (1 + len(names))), layout="constrained")
    axes = fig.subplots(1 + len(names), 1, squeeze=False).ravel()
    ax = axes[0]
    hist = result.history
    ax.plot([h["iteration"] for h in hist], [h["fun"] for h in hist], "o-", ms=3)
    ax.set_xlabel("iteration")
    ax.set_ylabel(quantity_label(objective))
    ax.set_title(title or f"{objective}: {result.fun0:.6g} -> {result.fun:.6g}", fontsize=10)
    ax.grid(alpha=0.3)
    info = BUILDERS.get(builder) if isinstance(builder, str) else None
    for ax, k in zip(axes[1:], names):
        x, x0 = np.atleast_1d(np.real(result.x[k])), np.atleast_1d(np.real(result.x0[k]))
        per = getattr(info.parameters.get(k), "per", None) if info is not None else None
        if x.size == 1 and np.ndim(result.x[k]) == 0:
            ax.bar([0, 1], [x0[0], x[0]], color=["0.7", "C0"], tick_label=["start", "optimum"])
        else:
            idx = np.arange(x.size)
            ax.plot(idx, x0, "s--", color="0.6", ms=4, label="start")
            ax.plot(idx, x, "o-", color="C0", ms=4, label="optimum")
            ax.set_xlabel(f"{per or 'entry'} index")
            ax.legend(fontsize=8)
        if bounds and k in bounds:
            for b in bounds[k]:
                ax.axhline(b, color="0.4", lw=0.8, ls=":")
        ax.set_ylabel(parameter_label(k))
        ax.grid(alpha=0.3)
    return fig
