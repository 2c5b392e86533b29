"""Parameter sweeps: many networks, one call; embedded (batched Numba, local pool) or on Dask.

>>> import chiralnet.sweeps as sw
>>> res = sw.sweep("two_cell", {"gamma": [0.01, 0.04]}, ["battery_energy", "ratio_nonreciprocal"])
>>> res.dims, res["battery_energy"].shape
(('gamma',), (2,))
>>> [round(float(x), 12) for x in res["ratio_nonreciprocal"]]
[1.0, 1.0]

See :func:`sweep` and :func:`load_sweep` (the TOML format).
"""

from __future__ import annotations

from .engine import open_sweep, run_sweep
from .plan import BATCH_MAX_CELLS, make_plan
from .result import SweepResult
from .spec import QUANTITIES, SweepError, SweepSpec, load_sweep, make_spec, parse_sweep

__all__ = ["sweep", "run_sweep", "load_sweep", "parse_sweep", "make_spec", "make_plan", "open_sweep",
           "SweepSpec", "SweepResult", "SweepError", "QUANTITIES", "BATCH_MAX_CELLS"]


def sweep(base, grid: dict, quantities=("battery_energy",), *, params: dict | None = None, times=None,
          t90_max: float | None = None, t90_steps: int = 2000, out=None, resume: bool = False,
          workers: int | None = None, scheduler: str | None = None, processes: int | None = None,
          chunk_size: int | None = None, batched: bool = True, progress: bool | None = None,
          output: dict | None = None) -> SweepResult:
    """Compute ``quantities`` at every point of ``grid`` over the parameters of a base network.

    Parameters
    ----------
    base : str or callable or None
        A builder of :mod:`chiralnet.builders` (``"two_cell"``, ``"chain"``, ...), ``"module:function"``,
        or a callable returning a network. None when ``grid`` sweeps ``"builder"`` (topology).
    grid : dict
        parameter -> values: a list, or ``{"start", "stop", "num", "scale": "linear"|"log"}``. The order
        of the keys is the order of the result's dimensions. Any keyword of the builder can be swept,
        including sizes (``n_cells``) and ``"builder"`` itself.
    quantities : sequence of str
        Names from :data:`QUANTITIES`: ``battery_energy``, ``total_energy``, ``cell_energy`` (steady);
        ``battery_energy_at`` (needs ``times``), ``time_to_90``; ``ratio_nonreciprocal``,
        ``ratio_reciprocal`` (battery energy over the two-cell limit with the same rates as the point's
        network, :func:`chiralnet.observables.two_cell_reference`, the same number ``chiralnet run`` reports).
        ``battery_ergotropy``, ``battery_ergotropy_collective``, ``efficiency``, ``max_average_power``,
        ``max_average_power_time`` (:mod:`chiralnet.observables.power`; zero and finite temperature).
    params : dict, optional
        Fixed keyword parameters of the builder.
    times : array_like (T,), optional
        Output times of ``battery_energy_at`` (1/omega), strictly increasing, >= 0.
    t90_max, t90_steps
        Horizon (default 40 / slowest decay rate of M) and grid steps of ``time_to_90``.
    out : path, optional
        Output folder: finished chunks are stored there as they complete, then result.csv,
        result.nc (with xarray) and figure.png.
    resume : bool
        Reuse the chunks already in ``out`` and compute only the missing points.
    workers : int, optional
        Run on a Dask ``LocalCluster`` of this many single-threaded worker processes.
    scheduler : str, optional
        Run on the Dask scheduler at this address (``"tcp://host:8786"``).
    processes : int, optional
        Size of the local process pool (default: the number of cores); 1 runs in this process.
    chunk_size : int, optional
        Points per chunk (the unit of storage, scheduling and resume).
    batched : bool
        Allow the batched kernel for points of one structure (False builds every point's model).
    progress : bool, optional
        Show a progress bar with an ETA (default: only when stderr is a terminal).
    output : dict, optional
        Which files a run with ``out`` writes: ``{"csv": True, "netcdf": True, "figure": True}`` (default all).

    Returns
    -------
    SweepResult
        Arrays of shape (*grid_shape[, n_cells | n_times]) labelled by the swept parameters;
        ``.to_xarray()``, ``.to_csv(path)``, ``.to_netcdf(path)``, ``.plot()``.
    """
    run = {"batched": batched}
    if chunk_size is not None:
        run["chunk_size"] = chunk_size
    spec = make_spec(base, grid, quantities, params=params, times=times, t90_max=t90_max, t90_steps=t90_steps,
                     run=run, output=output)
    return run_sweep(spec, out=out, resume=resume, workers=workers, scheduler=scheduler, processes=processes,
                     progress=progress)
