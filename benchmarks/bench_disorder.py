"""Disorder ensembles: cost per realisation of a disorder sweep against a Python loop over the same draws.

Run from the repository root:  python benchmarks/bench_disorder.py  [--realisations 20000] [--sample 200]

For chains of N = 2, 6, 16, 64 cells (one-way and reciprocal links), 5 % disorder in every kappa and gamma:

1. ``chiralnet.sweep("chain", {"n_cells": [N]}, disorder=..., realisations=R)``: the batched path (exact affine
   assembly of the R models, then the batched steady-state kernel), warm (a first small call loads or
   compiles the kernels and is timed apart).
2. The baseline in the same run: ``chiralnet.steady_state(chiralnet.chain(N, kappa=..., gamma=...))`` in a
   Python loop over the first ``--sample`` realisations of the same draws; its values are compared with the
   sweep's kept realisations.
3. N = 101 (above BATCH_MAX_CELLS): one model per realisation from arrays (no graph) through steady_state.
Times are wall-clock on this machine; ratios come from the same run.
"""

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import chiralnet as cn  # noqa: E402
from chiralnet.sweeps import disorder as dis  # noqa: E402

SPREADS = {"kappa": 0.05, "gamma": 0.05}


def run(n, nonreciprocal, R, sample):
    kw = dict(params={"nonreciprocal": nonreciprocal}, disorder=SPREADS, seed=1)
    t0 = time.perf_counter()
    cn.sweep("chain", {"n_cells": [n]}, ["battery_energy"], realisations=2, **kw)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = cn.sweep("chain", {"n_cells": [n]}, ["battery_energy"], realisations=R, keep_realisations=True, **kw)
    sweep_s = time.perf_counter() - t0
    f = dis.factors(dis.make_disorder(SPREADS, realisations=R, seed=1), 0, [n, n - 1])
    t0 = time.perf_counter()
    loop = [cn.steady_state(cn.chain(n, kappa=0.003 * f[r, :n], gamma=0.04 * f[r, n:],
                                     nonreciprocal=nonreciprocal)).battery_energy for r in range(sample)]
    loop_s = (time.perf_counter() - t0) / sample
    dev = float(np.max(np.abs(res.realisations["battery_energy"][0, :sample] / np.array(loop) - 1)))
    return first, sweep_s / R, loop_s, dev, res.attrs["batched_groups"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--realisations", type=int, default=20000)
    ap.add_argument("--sample", type=int, default=200, help="realisations timed in the steady_state loop")
    args = ap.parse_args(argv)
    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{'N':>4} {'links':>9} {'path':>9} {'first s':>8} {'us/real.':>9} {'loop us':>9} {'speed-up':>9} "
          f"{'max rel dev':>11}")
    for n in (2, 6, 16, 64, 101):
        for nr in (True, False):
            R = args.realisations if n <= 64 else max(50, args.realisations // 100)
            first, per, loop, dev, batched = run(n, nr, R, min(args.sample, R))
            print(f"{n:>4} {'one-way' if nr else 'reciproc.':>9} {'batched' if batched else 'model':>9} "
                  f"{first:8.2f} {per * 1e6:9.1f} {loop * 1e6:9.1f} {loop / per:8.0f}x {dev:11.1e}")


if __name__ == "__main__":
    main()
