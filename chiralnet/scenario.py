"""Scenario runs: simulate a scenario file's battery and summarise it (``chiralnet run``, ``steady``).

The file format (schema, reader, writer) is :mod:`chiralnet.formats.scenario_toml`; every number in a
summary comes from the one definition of its quantity in :mod:`chiralnet.observables`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .formats.scenario_toml import Scenario, _one_line
from .errors import ChiralnetError, NoSteadyStateError
from . import config
from .model import build_model, initial_state
from .network import (
    battery_cells,
    cells,
)
from .observables import (
    efficiency,
    ergotropy,
    injected_power,
    max_average_power,
    time_staying_above,
    time_to_fraction,
    two_cell_reference,
)
from .results import SimulationResult, SteadyState
from .solve import protocol, simulate, steady_state

__all__ = ["ScenarioRun", "run_scenario"]

# ---------------------------------------------------------------------------------------------
# Running a scenario and summarising it.


@dataclass(frozen=True, eq=False)
class ScenarioRun:
    """What :func:`run_scenario` found.

    Attributes
    ----------
    scenario : Scenario
    result : SimulationResult or None
        None when only the steady state was asked for.
    steady : SteadyState or None
        None when the network has no steady state (``steady_error`` says why).
    steady_error : str or None
    t90 : float or None
        First time (1/omega) the battery reaches 90% of its steady energy, exact
        (:func:`chiralnet.observables.time_to_fraction`, the same number a sweep's ``time_to_90`` gives);
        None if not reached within its horizon.
    t90_stay : float or None
        Time from which the battery stays at or above 90% of its steady energy up to the last output time
        (bracketed by the output times, refined exactly).
    reference : dict
        :func:`chiralnet.observables.two_cell_reference` of the network (xi included).
    efficiency : float or None
        Battery ergotropy at t90 over the drive's work up to t90 (:func:`chiralnet.efficiency`).
    power_peak : PowerPeak or None
        Largest average charging power and its time (:func:`chiralnet.max_average_power`).
    """

    scenario: Scenario
    result: SimulationResult | None
    steady: SteadyState | None
    steady_error: str | None
    t90: float | None
    reference: dict
    t90_stay: float | None = None
    efficiency: float | None = None
    power_peak: tuple | None = None

    def ratios(self) -> dict:
        """Steady battery energy over the two-cell nonreciprocal and reciprocal limits (None if undefined)."""
        out = {}
        for k in ("nonreciprocal", "reciprocal"):
            ref = self.reference.get(k)
            ok = self.steady is not None and ref is not None and ref > 0
            out[k] = self.steady.battery_energy / ref if ok else None
        return out

    def summary(self) -> dict:
        """A JSON-ready dict of the numbers (energies in omega, times in 1/omega)."""
        sc = self.scenario
        names = [_json_name(c) for c in cells(sc.network)]
        out = {
            "scenario": sc.source, "title": sc.title, "description": sc.description,
            "units": {"energy": "omega (hbar = 1)", "time": "1/omega", "rate": "omega"},
            "cells": names,
            "battery_cells": [_json_name(c) for c in battery_cells(sc.network)],
        }
        if self.steady is not None:
            out["steady"] = {"energies": dict(zip(map(str, names), self.steady.energies.tolist())),
                             "battery_energy": self.steady.battery_energy,
                             "total_energy": self.steady.total_energy, "method": self.steady.method,
                             "battery_ergotropy": ergotropy(self.steady),
                             "battery_ergotropy_collective": ergotropy(self.steady, collective=True),
                             "injected_power": injected_power(self.steady, sc.network)}
        else:
            out["steady"] = None
            out["steady_error"] = self.steady_error
        if self.result is not None:
            res = self.result
            out["simulation"] = {
                "method": res.method, "n_times": int(res.times.size), "t_start": float(res.times[0]),
                "t_end": float(res.times[-1]), "stats": res.stats,
                "final_energies": dict(zip(map(str, names), res.energies[-1].tolist())),
                "final_battery_energy": float(res.battery_energy[-1]),
                "final_battery_ergotropy": float(ergotropy(res)[-1]) if res.amplitudes is not None else None,
                "final_injected_power": _final_injected_power(res, sc.network),
                "time_to_90_percent": self.t90,
                "time_staying_above_90_percent": self.t90_stay,
                "efficiency": self.efficiency,
                "max_average_power": None if self.power_peak is None else self.power_peak.power,
                "max_average_power_time": None if self.power_peak is None else self.power_peak.time,
            }
        if self.result is not None and self.result.phase is not None:
            res = self.result
            starts = np.r_[0.0, res.phase_ends[:-1]]
            out["phases"] = [
                {"name": res.phase_names[k], "start": float(starts[k]), "end": float(res.phase_ends[k]),
                 "reached": res.phase_states[k] is not None,
                 "end_energies": (dict(zip(map(str, names), res.phase_energies[k].tolist()))
                                  if res.phase_states[k] is not None else None),
                 "end_battery_energy": (float(res.phase_battery_energy[k])
                                        if res.phase_states[k] is not None else None),
                 "end_total_energy": (float(res.phase_energies[k].sum())
                                      if res.phase_states[k] is not None else None)}
                for k in range(res.phase_ends.size)
            ]
        out["two_cell_reference"] = self.reference
        out["ratio_to_two_cell"] = self.ratios()
        return out


def _final_injected_power(res, network):
    """The injected power at the last output time, or None where a result cannot give all of it: no amplitudes
    kept, or a general network whose parametric links (or a protocol's phases) need more than the result holds
    (:func:`chiralnet.observables.injected_power` says which; the steady value and efficiency count them)."""
    if res.amplitudes is None:
        return None
    try:
        return float(injected_power(res, network)[-1])
    except ChiralnetError:
        return None


def _json_name(c):
    return c if isinstance(c, (str, int)) and not isinstance(c, bool) else str(c)


def run_scenario(scenario: Scenario, *, simulate_times: bool = True) -> ScenarioRun:
    """Simulate a scenario over its times (if asked) and solve its steady state.

    Parameters
    ----------
    scenario : Scenario
    simulate_times : bool
        False: steady state only (``chiralnet steady``); then ``[times]`` is not needed.
    """
    G = scenario.network
    model = build_model(G)
    if scenario.phases:  # a protocol: the steady state it would settle to is that of its last phase
        model = build_model(scenario.phases[-1][0])
    try:
        steady = steady_state(model)
        error = None
    except NoSteadyStateError as exc:
        steady, error = None, _one_line(exc)
    except ChiralnetError as exc:  # a time-dependent drive has no steady state
        steady, error = None, _one_line(exc)
    result = None
    t90 = t90_stay = eff = peak = None
    if simulate_times:
        times = scenario.require_times()
        target = protocol(scenario.phases) if scenario.phases else G
        try:
            result = simulate(target, times, **scenario.solver_options())  # a graph: from its alpha0/n0 at t = 0
        except ChiralnetError as exc:  # name the file: the scenario chose the solver and the times
            raise type(exc)(f"{scenario.source}: solver: {_one_line(exc)}") from exc
        if steady is not None and not scenario.phases:
            state0 = initial_state(G)
            horizon = None if model.n_cells <= config.DEFAULT_HORIZON_MAX_CELLS else float(times[-1])
            t90 = time_to_fraction(model, state0=state0, steady=steady, horizon=horizon)
            t90_stay = time_staying_above(model, result, state0=state0, steady=steady)
            eff = None if t90 is None else efficiency(model, state0=state0, steady=steady, t90=t90)
            peak = max_average_power(model, state0=state0, horizon=horizon)
    return ScenarioRun(scenario=scenario, result=result, steady=steady, steady_error=error, t90=t90,
                       reference=two_cell_reference(G), t90_stay=t90_stay, efficiency=eff, power_peak=peak)
