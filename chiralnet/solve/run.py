"""Run one model from a state: pick a method ("auto"), check memory, dispatch shaped drives, check the result.

:func:`run_model` is what :func:`~chiralnet.simulate` does for one network and what a
:func:`~chiralnet.protocol` does for each of its phases.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import config, memory
from ..errors import SolverError
from ..linalg.csr import one_norm
from ..linalg.stability import jump_steps
from ..model import Model, State
from .base import battery_block, distinct_steps
from .driven import check_tolerances, drive_share, run_driven
from .exact import EXACT, exact_fits
from .exact_sparse import EXACT_SPARSE
from ..gaussian import doubled_model, general_model
from .general import GENERAL_METHOD, check_general_method, needs_general, run_general
from .rk45 import RK45
from .taylor import substeps

__all__ = ["METHODS", "run_model", "run_general_model", "check_finite", "trace_energies", "options_used"]

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
        need = substeps(one_norm(model.M), dts, jump_steps(model.M, dts))
        return "exact-sparse" if np.maximum(need, 0)[kind].sum() <= config.AUTO_MAX_SUBSTEPS_PER_OUTPUT * times.size \
            else "rk45"
    return "exact"


#: Bytes per T (N + 1)^2 that bound every estimate of memory.simulation_bytes (tests/test_memory.py checks it).
SIMULATION_BYTES_BOUND = 1100


def _check_memory(model: Model, thermal: bool, times, grid, method: str, store: bool, n_kept=None) -> None:
    n = model.n_cells
    # every item of memory.simulation_bytes, for any method, is at most 1100 T (N + 1)^2 bytes (nnz <= N^2,
    # distinct steps <= T): a run far below the limit skips the itemised estimate
    if SIMULATION_BYTES_BOUND * times.size * (n + 1) ** 2 <= memory.limit_bytes():
        return
    items = memory.simulation_bytes(model.n_cells, times.size, method=method, thermal=thermal,
                                    store_amplitudes=store, nnz=_nnz(model) if model.is_sparse else None,
                                    n_steps=grid[0].size if method == "exact" else 1, n_kept=n_kept)
    fixes = "fewer output times or fewer cells"
    if store and method == "exact-sparse":  # the other methods compute the amplitudes either way
        fixes += ", or store_amplitudes=False (energies only), or cells=[...] (keep a few cells; totals stay whole)"
    if thermal:
        fixes += ", or zero-temperature baths and initial state (no N x N fluctuation matrix)"
    memory.check(items, f"simulate ({model.n_cells} cells, {times.size} output times, method {method!r})", fixes)



def options_used(method: str, given: dict, model: Model) -> dict:
    """The tolerances an adaptive integration ran with (``rk45``, or the Gaussian and callable share of a
    shaped drive), defaults filled in; {} when every part was exact."""
    if method != "rk45" and not (model.drives is not None and model.drives.integrated):
        return {}
    callables = model.drives is not None and bool(model.drives.functions)
    defaults = {"rtol": config.RTOL, "atol": config.ATOL,
                "max_steps": config.CALLABLE_MAX_STEPS if callables else config.RK45_MAX_STEPS}
    return {k: (v if given.get(k) is None else given[k]) for k, v in defaults.items()}


def trace_energies(trace, model: Model) -> np.ndarray:
    """The (T, N) energies of a full-width trace (a method may leave them to be derived from its amplitudes)."""
    if trace.energies is not None:
        return trace.energies
    a = trace.amplitudes
    return model.omega * (a.real**2 + a.imag**2 + trace.fluctuations)


def check_finite(energies, cells, t):
    """SolverError naming the cell and time of the first non-finite entry of ``energies`` (T, N)."""
    bad = ~np.isfinite(energies)
    if bad.any():
        k, i = np.argwhere(bad)[0]
        raise SolverError(
            f"energy of cell {cells[i]!r} is not finite at t = {t[k]}; the network is unstable "
            "or its rates overflow (see chiralnet.check_stability)"
        )


def run_model(model: Model, state: State, rel, method: str, given: dict, store: bool, t_offset: float = 0.0,
              columns=None, keep_block=None):
    """Run ``model`` from ``state`` at local times ``rel`` (checked, from the state) with ``method``
    ("auto" resolved here); drives are evaluated at t_offset + rel. ``columns`` (k,) int: keep only these
    cells' per-cell arrays (the totals stay whole). ``keep_block``: keep the battery block of Nc (of the
    kept battery cells); None: when it has at most ``config.BATTERY_BLOCK_MAX_CELLS`` cells. Returns
    (Trace, method name)."""
    if method == GENERAL_METHOD or needs_general(model, state):  # squeezing or parametric terms (chiralnet.gaussian)
        trace, _ = run_general_model(model, state, rel, method, given, store, t_offset, columns, keep_block)
        return trace, GENERAL_METHOD
    grid = distinct_steps(rel)
    thermal = model.thermal or state.Nc is not None
    if method == "auto":
        method = _choose_method(model, thermal, rel, grid)
    kept = None if columns is None or model.time_dependent else columns.size
    _check_memory(model, thermal, rel, grid, method, store or model.time_dependent, kept)
    m = METHODS[method]
    own = {k: v for k, v in given.items() if k in m.options}
    block, keep = battery_block(model.battery, columns, keep_block)
    if not model.time_dependent:
        options = {"grid": grid, "store_amplitudes": store, "block": block, **own}
        if columns is not None:
            options["cells"] = columns
        trace = m.run(model, state, rel, options)
    else:
        def run(mdl, st, times):
            g = grid if times is rel else distinct_steps(times)
            return m.run(mdl, st, times, {"grid": g, "store_amplitudes": True, "block": block, **own})

        trace = run_driven(model, state, rel, run, t_offset, **given)
    return (trace if keep else dataclasses.replace(trace, battery_block=None)), method


def run_general_model(model, state: State, rel, method: str, given: dict, store: bool, t_offset: float = 0.0,
                      columns=None, keep_block=None, cache=None):
    """Run a general Gaussian network (or any network from a squeezed state) on the general path: as
    :func:`~chiralnet.solve.general.run_general` (same arguments, ``cache`` too), and with shaped drives the
    share they add to the means. Returns (Trace, GaussianModel).

    The covariance does not see the drive, and the means obey d<b>/dt = M2 <b> - i E2(t) on the doubled
    model b = (a, a^dag), E2 = (E, -conj E) (:func:`~chiralnet.gaussian.doubled_model`). So the constant-drive
    network runs exactly (run_general), and the shaped part E2(t) - E2 runs from zero on the doubled model's
    amplitudes as on any phase-insensitive network (:func:`~chiralnet.solve.driven.drive_share`: tones and
    squares exact, Gaussians and callables by the one adaptive integrator, with their breakpoints, step bounds
    and ``rtol``/``atol``/``max_steps``), the conjugate copies driven by the conjugated schedule
    (:meth:`~chiralnet.drives.DriveSchedule.doubled`). alpha gains (share_a + conj share_a^dag) / 2 (both copies
    hold it). A shaped run keeps every column (``columns`` is applied by the result, as for the
    phase-insensitive shaped path).
    """
    time_dependent = bool(model.time_dependent)
    check_general_method(method, given, time_dependent)
    if not time_dependent:
        return run_general(model, state, rel, store=store, columns=columns, keep_block=keep_block, cache=cache)
    gm = general_model(model)
    tolerances = check_tolerances(gm, **given)
    const = dataclasses.replace(gm, drives=None)
    trace, _ = run_general(const, state, rel, store=True, keep_block=keep_block, cache=cache)
    n = gm.n_cells
    coherent = dataclasses.replace(doubled_model(const), Q=None, drive=np.zeros(2 * n, complex),
                                   drives=gm.drives.doubled(n))
    grid = distinct_steps(rel)
    name = _choose_method(coherent, False, rel, grid)
    _check_memory(coherent, False, rel, grid, name, True)
    m = METHODS[name]
    none = np.zeros(0, np.int64)

    def run(mdl, st, times):
        g = grid if times is rel else distinct_steps(times)
        return m.run(mdl, st, times, {"grid": g, "store_amplitudes": True, "block": none})

    share = np.zeros((rel.size, 2 * n), complex)
    stats = drive_share(coherent, rel, run, t_offset, *tolerances, share)
    alpha = trace.amplitudes + 0.5 * (share[:, :n] + np.conj(share[:, n:]))
    energies = gm.omega * (alpha.real**2 + alpha.imag**2 + trace.fluctuations)
    final = dataclasses.replace(trace.final_state, alpha=alpha[-1].copy())
    trace = dataclasses.replace(trace, amplitudes=alpha if store else None, energies=energies, final_state=final,
                                stats={**trace.stats, **stats, "drive_method": name})
    return trace, gm
