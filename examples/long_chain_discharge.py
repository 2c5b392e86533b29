"""A 20,000-cell chiral chain discharging: the energy drains down the chain, cell after cell.

The chain is charged to its steady state (drive on cell 0, paper Fig. 2 rates), then the drive is off and
the stored energy flows one way, towards the end, while every cell loses it to its own bath. The charged
state falls off geometrically along the chain but is nonzero on 19,285 cells (below 1e-308 only at the
far end), so each output time applies the sparse propagator P = e^{M dt} (a band of about a dozen
entries a row, truncation proven a priori) to the whole chain; the run keeps the per-cell energies of
200 sampled cells only (``cells=``), with the battery's total summed over every cell in the kernel. The
same run by the Taylor series (``config.SPARSE_PROPAGATOR = False``) agrees to rounding, more slowly.
The front cells empty first: a pulse of energy moves towards the end (right panel). Last, a 200-cell chain with hot link reservoirs: its 199-cell
battery is above ``config.BATTERY_BLOCK_MAX_CELLS``, so the collective ergotropy needs
``battery_fluctuations=True`` (the default keeps O(N) numbers per time); the heat is stored energy but
not work.

With ``--quick`` (as the tests run it) the same steps take 2,000 cells, 121 output times and a 100-cell
hot chain.

Run: python examples/long_chain_discharge.py [OUT_DIR] [--quick]   (writes OUT_DIR/long_chain_discharge.png)
"""

import sys
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import chiralnet as cn
from chiralnet import config
from chiralnet.arrays import chain_model
from chiralnet.plotting import save_figure

quick = "--quick" in sys.argv[1:]
args = [a for a in sys.argv[1:] if a != "--quick"]
out = Path(args[0]) if args else Path(__file__).resolve().parent
n = 2_000 if quick else 20_000
charged = cn.steady_state(chain_model(n, sparse=True)).state  # the drive on cell 0 fills the chain
off = chain_model(n, drive=0.0, sparse=True)  # the same chain, drive off
times = np.linspace(0.0, 3000.0, 121 if quick else 601)
sample = np.unique(np.geomspace(1, min(2000, n - 1), 200).astype(int))  # the charged part of the chain
cells = [off.cells[i] for i in sample]

t0 = time.perf_counter()
res = cn.simulate(off, times, state0=charged, cells=cells)
t_prop = time.perf_counter() - t0
config.SPARSE_PROPAGATOR = False
t0 = time.perf_counter()
series = cn.simulate(off, times, state0=charged, cells=cells)
t_series = time.perf_counter() - t0
config.SPARSE_PROPAGATOR = True
gap = np.max(np.abs(res.battery_energy - series.battery_energy)) / np.max(res.battery_energy)
print(f"{n} cells, {times.size} output times: {t_prop:.2f} s with the sparse propagator "
      f"({res.stats['propagator_entries']:.0f} entries a row, {res.stats['propagator_products']} products), "
      f"{t_series:.2f} s by the Taylor series; they agree to {gap:.1e}")
half = np.flatnonzero(res.battery_energy <= 0.5 * res.battery_energy[0])
print(f"battery energy {res.battery_energy[0]:.1f} omega at t = 0; half of it left at t = {times[half[0]]:.0f}")

fig = Figure(figsize=(10, 4))
ax1, ax2 = fig.subplots(1, 2)
ax1.semilogy(times, res.battery_energy)
ax1.set_xlabel("time (1/omega)")
ax1.set_ylabel("battery energy (omega)")
ax1.set_title(f"{n}-cell chain, drive off")
for t in (0.0, 250.0, 500.0, 1000.0, 2000.0):
    k = int(np.argmin(np.abs(times - t)))
    ax2.loglog(sample, res.energies[k], label=f"t = {times[k]:.0f}")
ax2.set_ylim(1e-12 * res.energies[0].max(), 2 * res.energies[0].max())
ax2.set_xlabel("cell")
ax2.set_ylabel("energy (omega)")
ax2.set_title("energy along the chain (200 sampled cells)")
ax2.legend(fontsize=8)
fig.tight_layout()
save_figure(fig, out / "long_chain_discharge.png")
print(f"wrote {out / 'long_chain_discharge.png'}")

n_hot = 100 if quick else 200  # a battery above config.BATTERY_BLOCK_MAX_CELLS (64) either way
hot = chain_model(n_hot, n_th_link=2.0)
short = np.linspace(0.0, 1500.0, 11)
lean = cn.simulate(hot, short)
full = cn.simulate(hot, short, battery_fluctuations=True)
print(f"{n_hot}-cell chain, hot links: battery block kept by default: {lean.battery_fluctuations is not None}; "
      f"with battery_fluctuations=True: {full.battery_fluctuations.shape}")
print(f"at t = {short[-1]:.0f}: battery energy {full.battery_energy[-1]:.2f}, local ergotropy "
      f"{cn.ergotropy(full)[-1]:.2f}, collective ergotropy {cn.ergotropy(full, collective=True)[-1]:.2f} (omega)")
