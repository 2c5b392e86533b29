"""Inverse-design benchmark: adjoint gradients and budgeted optimisation of a 10^4-cell chain.

    python3 benchmarks/bench_design.py [--cells 10000]

1. The gradient of the steady battery energy with respect to all N - 1 link rates (cn.gradient: the affine
   model, one steady solve, one back substitution with M^H, one pass over dM) against one build plus one
   steady solve, for two builds: the NetworkX route (cn.chain + build_model) and the array route
   (chiralnet.arrays.chain_model, no graph). Goal: <= 5x one build + one solve.
2. Optimising those N - 1 rates under a fixed budget (their sum, cn.optimize with SPG): wall time, iterations,
   and the gain over the uniform split.
Best of a few warm runs (Numba compiled first). Not a timed test.
"""

import argparse
import time

import numpy as np

import chiralnet as cn
from chiralnet.arrays import chain_model


def best(f, repeat=3):
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        out.append(time.perf_counter() - t)
    return min(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=10_000)
    ap.add_argument("--maxiter", type=int, default=500)
    n = ap.parse_args().cells
    rng = np.random.default_rng(0)
    gamma = rng.uniform(0.03, 0.05, n - 1)
    point, params = {"gamma": gamma}, {"n_cells": n}
    cn.gradient("chain", point, params=params)                       # compile
    cn.steady_state(chain_model(n, gamma=gamma))
    t_grad = best(lambda: cn.gradient("chain", point, params=params))
    t_array = best(lambda: cn.steady_state(chain_model(n, gamma=gamma)))
    t_graph = best(lambda: cn.steady_state(cn.build_model(cn.chain(n, gamma=gamma))), repeat=1)
    print(f"gradient of the battery energy of a {n}-cell chain w.r.t. its {n - 1} link rates: {t_grad * 1e3:.1f} ms")
    print(f"  one build + one steady solve, array route (chain_model): {t_array * 1e3:.1f} ms  -> ratio {t_grad / t_array:.1f}x")
    print(f"  one build + one steady solve, graph route (cn.chain):    {t_graph * 1e3:.1f} ms  -> ratio {t_grad / t_graph:.2f}x")

    total = 0.04 * (n - 1)
    t = time.perf_counter()
    r = cn.optimize("chain", {"gamma": (0.001, 0.5)}, params={"n_cells": n, "gamma": np.full(n - 1, 0.04)},
                    budget={"gamma": total}, maxiter=ap.parse_args().maxiter)
    dt = time.perf_counter() - t
    print(f"optimising the {n - 1} link rates under a budget (sum = {total:g}), {r.method}: {dt:.1f} s, {r.nit} iterations, "
          f"{r.nfev} evaluations; battery energy {r.fun0:.6g} (uniform) -> {r.fun:.6g} (x{r.fun / r.fun0:.3g}); "
          f"{r.message}; budget kept to {abs(r.x['gamma'].sum() - total) / total:.1e}")


if __name__ == "__main__":
    main()
