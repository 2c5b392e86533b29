"""The ``chiralnet optimize`` subcommand: optimise a network's parameters from a TOML file.

The file format, its reader and its writer are in :mod:`chiralnet.formats.optimize_toml`; this module
runs a parsed file.

It writes ``network.json`` (:func:`chiralnet.save_graph`), ``network.toml`` (a scenario file of the
optimised network, explicit cells and reservoirs), ``history.csv`` (iteration, objective, parameters),
``summary.json`` and ``objective.png`` (the objective against iterations, and each optimised parameter
per cell or link against its start). A progress line per iteration
is printed when stdout is a terminal or with ``--progress``. Every bad key raises
:class:`~chiralnet.errors.ScenarioError` naming the file and key (exit status 2). No physics here.
"""

from __future__ import annotations

import csv
import io as _stdio
import json
import os
import sys
from pathlib import Path

import numpy as np

from ..formats.optimize_toml import OptimizationSpec, parse_optimization, read_optimization

__all__ = ["register", "run_optimize_command", "read_optimization", "parse_optimization", "OptimizationSpec"]

#: Arrays up to this size get one history column per entry; longer ones a sum, min and max.
HISTORY_MAX_ENTRIES = 32


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
    from ..files import atomic_write_text
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
    from ..plotting import save_figure
    from ..plotting.design import plot_optimization

    fig = plot_optimization(res, objective=spec.objective, builder=spec.builder, bounds=spec.bounds,
                            title=f"{spec.title}: {res.fun0:.6g} -> {res.fun:.6g}")
    save_figure(fig, out / "objective.png", dpi=120)
    return ["network.json", "network.toml", "history.csv", "summary.json", "objective.png"]


def run_optimize_command(args) -> int:
    spec = read_optimization(args.optimize_file)
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
