"""Optimisation files (TOML): the reader and the writer. ``chiralnet optimize`` runs them
(:mod:`chiralnet.cli.optimize`).

An optimisation file::

    title = "best split of a reservoir budget"      # optional
    [base]
    builder = "chain"          # a registered builder (no "module:function" from a data file)
    n_cells = 8                # fixed parameters; an array here is also the start of an optimised one
    gamma = [0.04, 0.04, 0.04, 0.04, 0.04, 0.04, 0.04]

    [bounds]
    gamma = [0.005, 0.2]       # parameter = [low, high] (the same bounds for every entry of an array)

    [objective]
    name = "battery_energy"    # a scalar steady-state quantity, or "time_to_90"
    maximize = true            # optional: default the quantity's own direction

    [budget]                   # optional: keep the sum of an array parameter
    gamma = 0.28

    [optimizer]                # optional
    method = "SLSQP"           # see chiralnet.design.OPTIMIZERS
    n_starts = 8               # multistart only
    maxiter = 500
    tol = 1e-10
    seed = 0
    x0 = { gamma = [...] }     # optional start (default: [base], the builder default, or mid-bounds)

Every bad key raises :class:`~chiralnet.errors.ScenarioError` naming the file and key.
:func:`read_optimization` reads a file; :func:`write_optimization` writes one that reads back to an equal
:class:`OptimizationSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ChiralnetError, ScenarioError
from ..files import read_toml
from .scenario_toml import _builder_value, _Reader

__all__ = ["OptimizationSpec", "read_optimization", "write_optimization", "parse_optimization",
           "optimization_to_dict", "load_optimization"]

_TOP_KEYS = {"title", "description", "base", "bounds", "objective", "budget", "optimizer"}
_OBJECTIVE_KEYS = {"name", "maximize"}
_OPTIMIZER_KEYS = {"method", "n_starts", "maxiter", "tol", "seed", "x0"}
@dataclass(frozen=True, eq=False)
class OptimizationSpec:
    """A parsed optimisation file (see the module docstring)."""

    source: str
    title: str
    description: str
    builder: str
    params: dict
    bounds: dict
    objective: str
    maximize: bool | None
    budget: dict
    options: dict = field(default_factory=dict)

    def run(self, progress=None):
        from ..design import optimize

        return optimize(self.builder, self.bounds, self.objective, params=self.params, budget=self.budget or None,
                        maximize=self.maximize, progress=progress, **self.options)


# ---------------------------------------------------------------------------------------------
# Parsing.


def read_optimization(path) -> OptimizationSpec:
    """Read and check an optimisation file; every error names the file and the key.

    Parameters
    ----------
    path : str or os.PathLike
        A TOML optimisation file (see the module docstring).

    Returns
    -------
    OptimizationSpec

    Raises
    ------
    ScenarioError
        A missing, unreadable or malformed file, or another kind of file (the message names the
        command that runs it).
    """
    from .kinds import check_kind

    path = Path(path)
    data = read_toml(path, "optimisation", ScenarioError, "examples/chain_budget.optimize.toml")
    check_kind(data, "optimize", path, ScenarioError)
    return parse_optimization(data, source=str(path))


#: The former name of :func:`read_optimization`.
load_optimization = read_optimization


def parse_optimization(data: dict, *, source: str = "<dict>") -> OptimizationSpec:
    """Check an optimisation file given as a dict (parsed TOML); see :func:`read_optimization`."""
    from ..builders import BUILDERS
    from ..design import GRADIENT_QUANTITIES, OPTIMIZERS
    from ..observables import QUANTITIES
    from ..parametrized import AFFINE_PARAMETERS

    r = _Reader(source)
    r.keys(data, _TOP_KEYS, "", required={"base", "bounds", "objective"})
    title = r.value(data.get("title", Path(source).stem), "str", "title")
    description = r.value(data.get("description", ""), "str", "description")
    base = r.table(data["base"], "base")
    if "builder" not in base:
        r.fail("base.builder", f"missing required key; one of {', '.join(BUILDERS)}")
    builder = r.value(base["builder"], "str", "base.builder")
    if builder not in BUILDERS:
        r.fail("base.builder", f"unknown builder {builder!r}; expected one of {', '.join(BUILDERS)} (a file names "
                               "registered builders only; use chiralnet.optimize from Python for your own)")
    info = BUILDERS[builder]
    r.keys(base, {"builder", *info.parameters}, "base", required=info.required)
    params = {k: _builder_value(r, info.parameters[k], v, f"base.{k}") for k, v in base.items() if k != "builder"}
    params = {k: (np.asarray(v) if isinstance(v, list) else v) for k, v in params.items()}

    bounds_t = r.table(data["bounds"], "bounds")
    if not bounds_t:
        r.fail("bounds", "empty; give parameter = [low, high]")
    continuous = AFFINE_PARAMETERS[builder]
    bounds = {}
    for k, v in bounds_t.items():
        key = f"bounds.{k}"
        if k not in info.parameters:
            r.fail(key, f"builder {builder!r} has no parameter {k!r}; continuous ones: {', '.join(continuous)}")
        if k not in continuous:
            r.fail(key, f"{k!r} is structural (an integer or a flag), not optimisable; continuous: {', '.join(continuous)}")
        lo, hi = r.list(v, key, "real", min_len=2)[:2] if isinstance(v, list) and len(v) == 2 else (None, None)
        if lo is None:
            r.fail(key, f"expected [low, high], got {v!r}")
        if not lo < hi:
            r.fail(key, f"needs low < high, got [{lo}, {hi}]")
        bounds[k] = (lo, hi)

    obj = r.table(data["objective"], "objective")
    r.keys(obj, _OBJECTIVE_KEYS, "objective", required={"name"})
    name = r.value(obj["name"], "str", "objective.name")
    valid = sorted([n for n, q in QUANTITIES.items() if q.needs == "steady" and q.dim is None] + ["time_to_90"])
    if name not in valid:
        r.fail("objective.name", f"{name!r} is not a scalar steady-state quantity (or time_to_90); expected one of "
                                 f"{', '.join(valid)} (exact gradients: {', '.join(sorted(GRADIENT_QUANTITIES))})")
    maximize = r.value(obj["maximize"], "bool", "objective.maximize") if "maximize" in obj else None

    budget = {}
    if "budget" in data:
        for k, v in r.table(data["budget"], "budget").items():
            key = f"budget.{k}"
            if k not in bounds:
                r.fail(key, f"{k!r} is not optimised; a budget applies to a parameter in [bounds]")
            budget[k] = r.value(v, "positive", key)

    options = {}
    if "optimizer" in data:
        opt = r.table(data["optimizer"], "optimizer")
        r.keys(opt, _OPTIMIZER_KEYS, "optimizer")
        if "method" in opt:
            m = r.value(opt["method"], "str", "optimizer.method")
            if m not in OPTIMIZERS:
                r.fail("optimizer.method", f"unknown method {m!r}; expected one of {', '.join(OPTIMIZERS)}")
            options["method"] = m
        for k in ("n_starts", "maxiter", "seed"):
            if k in opt:
                options[k] = r.value(opt[k], "int", f"optimizer.{k}")
                if options[k] < (0 if k == "seed" else 1):
                    r.fail(f"optimizer.{k}", f"expected an integer >= {0 if k == 'seed' else 1}, got {options[k]}")
        if "tol" in opt:
            options["tol"] = r.value(opt["tol"], "positive", "optimizer.tol")
        if "x0" in opt:
            x0 = r.table(opt["x0"], "optimizer.x0")
            for k in x0:
                if k not in bounds:
                    r.fail(f"optimizer.x0.{k}", f"{k!r} is not optimised; give a start for parameters in [bounds] only")
            options["x0"] = {k: np.asarray(r.list(v, f"optimizer.x0.{k}", "real", 1)) if isinstance(v, list)
                             else r.value(v, "real", f"optimizer.x0.{k}") for k, v in x0.items()}
    spec = OptimizationSpec(source, title, description, builder, params, bounds, name, maximize, budget, options)
    _check_with_optimizer(r, spec)
    return spec


def _check_with_optimizer(r, spec):
    """The checks that need the parameters' sizes (a budget's reach, starts in bounds): name the key."""
    from ..design.optimizer import _layout

    try:
        _layout(spec.builder, spec.bounds, spec.params, spec.options.get("x0"), spec.budget)
    except ChiralnetError as exc:
        text = " ".join(str(exc).split()).removeprefix("optimize: ")
        key = "budget" if "budget" in text else "optimizer.x0" if "x0" in text else "bounds"
        for k in list(spec.budget) + list(spec.bounds):
            if repr(k) in text:
                key = f"{key}.{k}"
                break
        r.fail(key, text)




# ---------------------------------------------------------------------------------------------
# Writing.


def optimization_to_dict(spec: OptimizationSpec) -> dict:
    """The TOML document of ``spec`` (the inverse of :func:`parse_optimization`)."""
    out = {"title": spec.title}
    if spec.description:
        out["description"] = spec.description
    out["base"] = {"builder": spec.builder, **spec.params}
    out["bounds"] = {k: [float(lo), float(hi)] for k, (lo, hi) in spec.bounds.items()}
    out["objective"] = {"name": spec.objective}
    if spec.maximize is not None:
        out["objective"]["maximize"] = bool(spec.maximize)
    if spec.budget:
        out["budget"] = {k: float(v) for k, v in spec.budget.items()}
    if spec.options:
        opt = {k: v for k, v in spec.options.items() if k != "x0"}
        if "x0" in spec.options:
            opt["x0"] = dict(spec.options["x0"])
        out["optimizer"] = opt
    return out


def write_optimization(spec: OptimizationSpec, path) -> None:
    """Write ``spec`` as an optimisation file (atomically) that :func:`read_optimization` reads back to an
    equal spec.

    Parameters
    ----------
    spec : OptimizationSpec
    path : str or os.PathLike
        The file to write (conventionally ``NAME.optimize.toml``).
    """
    from ..files import atomic_write_text
    from .scenario_toml import dumps_toml

    atomic_write_text(path, dumps_toml(optimization_to_dict(spec)))
