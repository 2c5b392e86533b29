"""Sweep speed: the batched kernel against a Python loop of chiralnet.steady_state, and Dask overhead.

Run from the repository root:  python benchmarks/bench_sweep.py  [--points 1000000] [--sample 300] [--no-dask]

1. A gamma x kappa_b steady-state sweep of the two-cell battery (default 1000 x 1000 = 10^6 points) through
   ``chiralnet.sweeps.sweep`` (batched Numba kernel), warm (compilation timed separately).
2. The baseline in the same run: ``chiralnet.steady_state(chiralnet.two_cell(gamma=g, kappa_b=k))`` in a Python
   loop over a random sample of the same points; its time per point is extrapolated to the full grid. The
   sampled values are compared with the sweep's.
3. The Dask path: the same kind of sweep on a LocalCluster of 2 single-threaded worker processes against the
   embedded engine on the same points; overhead per task (chunk) and per point.
Timings are wall-clock seconds on this machine; ratios come from the same run. On small machines
``OMP_WAIT_POLICY=PASSIVE`` (for Numba's OpenMP threading layer) can halve the embedded times; the worker
processes chiralnet starts always get it.
"""

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import chiralnet as cn  # noqa: E402
from chiralnet.sweeps import sweep  # noqa: E402


def grid(n_points):
    side = int(round(np.sqrt(n_points)))
    return {"gamma": np.geomspace(1e-3, 0.2, side), "kappa_b": np.geomspace(1e-3, 0.05, side)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--sample", type=int, default=300, help="points timed in the steady_state loop")
    ap.add_argument("--no-dask", action="store_true")
    args = ap.parse_args(argv)
    import numba

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"numba {numba.__version__} ({numba.get_num_threads()} threads), python {platform.python_version()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")

    t = time.perf_counter()
    sweep("two_cell", {"gamma": [0.01, 0.02], "kappa_b": [0.003]})
    print(f"first call (compile or load cached kernels): {time.perf_counter() - t:.2f} s")

    g = grid(args.points)
    n = g["gamma"].size * g["kappa_b"].size
    t = time.perf_counter()
    res = sweep("two_cell", g, ["battery_energy"])
    t_sweep = time.perf_counter() - t
    print(f"batched sweep: {n} points in {t_sweep:.3f} s ({t_sweep / n * 1e9:.0f} ns/point, "
          f"{res.attrs['chunks']} chunks, engine {res.attrs['engine']})")

    rng = np.random.default_rng(0)
    idx = rng.integers(0, [g["gamma"].size, g["kappa_b"].size], size=(args.sample, 2))
    vals = np.empty(args.sample)
    cn.steady_state(cn.two_cell())  # warm-up
    t = time.perf_counter()
    for k, (i, j) in enumerate(idx):
        G = cn.two_cell(gamma=float(g["gamma"][i]), kappa_b=float(g["kappa_b"][j]))
        vals[k] = cn.steady_state(G).battery_energy
    t_loop = (time.perf_counter() - t) / args.sample
    dev = np.max(np.abs(vals / res["battery_energy"][idx[:, 0], idx[:, 1]] - 1))
    print(f"python loop of steady_state: {t_loop * 1e6:.0f} us/point on {args.sample} sampled points "
          f"-> {t_loop * n:.0f} s extrapolated to {n} points")
    print(f"speed-up: {t_loop * n / t_sweep:.0f}x   (max relative difference on the sample: {dev:.1e})")

    if args.no_dask:
        return
    from distributed import Client, LocalCluster

    from chiralnet.sweeps.engine import WORKER_ENV

    # the cluster `chiralnet sweep --workers 2` starts
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, env=dict(WORKER_ENV)) as cluster, Client(cluster) as client:
        small = grid(200_000)
        n_small = small["gamma"].size ** 2
        sweep("two_cell", {"gamma": [0.01, 0.02]}, scheduler=cluster.scheduler_address)  # warm the workers
        t = time.perf_counter()
        emb = sweep("two_cell", small)
        t_emb = time.perf_counter() - t
        print(f"\nDask LocalCluster, 2 workers x 1 thread, {n_small} points; embedded default (2 Numba threads, "
              f"{emb.attrs['chunks']} chunks): {t_emb:.3f} s")
        print(f"{'chunk':>7} {'tasks':>6} {'dask s':>8} {'dask - embedded, us/point':>26}")
        tasks, times = [], []
        for chunk in (512, 2048, 8192, 32768):
            t = time.perf_counter()
            dsk = sweep("two_cell", small, chunk_size=chunk, scheduler=cluster.scheduler_address)
            t_dsk = time.perf_counter() - t
            assert np.array_equal(emb["battery_energy"], dsk["battery_energy"])
            tasks.append(dsk.attrs["chunks"])
            times.append(t_dsk)
            print(f"{chunk:>7} {tasks[-1]:>6} {t_dsk:8.3f} {(t_dsk - t_emb) / n_small * 1e6:26.2f}")
        slope, intercept = np.polyfit(tasks, times, 1)
        print(f"fit dask seconds = {intercept:.3f} + {slope * 1e3:.2f} ms x tasks  "
              f"(per-task overhead {slope * 1e3:.2f} ms,"
              f" i.e. {slope / 32768 * 1e9:.0f} ns/point at 32768-point chunks)")
        del client


if __name__ == "__main__":
    main()
