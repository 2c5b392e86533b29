"""How much does a chiral chain store as it grows? Steady battery energy against the two-cell limit.

Each chain has cell 0 driven and cells 1..N-1 as the battery (paper Fig. 2 rates). The energy falls
along the chain; the end cell, touching one reservoir only, holds about 3.5 times its neighbour (the
most of any cell up to N = 18). The battery total grows with N and levels off beyond a few tens of cells.

Run: python examples/chain_scaling.py [OUT_DIR]   (writes chain_profile.png into OUT_DIR, default ".")
"""

import sys
from pathlib import Path

import chiralnet as cn
from chiralnet.plotting import plot_profile, save_figure
from chiralnet.observables import two_cell_reference

print(f"{'N':>4} {'battery (omega)':>16} {'end cell':>10} {'/ two-cell nonrecip.':>21} {'/ reciprocal':>13}")
for n in (2, 3, 4, 6, 10, 20, 50):
    G = cn.chain(n)
    ss = cn.steady_state(G)
    ref = two_cell_reference(G)
    print(f"{n:4d} {ss.battery_energy:16.3f} {ss.energies[-1]:10.3f} "
          f"{ss.battery_energy / ref['nonreciprocal']:21.3f} {ss.battery_energy / ref['reciprocal']:13.3f}")

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")
out.mkdir(parents=True, exist_ok=True)
G = cn.chain(20)
save_figure(plot_profile(cn.steady_state(G), title="20-cell chiral chain: steady energy profile"),
            out / "chain_profile.png")
print(f"wrote {out / 'chain_profile.png'}")
