"""The ``chiralnet sweep`` and ``chiralnet study`` subcommands.

``register(subparsers)`` adds both to the main ``chiralnet`` command through
:func:`chiralnet.cli.add_command` (shared ``--debug`` and error handling). No physics here.
"""

from __future__ import annotations

import inspect
import os
import sys

__all__ = ["register", "run_sweep_command", "run_study_command"]


def _engine_options(p):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--workers", type=int, metavar="N", help="run on a local Dask cluster of N worker processes")
    g.add_argument("--scheduler", metavar="ADDRESS", help="run on the Dask scheduler at ADDRESS (tcp://host:8786)")
    g.add_argument("--processes", type=int, metavar="N",
                   help="size of the embedded local process pool (default: one per core)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (it shows only on a terminal anyway)")


def register(subparsers) -> None:
    """Add ``sweep`` and ``study`` to the ``chiralnet`` command's subparsers."""
    from . import add_command
    from ..studies import STUDIES

    p = add_command(
        subparsers, "sweep", run_sweep_command,
        help="run a parameter sweep from a TOML sweep file",
        description="Run the sweep described by SWEEP.toml. Finished chunks are stored in DIR as they complete; "
                    "--resume finishes an interrupted sweep. Writes DIR/result.csv, DIR/result.nc (with xarray) "
                    "and DIR/figure.png.",
        example="chiralnet sweep examples/two_cell_map.sweep.toml --out two_cell_map\n"
                "chiralnet sweep SWEEP.toml --out DIR --workers 4\n"
                "chiralnet sweep SWEEP.toml --out DIR --scheduler tcp://10.0.0.5:8786\n"
                "chiralnet sweep SWEEP.toml --out DIR --resume\n"
                "chiralnet sweep SWEEP.toml --out DIR --allow-code   # [base] builder = \"mypkg.nets:my_builder\"")
    p.add_argument("sweep_file", metavar="SWEEP.toml")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created; must be new unless --resume)")
    p.add_argument("--resume", action="store_true", help="reuse the chunks already in DIR, compute the missing ones")
    p.add_argument("--allow-code", action="store_true",
                   help="let the sweep file name its builder as 'module:function': this runs code from this file "
                        "(imports that module and calls the function); only for files you trust. Without it, a "
                        "sweep file may name only the built-in builders")
    _engine_options(p)

    s = add_command(
        subparsers, "study", run_study_command,
        help="run a built-in study (writes a figure, CSV and a summary); --list names them",
        description="Built-in studies: "
                    + "; ".join(f"{k}: {v.__doc__.strip().splitlines()[0]}" for k, v in STUDIES.items()),
        example="chiralnet study --list\nchiralnet study cooperativity --quick --out fig4c\n"
                "chiralnet study topology --out topology --workers 2")
    s.add_argument("name", nargs="?", choices=sorted(STUDIES), metavar="NAME", help=f"one of {sorted(STUDIES)}")
    s.add_argument("--list", action="store_true", help="list the studies, one line each, and exit")
    s.add_argument("--out", metavar="DIR", help="output folder (created); required to run a study")
    s.add_argument("--quick", action="store_true", help="a small grid (seconds) instead of the full study")
    _engine_options(s)


def _engine_kwargs(args):
    return dict(workers=args.workers, scheduler=args.scheduler, processes=args.processes,
                progress=False if args.no_progress else None)


def run_sweep_command(args) -> int:
    from ..sweeps import load_sweep, run_sweep

    spec = load_sweep(args.sweep_file, allow_code=args.allow_code)
    try:
        res = run_sweep(spec, out=args.out, resume=args.resume, **_engine_kwargs(args))
    except KeyboardInterrupt:
        kept = os.path.exists(os.path.join(args.out, "sweep.json"))
        print("chiralnet: interrupted" + (f"; finished chunks are kept in {args.out}, rerun with --resume to compute "
                                          "only the rest" if kept else ""), file=sys.stderr)
        return 130
    a = res.attrs
    ensemble = "" if spec.disorder is None else f", {spec.disorder.realisations} disorder realisations each"
    print(f"{spec.n_points} points over {', '.join(f'{d} ({n})' for d, n in zip(res.dims, res.shape))}{ensemble}; "
          f"engine {a['engine']}; {a['computed_chunks']} chunks computed, {a['reused_chunks']} reused; "
          f"{a['seconds']:.3g} s")
    asked = {"csv": "result.csv", "netcdf": "result.nc", "figure": "figure.png"}  # result.nc needs xarray
    files = [f for k, f in asked.items() if spec.output.get(k) and os.path.exists(os.path.join(args.out, f))]
    print(f"wrote {args.out}/: sweep.json, chunks/" + "".join(f", {f}" for f in files))
    return 0


def run_study_command(args) -> int:
    from ..studies import STUDIES

    if args.list:
        width = max(map(len, STUDIES))
        for name, fn in STUDIES.items():
            print(f"{name:<{width}}  {fn.__doc__.strip().splitlines()[0]}")
        return 0
    if args.name is None or args.out is None:
        print("chiralnet study: error: give a study NAME and --out DIR (chiralnet study --list names the studies)",
              file=sys.stderr)
        return 2
    study = STUDIES[args.name]
    engine = _engine_kwargs(args)  # only the studies that run sweeps take the engine options
    takes = inspect.signature(study).parameters
    summary = study(out=args.out, quick=args.quick, **{k: v for k, v in engine.items() if k in takes})
    print(summary.text.rstrip("\n"))
    if summary.paths:
        print(f"\nwrote {args.out}/: {', '.join(os.path.basename(p) for p in summary.paths.values())}")
    return 0
