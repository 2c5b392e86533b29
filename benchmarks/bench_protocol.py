"""Protocol and drive speed, with baselines measured in the same run.

Run from the repository root:  python benchmarks/bench_protocol.py  [--cells 100000] [--repeat 5]

1. A Gaussian-pulse two-cell trace at 1,000 output times: chiralnet.simulate (compiled Dormand-Prince 5(4)
   with dense output) against scipy's solve_ivp (RK45, the same rtol/atol, t_eval = the same times); both
   compared with a tight DOP853 reference. Goal: >= 10x.
2. A two-phase protocol (charge, then store with the drive off) against one constant simulation of the
   same output times (two_cell and a 50-cell thermal chain). Goal: <= 2x.
3. Charge -> store -> discharge on a chain of --cells cells (chiralnet.arrays.chain_model phases: drive
   on; links cut (gamma = 1e-12) and drive off; links back, drive off).
Each number is reported twice: "fresh" (the first call in a new process: Numba loads its cache or
compiles) and "warm" (the best of --repeat calls). Wall-clock seconds on this machine.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import chiralnet as cn  # noqa: E402
from chiralnet import drives  # noqa: E402
from chiralnet.arrays import chain_model  # noqa: E402

RTOL, ATOL = 1e-8, 1e-10


def best(f, repeat):
    out, ts = None, []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        ts.append(time.perf_counter() - t0)
    return min(ts), out


def pulse_case():
    G = cn.two_cell()
    G.nodes["a"]["drive"] = drives.gaussian(0.1, 500.0, 100.0)
    return G, np.linspace(0.0, 3000.0, 1000)


def bench_pulse(repeat):
    from scipy.integrate import solve_ivp

    G, t = pulse_case()
    M = cn.build_model(G).dense_M()

    def rhs(s, y):
        return M @ y - 1j * np.array([0.1 * np.exp(-0.5 * ((s - 500.0) / 100.0) ** 2), 0.0])

    ours, res = best(lambda: cn.simulate(G, t, rtol=RTOL, atol=ATOL), repeat)
    theirs, sol = best(lambda: solve_ivp(rhs, (0, t[-1]), np.zeros(2, complex), t_eval=t, rtol=RTOL, atol=ATOL),
                       max(1, repeat // 2))
    ref = solve_ivp(rhs, (0, t[-1]), np.zeros(2, complex), t_eval=t, method="DOP853", rtol=1e-13, atol=1e-15).y.T
    scale = np.abs(ref).max()
    return {"chiralnet_s": ours, "solve_ivp_s": theirs, "speedup": theirs / ours,
            "chiralnet_rel_err": float(np.abs(res.amplitudes - ref).max() / scale),
            "solve_ivp_rel_err": float(np.abs(sol.y.T - ref).max() / scale),
            "chiralnet_steps": res.stats["drive_steps"], "solve_ivp_rhs_evaluations": int(sol.nfev)}


def bench_two_phase(repeat):
    out = {}
    for label, G in (("two_cell", cn.two_cell()), ("chain50_thermal", cn.chain(50, n_th=0.2))):
        store = G.copy()
        store.nodes[cn.cells(G)[0]]["drive"] = 0.0
        t = np.linspace(0.0, 3000.0, 1001)
        one, _ = best(lambda: cn.simulate(G, t), repeat)
        p = cn.protocol([(G, 1500.0), (store, 1500.0)])
        two, _ = best(lambda: cn.simulate(p, t), repeat)
        build, _ = best(lambda: cn.protocol([(G, 1500.0), (store, 1500.0)]), repeat)
        out[label] = {"constant_s": one, "protocol_s": two, "ratio": two / one, "protocol_build_s": build}
    return out


def bench_chain(n, repeat):
    def phases():
        return cn.protocol([(chain_model(n, drive=0.1), 1000.0, "charge"),
                            (chain_model(n, drive=0.0, gamma=1e-12), 500.0, "store"),
                            (chain_model(n, drive=0.0), 1000.0, "discharge")])

    t = np.linspace(0.0, 2500.0, 101)
    build, p = best(phases, 1)
    run, res = best(lambda: cn.simulate(p, t, store_amplitudes=False), repeat)
    return {"cells": n, "build_s": build, "simulate_s": run, "method": res.method,
            "battery_at_phase_ends": res.phase_battery_energy.tolist()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--fresh", action="store_true", help="(internal) one call of each, print JSON")
    args = ap.parse_args(argv)
    if args.fresh:
        print(json.dumps({"pulse": bench_pulse(1), "two_phase": bench_two_phase(1),
                          "chain": bench_chain(args.cells, 1)}))
        return
    t0 = time.perf_counter()
    fresh = json.loads(subprocess.run([sys.executable, __file__, "--fresh", "--cells", str(args.cells)],
                                      capture_output=True, text=True, check=True).stdout)
    fresh["process_s"] = time.perf_counter() - t0
    warm = {"pulse": bench_pulse(args.repeat), "two_phase": bench_two_phase(args.repeat),
            "chain": bench_chain(args.cells, max(1, args.repeat // 2))}
    print(json.dumps({"fresh": fresh, "warm": warm}, indent=1))
    w = warm
    print(f"\nGaussian pulse, 2 cells, 1000 times: {w['pulse']['speedup']:.1f}x faster than solve_ivp (goal >= 10x), "
          f"errors {w['pulse']['chiralnet_rel_err']:.1e} vs {w['pulse']['solve_ivp_rel_err']:.1e}")
    for k, v in w["two_phase"].items():
        print(f"two-phase protocol / one constant run ({k}): {v['ratio']:.2f}x (goal <= 2x)")
    print(f"charge-store-discharge, {w['chain']['cells']} cells: {w['chain']['simulate_s']:.2f} s "
          f"({w['chain']['method']}), fresh process {fresh['chain']['simulate_s']:.2f} s")


if __name__ == "__main__":
    main()
