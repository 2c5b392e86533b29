"""Scattering speed: the cascaded Numba kernel against one sparse LU per frequency, same chain, same run.

Run from the repository root:  python benchmarks/bench_scattering.py  [--cells 10000] [--detunings 1000]

1. First call (compile or load the cached kernels), timed apart.
2. ``cn.scattering`` of a chiral chain (``chiralnet.arrays.chain_model``) at many detunings with 2, 10 and
   100 ports, serial and with threads over frequencies (``parallel=True``): best of 3, warm.
3. The baseline in the same run: ``method="sparse"`` (SuperLU per frequency) on a sample of the detunings,
   extrapolated to all; the sampled S is compared with the cascaded kernel's.
Timings are wall-clock seconds on this machine; ratios come from the same run.
"""

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import chiralnet as cn  # noqa: E402
from chiralnet.arrays import chain_model  # noqa: E402


def best_of(fn, k=3):
    times = []
    for _ in range(k):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", type=int, default=10_000)
    ap.add_argument("--detunings", type=int, default=1000)
    ap.add_argument("--sample", type=int, default=20, help="detunings timed with the sparse LU baseline")
    args = ap.parse_args(argv)
    import numba

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"numba {numba.__version__} ({numba.get_num_threads()} threads), python {platform.python_version()}")
    n, F = args.cells, args.detunings
    kappa = 0.003
    model = chain_model(n, kappa=kappa, gamma=0.04)
    kap = np.full(n, kappa)
    delta = np.linspace(-0.1, 0.1, F)
    t = time.perf_counter()
    for parallel in (False, True):
        cn.scattering(model, delta[:4], [0, 1], kappa=kap, parallel=parallel)
    print(f"first calls (compile or load cached kernels, serial and parallel): {time.perf_counter() - t:.2f} s")
    print(f"chiral chain, {n} cells, {F} detunings:")
    for n_ports in (2, 10, 100):
        ports = list(np.linspace(0, n - 1, n_ports).astype(int))
        for parallel in (False, True):
            t_s, res = best_of(lambda: cn.scattering(model, delta, ports, kappa=kap, parallel=parallel))
            print(f"  {n_ports:4d} ports, {'threads' if parallel else 'serial ':7s}: {t_s:8.3f} s  "
                  f"({t_s / F * 1e3:.3f} ms per detuning) [{res.method}]")
    ports = [0, n - 1]
    sample = delta[:: max(1, F // args.sample)][: args.sample]
    t_lu, lu = best_of(lambda: cn.scattering(model, sample, ports, kappa=kap, method="sparse"), 1)
    t_c, ours = best_of(lambda: cn.scattering(model, delta, ports, kappa=kap, parallel=False))
    sub = cn.scattering(model, sample, ports, kappa=kap)
    err = np.abs(lu.S - sub.S).max()
    t_lu_all = t_lu / sample.size * F
    print(f"  baseline sparse LU per frequency (2 ports): {t_lu / sample.size * 1e3:.2f} ms per detuning, "
          f"{t_lu_all:.2f} s extrapolated to {F}; cascaded kernel {t_c:.3f} s: {t_lu_all / t_c:.0f}x faster; "
          f"max |S_LU - S_cascaded| = {err:.1e}")


if __name__ == "__main__":
    main()
