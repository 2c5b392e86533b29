"""The registry: every named quantity of chiralnet, defined once.

A :class:`Quantity` says what it is (description, units), which way is better (``direction``), what it
needs (the steady state, a time trace, or both) and how to compute it: ``compute(inputs)`` from an
:class:`Inputs` (the model, the initial state, the steady state and/or a simulation result), and, for
sweeps, ``reduce`` (a vectorised function of the steady energies) or ``kernel`` (the batched Numba
kernel of :mod:`chiralnet.solve.batched` that computes it for many small networks at once).
``chiralnet run``, sweeps, studies and plots all read :data:`QUANTITIES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import config
from ..errors import ChiralnetError
from . import charging, reference

__all__ = ["Quantity", "Inputs", "QUANTITIES", "register", "evaluate", "get"]


@dataclass(frozen=True)
class Quantity:
    """One named quantity.

    Attributes
    ----------
    name : str
    description : str
    units : str
        ``"omega"`` (energy), ``"1/omega"`` (time), ``"omega^2"`` (power), ``"1"`` (ratio).
    direction : {"max", "min"}
        Which way is better when optimising (more energy, shorter charging time).
    needs : {"steady", "trace", "both"}
        The steady state, a time trace (a simulation or the exact propagation), or both.
    dim : str or None
        Extra dimension of the value: None (a scalar), ``"cell"`` (N,), ``"time"`` (T,).
    compute : callable
        ``compute(inputs: Inputs)`` -> float or array.
    reduce : callable or None
        Sweeps: ``reduce(energies (P, N), battery (N,) bool)`` -> (P, ...) from steady energies.
    kernel : str or None
        Sweeps: the batched kernel in :mod:`chiralnet.solve.batched` that computes it.
    sweep : bool
        Available as a sweep quantity.
    cold : callable or None
        Sweeps, zero-temperature batched points (Nc = 0): ``cold(energies (P, N), battery)`` -> (P,) when
        the quantity reduces to the coherent energies there (ergotropy = energy); hot points use ``compute``.
    """

    name: str
    description: str
    units: str
    direction: str
    needs: str
    compute: Callable
    dim: str | None = None
    reduce: Callable | None = None
    kernel: str | None = None
    sweep: bool = True
    cold: Callable | None = None


@dataclass(eq=False)
class Inputs:
    """What a quantity is computed from.

    Attributes
    ----------
    model : Model
    state0 : State
        The start, at ``state0.time`` (the network's own initial state at t = 0 by default).
    graph : networkx.DiGraph or None
        The network (needed by the two-cell ratios: they read the local and reservoir rates).
    steady : SteadyState or None
        Solved on first use when None.
    result : SimulationResult or None
    options : dict
        ``times`` (battery_energy_at), ``fraction``, ``horizon``, ``steps`` (time_to_*).
    """

    model: object
    state0: object
    graph: object = None
    steady: object = None
    result: object = None
    options: dict = field(default_factory=dict)

    def steady_state(self):
        if self.steady is None:
            from ..solve import steady_state

            self.steady = steady_state(self.model)
        return self.steady

    def reference(self) -> dict:
        if self.graph is None:
            raise ChiralnetError("the two-cell ratios need the network graph (its local and reservoir rates), "
                                 "not only a Model; pass the graph")
        if "_reference" not in self.options:
            self.options["_reference"] = reference.two_cell_reference(self.graph)
        return self.options["_reference"]


QUANTITIES: dict[str, Quantity] = {}


def register(q: Quantity) -> Quantity:
    """Add a quantity to :data:`QUANTITIES` (a name is defined once: a second registration raises)."""
    if q.name in QUANTITIES:
        raise ChiralnetError(f"quantity {q.name!r} is already registered")
    if q.direction not in ("max", "min") or q.needs not in ("steady", "trace", "both"):
        raise ChiralnetError(f"quantity {q.name!r}: direction must be max/min and needs steady/trace/both")
    QUANTITIES[q.name] = q
    return q


def get(name: str) -> Quantity:
    """The registered quantity ``name``; ChiralnetError listing the valid names otherwise."""
    try:
        return QUANTITIES[name]
    except (KeyError, TypeError):
        raise ChiralnetError(f"unknown quantity {name!r}; valid: {sorted(QUANTITIES)}") from None


def evaluate(names, G_or_model, *, state0=None, steady=None, result=None, **options) -> dict:
    """Compute the named quantities of a network: ``{name: value}``.

    Parameters
    ----------
    names : sequence of str
        Names in :data:`QUANTITIES`.
    G_or_model : networkx.DiGraph or Model
    state0 : State, optional
        The start, at ``state0.time`` (default: the network's own initial state at t = 0); times and the
        times returned are absolute (the time rule of :func:`chiralnet.simulate`).
    steady : SteadyState, optional
    result : SimulationResult, optional
    **options
        ``times`` (battery_energy_at), ``fraction``, ``horizon``, ``steps`` (time_to_90).

    Examples
    --------
    >>> import chiralnet as cn
    >>> from chiralnet.observables import evaluate
    >>> v = evaluate(["battery_energy", "ratio_nonreciprocal"], cn.two_cell())
    >>> round(v["battery_energy"], 2), round(v["ratio_nonreciprocal"], 12)
    (74.88, 1.0)
    """
    from ..model import Model
    from ..solve.base import model_and_state

    if isinstance(names, (str, bytes)) or not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ChiralnetError(f"evaluate: names must be a list of quantity names (strings), got {names!r}"[:300])
    unknown = set(options) - {"times", "fraction", "horizon", "steps"}
    if unknown:
        raise ChiralnetError(f"unknown option(s) {sorted(unknown)}; valid: fraction, horizon, steps, times")
    model, own = model_and_state(G_or_model)
    state = own if state0 is None else state0.for_cells(model.cells)
    inputs = Inputs(model, state, None if isinstance(G_or_model, Model) else G_or_model, steady, result,
                    dict(options))
    return {n: get(n).compute(inputs) for n in names}


# ---------------------------------------------------------------------------------------------
# Definitions.


def _battery_sum(e, battery):
    return np.asarray(e)[..., np.asarray(battery, bool)].sum(axis=-1)


def _total_sum(e, battery):
    return np.asarray(e).sum(axis=-1)


def _cells(e, battery):
    return np.asarray(e)


def _steady(reduce):
    def compute(inputs):
        ss = inputs.steady_state()
        v = reduce(ss.energies, ss.battery)
        return float(v) if np.ndim(v) == 0 else v
    return compute


def _energies(inputs):
    if inputs.result is None:
        raise ChiralnetError("'energies' is the energy of each cell over time: pass a simulation result")
    return inputs.result.energies


def _battery_energy_at(inputs):
    from ..solve import simulate

    times = inputs.options.get("times")
    if times is None:
        if inputs.result is not None:
            return inputs.result.battery_energy
        raise ChiralnetError("battery_energy_at needs times=[t1, t2, ...] (1/omega) or a simulation result")
    from ..checks import array

    times = array(times, "times", "battery_energy_at")
    state, t0 = charging.start_state(inputs.model, inputs.state0, inputs.state0, "battery_energy_at")
    at_start = times.size > 0 and times[0] == t0  # the run starts where its state is: begin the output there
    run = simulate(inputs.model, times if at_start else np.r_[t0, times], state0=state)
    return run.battery_energy if at_start else run.battery_energy[1:]


def _time_to(inputs):
    o = inputs.options
    return charging.time_to_fraction(inputs.model, o.get("fraction", charging.FRACTION), state0=inputs.state0,
                                     steady=inputs.steady, horizon=o.get("horizon"), steps=o.get("steps", config.T90_STEPS))


def ratio(battery_energy, limit):
    """Steady battery energy over a two-cell limit (NaN where the limit is undefined or zero)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.asarray(limit, float) > 0, np.asarray(battery_energy, float) / limit, np.nan)


def _ratio(key):
    def compute(inputs):
        limit = inputs.reference()[key]
        if limit is None:
            return None
        return float(ratio(inputs.steady_state().battery_energy, limit))
    return compute


register(Quantity("energies", "energy of each cell over time, E_i = omega_i (|alpha_i|^2 + Nc_ii)", "omega",
                  "max", "trace", _energies, dim="time,cell", sweep=False))
register(Quantity("battery_energy", "steady battery energy, sum over battery cells", "omega", "max", "steady",
                  _steady(_battery_sum), reduce=_battery_sum, kernel="steady_batch"))
register(Quantity("total_energy", "steady total energy, sum over all cells", "omega", "max", "steady",
                  _steady(_total_sum), reduce=_total_sum, kernel="steady_batch"))
register(Quantity("cell_energy", "steady energy of each cell", "omega", "max", "steady", _steady(_cells),
                  dim="cell", reduce=_cells, kernel="steady_batch"))
register(Quantity("battery_energy_at", "battery energy at the given times, from the initial state at t = 0",
                  "omega", "max", "trace", _battery_energy_at, dim="time", kernel="battery_energy_at_batch"))
register(Quantity("time_to_90", "first time the battery energy reaches 90% of its steady value (exact; "
                  "time_to_fraction for other fractions)", "1/omega", "min", "both", _time_to,
                  kernel="time_to_fraction_batch"))
register(Quantity("ratio_nonreciprocal", "battery_energy / two-cell nonreciprocal limit with the same rates "
                  "(chiralnet.observables.reference)", "1", "max", "steady", _ratio("nonreciprocal")))
def _ergotropy(collective):
    def compute(inputs):
        from .work import ergotropy

        return ergotropy(inputs.steady_state(), collective=collective)
    return compute


register(Quantity("battery_ergotropy", "steady local ergotropy of the battery, sum of omega_i |alpha_i|^2",
                  "omega", "max", "steady", _ergotropy(False), kernel="steady_batch", cold=_battery_sum))
register(Quantity("battery_ergotropy_collective", "steady Gaussian (collective) ergotropy of the battery cells",
                  "omega", "max", "steady", _ergotropy(True), kernel="steady_batch", cold=_battery_sum))
register(Quantity("ratio_reciprocal", "battery_energy / two-cell reciprocal limit with the same rates "
                  "(chiralnet.observables.reference)", "1", "max", "steady", _ratio("reciprocal")))


def _times_or_result(inputs, name):
    times = inputs.options.get("times")
    if times is None:
        if inputs.result is not None:
            return inputs.result.times
        raise ChiralnetError(f"{name} needs times=[t1, t2, ...] (1/omega) or a simulation result")
    return np.asarray(times, float)


def _power_at(average):
    def compute(inputs):
        from . import power

        name = "average_power_at" if average else "stored_power_at"
        fn = power.average_power if average else power.stored_power
        return fn(inputs.model, _times_or_result(inputs, name), state0=inputs.state0)
    return compute


def _peak(field):
    def compute(inputs):
        from . import power

        o = inputs.options
        if "_peak" not in o:
            o["_peak"] = power.max_average_power(inputs.model, state0=inputs.state0, horizon=o.get("horizon"),
                                                 steps=o.get("steps", config.T90_STEPS))
        return None if o["_peak"] is None else getattr(o["_peak"], field)
    return compute


def _efficiency(inputs):
    from . import power

    o = inputs.options
    return power.efficiency(inputs.model, state0=inputs.state0, steady=inputs.steady_state(),
                            fraction=o.get("fraction", charging.FRACTION), horizon=o.get("horizon"),
                            steps=o.get("steps", config.T90_STEPS))


register(Quantity("stored_power_at", "battery's stored power dE_B/dt at the given times, exact (moment equations)",
                  "omega^2", "max", "trace", _power_at(False), dim="time", sweep=False))
register(Quantity("average_power_at", "average charging power since the start, (E_B(t) - E_B(t0))/(t - t0), at "
                  "the given (absolute) times", "omega^2", "max", "trace", _power_at(True), dim="time", sweep=False))
register(Quantity("max_average_power", "largest average charging power since the start, (E_B(t) - E_B(t0))/(t - t0), "
                  "over t, located exactly (root of (t - t0) dE_B/dt = E_B(t) - E_B(t0))", "omega^2", "max", "both", _peak("power"),
                  kernel="max_average_power_batch"))
register(Quantity("max_average_power_time", "time at which the average charging power is largest", "1/omega",
                  "min", "both", _peak("time"), kernel="max_average_power_batch"))
register(Quantity("efficiency", "charging efficiency: battery ergotropy at t_90 over the drive's work up to t_90 "
                  "(exact integral)", "1", "max", "both", _efficiency, kernel="efficiency_batch"))


def _energy_std(inputs):
    from .gaussian import energy_variance

    return float(np.sqrt(max(energy_variance(inputs.steady_state()), 0.0)))


def _negativity(inputs):
    from .gaussian import log_negativity

    ss = inputs.steady_state()
    bat = [c for c, b in zip(ss.cells, ss.battery) if b]
    rest = [c for c, b in zip(ss.cells, ss.battery) if not b]
    return log_negativity(ss, bat, rest) if bat and rest else 0.0


register(Quantity("battery_energy_std", "steady standard deviation of the battery's energy, sqrt(Var H_B) "
                  "(charging precision; cross terms included)", "omega", "min", "steady", _energy_std))
register(Quantity("battery_log_negativity", "steady log-negativity (ebits) between the battery cells and the "
                  "others", "1", "max", "steady", _negativity))
