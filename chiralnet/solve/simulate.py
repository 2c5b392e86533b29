"""simulate: validate, pick a method, run it from a state, wrap the result."""

from __future__ import annotations

import numpy as np

from .. import config, memory
from ..errors import ChiralnetError, SolverError
from ..model import Model, State
from ..results import SimulationResult, cell_columns, simulation_result
from .base import check_times, distinct_steps, model_and_state
from .exact import EXACT, exact_fits
from .exact_sparse import EXACT_SPARSE, jump_steps, substeps
from .rk45 import RK45

__all__ = ["simulate", "METHODS"]

#: name -> :class:`~chiralnet.solve.base.Method`. Add a method by adding an entry (see the contract
#: in :mod:`chiralnet.solve.base`); an unknown name raises and lists these.
METHODS = {m.name: m for m in (EXACT, EXACT_SPARSE, RK45)}


def _nnz(model: Model) -> int:
    return int(model.M.nnz) if model.is_sparse else int(np.count_nonzero(model.M))


def _choose_method(model: Model, thermal: bool, times, grid) -> str:
    """Dense exact propagators for small N; exact CSR stepping for large sparse M; rk45 for long
    output intervals (zero temperature) or dense large M that does not fit the exact method."""
    n = model.n_cells
    if n <= config.AUTO_DENSE_MAX_CELLS and exact_fits(model, times, grid, thermal):
        return "exact"
    if _nnz(model) <= config.SPARSE_MAX_DENSITY * n * n or not exact_fits(model, times, grid, thermal):
        if thermal:  # rk45 would integrate Nc with dense N^3 products: exact-sparse is cheaper
            return "exact-sparse"
        dts, kind = grid
        from ..linalg.csr import one_norm

        need = substeps(one_norm(model.M), dts, jump_steps(model.M, dts))
        return "exact-sparse" if np.maximum(need, 0)[kind].sum() <= config.AUTO_MAX_SUBSTEPS_PER_OUTPUT * times.size \
            else "rk45"
    return "exact"


def _check_memory(model: Model, thermal: bool, times, grid, method: str, store: bool, n_kept=None) -> None:
    items = memory.simulation_bytes(model.n_cells, times.size, method=method, thermal=thermal,
                                    store_amplitudes=store, nnz=_nnz(model) if model.is_sparse else None,
                                    n_steps=grid[0].size if method == "exact" else 1, n_kept=n_kept)
    fixes = "fewer output times or fewer cells"
    if store and method == "exact-sparse":  # the other methods compute the amplitudes either way
        fixes += ", or store_amplitudes=False (energies only), or cells=[...] (keep a few cells; totals stay whole)"
    if thermal:
        fixes += ", or zero-temperature baths and initial state (no N x N fluctuation matrix)"
    memory.check(items, f"simulate ({model.n_cells} cells, {times.size} output times, method {method!r})", fixes)


def _check_number(name, value):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise SolverError(f"{name} must be a number, got {value!r}")
    if not np.isfinite(value):
        raise SolverError(f"{name} must be finite, got {value!r}")


def simulate(G_or_model, times, *, state0: State | None = None, method: str = "auto", rtol: float | None = None,
             atol: float | None = None, max_steps: int | None = None,
             store_amplitudes: bool = True, cells=None) -> SimulationResult:
    """Integrate the moment equations and return energies (and amplitudes) at ``times``.

    Parameters
    ----------
    G_or_model : networkx.DiGraph or Model
        The network, or a model from :func:`build_model` (skips re-assembly).
    times : array_like (T,)
        Output times in 1/omega, finite, >= 0, strictly increasing.
    state0 : State, optional
        The state at ``times[0]`` (e.g. ``result.final_state`` to continue a run, or
        ``steady_state(G).state``). Default: the network's own initial state (``alpha0``, ``n0`` of
        its cells; the vacuum for a Model) at t = 0, before ``times[0]``.
    method : {"auto", "exact", "exact-sparse", "rk45"}
        ``"exact"`` steps with dense propagators e^{M dt} (machine precision, best on uniform grids,
        N up to ``config.EXACT_MAX_CELLS``); ``"exact-sparse"`` applies e^{M dt} to the state through a
        Taylor series on CSR (machine precision, O(nnz) per term, any grid, 10^5+ cells);
        ``"rk45"`` is adaptive Dormand-Prince 5(4) with error control on rtol/atol.
        ``"auto"`` picks by size and structure (see ``config.AUTO_*``); ``result.method`` says which ran.
    rtol, atol : float, optional
        Tolerances of ``"rk45"`` (default ``config.RTOL``, ``config.ATOL``). Passing them with an exact
        method raises; with ``"auto"`` they apply if rk45 is picked.
    max_steps : int, optional
        Step limit of ``"rk45"`` (same rule).
    store_amplitudes : bool
        Keep the (T, N) complex amplitudes (16 bytes per entry); False keeps energies only
        (``result.amplitudes`` is None), for the largest runs.
    cells : sequence of cell names, optional
        Keep the per-cell arrays (energies, amplitudes, fluctuations) of these cells only, in this
        order (``result.cells``); ``total_energy`` and ``battery_energy`` still sum over every cell
        of the network, and ``final_state`` holds all of them. Default: every cell.

    Returns
    -------
    SimulationResult
        ``energies`` (T, N), ``amplitudes`` (T, N), ``total_energy`` (T,), ``final_state``, ...

    Examples
    --------
    >>> import numpy as np, chiralnet as cn
    >>> G = cn.two_cell()
    >>> res = cn.simulate(G, np.linspace(0, 2000, 5))
    >>> res.energies.shape
    (5, 2)
    >>> more = cn.simulate(G, np.linspace(2000, 3000, 3), state0=res.final_state)  # continue the run
    >>> float(more.times[0]), bool(np.allclose(more.energies[0], res.energies[-1]))
    (2000.0, True)
    """
    if not isinstance(method, str) or (method != "auto" and method not in METHODS):
        raise ChiralnetError(f"unknown method {method!r}; valid: {['auto', *METHODS]}")
    given = {"rtol": rtol, "atol": atol, "max_steps": max_steps}
    for name, value in given.items():
        if value is not None and method != "auto" and name not in METHODS[method].options:
            valid = sorted(m for m in METHODS if name in METHODS[m].options)
            raise SolverError(f"{name} applies to method {valid} only, not {method!r} "
                              "(exact methods are accurate to machine precision); drop it or use method='rk45'")
        _check_number(name, value)
    if not isinstance(store_amplitudes, (bool, np.bool_)):  # bool("no") would silently mean True
        raise SolverError(f"store_amplitudes must be True or False, got {store_amplitudes!r}")
    model, own_state = model_and_state(G_or_model)
    t = check_times(times)
    if state0 is None:
        state, start = own_state, 0.0
    elif isinstance(state0, State):
        state, start = state0.for_cells(model.cells), float(t[0])
    else:
        raise SolverError(f"state0 must be a chiralnet.State (e.g. result.final_state), got {type(state0).__name__}")
    rel = t - start if start else t
    grid = distinct_steps(rel)
    columns = cell_columns(model.cells, cells)  # None: all cells
    thermal = model.thermal or state.Nc is not None
    if method == "auto":
        method = _choose_method(model, thermal, rel, grid)
    store = bool(store_amplitudes)
    _check_memory(model, thermal, rel, grid, method, store, None if columns is None else columns.size)
    m = METHODS[method]
    options = {"grid": grid, "store_amplitudes": store, "cells": columns,
               **{k: v for k, v in given.items() if k in m.options}}
    if columns is not None:  # the battery block of the kept battery cells, in their order
        options["block"] = columns[model.battery[columns]]
    trace = m.run(model, state, rel, options)
    return simulation_result(trace, model, t, method, store, columns)
