"""From a :class:`SweepSpec` to computed points: structure groups, batched assembly, chunk compute.

Points that differ only in float parameters usually share one structure (same cells, same sparsity).
Such a group is batched through :class:`chiralnet.parametrized.TabulatedModel`: the model arrays of all
its points are assembled at once from one model per axis value (never one per point), and the assembly
is verified against ``build_model`` at the corners and at random points of the group; a group that fails
falls back to building the model of every point.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from .. import config
from .. import parametrized
from ..linalg.stability import strong_blocks
from ..network import cells as cell_nodes
from ..observables import QUANTITIES as REGISTRY
from ..observables.reference import RATE_KEYS
from ..observables.registry import ratio
from . import disorder as _disorder
from .points import build_point, model_at, point_quantities, rates_at, reference_limits, stack_quantities
from .spec import SweepError, SweepSpec, builder_parameters, resolve_builder

__all__ = ["Plan", "make_plan", "compute_chunk"]



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
    disorder: object = None   # disorder sweeps: the group's _disorder.GroupDisorder


@dataclass(eq=False)
class Plan:
    """Everything a worker needs to compute any chunk of the sweep (picklable)."""

    spec: SweepSpec
    struct_axes: tuple     # positions of non-float axes
    float_axes: tuple      # positions of float axes
    groups: dict           # structural key -> Group
    cells: tuple | None    # cell names when cell_energy is asked for
    defaults: dict         # builder name -> {param: default}
    rates: dict = field(default_factory=dict)  # structural key -> additive two-cell reference rates, or None

    @property
    def shape(self):
        return self.spec.shape

    def value_shape(self, q):
        """Shape of one point's (one realisation's) value of quantity q: (), (n_cells,) or (n_times,)."""
        dim = REGISTRY[q].dim
        if dim == "cell":
            return (len(self.cells),)
        if dim == "time":
            return (self.spec.times.size,)
        return ()

    def extra_shape(self, q):
        """Shape of q's array beyond the grid: the value shape, then ``stat`` in a disorder sweep."""
        d = self.spec.disorder
        return self.value_shape(q) + (() if d is None else (len(d.stats),))

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

    def builder_at(self, multi):
        """(builder function, keyword arguments) at one point (multi-index over the grid)."""
        builder, kw = self.point_kwargs(multi)
        return resolve_builder(builder)[1], kw

    def describe_point(self, multi):
        """``"gamma=0.01, n_cells=4"`` for a multi-index (error and warning messages)."""
        def show(v):
            return repr(v.item() if isinstance(v, np.generic) else v)

        return ", ".join(f"{n}={show(vals[i])}" for (n, vals), i in zip(self.spec.axes, multi))

    def locate(self, multi) -> str:
        """``"file.sweep.toml: at gamma=0.01"`` (no file for a sweep made in Python): error messages."""
        src = self.spec.source
        return ("" if src == "<api>" else f"{src}: ") + f"at {self.describe_point(multi)}"


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
        if spec.disorder is not None:
            _disorder.prepare_group(plan, g, origin)
        elif allow_batch and flt:
            _try_batch(plan, g, origin)
        elif not allow_batch:
            g.reason = "batched = false"
        else:
            g.reason = "no float axis"
        if "cell_energy" in spec.quantities:
            if g.batched:
                cells_seen[key] = g.cells
            else:
                cells_seen[key] = tuple(cell_nodes(build_point(*plan.builder_at(origin), plan.locate(origin))))
    if "cell_energy" in spec.quantities:
        distinct = set(cells_seen.values())
        if len(distinct) > 1:
            raise SweepError(
                f"{spec.source}: cell_energy needs the same cells at every point, but the grid changes them "
                f"(e.g. {sorted(map(len, distinct))} cells); drop cell_energy or do not sweep the size or topology"
            )
        plan.cells = distinct.pop()
    if {"ratio_nonreciprocal", "ratio_reciprocal"} & set(spec.quantities):
        for key in plan.groups:
            origin = np.zeros(len(spec.axes), int)
            origin[list(struct)] = key
            plan.rates[key] = _additive_rates(plan, origin)
    return plan


def _unbatched(spec) -> list:
    """Requested quantities with no batched route (a registry ``kernel``, ``reduce`` or ``cold`` rule; the
    ratios are formed from the battery energy in compute_chunk): their points go through the registry's
    compute (never a silent NaN from a batched group that cannot compute them)."""
    return [q for q in spec.quantities if not q.startswith("ratio_")
            and REGISTRY[q].kernel is None and REGISTRY[q].reduce is None and REGISTRY[q].cold is None]


def _try_batch(plan, g, origin):
    spec = plan.spec
    if _unbatched(spec):
        g.reason = f"no batched kernel for {_unbatched(spec)}"
        return
    m0 = model_at(plan, origin)
    if m0.general:  # the batched kernels hold one phase-insensitive M: they would drop these terms
        g.reason = "general Gaussian (squeezing or parametric terms): pointwise"
        return
    if m0.n_cells > config.BATCH_MAX_CELLS or m0.thermal:
        g.reason = "thermal" if m0.thermal else f"{m0.n_cells} cells > config.BATCH_MAX_CELLS"
        return
    flt = list(plan.float_axes)

    def multi(ci):
        m = origin.copy()
        m[flt] = ci
        return m

    def model_at_axes(ci):
        return m0 if not any(ci) else model_at(plan, multi(ci))

    table, reason = parametrized.TabulatedModel.build(
        model_at_axes, [spec.axes[ax][1] for ax in flt], [spec.axes[ax][0] for ax in flt],
        lambda ci: plan.describe_point(multi(ci)))
    if table is None:
        g.reason = reason
        return
    g.table, g.cells, g.battery = table, table.cells, table.battery
    g.blocks = strong_blocks(table.pattern)
    g.batched = True


def assemble(g: Group, ci):
    """Model arrays of a batched group at float-axis indices ci (P, n_float): M (P,N,N), b, omega, alpha0 (P,N)."""
    return g.table.assemble(ci)


def _additive_rates(plan, origin):
    """Reference rates of a structural group as rates(origin) + sum_k [rates(axis k at its value) - rates(origin)]
    (one network built per axis value, not per point), verified at corners and random points like the
    model assembly; None (build every point) when they are not additive (e.g. optimal xi over two axes)."""
    spec = plan.spec
    flt = list(plan.float_axes)
    r0 = rates_at(plan, origin)
    per_axis = []
    for ax in flt:
        vals = []
        for i in range(len(spec.axes[ax][1])):
            multi = origin.copy()
            multi[ax] = i
            vals.append(rates_at(plan, multi) - r0)
        per_axis.append(np.array(vals))
    rng = np.random.default_rng(54321)
    lens = [len(spec.axes[ax][1]) for ax in flt]
    corners = list(itertools.product(*[sorted({0, n - 1}) for n in lens]))[:16]
    randoms = [tuple(int(rng.integers(n)) for n in lens) for _ in range(config.VERIFY_RANDOM_POINTS)]
    for ci in corners + randoms:
        multi = origin.copy()
        multi[flt] = ci
        want = rates_at(plan, multi)
        got = r0 + sum((d[i] for d, i in zip(per_axis, ci)), np.zeros(len(RATE_KEYS)))
        same_nan = np.array_equal(np.isnan(want), np.isnan(got))
        if not same_nan or np.nanmax(np.abs(want - got), initial=0.0) > config.ASSEMBLY_RTOL * np.nanmax(np.abs(want), initial=0.0):
            return None
    return r0, per_axis


# ---------------------------------------------------------------------------------------------
# Computing one chunk.


def compute_chunk(plan: Plan, start: int, stop: int) -> dict:
    """Compute points start..stop-1 (flat C-order index over the grid) -> dict of arrays (n, ...)."""
    spec = plan.spec
    if spec.disorder is not None:
        return _disorder.compute_chunk(plan, start, stop)
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
            _store(res, idx, stack_quantities(plan, M, b, w, a0, g.battery, g.blocks), spec)
            continue
        small = {}
        stackable = not _unbatched(spec)
        for i in idx:
            where = plan.locate(multi_all[i])
            model = model_at(plan, multi_all[i])
            if stackable and model.n_cells <= config.BATCH_MAX_CELLS and not model.thermal and not model.general:
                sig = (model.n_cells, model.battery.tobytes())
                small.setdefault(sig, []).append((i, model))
            else:
                _store(res, np.array([i]), point_quantities(plan, model, where), spec)
        for items in small.values():
            ii = np.array([i for i, _ in items])
            models = [m for _, m in items]
            M = np.stack([m.M for m in models])
            pattern = np.any(M != 0, axis=0)
            out = stack_quantities(plan, M, np.stack([m.forcing for m in models]),
                                    np.stack([m.omega for m in models]), np.stack([m.alpha0 for m in models]),
                                    models[0].battery, strong_blocks(pattern))
            _store(res, ii, out, spec)
    if {"ratio_nonreciprocal", "ratio_reciprocal"} & set(spec.quantities):
        nonrec, recip = reference_limits(plan, multi_all)
        if "ratio_nonreciprocal" in spec.quantities:
            res["ratio_nonreciprocal"] = ratio(res["_battery_energy"], nonrec)
        if "ratio_reciprocal" in spec.quantities:
            res["ratio_reciprocal"] = ratio(res["_battery_energy"], recip)
    res.pop("_battery_energy", None)
    return res


def _store(res, idx, out, spec):
    e = out["_energies"]
    batt = REGISTRY["battery_energy"].reduce(e, out["_battery"])
    res.setdefault("_battery_energy", np.full(res["status"].shape, np.nan))[idx] = batt
    res["status"][idx] = out["status"]
    for q in spec.quantities:
        if REGISTRY[q].reduce is not None:  # steady quantities: the registry's function of the energies
            res[q][idx] = REGISTRY[q].reduce(e, out["_battery"])
        elif q in out:
            res[q][idx] = out[q]
