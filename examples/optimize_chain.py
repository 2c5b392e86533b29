"""Inverse design: the best split of a fixed total reservoir rate over the links of a chiral chain.

A 16-cell chiral chain (kappa = 0.003, drive 0.1 on cell 0) has a budget of engineered dissipation: its
15 link rates must sum to 15 x 0.04 = 0.6. chiralnet.optimize finds the split, with exact adjoint gradients
(cn.gradient) and SciPy's SLSQP keeping the sum, for two goals:

1. the steady battery energy of all battery cells (1 .. 15);
2. the energy delivered to the far end cell alone (a user objective f(steady_state), finite-difference
   gradients).

With ``--quick`` (as the tests run it) the same steps take an 8-cell chain.

Run: python examples/optimize_chain.py [OUT_DIR] [--quick]   (writes OUT_DIR/optimize_chain.png, default docs/figures)
"""

import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import chiralnet as cn
from chiralnet.plotting import save_figure

quick = "--quick" in sys.argv[1:]
args = [a for a in sys.argv[1:] if a != "--quick"]
out = Path(args[0]) if args else Path(__file__).resolve().parent.parent / "docs" / "figures"
n, kappa, rate = 8 if quick else 16, 0.003, 0.04
uniform = np.full(n - 1, rate)
budget = {"gamma": rate * (n - 1)}
bounds = {"gamma": (0.001, 0.5)}
params = {"n_cells": n, "kappa": kappa, "gamma": uniform}

total = cn.optimize("chain", bounds, "battery_energy", params=params, budget=budget)
end = cn.optimize("chain", bounds, lambda ss: ss.energies[-1], params=params, budget=budget, maximize=True)
ss0 = cn.steady_state(cn.chain(n, kappa=kappa, gamma=uniform))
ss1, ss2 = cn.steady_state(total.graph), cn.steady_state(end.graph)

print(f"{n}-cell chain, link rates summing to {budget['gamma']:g} (bounds {bounds['gamma']}):")
print(f"  battery energy: uniform {total.fun0:.1f} -> optimised {total.fun:.1f} (x{total.fun / total.fun0:.2f}), "
      f"{total.nit} iterations, {total.method}, gradients {total.jac_source}")
print(f"    rates: {np.array2string(total.x['gamma'], precision=4, max_line_width=110)}")
print(f"  end cell energy: uniform {end.fun0:.2f} -> optimised {end.fun:.2f} (x{end.fun / end.fun0:.2f}), "
      f"{end.nit} iterations, gradients {end.jac_source}")
print(f"    rates: {np.array2string(end.x['gamma'], precision=4, max_line_width=110)}")
assert abs(total.x["gamma"].sum() - budget["gamma"]) < 1e-9 and abs(end.x["gamma"].sum() - budget["gamma"]) < 1e-9

fig = Figure(figsize=(10, 3.8))
ax1, ax2 = fig.subplots(1, 2)
links = np.arange(n - 1) + 0.5
ax1.step(links, uniform, where="mid", color="0.5", label="uniform")
ax1.step(links, total.x["gamma"], where="mid", label="max battery energy")
ax1.step(links, end.x["gamma"], where="mid", label="max end-cell energy")
ax1.set_xlabel("link k -> k+1")
ax1.set_ylabel("reservoir rate gamma (omega)")
ax1.set_yscale("log")
ax1.set_title(f"split of a total rate {budget['gamma']:g}", fontsize=10)
ax1.legend(fontsize=8)
cells = np.arange(n)
for ss, lab, st in ((ss0, "uniform", dict(color="0.5")), (ss1, f"battery energy x{total.fun / total.fun0:.2f}", {}),
                    (ss2, f"end cell x{end.fun / end.fun0:.2f}", {})):
    ax2.semilogy(cells, np.maximum(ss.energies, 1e-3), "o-", ms=3, label=lab, **st)
ax2.set_xlabel("cell")
ax2.set_ylabel("steady energy (omega)")
ax2.set_ylim(1e-3, None)
ax2.legend(fontsize=8)
fig.tight_layout()
out.mkdir(parents=True, exist_ok=True)
save_figure(fig, out / "optimize_chain.png")
print(f"wrote {out / 'optimize_chain.png'}")
