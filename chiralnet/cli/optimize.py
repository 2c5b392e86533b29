"""The ``chiralnet optimize`` subcommand: optimise a network's parameters from a TOML file.

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
    method = "SLSQP"           # see chiralnet.design.METHODS
    n_starts = 8               # multistart only
    maxiter = 500
    tol = 1e-10
    seed = 0
    x0 = { gamma = [...] }     # optional start (default: [base], the builder default, or mid-bounds)

It writes ``network.json`` (:func:`chiralnet.save_graph`), ``network.toml`` (a scenario file of the
optimised network, explicit cells and reservoirs), ``history.csv`` (iteration, objective, parameters),
``summary.json`` and ``objective.png`` (the objective against iterations). A progress line per iteration
is printed when stdout is a terminal or with ``--progress``. Every bad key raises
:class:`~chiralnet.errors.ScenarioError` naming the file and key (exit status 2). No physics here.
"""

from __future__ import annotations

import csv
import io as _stdio
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..files import read_toml
from ..errors import ChiralnetError, ScenarioError
from ..formats.scenario_toml import _builder_value, _Reader

try:  # Python >= 3.11
    pass
except ModuleNotFoundError:  # pragma: no cover
    pass

__all__ = ["register", "run_optimize_command", "load_optimization", "parse_optimization", "OptimizationSpec"]

_TOP_KEYS = {"title", "description", "base", "bounds", "objective", "budget", "optimizer"}
_OBJECTIVE_KEYS = {"name", "maximize"}
_OPTIMIZER_KEYS = {"method", "n_starts", "maxiter", "tol", "seed", "x0"}
#: Arrays up to this size get one history column per entry; longer ones a sum, min and max.
HISTORY_MAX_ENTRIES = 32


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


def register(subparsers) -> None:
    """Add ``optimize`` to the ``chiralnet`` command's subparsers."""
    from . import add_command

    p = add_command(
        subparsers, "optimize", run_optimize_command,
        help="optimise a network's rates, couplings or drives from a TOML file (exact gradients)",
        description="Optimise the [bounds] parameters of the [base] network for the [objective] (a steady-state "
                    "quantity or time_to_90), optionally keeping the sum of an array parameter ([budget]). Writes "
                    "DIR/network.json, DIR/network.toml, DIR/history.csv, DIR/summary.json and DIR/objective.png.",
        example="chiralnet optimize examples/chain_budget.optimize.toml --out best_chain")
    p.add_argument("optimize_file", metavar="FILE.toml")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--progress", action="store_true", help="print one line per iteration (default: on a terminal)")


# ---------------------------------------------------------------------------------------------
# Parsing.


def load_optimization(path) -> OptimizationSpec:
    """Read and check an optimisation file; every error names the file and the key."""
    path = Path(path)
    data = read_toml(path, "optimisation", ScenarioError, "examples/chain_budget.optimize.toml")
    return parse_optimization(data, source=str(path))


def parse_optimization(data: dict, *, source: str = "<dict>") -> OptimizationSpec:
    """Check an optimisation file given as a dict (parsed TOML); see :func:`load_optimization`."""
    from ..builders import BUILDERS
    from ..design import GRADIENT_QUANTITIES, METHODS
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
            if m not in METHODS:
                r.fail("optimizer.method", f"unknown method {m!r}; expected one of {', '.join(METHODS)}")
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
# Running and writing.


def _history_rows(history):
    names = list(history[0]["x"]) if history else []
    header = ["iteration", "objective"]
    for n in names:
        v = np.asarray(history[0]["x"][n])
        if v.ndim == 0:
            header.append(n)
        elif v.size <= HISTORY_MAX_ENTRIES:
            header += [f"{n}[{i}]" for i in range(v.size)]
        else:
            header += [f"{n}_sum", f"{n}_min", f"{n}_max"]
    rows = []
    for h in history:
        row = [h["iteration"], repr(float(h["fun"]))]
        for n in names:
            v = np.asarray(h["x"][n], float)
            if v.ndim == 0:
                row.append(repr(float(v)))
            elif v.size <= HISTORY_MAX_ENTRIES:
                row += [repr(float(x)) for x in v]
            else:
                row += [repr(float(v.sum())), repr(float(v.min())), repr(float(v.max()))]
        rows.append(row)
    return header, rows


def _plain(v):
    v = np.asarray(v)
    return float(v) if v.ndim == 0 else [float(x) for x in v]


def write_outputs(spec: OptimizationSpec, res, out) -> list:
    """Write the files of the module docstring into ``out``; returns their names."""
    from ..files import atomic_path, atomic_write_text
    from ..formats.graph_json import save_graph
    from ..formats.scenario_toml import dumps_toml, network_spec

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_graph(res.graph, out / "network.json")
    scenario = {"title": f"{spec.title}: optimised", "description": f"{spec.objective} = {res.fun!r} "
                f"(chiralnet optimize {Path(spec.source).name})", "network": network_spec(res.graph)}
    atomic_write_text(out / "network.toml", dumps_toml(scenario))
    header, rows = _history_rows(res.history)
    buf = _stdio.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    atomic_write_text(out / "history.csv", buf.getvalue())
    summary = {"title": spec.title, "objective": spec.objective, "maximize": res.maximize, "fun": res.fun,
               "fun0": res.fun0, "gain": res.fun / res.fun0 if res.fun0 else None, "success": res.success,
               "message": res.message, "nit": res.nit, "nfev": res.nfev, "method": res.method,
               "jac_source": res.jac_source, "seconds": res.seconds,
               "x": {k: _plain(v) for k, v in res.x.items()}, "x0": {k: _plain(v) for k, v in res.x0.items()},
               "budget": spec.budget}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot([h["iteration"] for h in res.history], [h["fun"] for h in res.history], "o-", ms=3)
    ax.set_xlabel("iteration")
    ax.set_ylabel(spec.objective)
    ax.set_title(f"{spec.title}: {res.fun0:.6g} -> {res.fun:.6g}", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(out / "objective.png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return ["network.json", "network.toml", "history.csv", "summary.json", "objective.png"]


def run_optimize_command(args) -> int:
    spec = load_optimization(args.optimize_file)
    progress = bool(args.progress or sys.stdout.isatty())
    res = spec.run(progress=progress)
    files = write_outputs(spec, res, args.out)
    direction = "max" if res.maximize else "min"
    print(f"{spec.objective} ({direction}): {res.fun0:.6g} -> {res.fun:.6g} in {res.nit} iterations "
          f"({res.nfev} evaluations, {res.method}, gradients: {res.jac_source}, {res.seconds:.3g} s); "
          f"{'converged' if res.success else 'NOT converged'}: {res.message}")
    for k, v in res.x.items():
        print(f"  {k} = {_show(v)}")
    print(f"wrote {os.fspath(args.out)}/: {', '.join(files)}")
    return 0


def _show(v):
    from ..design.optimizer import _show as show

    return show(v)
