"""The quantities of grid points: one network through the registry's definitions, or a stack of small
cold networks through the batched kernels. Used by :mod:`~chiralnet.sweeps.plan` and, for disorder
ensembles, :mod:`~chiralnet.sweeps.disorder`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import config
from ..drives import is_time_dependent
from ..errors import ChiralnetError, NoSteadyStateError, SweepError
from ..gaussian import is_general_model
from ..model import Model, State, build_model, graph_state, initial_state
from ..network import cells as cell_nodes
from ..observables import QUANTITIES as REGISTRY
from ..observables import charging
from ..observables.reference import RATE_KEYS, reference_rates, two_cell_limits
from ..observables.registry import Inputs
from ..solve import batched as K
from ..solve import steady_state
from ..solve.base import distinct_steps

__all__ = ["model_at", "build_point", "rates_at", "stack_quantities", "point_quantities", "reference_limits"]


def build_point(fn, kw, where):
    try:
        G = fn(**kw)
    except ChiralnetError as exc:
        raise SweepError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise SweepError(f"{where}: the builder rejected its parameters ({exc})") from None
    return G


@dataclass(frozen=True)
class _Point:
    """The model of one grid point and its initial state (t = 0), read as one set of arrays."""

    model: Model
    state: State

    def __getattr__(self, name):  # M, forcing, omega, cells, battery, n_cells, ...: the model's
        return getattr(self.model, name)

    @property
    def alpha0(self):
        return self.state.alpha

    @property
    def thermal(self) -> bool:
        # True also for a general Gaussian model (GaussianModel.thermal): the batched kernels, which hold one
        # phase-insensitive M, never take it
        return self.model.thermal or self.state.Nc is not None or self.general

    @property
    def general(self) -> bool:
        """A general Gaussian model (squeezing or parametric terms): computed pointwise only."""
        return is_general_model(self.model)


def model_at(plan, multi) -> _Point:
    fn, kw = plan.builder_at(multi)
    G = build_point(fn, kw, plan.locate(multi))
    try:
        model = build_model(G, sparse=False) if len(cell_nodes(G)) <= config.BATCH_MAX_CELLS else build_model(G)
    except ChiralnetError as exc:
        raise SweepError(f"{plan.locate(multi)}: {exc}") from None
    if model.time_dependent:  # sweeps assume one constant drive (steady states, exact constant-drive traces)
        shaped = [c for c in cell_nodes(G) if is_time_dependent(G.nodes[c].get("drive", 0.0))]
        raise SweepError(f"{plan.locate(multi)}: cell {shaped[0]!r} has a time-dependent drive; sweep quantities "
                         "assume a constant drive (a steady state exists only then): sweep the pulse with a loop of "
                         "cn.simulate, or give the cell a constant drive")
    if is_general_model(model):  # squeezing or parametric terms: its own start (xi0 included), never batched
        return _Point(model, initial_state(model))
    return _Point(model, graph_state(G, model.cells))



def rates_at(plan, multi) -> np.ndarray:
    """The two-cell reference rates (:data:`RATE_KEYS`) of the network at one grid point, (6,)."""
    G = build_point(*plan.builder_at(multi), plan.locate(multi))
    r = reference_rates(G)
    return np.array([r[k] for k in RATE_KEYS], float)


def reference_limits(plan, multi_all):
    """The two-cell limits (nonreciprocal, reciprocal) (P,) of each point's network, by the one definition
    :mod:`chiralnet.observables.reference` (the paper's pair with the same rates, xi included)."""
    struct, flt = list(plan.struct_axes), list(plan.float_axes)
    rates = np.empty((multi_all.shape[0], len(RATE_KEYS)))
    for p, multi in enumerate(multi_all):
        entry = plan.rates.get(tuple(int(k) for k in multi[struct]))
        if entry is None:
            rates[p] = rates_at(plan, multi)
        else:
            r0, per_axis = entry
            rates[p] = r0 + sum((d[i] for d, i in zip(per_axis, multi[flt])), np.zeros(len(RATE_KEYS)))
    return two_cell_limits(*rates.T)


def stack_quantities(plan, M, b, w, a0, battery, blocks):
    """Batched kernels on a stack of P same-size small networks -> dict of (P, ...) arrays."""
    spec = plan.spec
    P, N = b.shape
    M = np.ascontiguousarray(M, complex)
    alpha = np.empty((P, N), complex)
    decay = np.empty(P)
    status = np.empty(P, np.int8)
    getattr(K, REGISTRY["battery_energy"].kernel)(M, np.ascontiguousarray(b), blocks[0], blocks[1], alpha, decay,
                                                   status)
    energies = w * (alpha.real**2 + alpha.imag**2)
    out = {"status": status, "_energies": energies, "_battery": battery}
    for q in spec.quantities:  # zero temperature: quantities that reduce to the coherent energies
        if REGISTRY[q].cold is not None:
            out[q] = REGISTRY[q].cold(energies, battery)
    if "battery_energy_at" in spec.quantities:
        e_at = np.empty((P, spec.times.size))
        steps, kind = distinct_steps(np.asarray(spec.times, float))
        getattr(K, REGISTRY["battery_energy_at"].kernel)(M, alpha, np.ascontiguousarray(a0), np.ascontiguousarray(w),
                                                         battery, status, steps, kind, e_at)
        out["battery_energy_at"] = e_at
    horizon = np.full(P, spec.t90_max) if spec.t90_max else config.T90_HORIZON_DECAYS / np.where(decay > 0, decay, np.inf)
    if {"time_to_90", "efficiency"} & set(spec.quantities):
        t90 = np.empty(P)
        st = np.empty(P, np.int8)
        getattr(K, REGISTRY["time_to_90"].kernel)(M, alpha, np.ascontiguousarray(a0), np.ascontiguousarray(w), battery, status,
                                 charging.FRACTION, horizon, spec.t90_steps, t90, st)
        out["time_to_90"] = t90
        out["status"] = st
    _stack_power(spec, M, b, w, a0, battery, alpha, status, horizon, out)
    return out


def _stack_power(spec, M, b, w, a0, battery, alpha, status, horizon, out):
    """Batched max_average_power(_time) and efficiency (zero temperature) into ``out``."""
    P = b.shape[0]
    b, w, a0 = (np.ascontiguousarray(x) for x in (b, w, a0))
    if {"max_average_power", "max_average_power_time"} & set(spec.quantities):
        power, time, st = np.empty(P), np.empty(P), np.empty(P, np.int8)
        getattr(K, REGISTRY["max_average_power"].kernel)(M, b, alpha, a0, w, battery, status, horizon, spec.t90_steps,
                                                         power, time, st)
        out["max_average_power"], out["max_average_power_time"] = power, time
        out["status"] = np.where(out["status"] == K.OK, st, out["status"]).astype(np.int8)
    if "efficiency" in spec.quantities:
        # omega_L per point from the generator: M_ii = -i(omega_i - omega_L) - (real damping), exactly
        omega_L = np.ascontiguousarray(w[:, 0] + M[:, 0, 0].imag)
        eff = np.empty(P)
        getattr(K, REGISTRY["efficiency"].kernel)(M, b, omega_L, alpha, a0, w, battery, status,
                                                  np.ascontiguousarray(out["time_to_90"]), eff)
        out["efficiency"] = eff


def point_quantities(plan, model, where):
    """One large or thermal network through the registry's definitions (steady_state, simulate, exact t90)."""
    spec = plan.spec
    out = {"status": np.zeros(1, np.int8)}
    point, model = model, model.model
    try:
        ss = steady_state(model)
        energies = ss.energies[None]
    except NoSteadyStateError:
        ss = None
        out["status"][0] = K.NO_STEADY_STATE
        energies = np.full((1, model.n_cells), np.nan)
    out["_energies"] = energies
    out["_battery"] = model.battery
    inputs = Inputs(model, point.state, steady=ss,
                    options={"times": spec.times, "horizon": spec.t90_max, "steps": spec.t90_steps})
    for q in spec.quantities:
        if q in out or REGISTRY[q].reduce is not None or q.startswith("ratio_"):
            continue  # from the steady energies (_store) or the reference (compute_chunk)
        if ss is None and REGISTRY[q].needs != "trace":
            continue
        try:
            value = REGISTRY[q].compute(inputs)
        except NoSteadyStateError as exc:
            raise SweepError(f"{where}: {exc}") from None
        except ChiralnetError as exc:
            raise SweepError(f"{where}: {exc}") from None
        if value is None:  # not reached within the horizon
            out["status"][0] = K.NOT_REACHED
            value = np.nan
        out[q] = np.asarray(value, float)[None]
    return out

