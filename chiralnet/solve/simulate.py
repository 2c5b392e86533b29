"""simulate: validate, pick a method, run it from a state, wrap the result."""

from __future__ import annotations

import networkx as nx
import numpy as np

from .. import config, memory
from ..errors import ChiralnetError, SolverError
from ..model import Model, State, build_model, initial_state
from ..results import SimulationResult, cell_columns, simulation_result
from .base import check_times, checked_grid, distinct_steps, model_and_state, start_state
from .exact import EXACT, exact_fits, small_coherent_trace
from .general import GENERAL_METHOD, needs_general
from .protocol import Protocol, run_protocol
from .run import METHODS, SIMULATION_BYTES_BOUND, options_used, run_general_model, run_model

__all__ = ["simulate", "METHODS"]


def _check_number(name, value):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise SolverError(f"{name} must be a number, got {value!r}")
    try:
        finite = np.isfinite(float(value))
    except OverflowError:
        finite = False
    if not finite:
        raise SolverError(f"{name} must be finite (and fit a float), got {value!r}")


def simulate(G_or_model, times, *, state0: State | None = None, method: str = "auto", rtol: float | None = None,
             atol: float | None = None, max_steps: int | None = None,
             store_amplitudes: bool = True, cells=None, battery_fluctuations: bool | None = None) -> SimulationResult:
    """Integrate the moment equations and return energies (and amplitudes) at ``times``.

    Parameters
    ----------
    G_or_model : networkx.DiGraph, Model or Protocol
        The network, a model from :func:`build_model` (skips re-assembly), or a
        :func:`~chiralnet.protocol` of phases (then ``times`` are protocol times up to its end, and the
        result is a :class:`~chiralnet.results.ProtocolResult`).
    times : array_like (T,)
        Output times in 1/omega: absolute, finite, strictly increasing, at or after the start.
    state0 : State, optional
        The state the run starts from, at ``state0.time`` (e.g. ``result.final_state`` to continue a
        run, or ``steady_state(G).state``, at t = 0; ``state.at(t)`` places a state at another time).
        Default: the network's initial state (``alpha0``, ``n0`` of its cells, also kept by a Model built
        from the graph; the vacuum for an array-built Model) at t = 0. Drives see absolute time.
    method : {"auto", "exact", "exact-sparse", "rk45", "exact-gaussian"}
        ``"exact"`` steps with dense propagators e^{M dt} (machine precision, best on uniform grids,
        N up to ``config.EXACT_MAX_CELLS``); ``"exact-sparse"`` applies e^{M dt} to the state through a
        Taylor series on CSR (machine precision, O(nnz) per term, any grid, 10^5+ cells);
        ``"rk45"`` is adaptive Dormand-Prince 5(4) with error control on rtol/atol.
        ``"auto"`` picks by size and structure (see ``config.AUTO_*``); ``result.method`` says which ran.
        A network with squeezing or parametric terms (``pump``, ``m_th``, ``xi0``, a parametric link), or a
        ``state0`` with ``Mc``, takes ``"exact-gaussian"``: exact propagation of the means and the
        quadrature covariance (:mod:`chiralnet.solve.general`), the only method for it (it also runs any
        other network when asked by name: a cross-check).
    rtol, atol : float, optional
        Tolerances of ``"rk45"`` and of the integration of Gaussian and callable drives (default
        ``config.RTOL``, ``config.ATOL``). Passing them with an exact method and constant drives
        raises; with ``"auto"`` they apply if rk45 is picked.
    max_steps : int, optional
        Step limit of ``"rk45"`` (same rule).
    store_amplitudes : bool
        Keep the (T, N) complex amplitudes (16 bytes per entry); False keeps energies only
        (``result.amplitudes`` is None), for the largest runs.
    cells : sequence of cell names, optional
        Keep the per-cell arrays (energies, amplitudes, fluctuations) of these cells only, in this
        order (``result.cells``); ``total_energy`` and ``battery_energy`` still sum over every cell
        of the network, and ``final_state`` holds all of them. Default: every cell.
    battery_fluctuations : bool, optional
        Keep the battery block Nc[B, B] at every output time (``result.battery_fluctuations``, what the
        collective ergotropy needs) when the fluctuations are integrated: B^2 complex numbers per time.
        Default: kept when the (kept) battery has at most ``config.BATTERY_BLOCK_MAX_CELLS`` cells; pass
        True to keep a larger one, False to drop it.

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
    if (state0 is None and method == "auto" and store_amplitudes is True and rtol is None and atol is None
            and max_steps is None and cells is None and battery_fluctuations is None):
        if isinstance(G_or_model, nx.DiGraph):  # built once, here: the general route below takes the model
            G_or_model = build_model(G_or_model)
        if type(G_or_model) is Model:
            result = _small_run(G_or_model, times)
            if result is not None:
                return result
    given = {"rtol": rtol, "atol": atol, "max_steps": max_steps}
    if isinstance(G_or_model, Protocol):
        if cells is not None:
            raise SolverError("cells= keeps a few cells of one network; a protocol's result keeps every cell "
                              "(select columns with result.energy(cell))")
        store = _check_method(method, store_amplitudes)
        _check_options(method, given, any(m.time_dependent for m in G_or_model.models))
        return run_protocol(G_or_model, times, state0, method, given, store, _check_keep(battery_fluctuations))
    model, state, t, start, store = prepare_run(G_or_model, times, state0, method, given, store_amplitudes)
    if method == GENERAL_METHOD or needs_general(model, state):  # squeezing, pumps, parametric links
        columns = cell_columns(model.cells, cells)
        trace, gm = run_general_model(model, state, t - start, method, given, store, start, columns,
                                      _check_keep(battery_fluctuations))
        return simulation_result(trace, gm, t, GENERAL_METHOD, store, columns,
                                 {**options_used(GENERAL_METHOD, given, gm), "start": start})
    rel = t if start == 0.0 else t - start  # t - 0.0 has t's bits (times >= 0)
    columns = cell_columns(model.cells, cells)  # None: all cells
    trace, method = run_model(model, state, rel, method, given, store, t_offset=start, columns=columns,
                              keep_block=_check_keep(battery_fluctuations))
    return simulation_result(trace, model, t, method, store, columns, {**options_used(method, given, model), "start": start})


def _small_run(model: Model, times) -> SimulationResult | None:
    """The run of a small model (a graph's, built by simulate) from its own state with every option at its
    default, when "auto" would pick the dense "exact" method (a few cells, constant drives, zero temperature):
    the same checks, kernel and result as the general route (:func:`prepare_run`,
    :func:`~chiralnet.solve.run.run_model`), without the dispatch that costs as much as the arithmetic here.
    None: not such a run (the general route takes it)."""
    n = model.n_cells
    if n > config.AUTO_DENSE_MAX_CELLS or model.drives is not None or model.Q is not None:
        return None
    state = initial_state(model)  # at t = 0; the frame only names the final state's, set by simulation_result
    if state.Nc is not None or state.Mc is not None:
        return None
    M, alpha0 = model.M, state.alpha
    if (n < config.AUTO_DENSE_MAX_CELLS and type(times) is np.ndarray and times.dtype.char == "d"
            and times.ndim == 1 and times.flags.c_contiguous and 2 <= times.size <= config.SMALL_GRID_MAX_TIMES
            and type(M) is np.ndarray and M.dtype.char == "D" and M.flags.c_contiguous
            and type(alpha0) is np.ndarray and alpha0.dtype.char == "D" and alpha0.flags.c_contiguous
            and n <= config.EXACT_MAX_CELLS and 2 * (n + 1) ** 2 <= config.EXACT_MAX_PROPAGATOR_ENTRIES
            and SIMULATION_BYTES_BOUND * times.size * (n + 1) ** 2 <= memory.limit_bytes()):
        # the checks below for a grid of at most 2 distinct steps, and the run, in one kernel call
        trace = small_coherent_trace(model, alpha0, times)
        if trace is not None:
            return simulation_result(trace, model, times, EXACT.name, True, None, {"start": 0.0})
    checked = checked_grid(times, 0.0)  # a short uniform grid (at most 2 distinct steps) in one kernel call
    if checked is None:
        t = check_times(times, 0.0, False)
        grid = distinct_steps(t)
    else:
        t, grid = checked
    if SIMULATION_BYTES_BOUND * t.size * (n + 1) ** 2 > memory.limit_bytes():  # run_model's itemised estimate
        return None
    if not exact_fits(model, t, grid, False):  # config.EXACT_MAX_*: "auto" would pick another method
        return None
    trace = EXACT.run(model, state, t, {"grid": grid, "store_amplitudes": True})  # no Nc: no battery block
    return simulation_result(trace, model, t, EXACT.name, True, None, {"start": 0.0})


def _check_keep(keep):
    if keep is not None and not isinstance(keep, (bool, np.bool_)):
        raise SolverError(f"battery_fluctuations must be True, False or None (the default policy), got {keep!r}")
    return None if keep is None else bool(keep)


def _check_method(method, store_amplitudes) -> bool:
    """Check the method name and store_amplitudes (a real bool); return store_amplitudes."""
    if not isinstance(method, str) or (method != "auto" and method not in METHODS and method != GENERAL_METHOD):
        raise ChiralnetError(f"unknown method {method!r}; valid: {['auto', *METHODS]} (and {GENERAL_METHOD!r} for "
                             "networks with squeezing or parametric terms)")
    if not isinstance(store_amplitudes, (bool, np.bool_)):  # bool("no") would silently mean True
        raise SolverError(f"store_amplitudes must be True or False, got {store_amplitudes!r}")
    return bool(store_amplitudes)


def prepare_run(G_or_model, times, state0, method, given, store_amplitudes):
    """The checks every run of one network shares (simulate, simulate_to_file): the method and its options,
    the model, and the state the run starts from (state0 at its time, or the network's own at t = 0).

    Returns (model, state, times (T,) float, start: the time the state is at, store_amplitudes: bool).
    """
    store = _check_method(method, store_amplitudes)
    model, own_state = model_and_state(G_or_model)
    state = start_state(state0, own_state, model)
    if not (method == GENERAL_METHOD or needs_general(model, state)):  # the general path checks its own
        _check_options(method, given, model.time_dependent)
    t = check_times(times, state.time, state0 is not None)
    return model, state, t, state.time, store


def _check_options(method, given, time_dependent):
    for name, value in given.items():
        if value is not None and method in METHODS and name not in METHODS[method].options and not time_dependent:
            valid = sorted(m for m in METHODS if name in METHODS[m].options)
            raise SolverError(f"{name} applies to method {valid} only, not {method!r} "
                              "(exact methods are accurate to machine precision); drop it or use method='rk45'")
        _check_number(name, value)
