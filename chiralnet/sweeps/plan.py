"""From a :class:`SweepSpec` to computed points: structure groups, batched assembly, chunk compute.

Points that differ only in float parameters usually share one structure (same cells, same sparsity).
Such a group is batched through :class:`chiralnet.parametrized.TabulatedModel`: the model arrays of all
its points are assembled at once from one model per axis value (never one per point), and the assembly
is verified against ``build_model`` at the corners and at random points of the group; a group that fails
falls back to building the model of every point.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph

from .. import analytic, parametrized
from ..errors import ChiralnetError, NoSteadyStateError
from ..model import Model, State, build_model, graph_state
from ..network import cells as cell_nodes
from ..solve import simulate, steady_state
from . import _kernels as K
from .spec import _REQUIRED, QUANTITIES, SweepError, SweepSpec, builder_parameters, resolve_builder

__all__ = ["Plan", "make_plan", "compute_chunk", "BATCH_MAX_CELLS"]

#: Networks with at most this many cells (zero temperature) go through the batched kernels.
BATCH_MAX_CELLS = 64
#: Tolerance and sample points of the check of batched groups (:mod:`chiralnet.parametrized`).
ASSEMBLY_RTOL = parametrized.ASSEMBLY_RTOL
VERIFY_RANDOM_POINTS = parametrized.VERIFY_RANDOM_POINTS
#: Default horizon of time_to_90, in units of the slowest decay time of M.
T90_HORIZON_DECAYS = 40.0
FRACTION = 0.9


@dataclass(eq=False)
class Group:
    """Points sharing the values of every non-float (structural) axis."""

    key: tuple
    builder: str
    fn: object
    batched: bool = False
    reason: str = ""
    cells: tuple = ()
    battery: np.ndarray | None = None
    table: parametrized.TabulatedModel | None = None   # the batched assembly of the group's points
    blocks: tuple = ()


@dataclass(eq=False)
class Plan:
    """Everything a worker needs to compute any chunk of the sweep (picklable)."""

    spec: SweepSpec
    struct_axes: tuple     # positions of non-float axes
    float_axes: tuple      # positions of float axes
    groups: dict           # structural key -> Group
    cells: tuple | None    # cell names when cell_energy is asked for
    defaults: dict         # builder name -> {param: default}

    @property
    def shape(self):
        return self.spec.shape

    def extra_shape(self, q):
        dim = QUANTITIES[q][1]
        if dim == "cell":
            return (len(self.cells),)
        if dim == "time":
            return (self.spec.times.size,)
        return ()

    def point_kwargs(self, multi):
        """Builder name and keyword arguments at one point (multi-index over the grid)."""
        kw = dict(self.spec.params)
        builder = self.spec.builder
        for (name, vals), i in zip(self.spec.axes, multi):
            v = vals[i]
            v = float(v) if isinstance(v, np.floating) else v
            if name == "builder":
                builder = v
            else:
                kw[name] = v
        return builder, kw

    def describe_point(self, multi):
        """``"gamma=0.01, n_cells=4"`` for a multi-index (error and warning messages)."""
        def show(v):
            return repr(v.item() if isinstance(v, np.generic) else v)

        return ", ".join(f"{n}={show(vals[i])}" for (n, vals), i in zip(self.spec.axes, multi))

    def locate(self, multi) -> str:
        """``"file.sweep.toml: at gamma=0.01"`` (no file for a sweep made in Python): error messages."""
        src = self.spec.source
        return ("" if src == "<api>" else f"{src}: ") + f"at {self.describe_point(multi)}"


def _build(fn, kw, where):
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
        return self.model.thermal or self.state.Nc is not None


def _model_at(plan, multi) -> _Point:
    builder, kw = plan.point_kwargs(multi)
    _, fn = resolve_builder(builder)
    G = _build(fn, kw, plan.locate(multi))
    try:
        model = build_model(G, sparse=False) if len(cell_nodes(G)) <= BATCH_MAX_CELLS else build_model(G)
        return _Point(model, graph_state(G, model.cells))
    except ChiralnetError as exc:
        raise SweepError(f"{plan.locate(multi)}: {exc}") from None


def make_plan(spec: SweepSpec) -> Plan:
    """Group the grid by structure, assemble and verify batched groups. Raises before any work is done."""
    struct = tuple(i for i, (_, v) in enumerate(spec.axes) if not isinstance(v, np.ndarray))
    flt = tuple(i for i, (_, v) in enumerate(spec.axes) if isinstance(v, np.ndarray))
    defaults = {}
    builder_names = dict(spec.axes).get("builder", [spec.builder])
    for b in builder_names:
        name, fn = resolve_builder(b)
        defaults[name] = builder_parameters(fn, name)
    plan = Plan(spec=spec, struct_axes=struct, float_axes=flt, groups={}, cells=None, defaults=defaults)
    allow_batch = spec.run.get("batched", True)
    cells_seen = {}
    for key in itertools.product(*(range(len(spec.axes[i][1])) for i in struct)):
        origin = np.zeros(len(spec.axes), int)
        origin[list(struct)] = key
        builder, _ = plan.point_kwargs(origin)
        bname, fn = resolve_builder(builder)
        g = Group(key=key, builder=bname, fn=fn)
        plan.groups[key] = g
        if allow_batch and flt:
            _try_batch(plan, g, origin)
        elif not allow_batch:
            g.reason = "batched = false"
        else:
            g.reason = "no float axis"
        if "cell_energy" in spec.quantities:
            if g.batched:
                cells_seen[key] = g.cells
            else:
                bl, kw = plan.point_kwargs(origin)
                cells_seen[key] = tuple(cell_nodes(_build(resolve_builder(bl)[1], kw, plan.locate(origin))))
    if "cell_energy" in spec.quantities:
        distinct = set(cells_seen.values())
        if len(distinct) > 1:
            raise SweepError(
                f"{spec.source}: cell_energy needs the same cells at every point, but the grid changes them "
                f"(e.g. {sorted(map(len, distinct))} cells); drop cell_energy or do not sweep the size or topology"
            )
        plan.cells = distinct.pop()
    _check_limits(plan)
    return plan


def _try_batch(plan, g, origin):
    spec = plan.spec
    m0 = _model_at(plan, origin)
    if m0.n_cells > BATCH_MAX_CELLS or m0.thermal:
        g.reason = "thermal" if m0.thermal else f"{m0.n_cells} cells > BATCH_MAX_CELLS"
        return
    flt = list(plan.float_axes)

    def multi(ci):
        m = origin.copy()
        m[flt] = ci
        return m

    def model_at(ci):
        return m0 if not any(ci) else _model_at(plan, multi(ci))

    table, reason = parametrized.TabulatedModel.build(
        model_at, [spec.axes[ax][1] for ax in flt], [spec.axes[ax][0] for ax in flt],
        lambda ci: plan.describe_point(multi(ci)))
    if table is None:
        g.reason = reason
        return
    g.table, g.cells, g.battery = table, table.cells, table.battery
    g.blocks = _blocks(table.pattern)
    g.batched = True


def assemble(g: Group, ci):
    """Model arrays of a batched group at float-axis indices ci (P, n_float): M (P,N,N), b, omega, alpha0 (P,N)."""
    return g.table.assemble(ci)


def _blocks(pattern):
    """Strongly connected blocks of a boolean (N, N) sparsity pattern -> (blk_ptr, blk_idx) int64."""
    off = pattern.copy()
    np.fill_diagonal(off, False)
    nb, label = csgraph.connected_components(sp.csr_array(off.astype(float)), directed=True, connection="strong")
    order = np.argsort(label, kind="stable").astype(np.int64)
    ptr = np.r_[0, np.cumsum(np.bincount(label, minlength=nb))].astype(np.int64)
    return ptr, order


def _limit_values(plan, multi_all, name) -> list:
    """Per-point values of a builder parameter: swept, fixed, or the builder's default (None if it has none)."""
    spec = plan.spec
    dims = spec.dims
    n = multi_all.shape[0]
    if name in dims:
        vals = spec.axes[dims.index(name)][1]
        return [vals[i] for i in multi_all[:, dims.index(name)]]
    if name in spec.params:
        return [spec.params[name]] * n
    if "builder" in dims:
        names = spec.axes[dims.index("builder")][1]
        vals = [plan.defaults[names[i]].get(name) for i in multi_all[:, dims.index("builder")]]
    else:
        vals = [plan.defaults[resolve_builder(spec.builder)[0]].get(name)] * n
    return [None if v is _REQUIRED else v for v in vals]


_LIMIT_PARAMS = ("omega", "drive", "gamma")


def _check_limits(plan):
    spec = plan.spec
    if not {"ratio_nonreciprocal", "ratio_reciprocal"} & set(spec.quantities):
        return
    for name, value in spec.params.items():
        if name in _LIMIT_PARAMS + ("kappa", "kappa_a", "kappa_b", "J") and np.ndim(value) > 0:
            raise SweepError(f"{spec.source}: the two-cell ratios need one value of {name!r}, but [base] gives one "
                             "per cell or link; drop ratio_nonreciprocal/ratio_reciprocal or give a number")
    for bname, defaults in plan.defaults.items():
        have = set(defaults) | set(spec.params) | set(spec.dims)
        need = set(_LIMIT_PARAMS)
        if not ({"kappa"} <= have or {"kappa_a", "kappa_b"} <= have):
            need.add("kappa")
        missing = sorted(need - have)
        if missing:
            raise SweepError(
                f"{spec.source}: the two-cell ratios need the rates {missing}, which builder {bname!r} lacks; "
                "drop ratio_nonreciprocal/ratio_reciprocal or use a builder with omega, drive, gamma, kappa"
            )


def two_cell_limits(plan, multi_all):
    """Analytic steady battery energies of the two-cell system with each point's rates: (nonrec, recip) (P,).

    The rates are the point's builder parameters: omega, |drive| = E, gamma = Gamma, kappa_a and kappa_b
    (or kappa for both); the nonreciprocal limit uses optimal couplings when the point has optimal=True,
    the reciprocal one J (or gamma/2 when J is unset, as the builders do).
    """
    def get(name):
        return _limit_values(plan, multi_all, name)

    def as_float(x):
        return np.array([np.nan if v is None else abs(complex(v)) for v in x], float)

    omega, E, gamma = as_float(get("omega")), as_float(get("drive")), as_float(get("gamma"))
    kappa = get("kappa")
    # per point: kappa_a / kappa_b where the builder has them (two_cell), else kappa for both
    ka = as_float([k if v is None else v for v, k in zip(get("kappa_a"), kappa)])
    kb = as_float([k if v is None else v for v, k in zip(get("kappa_b"), kappa)])
    optimal = np.array([bool(v) for v in get("optimal")])
    J = np.array([g / 2 if v is None else abs(complex(v)) for v, g in zip(get("J"), gamma)], float)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = np.where(optimal, np.sqrt(ka / kb), 1.0)
        nonrec = analytic.steady_battery_energy_nonreciprocal(
            omega=omega, E=E, gamma=gamma, Lambda_a=xi * gamma + ka, Lambda_b=gamma / xi + kb)
        recip = analytic.steady_battery_energy_reciprocal(omega=omega, E=E, J=J, kappa_a=ka, kappa_b=kb)
    return nonrec, recip


# ---------------------------------------------------------------------------------------------
# Computing one chunk.


def _stack_quantities(plan, M, b, w, a0, battery, blocks):
    """Batched kernels on a stack of P same-size small networks -> dict of (P, ...) arrays."""
    spec = plan.spec
    P, N = b.shape
    M = np.ascontiguousarray(M, complex)
    alpha = np.empty((P, N), complex)
    decay = np.empty(P)
    status = np.empty(P, np.int8)
    K.steady_batch(M, np.ascontiguousarray(b), blocks[0], blocks[1], alpha, decay, status)
    energies = w * (alpha.real**2 + alpha.imag**2)
    out = {"status": status, "_energies": energies, "_battery": battery}
    if "battery_energy_at" in spec.quantities:
        e_at = np.empty((P, spec.times.size))
        K.battery_energy_at_batch(M, alpha, np.ascontiguousarray(a0), np.ascontiguousarray(w), battery, status,
                                  spec.times, e_at)
        out["battery_energy_at"] = e_at
    if "time_to_90" in spec.quantities:
        horizon = np.full(P, spec.t90_max) if spec.t90_max else T90_HORIZON_DECAYS / np.where(decay > 0, decay, np.inf)
        t90 = np.empty(P)
        st = np.empty(P, np.int8)
        K.time_to_fraction_batch(M, alpha, np.ascontiguousarray(a0), np.ascontiguousarray(w), battery, status,
                                 FRACTION, horizon, spec.t90_steps, t90, st)
        out["time_to_90"] = t90
        out["status"] = st
    return out


def _point_quantities(plan, model, where):
    """One large or thermal network through steady_state / simulate."""
    spec = plan.spec
    if "time_to_90" in spec.quantities:
        raise SweepError(
            f"{where}: time_to_90 is computed for zero-temperature networks of at most {BATCH_MAX_CELLS} cells "
            f"(this one: {model.n_cells} cells{', thermal' if model.thermal else ''}); drop time_to_90"
        )
    out = {"status": np.zeros(1, np.int8)}
    point, model = model, model.model
    try:
        ss = steady_state(model)
        energies = ss.energies[None]
    except NoSteadyStateError:
        out["status"][0] = K.NO_STEADY_STATE
        energies = np.full((1, model.n_cells), np.nan)
    out["_energies"] = energies
    out["_battery"] = model.battery
    if "battery_energy_at" in spec.quantities:
        try:
            times = np.asarray(spec.times, float)
            at_zero = times[0] == 0.0  # the initial state is at t = 0: start there, drop it if not asked
            run = simulate(model, times if at_zero else np.r_[0.0, times], state0=point.state)
            energy = run.battery_energy if at_zero else run.battery_energy[1:]
            out["battery_energy_at"] = energy[None]
        except ChiralnetError as exc:
            raise SweepError(f"{where}: {exc}") from None
    return out


def compute_chunk(plan: Plan, start: int, stop: int) -> dict:
    """Compute points start..stop-1 (flat C-order index over the grid) -> dict of arrays (n, ...)."""
    spec = plan.spec
    flat = np.arange(start, stop)
    multi_all = np.stack(np.unravel_index(flat, spec.shape), axis=1) if spec.shape else np.zeros((0, 0), int)
    n = flat.size
    res = {q: np.full((n,) + plan.extra_shape(q), np.nan) for q in spec.quantities}
    res["status"] = np.zeros(n, np.int8)
    struct = list(plan.struct_axes)
    flt = list(plan.float_axes)
    if struct:
        sub = multi_all[:, struct]
        _, first, inverse = np.unique(np.ravel_multi_index(sub.T, [spec.shape[i] for i in struct]),
                                      return_index=True, return_inverse=True)
        by_key = {tuple(sub[f]): np.flatnonzero(inverse == k) for k, f in enumerate(first)}
    else:
        by_key = {(): np.arange(n)}
    for key, idx in by_key.items():
        g = plan.groups[tuple(int(k) for k in key)]
        if g.batched:
            M, b, w, a0 = assemble(g, multi_all[idx][:, flt])
            _store(res, idx, _stack_quantities(plan, M, b, w, a0, g.battery, g.blocks), spec)
            continue
        small = {}
        for i in idx:
            where = plan.locate(multi_all[i])
            model = _model_at(plan, multi_all[i])
            if model.n_cells <= BATCH_MAX_CELLS and not model.thermal:
                sig = (model.n_cells, model.battery.tobytes())
                small.setdefault(sig, []).append((i, model))
            else:
                _store(res, np.array([i]), _point_quantities(plan, model, where), spec)
        for items in small.values():
            ii = np.array([i for i, _ in items])
            models = [m for _, m in items]
            M = np.stack([m.M for m in models])
            pattern = np.any(M != 0, axis=0)
            out = _stack_quantities(plan, M, np.stack([m.forcing for m in models]),
                                    np.stack([m.omega for m in models]), np.stack([m.alpha0 for m in models]),
                                    models[0].battery, _blocks(pattern))
            _store(res, ii, out, spec)
    if {"ratio_nonreciprocal", "ratio_reciprocal"} & set(spec.quantities):
        nonrec, recip = two_cell_limits(plan, multi_all)
        with np.errstate(divide="ignore", invalid="ignore"):
            if "ratio_nonreciprocal" in spec.quantities:
                res["ratio_nonreciprocal"] = res["_battery_energy"] / nonrec
            if "ratio_reciprocal" in spec.quantities:
                res["ratio_reciprocal"] = res["_battery_energy"] / recip
    res.pop("_battery_energy", None)
    return res


def _store(res, idx, out, spec):
    e = out["_energies"]
    batt = e[:, out["_battery"]].sum(axis=1)
    res.setdefault("_battery_energy", np.full(res["status"].shape, np.nan))[idx] = batt
    res["status"][idx] = out["status"]
    for q in spec.quantities:
        if q == "battery_energy":
            res[q][idx] = batt
        elif q == "total_energy":
            res[q][idx] = e.sum(axis=1)
        elif q == "cell_energy":
            res[q][idx] = e
        elif q in out:
            res[q][idx] = out[q]
