"""Optimise a network's parameters: exact adjoint gradients plus SciPy, a budget, multi-start.

Objectives and how they are differentiated:

- a steady-state quantity of :data:`chiralnet.design.adjoint.GRADIENT_QUANTITIES` (energies,
  ergotropies, the two-cell ratios): exact adjoint gradients (:func:`chiralnet.gradient`);
- any other scalar steady-state quantity of :data:`chiralnet.observables.QUANTITIES` (one that has no
  adjoint yet), and a user callable ``f(steady_state) -> float``: the value from the steady state,
  the gradient by **central finite differences** of that value (two steady solves per parameter entry;
  step :data:`config.OPTIMIZE_FD_STEP` times the bounds' width), labelled ``jac_source = "finite-differences"``;
- ``time_to_90`` (exact time to 90% of the steady battery energy): **derivative-free**, SciPy's
  Powell method with bounds (Nelder-Mead on request); with a budget, SLSQP on central finite differences
  of the exact t90 (labelled ``jac_source = "finite-differences"``).

Methods (``method=``): ``"L-BFGS-B"`` (default without a budget), ``"SLSQP"`` (default with a budget up
to :data:`config.OPTIMIZE_SLSQP_MAX_VARIABLES` variables), ``"SPG"`` (spectral projected gradient with a non-monotone line
search and an exact projection onto the box and the budget's hyperplane; default with a budget above that
size, where SLSQP's dense O(n^2) quasi-Newton matrix is too large), ``"trust-constr"``, ``"Powell"``,
``"Nelder-Mead"``, and ``"multistart"``: the default local method from ``x0`` and from ``n_starts - 1``
random points drawn uniformly in the bounds (projected onto the budget), the best one kept (for small
problems with several optima).

General Gaussian parameters (``pump``, ``m_th``, ``m_th_link``, ``parametric``) are optimised along their real
axis (real bounds; the adjoint gradient's real entries). Bounds of ``m_th`` (``m_th_link``) past
|m|^2 <= n (n + 1) of a fixed ``n_th`` (``n_th_link``) are refused before the first evaluation.

Variables are scaled to [0, 1] across their bounds and the objective by its size at the start, so one
tolerance suits rates of 1e-3 and frequencies of 1.

**No steady state.** A trial point whose network has no steady state is *not* penalised: the run stops
with :class:`~chiralnet.errors.NoSteadyStateError` naming the parameter values at that point (narrow the
bounds there); so does a pump or parametric link above its threshold. A builder that rejects a point inside
the bounds stops the run the same way (:class:`~chiralnet.errors.ChiralnetError` naming the point).
"""

from __future__ import annotations

import math
import time
from numbers import Real

import numpy as np
import scipy.optimize as so

from .. import config
from ..checks import array, count, flag, number
from ..errors import ChiralnetError, NoSteadyStateError
from .adjoint import GRADIENT_QUANTITIES, _check_point, problem, refuse_time_dependent, value_and_gradient

__all__ = ["optimize", "OptimizeResult", "OPTIMIZERS", "project_budget"]

#: Local methods by name (``"multistart"`` runs the default one from several starts).
OPTIMIZERS = ("L-BFGS-B", "SLSQP", "SPG", "trust-constr", "Powell", "Nelder-Mead", "multistart")


class OptimizeResult(so.OptimizeResult):
    """The result of :func:`optimize`, in SciPy's style (attributes and dict keys).

    Attributes
    ----------
    x : dict
        The optimised parameters: name -> float or ndarray.
    fun : float
        The objective at ``x`` in its own units (not negated).
    success : bool
    message : str
    nit, nfev : int
        Iterations (summed over starts) and objective evaluations.
    graph : networkx.DiGraph
        The optimised network (the base built at ``x``).
    history : list of dict
        One entry per iteration: ``{"iteration", "fun", "x"}`` (the start is iteration 0).
    x0 : dict
        The start.
    fun0 : float
        The objective at the start.
    jac : dict or None
        d objective / d parameter at ``x`` (None for derivative-free runs).
    jac_source : str
        ``"adjoint"``, ``"finite-differences"`` or ``"none"``.
    method, objective : str
    maximize : bool
    starts : list of float
        Multi-start only: the objective each start reached.
    """


# ---------------------------------------------------------------------------------------------
# Checking the input.


def _check_objective(objective, maximize):
    from ..observables import QUANTITIES

    if maximize is not None:
        maximize = flag(maximize, "maximize", "optimize")
    if callable(objective):
        name = getattr(objective, "__name__", "callable")
        return name, "callable", (True if maximize is None else maximize)
    if not isinstance(objective, str):
        raise ChiralnetError(f"optimize: objective must be a quantity name or a callable f(steady_state), got {objective!r}")
    if objective not in QUANTITIES:
        raise ChiralnetError(f"optimize: unknown objective {objective!r}; valid: {sorted(_steady_objectives())} "
                             "or a callable f(steady_state)")
    q = QUANTITIES[objective]
    if objective != "time_to_90" and (q.needs != "steady" or q.dim is not None):
        raise ChiralnetError(f"optimize: objective {objective!r} is not a scalar steady-state quantity "
                             f"({'per ' + q.dim if q.dim else 'it needs a time trace'}); valid: "
                             f"{sorted(_steady_objectives())} or a callable f(steady_state)")
    kind = "adjoint" if objective in GRADIENT_QUANTITIES else "t90" if objective == "time_to_90" else "registry"
    if maximize is not None and not isinstance(maximize, (bool, np.bool_)):
        raise ChiralnetError(f"optimize: maximize must be True, False or None, got {maximize!r}")
    return objective, kind, (q.direction == "max" if maximize is None else bool(maximize))


def _steady_objectives():
    from ..observables import QUANTITIES

    return [n for n, q in QUANTITIES.items() if (q.needs == "steady" and q.dim is None) or n == "time_to_90"]


def _pair(name, value):
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ChiralnetError(f"optimize: bounds of {name!r} must be a pair (low, high), got {value!r}")
    lo, hi = value
    for v in (lo, hi):
        try:
            ok = not isinstance(v, (bool, np.bool_)) and isinstance(v, Real) and math.isfinite(v)
        except OverflowError:  # an integer beyond the float range
            ok = False
        if not ok:
            raise ChiralnetError(f"optimize: bounds of {name!r} must be finite numbers that a float holds, got "
                                 f"{value!r}"[:300])
    if not lo < hi:
        raise ChiralnetError(f"optimize: bounds of {name!r} need low < high, got ({lo}, {hi})")
    return float(lo), float(hi)


def _layout(base, bounds, params, x0, budget):
    """(name, fn, fixed params, names, shapes, lows, highs, theta0) from the user's arguments."""
    from ..builders import BUILDERS
    from ..parametrized import AFFINE_PARAMETERS
    from ..builders import builder_parameters, resolve_builder

    name, fn = resolve_builder(base, "optimize: base")
    known = builder_parameters(fn, name)
    registry = name in BUILDERS and BUILDERS[name].function is fn
    for label, value in (("params", params), ("x0", x0), ("budget", budget)):
        if value is not None and not isinstance(value, dict):
            raise ChiralnetError(f"optimize: {label} must be a dict keyed by parameter name, got {type(value).__name__}")
    params = dict(params or {})
    refuse_time_dependent(params, "optimize")
    x0 = dict(x0 or {})
    if not isinstance(bounds, dict) or not bounds:
        raise ChiralnetError("optimize: bounds must be a non-empty dict parameter -> (low, high)")
    for where, keys in (("bounds", bounds), ("params", params), ("x0", x0)):
        for k in keys:
            if k not in known:
                raise ChiralnetError(f"optimize: {where} names {k!r}, which the base {name!r} does not take; its "
                                     f"parameters are {sorted(known)}")
    for k in x0:
        if k not in bounds:
            raise ChiralnetError(f"optimize: x0 gives {k!r}, which has no bounds (is not optimised); add bounds for it")
    if registry:
        for k in bounds:
            if k not in AFFINE_PARAMETERS[name]:
                raise ChiralnetError(f"optimize: {k!r} is structural (an integer or a flag) in {name!r} and cannot be "
                                     f"optimised; continuous: {list(AFFINE_PARAMETERS[name])}")
    budget = dict(budget or {})
    for k, total in budget.items():
        if k not in bounds:
            raise ChiralnetError(f"optimize: budget on {k!r}, which is not optimised (give bounds for it)")
        number(total, f"budget of {k!r}", "optimize")
    names, shapes, lows, highs, starts = [], {}, [], [], []
    fixed = {k: v for k, v in params.items() if k not in bounds}
    for k, b in bounds.items():
        lo, hi = _pair(k, b)
        start = x0.get(k, params.get(k))
        if start is not None:
            arr = array(start, f"the start of {k!r}", "optimize")
            if arr.ndim > 1:
                raise ChiralnetError(f"optimize: the start of {k!r} must be a finite number or 1-D array, got {start!r}")
            shape = arr.shape
        else:
            shape = ()
            if registry and (k in budget) and BUILDERS[name].parameters[k].per is not None:
                length = BUILDERS[name].length(k, **fixed)
                shape = (length,) if length is not None else ()
            default = known.get(k)
            if isinstance(default, Real) and not isinstance(default, bool) and lo <= default <= hi:
                arr = np.full(shape, float(default))
            else:
                arr = np.full(shape, 0.5 * (lo + hi))
        if np.any(arr < lo) or np.any(arr > hi):
            raise ChiralnetError(f"optimize: the start of {k!r} ({_show(arr)}) is outside its bounds ({lo}, {hi})")
        if registry and k in ("m_th", "m_th_link"):
            _check_squeezing_bounds(k, lo, hi, {**BUILDERS[name].defaults, **params}, bounds)
        names.append(k)
        shapes[k] = shape
        size = int(np.prod(shape, dtype=int))
        lows.append(np.full(size, lo))
        highs.append(np.full(size, hi))
        starts.append(np.broadcast_to(arr, shape).ravel().astype(float))
        if k in budget:
            total = float(budget[k])
            if shape == ():
                raise ChiralnetError(f"optimize: budget on {k!r}, a single number: it would fix it to {total}; a "
                                     "budget shares a total over an array parameter (give x0 or params an array)")
            if not size * lo <= total <= size * hi:
                raise ChiralnetError(f"optimize: budget of {k!r} = {total} is outside the bounds' reach "
                                     f"[{size * lo}, {size * hi}] ({size} entries in ({lo}, {hi}))")
    return name, fn, fixed, tuple(names), shapes, np.concatenate(lows), np.concatenate(highs), np.concatenate(starts), budget


def _check_squeezing_bounds(key, lo, hi, kwargs, bounds) -> None:
    """ChiralnetError when the bounds of a squeezed bath's ``m_th`` (or a link reservoir's ``m_th_link``) reach
    past |m|^2 <= n (n + 1) of its fixed occupation (``n_th``; ``n_th_link``, by default ``n_th``): no point
    there is a state. With the occupation optimised too the builder checks each trial point instead."""
    occ_key = "n_th" if key == "m_th" or kwargs.get("n_th_link") is None else "n_th_link"
    if occ_key in bounds:
        return
    occ = kwargs.get(occ_key)
    occ = np.asarray(0.0 if occ is None else occ, float)
    reach = max(abs(lo), abs(hi))
    allowed = float(np.min(np.sqrt(occ * (occ + 1))))
    if reach > allowed * (1 + 1e-12):
        raise ChiralnetError(f"optimize: bounds of {key!r} reach |{key}| = {reach:.10g}, but a squeezed bath needs "
                             f"|{key}|^2 <= {occ_key} ({occ_key} + 1), so |{key}| <= {allowed:.10g} at {occ_key} = "
                             f"{_show(occ)}; narrow the bounds to within +-{allowed:.10g} or raise {occ_key!r}")


def _show(v):
    v = np.asarray(v)
    if v.ndim == 0:
        return f"{float(v):.6g}"
    if v.size <= 6:
        return "[" + ", ".join(f"{x:.6g}" for x in v) + "]"
    return f"[{v.size} values in {v.min():.6g}..{v.max():.6g}, sum {v.sum():.6g}]"


def project_budget(x, lo, hi, total):
    """Euclidean projection of x onto {lo <= x <= hi, sum(x) = total}: x - s clipped, s by bisection."""
    x = np.asarray(x, float)
    a, b = (x - hi).min(), (x - lo).max()          # sum(clip(x - s)) is n*hi at s = a and n*lo at s = b
    for _ in range(200):
        s = 0.5 * (a + b)
        if np.clip(x - s, lo, hi).sum() > total:
            a = s
        else:
            b = s
        if b - a <= 1e-15 * max(1.0, abs(a), abs(b)):
            break
    out = np.clip(x - 0.5 * (a + b), lo, hi)
    # remove the last rounding from the free entries
    free = (out > lo) & (out < hi)
    if free.any():
        out[free] += (total - out.sum()) / free.sum()
    return out


# ---------------------------------------------------------------------------------------------
# The objective.


class _Objective:
    """f(theta) and its gradient in the user's units, with the history and error reporting."""

    def __init__(self, base_name, fn, fixed, names, shapes, objective, kind, maximize):
        self.base_name, self.fn, self.fixed = base_name, fn, fixed
        self.names, self.shapes = names, shapes
        self.objective, self.kind, self.maximize = objective, kind, maximize
        self.slices, pos = {}, 0
        for n in names:
            size = int(np.prod(shapes[n], dtype=int))
            self.slices[n] = slice(pos, pos + size)
            pos += size
        self.size = pos
        self.nfev = 0
        self._cache = {}
        self._am = None

    def point(self, theta) -> dict:
        return {n: (float(theta[self.slices[n]][0]) if self.shapes[n] == () else np.array(theta[self.slices[n]]))
                for n in self.names}

    def describe(self, theta) -> str:
        return ", ".join(f"{n}={_show(v)}" for n, v in self.point(theta).items())

    def graph(self, theta):
        return self.fn(**self.fixed, **self.point(theta))

    def _guard(self, theta, call):
        try:
            return call()
        except NoSteadyStateError as exc:
            raise NoSteadyStateError(f"optimize: no steady state at {self.describe(theta)} ({exc}); narrow the "
                                     "bounds so the network stays stable") from None
        except ChiralnetError as exc:
            raise type(exc)(f"optimize: at {self.describe(theta)}: {exc}") from None

    def _problem(self, theta):
        point = self.point(theta)
        am = self._am
        if am is not None:  # a registered builder, Q affine: reuse the derivatives, move M, E, Q, omega
            from .adjoint import Problem

            prob = Problem(am.names, am.slices, am.shapes, theta.copy(), am.model_at(theta), am.dM, am.dE, am.dQ,
                           am.domega, "affine")
            if self.objective.startswith("ratio_"):
                from .adjoint import _layout_rates

                prob.rates_fn = lambda: _layout_rates(self.base_name, point, self.fixed, am)
            return prob
        prob = problem(self.fn if self.base_name not in _registry() else self.base_name, point, self.fixed,
                       where="optimize")
        return prob

    def prepare(self, theta):
        """Build the affine model once when it can be reused (registered builder, Q affine in the parameters)."""
        from ..builders import BUILDERS
        from ..parametrized import affine_model

        if self.kind == "adjoint" and self.base_name in BUILDERS and BUILDERS[self.base_name].function is self.fn:
            point = self.point(theta)
            if not (self.base_name == "two_cell" and self.fixed.get("optimal")):
                am = self._guard(theta, lambda: affine_model(self.base_name, _check_point(point, "optimize"), self.fixed))
                if am.q_affine and not am.general:  # a general model is rebuilt at each point
                    self._am = am

    def value_grad(self, theta):
        """(value in its own units, gradient or None)."""
        key = theta.tobytes()
        if key in self._cache:
            return self._cache[key]
        self.nfev += 1
        if self.kind == "adjoint":
            value, grad = self._guard(theta, lambda: value_and_gradient(self._problem(theta), self.objective))
            out = (value, grad[: self.size])   # a complex general parameter's imaginary parts come after: its real part is optimised
        else:
            out = (self._guard(theta, lambda: self._value(theta)), None)
        if not np.isfinite(out[0]):
            raise ChiralnetError(f"optimize: the objective {self.objective!r} is not finite at {self.describe(theta)}")
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = out
        return out

    def _value(self, theta):
        from ..observables import evaluate
        from ..solve import steady_state

        G = self.graph(theta)
        if self.kind == "callable":
            v = self.objective_fn(steady_state(G))
        else:
            v = evaluate([self.objective], G)[self.objective]
        if v is None or isinstance(v, bool) or not np.isscalar(v) and np.ndim(v) != 0:
            raise ChiralnetError(f"optimize: the objective must give one number, got {v!r}")
        return float(v)


def _registry():
    from ..builders import BUILDERS

    return BUILDERS


# ---------------------------------------------------------------------------------------------
# SPG: spectral projected gradient (Birgin, Martinez and Raydan 2000) for a box and a budget.


def _spg(fun_grad, x, project, maxiter, gtol, callback, memory=10):
    x = project(x)
    f, g = fun_grad(x)
    fs = [f]
    step = 1.0 / max(np.abs(project(x - g) - x).max(), 1e-300)
    nit, msg, ok = 0, "maximum iterations reached", False
    for nit in range(1, maxiter + 1):
        d = project(x - step * g) - x
        pg = np.abs(project(x - g) - x).max()
        if pg <= gtol:
            ok, msg, nit = True, "projected gradient below tolerance", nit - 1
            break
        fmax, t, gd = max(fs[-memory:]), 1.0, float(g @ d)
        while True:
            xn = x + t * d
            fn, gn = fun_grad(xn)
            if fn <= fmax + 1e-4 * t * gd or t < 1e-12:
                break
            t = max(0.1 * t, min(0.9 * t, -0.5 * t * t * gd / (fn - f - t * gd)))
        s, y = xn - x, gn - g
        sy = float(s @ y)
        step = min(1e10, max(1e-10, float(s @ s) / sy)) if sy > 0 else 1e10
        if abs(fn - f) <= 1e-13 * max(1.0, abs(f)) and np.abs(s).max() <= 1e-12:
            x, f, g = xn, fn, gn
            ok, msg = True, "no further progress (relative change below 1e-13)"
            callback(x)
            break
        x, f, g = xn, fn, gn
        fs.append(f)
        callback(x)
    return so.OptimizeResult(x=x, fun=f, jac=g, nit=nit, success=ok, message=msg)


# ---------------------------------------------------------------------------------------------
# optimize


def optimize(base, bounds: dict, objective="battery_energy", params: dict | None = None, budget: dict | None = None,
             maximize: bool | None = None, method: str | None = None, x0: dict | None = None, *,
             n_starts: int | None = None, maxiter: int | None = None, tol: float | None = None, seed: int = 0,
             progress=None) -> OptimizeResult:
    """Optimise the parameters of a network: exact gradients (adjoint) and SciPy, a budget, multi-start.

    Parameters
    ----------
    base : str or callable
        As in :func:`chiralnet.sweep`: a builder name, ``"module:function"`` or a callable returning a network.
    bounds : dict
        Parameter -> ``(low, high)``, the parameters optimised. An array parameter (one value per cell or
        link) has these bounds on every entry; its size comes from ``x0`` or ``params`` (or, under a
        ``budget``, from the builder's structure).
    objective : str or callable
        A scalar steady-state quantity of :data:`chiralnet.observables.QUANTITIES` (exact adjoint gradients for
        :data:`~chiralnet.design.adjoint.GRADIENT_QUANTITIES`), ``"time_to_90"`` (derivative-free), or
        a callable ``f(steady_state) -> float`` (finite-difference gradients). See the module docstring.
    params : dict, optional
        Fixed keyword arguments of the base. A parameter both here and in ``bounds`` starts from this value.
    budget : dict, optional
        Parameter -> total: keep the sum of an array parameter fixed (e.g. ``{"gamma": 0.4}``: a total
        reservoir rate shared over the links). The start is projected onto the budget.
    maximize : bool, optional
        Default: the quantity's own direction (``max`` for energies, ergotropies and ratios, ``min`` for
        times); True for a callable.
    method : str, optional
        One of :data:`OPTIMIZERS`; default L-BFGS-B, SLSQP with a budget (SPG above
        :data:`config.OPTIMIZE_SLSQP_MAX_VARIABLES` variables), Powell for ``time_to_90``.
    x0 : dict, optional
        Start: parameter -> value (default: ``params``, else the base's default when inside the bounds,
        else the bounds' midpoint).
    n_starts : int, optional
        Starts of ``method="multistart"`` (default 8): ``x0`` then random points in the bounds (``seed``).
    maxiter : int, optional
        Iterations per local run (default 500).
    tol : float, optional
        Tolerance of the local method (on the scaled problem).
    seed : int
        Seed of the multi-start points.
    progress : bool or callable, optional
        True prints one line per iteration; a callable receives ``(iteration, fun, x dict)``.

    Returns
    -------
    OptimizeResult
        ``.x``, ``.fun`` (own units), ``.success``, ``.message``, ``.nit``, ``.nfev``, ``.graph``,
        ``.history``, ``.jac``, ``.x0``, ``.fun0``.

    Raises
    ------
    ChiralnetError
        Unknown parameter names, bad bounds, a budget on a parameter not optimised or outside the bounds'
        reach, an objective that is not a scalar steady-state quantity; NoSteadyStateError naming the
        parameter values where a trial network has no steady state.

    Examples
    --------
    >>> import chiralnet as cn
    >>> r = cn.optimize("two_cell", {"gamma": (0.001, 0.1)}, params={"kappa_a": 0.003, "kappa_b": 0.003})
    >>> round(r.x["gamma"], 6), round(r.fun / r.fun0, 3) >= 1    # impedance matched: Gamma = kappa
    (0.003, True)
    """
    t_start = time.perf_counter()
    obj_name, kind, maximize = _check_objective(objective, maximize)
    base_name, fn, fixed, names, shapes, lo, hi, theta0, budget = _layout(base, bounds, params, x0, budget)
    n = theta0.size
    if method is not None and method not in OPTIMIZERS:
        raise ChiralnetError(f"optimize: unknown method {method!r}; valid: {list(OPTIMIZERS)}")
    local = method if method not in (None, "multistart") else None
    if local is None:
        if kind == "t90":
            local = "SLSQP" if budget else "Powell"
        elif budget:
            local = "SLSQP" if n <= config.OPTIMIZE_SLSQP_MAX_VARIABLES else "SPG"
        else:
            local = "L-BFGS-B"
    if budget and local in ("L-BFGS-B", "Powell", "Nelder-Mead"):
        raise ChiralnetError(f"optimize: method {local!r} cannot keep a budget; use SLSQP, SPG or trust-constr")
    derivative_free = local in ("Powell", "Nelder-Mead")
    jac_source = "none" if derivative_free else ("adjoint" if kind == "adjoint" else "finite-differences")
    maxiter = count(config.OPTIMIZE_MAXITER if maxiter is None else maxiter, "maxiter", "optimize", minimum=1,
                    limit=config.OPTIMIZE_MAX_ITERATIONS, limit_name="OPTIMIZE_MAX_ITERATIONS",
                    cost=lambda k: f"up to {k:.3g} iterations, each at least one steady solve")
    if n_starts is not None:
        budget_starts = max(1, config.OPTIMIZE_MAX_ITERATIONS // maxiter)
        n_starts = count(n_starts, "n_starts", "optimize", minimum=1, limit=budget_starts,
                         limit_name=f"OPTIMIZE_MAX_ITERATIONS // maxiter = {config.OPTIMIZE_MAX_ITERATIONS} // {maxiter}",
                         cost=lambda k: (f"up to {k:.3g} starts x {maxiter} iterations = {k * maxiter:.3g} iterations, "
                                         f"each at least one steady solve of the network, and {k * n * 8:.3g} bytes "
                                         "of start points"))
    if tol is not None:
        tol = number(tol, "tol", "optimize", positive=True)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ChiralnetError(f"optimize: seed must be an integer, got {seed!r}")
    if progress is not None and not callable(progress):
        progress = flag(progress, "progress", "optimize")

    f = _Objective(base_name, fn, fixed, names, shapes, obj_name, kind, maximize)
    if kind == "callable":
        f.objective_fn = objective
    width = hi - lo
    groups = []  # (slice in theta, total) of each budget
    for k, total in budget.items():
        groups.append((f.slices[k], float(total)))

    def to_theta(u):
        return lo + np.clip(u, 0.0, 1.0) * width

    def project(u):
        raw = np.asarray(u, float)
        u = np.clip(raw, 0.0, 1.0)
        for s, total in groups:  # from the unclipped point: the Euclidean projection onto box and budget  # sum(lo + u w) = total over the group: a box and a hyperplane in u
            w = width[s]
            th = project_budget(lo[s] + raw[s] * w, lo[s], hi[s], total)
            u[s] = (th - lo[s]) / w
        return u

    u0 = (theta0 - lo) / width
    u0 = project(u0) if groups else u0
    f.prepare(to_theta(u0))
    fun0, _ = f.value_grad(to_theta(u0))
    scale = max(abs(fun0), 1e-300)
    sign = -1.0 if maximize else 1.0

    def fd_grad(theta, value):
        g = np.empty(n)
        for k in range(n):
            h = config.OPTIMIZE_FD_STEP * width[k]
            tp, tm = theta.copy(), theta.copy()
            tp[k] = min(theta[k] + h, hi[k])
            tm[k] = max(theta[k] - h, lo[k])
            g[k] = (f.value_grad(tp)[0] - f.value_grad(tm)[0]) / (tp[k] - tm[k])
        return g

    def scaled(u):
        theta = to_theta(u)
        v, g = f.value_grad(theta)
        if g is None and not derivative_free:
            g = fd_grad(theta, v)
        gs = None if g is None else sign * g * width / scale
        return sign * v / scale, gs

    history, it = [], [0]
    show = progress if callable(progress) else (_print_progress if progress else None)

    def record(u):
        theta = to_theta(u)
        v = f.value_grad(theta)[0]
        history.append({"iteration": it[0], "fun": float(v), "x": f.point(theta)})
        if show is not None:
            show(it[0], float(v), f.point(theta))
        it[0] += 1

    def run_local(u_start):
        record(u_start)
        if local == "SPG":
            return _spg(scaled, u_start, project, maxiter, tol or 1e-9, record)
        box = so.Bounds(np.zeros(n), np.ones(n))
        cons = []
        for s, total in groups:
            a = np.zeros(n)
            a[s] = width[s]
            cons.append(so.LinearConstraint(a[None, :], total - lo[s].sum(), total - lo[s].sum()))
        options = {"maxiter": maxiter}
        if local == "SLSQP":
            cons = [{"type": "eq", "fun": (lambda u, a=c.A[0], b=c.lb[0]: a @ u - b), "jac": (lambda u, a=c.A[0]: a)}
                    for c in cons]
        if derivative_free:
            return so.minimize(lambda u: scaled(u)[0], u_start, method=local, bounds=box, tol=tol,
                               callback=record, options=options)
        return so.minimize(scaled, u_start, jac=True, method=local, bounds=box, constraints=cons or (),
                           tol=tol, callback=(lambda *a: record(a[0])), options=options)

    starts = [u0]
    if method == "multistart":
        rng = np.random.default_rng(seed)
        for _ in range((config.OPTIMIZE_N_STARTS if n_starts is None else n_starts) - 1):
            u = rng.uniform(0.0, 1.0, n)
            starts.append(project(u) if groups else u)
    results = []
    for u_start in starts:
        r = run_local(u_start)
        u = project(np.asarray(r.x, float)) if groups else np.clip(np.asarray(r.x, float), 0.0, 1.0)
        results.append((f.value_grad(to_theta(u))[0], u, r))
    pick = (max if maximize else min)(range(len(results)), key=lambda i: results[i][0])
    best, u_best, r = results[pick]
    theta = to_theta(u_best)
    if not history or history[-1]["fun"] != best:
        record(u_best)
    jac = None
    if not derivative_free:
        v, g = f.value_grad(theta)
        jac = f.point(fd_grad(theta, v) if g is None else g)
        for k in jac:
            if shapes[k] == ():
                jac[k] = float(jac[k])
    G = f._guard(theta, lambda: f.graph(theta))
    message = str(r.message if not isinstance(r.message, bytes) else r.message.decode())
    return OptimizeResult(
        x=f.point(theta), fun=float(best), success=bool(r.success), message=message,
        nit=int(sum(int(getattr(x[2], "nit", 0) or 0) for x in results)), nfev=f.nfev, graph=G, history=history,
        x0=f.point(to_theta(u0)), fun0=float(fun0), jac=jac, jac_source=jac_source, method=local if method != "multistart" else f"multistart({local})",
        objective=obj_name, maximize=maximize, starts=[float(x[0]) for x in results],
        seconds=time.perf_counter() - t_start)


def _print_progress(iteration, fun, x):
    parts = ", ".join(f"{k}={_show(v)}" for k, v in x.items())
    print(f"iter {iteration:4d}  objective {fun:.10g}  {parts}", flush=True)
