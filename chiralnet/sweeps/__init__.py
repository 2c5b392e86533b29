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

from .disorder import Disorder, make_disorder
from .engine import open_sweep, run_sweep
from .plan import make_plan
from .result import SweepResult
from .spec import SweepError, SweepSpec, make_spec, sweep_quantities
from ..formats.sweep_toml import load_sweep, parse_sweep, read_sweep, write_sweep  # noqa: E402 - needs .spec

__all__ = ["sweep", "run_sweep", "load_sweep", "read_sweep", "write_sweep", "parse_sweep", "make_spec", "make_plan", "open_sweep",
           "SweepSpec", "SweepResult", "SweepError", "sweep_quantities", "Disorder", "make_disorder"]


def sweep(base, grid: dict, quantities=("battery_energy",), *, params: dict | None = None, times=None,
          t90_max: float | None = None, t90_steps: int | None = None, out=None, resume: bool = False,
          workers: int | None = None, scheduler: str | None = None, processes: int | None = None,
          chunk_size: int | None = None, batched: bool = True, progress: bool | None = None,
          output: dict | None = None, disorder: dict | None = None, realisations: int = 1000, seed: int = 0,
          distribution: str = "normal", quantiles=(0.05, 0.5, 0.95),
          keep_realisations: bool = False) -> SweepResult:
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
        Names from :func:`sweep_quantities` (the registry's sweep quantities): ``battery_energy``, ``total_energy``, ``cell_energy`` (steady);
        ``battery_energy_at`` (needs ``times``), ``time_to_90``; ``ratio_nonreciprocal``,
        ``ratio_reciprocal`` (battery energy over the two-cell limit with the same rates as the point's
        network, :func:`chiralnet.observables.two_cell_reference`, the same number ``chiralnet run`` reports).
        ``battery_ergotropy``, ``battery_ergotropy_collective``, ``efficiency``, ``max_average_power``,
        ``max_average_power_time`` (:mod:`chiralnet.observables.power`; zero and finite temperature);
        ``battery_energy_std``, ``battery_log_negativity`` (steady, any Gaussian network: squeezing included).
    params : dict, optional
        Fixed keyword parameters of the builder.
    times : array_like (T,), optional
        Output times of ``battery_energy_at`` (1/omega), strictly increasing, >= 0.
    t90_max, t90_steps
        Horizon (default 40 / slowest decay rate of M) and grid steps of ``time_to_90`` (default
        ``config.T90_STEPS``).
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
    disorder : dict, optional
        Fabrication disorder: parameter -> relative spread, e.g. ``{"kappa": 0.05, "gamma": 0.05}``, for
        parameters the builder takes per cell or per link (:mod:`chiralnet.sweeps.disorder`). Each grid
        point then computes ``realisations`` networks whose entries are ``value * (1 + spread * xi)``.
    realisations : int
        Disordered networks per grid point.
    seed : int
        Seed of the random numbers (:class:`numpy.random.SeedSequence`); the same seed gives the same
        networks and bitwise the same results on every engine and chunking.
    distribution : str
        ``"normal"`` (xi standard normal), ``"uniform"`` (xi uniform with unit variance) or ``"lognormal"``
        (factor exp(sigma xi - sigma^2/2), always positive). A draw that would make a rate negative is an
        error, never clipped.
    quantiles : sequence of float
        Quantiles reported besides mean and standard deviation.
    keep_realisations : bool
        Also keep every realisation (``SweepResult.realisations``; memory is checked first).

    Returns
    -------
    SweepResult
        Arrays of shape (*grid_shape[, n_cells | n_times]) labelled by the swept parameters, with a last
        axis ``stat`` (mean, std, q5, q50, q95) when ``disorder`` is given;
        ``.to_xarray()``, ``.to_csv(path)``, ``.to_netcdf(path)``, ``.plot()``.
    """
    run = {"batched": batched}
    if chunk_size is not None:
        run["chunk_size"] = chunk_size
    if disorder is not None:
        disorder = make_disorder(disorder, realisations=realisations, seed=seed, distribution=distribution,
                                 quantiles=quantiles, keep_realisations=keep_realisations, where="disorder")
    spec = make_spec(base, grid, quantities, params=params, times=times, t90_max=t90_max, t90_steps=t90_steps,
                     run=run, output=output, disorder=disorder)
    return run_sweep(spec, out=out, resume=resume, workers=workers, scheduler=scheduler, processes=processes,
                     progress=progress)
