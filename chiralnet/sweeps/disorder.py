"""Disorder ensembles: a sweep axis over random realisations of fabrication disorder.

At every grid point, each of ``realisations`` networks draws its per-cell / per-link parameters around
the point's nominal values, ``value * factor`` with one factor per cell or link:

``"normal"`` (default)
    factor = 1 + spread * xi, xi standard normal. A factor <= 0 would make a rate or frequency zero or
    negative: such a disorder is refused, never clipped. When the expected number of such draws over
    the whole sweep reaches :data:`config.DISORDER_MAX_EXPECTED_NONPOSITIVE` the sweep is refused before it starts
    (naming the parameter, its spread and the odds); a rarer draw that still happens stops the sweep with
    an error naming the parameter, spread, grid point and realisation.
``"uniform"``
    factor = 1 + spread * xi, xi = sqrt 3 (2 u - 1) with u uniform on [0, 1) (unit variance, so ``spread``
    is the relative standard deviation as for ``"normal"``). Refused when spread * sqrt 3 >= 1 for a rate or
    frequency.
``"lognormal"``
    factor = exp(sigma xi - sigma^2 / 2), sigma = sqrt(log(1 + spread^2)), xi standard normal: always
    positive, mean 1 and relative standard deviation ``spread`` exactly. The choice for large spreads.

Spread 0 gives factor 1 exactly (the nominal network). Complex parameters (``drive``, ``J``) are scaled by
the real factor. A number ``drive`` drives only cell 0, so only the charger's drive is disordered.
Disordering ``n_th`` varies the local baths only: the link reservoirs keep their nominal occupation
(disorder ``n_th_link`` for those).

Random numbers
--------------
Grid point p (flat C-order index over the grid) draws from its own stream,
``numpy.random.Generator(PCG64(SeedSequence(seed, spawn_key=(p,))))`` -- the p-th child of
``SeedSequence(seed).spawn`` -- with realisation r the r-th row of ``standard_normal((R, K))``
(``random((R, K))`` for ``"uniform"``), whose K columns are the entries of the disordered parameters in
the order given, one per cell or link. A point is never split across chunks, so a chunked, resumed,
pooled or Dask run draws bitwise the same numbers as an embedded one, and realisation r is the same for
any number of realisations > r (a larger ensemble extends a smaller one). One stream per point rather
than one SeedSequence per realisation: creating a Generator costs ~40 us, more than solving a small
network; rows of one stream are as independent.

Statistics
----------
Each quantity of the result gains a last dimension ``stat``: ``mean``, ``std`` (sample standard
deviation, ddof = 1; 0 for one realisation) and the quantiles asked for (``q5``, ``q50``, ``q95`` by
default: linear interpolation, :func:`numpy.quantile`). A point where a realisation has no steady state
(or does not reach 90 %) has status 1 (2) and NaN statistics: nothing is averaged silently over the
survivors. ``keep_realisations=True`` also keeps every realisation (``SweepResult.realisations``).

Engines
-------
Zero-temperature networks of up to ``config.BATCH_MAX_CELLS`` cells go through the batched
kernels: per structure the exact derivatives of the model with respect to the disordered entries are
taken once (:func:`chiralnet.parametrized.affine_model`, verified against
:func:`chiralnet.arrays.model_from_layout` at random draws), and each realisation's M, drive and omega
are the point's nominal model plus the derivatives times the change (a Numba kernel, no NetworkX, one
fixed order of additions per row, so results do not depend on how realisations are blocked). Larger or
thermal or general Gaussian (``pump``, ``m_th``, ``m_th_link``, ``parametric``) networks build each realisation's model from arrays (:mod:`chiralnet.arrays`, no graph) and go
through ``steady_state`` / ``simulate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from .. import config
from .. import builders
from .._jit import jit
from ..linalg.stability import strong_blocks
from ..errors import ChiralnetError, NetworkError, SweepError

__all__ = ["Disorder", "make_disorder", "factors", "stat_names", "DISTRIBUTIONS", "DEFAULT_QUANTILES"]

DISTRIBUTIONS = ("normal", "uniform", "lognormal")
DEFAULT_QUANTILES = (0.05, 0.5, 0.95)
#: Most realisations, whatever the memory (keeps every count an int64).
MAX_REALISATIONS = 2**31 - 1
#: Keys of the [disorder] section besides the spreads.
OPTION_KEYS = ("realisations", "seed", "distribution", "quantiles", "keep_realisations")
#: Parameter -> attribute of :class:`chiralnet.builders._Layout` holding its per-cell / per-link values.
_LAYOUT = {"omega": "omega", "kappa": "kappa", "gamma": "gamma", "drive": "drive", "n_th": "n_th",
           "n_th_link": "n_th_link", "J": "J", "pump": "pump", "m_th": "m_th", "m_th_link": "m_th_link",
           "parametric": "parametric"}
#: Disordered parameters whose realised values stay complex (the rest are real: rates, frequencies, occupations).
_COMPLEX = ("drive", "J", "pump", "m_th", "m_th_link", "parametric")
_SQRT3 = math.sqrt(3.0)


def stat_names(quantiles) -> tuple:
    """``("mean", "std", "q5", "q50", "q95")`` for quantiles (0.05, 0.5, 0.95): percent, shortest form."""
    return ("mean", "std") + tuple("q" + np.format_float_positional(round(100 * float(q), 10), trim="-")
                                    for q in quantiles)


@dataclass(frozen=True, eq=False)
class Disorder:
    """A validated disorder ensemble (see the module docstring).

    Attributes
    ----------
    spreads : dict
        parameter -> relative spread (>= 0), in the order the random numbers are drawn.
    realisations : int
        Networks drawn per grid point.
    seed : int
        Seed of the :class:`numpy.random.SeedSequence` (>= 0).
    distribution : str
        ``"normal"``, ``"uniform"`` or ``"lognormal"``.
    quantiles : tuple of float
        Quantiles reported besides mean and std, each in [0, 1], increasing.
    keep_realisations : bool
        Keep every realisation's values in the result too.
    """

    spreads: dict
    realisations: int
    seed: int
    distribution: str = "normal"
    quantiles: tuple = DEFAULT_QUANTILES
    keep_realisations: bool = False

    @property
    def stats(self) -> tuple:
        return stat_names(self.quantiles)

    def to_json(self) -> dict:
        return {"spreads": dict(self.spreads), "realisations": self.realisations, "seed": self.seed,
                "distribution": self.distribution, "quantiles": list(self.quantiles),
                "keep_realisations": self.keep_realisations}


def finite_number(v) -> bool:
    """A real number (not bool) that is finite as a float; False for an integer beyond the float range."""
    if isinstance(v, bool) or not isinstance(v, Real):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def _integer(v) -> bool:
    return isinstance(v, Integral) and not isinstance(v, bool)


def make_disorder(spreads, *, realisations=1000, seed=0, distribution="normal", quantiles=DEFAULT_QUANTILES,
                  keep_realisations=False, where="[disorder]") -> Disorder:
    """Check the options of a disorder ensemble (everything that needs no builder) -> :class:`Disorder`."""
    if not isinstance(spreads, dict) or not spreads:
        raise SweepError(f"{where}: give the relative spread of at least one parameter, e.g. "
                         f"{{'kappa': 0.05, 'gamma': 0.05}}, got {spreads!r:.60}")
    clean = {}
    for name, s in spreads.items():
        if not isinstance(name, str):
            raise SweepError(f"{where}: parameter names must be strings, got {name!r:.40}")
        if not finite_number(s) or s < 0:
            raise SweepError(f"{where} {name} = {s!r:.40}: a relative spread must be a finite number >= 0 "
                             "(0.05 is 5 %)")
        clean[name] = float(s)
    if not _integer(realisations) or realisations < 1:
        raise SweepError(f"{where} realisations must be an integer >= 1, got {realisations!r:.40}")
    if realisations > MAX_REALISATIONS:
        raise SweepError(f"{where} realisations = {realisations} is more than {MAX_REALISATIONS}")
    if not _integer(seed) or not 0 <= seed < 2**128:
        raise SweepError(f"{where} seed must be an integer >= 0 (numpy SeedSequence), got {seed!r:.40}")
    if distribution not in DISTRIBUTIONS:
        raise SweepError(f"{where} distribution must be one of {list(DISTRIBUTIONS)}, got {distribution!r:.40}")
    if isinstance(quantiles, (str, bytes)) or not hasattr(quantiles, "__len__"):
        raise SweepError(f"{where} quantiles must be a list of numbers in [0, 1], got {quantiles!r:.60}")
    qs = list(quantiles)
    if not all(finite_number(q) and 0 <= q <= 1 for q in qs):
        raise SweepError(f"{where} quantiles must be numbers in [0, 1], got {qs!r:.60}")
    qs = [float(q) for q in qs]
    if any(b <= a for a, b in zip(qs, qs[1:])) or len(set(stat_names(qs))) != 2 + len(qs):
        raise SweepError(f"{where} quantiles must be distinct and increasing, got {qs!r:.60}")
    if not isinstance(keep_realisations, bool):
        raise SweepError(f"{where} keep_realisations must be true or false, got {keep_realisations!r:.40}")
    return Disorder(clean, int(realisations), int(seed), distribution, tuple(qs), keep_realisations)


def _constrained(info, name) -> bool:
    """Whether a parameter must stay positive (a rate, a frequency, an occupation); complex ones need not."""
    return info.parameters[name].kind in ("positive", "nonneg")


def check_builders(d: Disorder, candidates, where) -> None:
    """Every disordered parameter is one a builder takes per cell or per link (registered builders only)."""
    for bname, fn in candidates:
        info = builders.BUILDERS.get(bname)
        if info is None or info.function is not fn:
            raise SweepError(f"{where}: disorder needs a registered builder whose per-cell and per-link parameters "
                             f"are known ({sorted(n for n, i in builders.BUILDERS.items() if _per_names(i))}); "
                             f"got {bname!r}")
        per = _per_names(info)
        for name in d.spreads:
            if name not in info.parameters:
                raise SweepError(f"{where} {name}: builder {bname!r} has no parameter {name!r}; parameters it takes "
                                 f"per cell or per link: {per}")
            if info.parameters[name].per is None:
                hint = " (chain with n_cells = 2 is the two-cell battery with per-cell arrays)" if bname == "two_cell" else ""
                raise SweepError(f"{where} {name}: builder {bname!r} takes {name!r} as one value for the whole network, "
                                 f"not per cell or per link, so it cannot be disordered; parameters it takes per "
                                 f"cell or per link: {per or 'none'}{hint}")


def _per_names(info) -> list:
    return [k for k, p in info.parameters.items() if p.per is not None]


def check_spreads(d: Disorder, candidates, n_points: int, max_sizes: dict, where) -> None:
    """Refuse spreads that would make rates negative: uniform always, normal when it is likely anywhere.

    ``max_sizes``: builder name -> {"cell": n, "link": n} of its largest network in the grid (None: unknown).
    """
    for name, s in d.spreads.items():
        if s == 0 or d.distribution == "lognormal":
            continue
        for bname, _ in candidates:
            info = builders.BUILDERS[bname]
            if not _constrained(info, name):
                continue
            if d.distribution == "uniform" and s * _SQRT3 >= 1:
                raise SweepError(
                    f"{where} {name} = {s:g}: a uniform disorder of relative spread {s:g} reaches factors "
                    f"1 - {s:g} * sqrt(3) <= 0, which would make {name} negative or zero; use a spread below "
                    f"{1 / _SQRT3:.4f}, or distribution = 'lognormal' (always positive)")
            if d.distribution == "normal":
                sizes = max_sizes.get(bname)
                entries = 1 if sizes is None else sizes[info.parameters[name].per]
                p = 0.5 * math.erfc(1.0 / (s * math.sqrt(2.0)))
                expected = p * float(n_points) * d.realisations * max(1, entries)
                if expected >= config.DISORDER_MAX_EXPECTED_NONPOSITIVE:
                    raise SweepError(
                        f"{where} {name} = {s:g}: with a normal disorder of relative spread {s:g} a factor "
                        f"1 + {s:g} xi is <= 0 with probability {p:.2g} per draw, about {expected:.3g} of the "
                        f"{n_points * d.realisations * max(1, entries)} draws of {name}, which would make it "
                        "negative; clipping is not done: use distribution = 'lognormal' (always positive, same mean "
                        "and relative spread) or a smaller spread")


def factors(d: Disorder, point: int, sizes) -> np.ndarray:
    """The factors of every realisation of grid point ``point`` (flat index): (realisations, K).

    ``sizes`` are the entries (cells or links) of each disordered parameter, in the order of
    ``d.spreads``; column blocks of the result follow that order. Row r is realisation r (see the module
    docstring for the stream it comes from).
    """
    return np.concatenate([f for _, _, f in _blocks_of_rows(d, point, sizes, config.DISORDER_BLOCK_REALISATIONS)])


def _blocks_of_rows(d: Disorder, point: int, sizes, block: int):
    """(r0, r1, factors) for consecutive blocks of a point's realisations, from one stream (no redraws)."""
    sizes = [int(s) for s in sizes]
    K = sum(sizes)
    spread = np.repeat(np.array(list(d.spreads.values()), float), sizes)
    gen = np.random.Generator(np.random.PCG64(np.random.SeedSequence(d.seed, spawn_key=(int(point),))))
    draw = gen.random if d.distribution == "uniform" else gen.standard_normal
    sigma = np.sqrt(np.log1p(spread * spread))
    for r0 in range(0, d.realisations, block):
        r1 = min(d.realisations, r0 + block)
        x = draw((r1 - r0, K))
        if d.distribution == "uniform":
            f = 1.0 + spread * (_SQRT3 * (2.0 * x - 1.0))
        elif d.distribution == "lognormal":
            f = np.exp(sigma * x - 0.5 * sigma * sigma)
        else:
            f = 1.0 + spread * x
        yield r0, r1, f


# ---------------------------------------------------------------------------------------------
# Per structure: the nominal layout at a point, realised layouts, the batched assembly.


@dataclass(eq=False)
class GroupDisorder:
    """What a structural group of a disorder sweep needs at every point (picklable)."""

    builder: str
    names: tuple
    batched: bool = False
    reason: str = ""
    n_cells: int = 0
    # derivative triplets of M (flat index i*N + j), forcing (-i E) and omega w.r.t. the disordered entries
    m_k: np.ndarray | None = None
    m_i: np.ndarray | None = None
    m_v: np.ndarray | None = None
    b_k: np.ndarray | None = None
    b_i: np.ndarray | None = None
    b_v: np.ndarray | None = None
    w_k: np.ndarray | None = None
    w_i: np.ndarray | None = None
    w_v: np.ndarray | None = None


def nominal(builder: str, kw: dict):
    """(layout, options) of a registered topology builder at one point: the checked per-cell / per-link
    arrays (:func:`chiralnet.builders._layout`) and every option's value (defaults filled in)."""
    from ..parametrized import _structure

    lay, _, _, o = _structure(builder, {}, kw)
    info = builders.BUILDERS[builder]
    options = {k: o[k] for k in info.parameters if k not in info.required}
    return lay, options


def sizes_of(lay, names) -> list:
    return [getattr(lay, _LAYOUT[n]).size for n in names]


def theta_of(lay, names) -> np.ndarray:
    """The nominal values of the disordered entries, (K,) complex, in the order of ``names``."""
    parts = [np.asarray(getattr(lay, _LAYOUT[n]), complex) for n in names]
    return np.concatenate(parts) if parts else np.zeros(0, complex)


def realised_layout(builder: str, lay, options: dict, names, values: dict):
    """The checked layout with the disordered parameters set to ``values`` (name -> array)."""
    opts = dict(options)
    for n in names:
        v = values[n]
        opts[n] = v if n in _COMPLEX else v.real.copy()
    if "n_th" in names and "n_th_link" not in names and lay.nonreciprocal and options.get("n_th_link") is None:
        opts["n_th_link"] = lay.n_th_link.copy()  # the links keep their nominal occupation
    return builders._layout(builder, lay.n, (lay.link_u, lay.link_v), **opts)


def split(theta, names, sizes) -> dict:
    out, pos = {}, 0
    for n, s in zip(names, sizes):
        out[n] = theta[pos:pos + s]
        pos += s
    return out


def prepare_group(plan, g, origin) -> None:
    """Check the disorder at a group's first point and set up the batched assembly when it applies.

    Sets ``g.disorder`` (:class:`GroupDisorder`), ``g.batched``, ``g.reason``, ``g.cells``, ``g.battery``.
    """
    from ..arrays import model_from_layout
    from ..parametrized import GENERAL_PARAMETERS, affine_model

    spec = plan.spec
    d = spec.disorder
    names = tuple(d.spreads)
    builder, kw = plan.point_kwargs(origin)
    where = plan.locate(origin)
    gd = GroupDisorder(builder=g.builder, names=names)
    g.disorder = gd
    try:
        lay, options = nominal(g.builder, kw)
        sizes = sizes_of(lay, names)
        for n, s in zip(names, sizes):
            if s == 0:
                raise SweepError(f"{spec.source} [disorder] {n}: the network at {where.split('at ', 1)[-1]} has no "
                                 f"{n!r} values to disorder (J exists only with nonreciprocal = false)")
        theta = theta_of(lay, names)
        values = split(theta * 1.05, names, sizes)  # a realisation at a 5 % change: the builder accepts it
        realised_layout(g.builder, lay, options, names, values)
        model0 = model_from_layout(lay, sparse=False)
    except NetworkError as exc:
        raise SweepError(f"{where}: {exc} (with disorder in {list(names)})") from None
    gd.n_cells = model0.n_cells
    g.cells, g.battery = model0.cells, model0.battery.copy()
    if not spec.run.get("batched", True):
        g.reason = gd.reason = "batched = false"
        return
    if model0.n_cells > config.BATCH_MAX_CELLS or model0.thermal:
        g.reason = gd.reason = "thermal" if model0.thermal else f"{model0.n_cells} cells > BATCH_MAX_CELLS"
        return
    general = [n for n in names if n in GENERAL_PARAMETERS]
    if general:  # the batched assembly moves M and the drive only; a realisation of these is a general network
        g.reason = gd.reason = f"disorder in the general Gaussian terms {general}"
        return
    fixed = {k: v for k, v in {**kw, **options}.items() if k not in names}
    if "n_th" in names and "n_th_link" not in names and lay.nonreciprocal and options.get("n_th_link") is None:
        fixed["n_th_link"] = lay.n_th_link.copy()
    try:
        am = affine_model(g.builder, {n: getattr(lay, _LAYOUT[n]).copy() for n in names}, fixed, sparse=False)
    except ChiralnetError as exc:
        g.reason = gd.reason = f"no affine model ({exc})"
        return
    N = model0.n_cells
    gd.m_k, gd.m_i, gd.m_v = am.dM.k, am.dM.index[0] * N + am.dM.index[1], am.dM.value.astype(complex)
    gd.b_k, gd.b_i, gd.b_v = am.dE.k, am.dE.index[0], -1j * am.dE.value.astype(complex)
    gd.w_k, gd.w_i, gd.w_v = am.domega.k, am.domega.index[0], am.domega.value.astype(complex)
    # verify against the array builder at random realisations (complex J, for example, is not affine in a
    # real factor): otherwise each realisation's model is built
    rng = np.random.default_rng(24680)
    for _ in range(3):
        f = 1.0 + 0.2 * rng.uniform(-1.0, 1.0, theta.size)
        delta = (theta * f - theta)[None]
        M, b, w = assemble(gd, model0.M[None], model0.forcing[None], model0.omega[None], delta)
        ref = model_from_layout(realised_layout(g.builder, lay, options, names, split(theta * f, names, sizes)),
                                sparse=False)
        for label, x, y in (("M", M[0], ref.M), ("drive", b[0], ref.forcing), ("omega", w[0], ref.omega)):
            if np.abs(x - y).max(initial=0.0) > config.ASSEMBLY_RTOL * np.abs(y).max(initial=0.0):
                g.reason = gd.reason = f"{label} is not affine in the disordered parameters"
                return
    gd.batched = g.batched = True


@jit
def _add_triplets(out, k, idx, val, delta, row_base):
    """out[r, idx[t]] += delta[r, k[t]] * val[t] for every triplet t, in triplet order.

    Serial: a few hundred flops per row, less than a parallel launch costs on a busy machine."""
    R = delta.shape[0]
    for r in range(R):
        for t in range(k.shape[0]):
            out[row_base + r, idx[t]] += delta[r, k[t]] * val[t]


def assemble(gd: GroupDisorder, M0, b0, w0, delta):
    """M (P, N, N), forcing (P, N), omega (P, N) of P realisations: nominal (P rows, or 1 broadcast) plus the
    exact derivatives times ``delta`` (P, K) complex, the change of every disordered entry."""
    P = delta.shape[0]
    N = gd.n_cells
    M = np.array(np.broadcast_to(M0.reshape(M0.shape[0], N * N), (P, N * N)), complex)
    b = np.array(np.broadcast_to(b0, (P, N)), complex)
    w = np.array(np.broadcast_to(w0, (P, N)), complex)
    delta = np.ascontiguousarray(delta, complex)
    _add_triplets(M, gd.m_k, gd.m_i, gd.m_v, delta, 0)
    _add_triplets(b, gd.b_k, gd.b_i, gd.b_v, delta, 0)
    _add_triplets(w, gd.w_k, gd.w_i, gd.w_v, delta, 0)
    return M.reshape(P, N, N), b, w.real.copy()


# ---------------------------------------------------------------------------------------------
# Computing one chunk.


def _check_factors(plan, gd, multi, info, theta, f, r0, sizes):
    """Refuse a realisation whose factor would make a rate or frequency <= 0 (never clipped)."""
    spec = plan.spec
    pos = 0
    for n, s in zip(gd.names, sizes):
        if _constrained(info, n) and s:
            block = f[:, pos:pos + s]
            bad = (block <= 0) & (theta[pos:pos + s] != 0)
            if bad.any():
                r, i = (int(x[0]) for x in np.nonzero(bad))
                spread = spec.disorder.spreads[n]
                raise SweepError(
                    f"{plan.locate(multi)}, realisation {r0 + r}: the {spec.disorder.distribution} disorder of "
                    f"{n} (relative spread {spread:g}) drew the factor {block[r, i]:.4g} <= 0 for entry {i}, which "
                    f"would make {n} negative; clipping is not done: use distribution = 'lognormal' (always "
                    "positive) or a smaller spread")
        pos += s


def _values(plan, out):
    """Per-realisation values of every quantity (and the battery energy) from a kernel or point output."""
    from ..observables import QUANTITIES as REGISTRY

    e, batt = out["_energies"], out["_battery"]
    vals = {"status": out["status"], "_battery_energy": REGISTRY["battery_energy"].reduce(e, batt)}
    for q in plan.spec.quantities:
        if REGISTRY[q].reduce is not None:
            vals[q] = REGISTRY[q].reduce(e, batt)
        elif q in out:
            vals[q] = out[q]
    return vals


def block_rows(n_cells: int) -> int:
    """Realisations assembled and solved per kernel launch for networks of ``n_cells`` cells."""
    return int(max(1, min(config.DISORDER_BLOCK_REALISATIONS, config.DISORDER_BLOCK_BYTES // (3 * 16 * n_cells * n_cells))))


def compute_chunk(plan, start: int, stop: int) -> dict:
    """Points start..stop-1 of a disorder sweep -> dict of (n, *value_shape, n_stat) statistics and status
    (and ``<q>__realisations`` (n, *value_shape, R) with keep_realisations)."""
    from ..arrays import model_from_layout
    from ..model import State
    from ..observables.registry import ratio
    from .points import _Point, point_quantities, reference_limits, stack_quantities

    spec = plan.spec
    d = spec.disorder
    R = d.realisations
    flat = np.arange(start, stop)
    multi_all = np.stack(np.unravel_index(flat, spec.shape), axis=1)
    n = flat.size
    per = {q: np.full((n, R) + plan.value_shape(q), np.nan) for q in spec.quantities}
    status = np.zeros((n, R), np.int8)
    battery_energy = np.full((n, R), np.nan)

    def put(i, r0, r1, vals):
        status[i, r0:r1] = vals["status"]
        battery_energy[i, r0:r1] = vals["_battery_energy"]
        for q in spec.quantities:
            if q in vals:
                per[q][i, r0:r1] = vals[q]

    struct = list(plan.struct_axes)
    for i in range(n):
        multi = multi_all[i]
        g = plan.groups[tuple(int(k) for k in multi[struct])]
        gd = g.disorder
        info = builders.BUILDERS[gd.builder]
        _, kw = plan.point_kwargs(multi)
        try:
            lay, options = nominal(gd.builder, kw)
        except NetworkError as exc:
            raise SweepError(f"{plan.locate(multi)}: {exc}") from None
        sizes = sizes_of(lay, gd.names)
        theta = theta_of(lay, gd.names)
        if gd.batched:
            m0 = model_from_layout(lay, sparse=False)
            # the sparsity of every realisation of this point (nominal entries and those the disorder moves):
            # the kernel's stability check depends on the point only, not on how realisations are blocked
            pattern = m0.M != 0
            pattern.reshape(-1)[gd.m_i] = True
            blocks = strong_blocks(pattern)
            rows = block_rows(gd.n_cells)
            for r0, r1, f in _blocks_of_rows(d, flat[i], sizes, rows):
                _check_factors(plan, gd, multi, info, theta, f, r0, sizes)
                delta = theta * f - theta
                M, b, w = assemble(gd, m0.M[None], m0.forcing[None], m0.omega[None], delta)
                a0 = np.zeros_like(b)
                out = stack_quantities(plan, M, b, w, a0, g.battery, blocks)
                put(i, r0, r1, _values(plan, out))
            continue
        for r0, r1, f in _blocks_of_rows(d, flat[i], sizes, config.DISORDER_CHUNK_REALISATIONS_SINGLE):
            _check_factors(plan, gd, multi, info, theta, f, r0, sizes)
            for r in range(r1 - r0):
                where = f"{plan.locate(multi)}, realisation {r0 + r}"
                try:
                    lr = realised_layout(gd.builder, lay, options, gd.names, split(theta * f[r], gd.names, sizes))
                    model = model_from_layout(lr)
                except NetworkError as exc:
                    raise SweepError(f"{where}: {exc}") from None
                point = _Point(model, State(model.cells, np.zeros(model.n_cells, complex)))
                put(i, r0 + r, r0 + r + 1, _values(plan, point_quantities(plan, point, where)))
    if {"ratio_nonreciprocal", "ratio_reciprocal"} & set(spec.quantities):
        nonrec, recip = reference_limits(plan, multi_all)  # of the nominal network at each point
        for q, lim in (("ratio_nonreciprocal", nonrec), ("ratio_reciprocal", recip)):
            if q in spec.quantities:
                per[q] = ratio(battery_energy, np.asarray(lim, float)[:, None])
    res = {"status": _point_status(status)}
    for q in spec.quantities:
        x = np.ascontiguousarray(np.moveaxis(per[q], 1, -1))  # (n, *value_shape, R), realisations contiguous
        res[q] = statistics(x, d.quantiles)
        if d.keep_realisations:
            res[q + REALISATIONS_SUFFIX] = x
    return res


#: Key suffix of the realisations of a quantity in a stored chunk.
REALISATIONS_SUFFIX = "__realisations"


def _point_status(status):
    """Per point: 1 if a realisation has no steady state, else 2 if one did not reach 90 %, else 0."""
    out = np.zeros(status.shape[0], np.int8)
    out[np.any(status == 2, axis=1)] = 2
    out[np.any(status == 1, axis=1)] = 1
    return out


def statistics(x, quantiles) -> np.ndarray:
    """mean, std (ddof = 1) and quantiles of x (..., R) along its last axis -> (..., 2 + len(quantiles)).

    The mean is x_0 + mean(x - x_0), exact when all realisations are equal (spread 0), and the standard
    deviation is taken about it (0 exactly then).
    """
    R = x.shape[-1]
    x0 = x[..., :1]
    mean = x0[..., 0] + np.mean(x - x0, axis=-1)
    dev = x - mean[..., None]
    std = np.sqrt(np.sum(dev * dev, axis=-1) / max(R - 1, 1))
    out = [mean, std]
    if quantiles:
        qs = np.quantile(x, list(quantiles), axis=-1)
        out += list(qs)
    return np.stack(out, axis=-1)
