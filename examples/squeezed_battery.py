"""Squeezing is work, heat is not: a battery charged by noise alone, and two LC circuits.

Left: a chiral charger-battery pair with no coherent drive. The charger's bath has occupation n_th = 1 and
a squeezing fraction s (its anomalous correlation m_th = s sqrt(n_th (n_th + 1)), s = 1 a pure squeezed
bath); the one-way link carries its fluctuations to the battery. A thermal bath (s = 0) fills the battery
with heat only (zero ergotropy); squeezing makes part of the same energy extractable work.
Right: two lossless LC circuits in the lab frame (drive_frequency = 0), the charger thermal (n0 = 1), the
battery empty: with the rotating (beam-splitter) coupling alone or the counter-rotating (parametric) one
alone the battery gains heat but no work; the position coupling g (a + a^dag)(b + b^dag), which is both,
charges it with work (docs/guide/gaussian.md).

Run: python examples/squeezed_battery.py [OUT_DIR]     (writes OUT_DIR/squeezed_battery_work.png)
"""

import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import chiralnet as cn
from chiralnet.plotting import save_figure

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
out.mkdir(parents=True, exist_ok=True)


def noise_charged(s, n_th=1.0):
    G = cn.network(drive_frequency=1.0)   # the squeezed bath is centred at omega_L = omega
    cn.add_cell(G, "charger", omega=1.0, kappa=0.05, n_th=n_th, m_th=s * np.sqrt(n_th * (n_th + 1)))
    cn.add_cell(G, "battery", omega=1.0, kappa=0.003, battery=True)
    cn.add_chiral_link(G, "charger", "battery", gamma=0.04)
    return G


fractions = np.linspace(0.0, 1.0, 11)
energy, work, sd = (np.empty(fractions.size) for _ in range(3))
print(f"{'s':>4} {'E_B':>8} {'W_B':>8} {'std E_B':>8}")
for k, s in enumerate(fractions):
    ss = cn.steady_state(noise_charged(s))
    energy[k], work[k] = ss.battery_energy, cn.ergotropy(ss)
    sd[k] = np.sqrt(cn.energy_variance(ss))
    print(f"{s:4.1f} {energy[k]:8.4f} {work[k]:8.4f} {sd[k]:8.4f}")
assert abs(work[0]) < 1e-12 and np.all(np.diff(work) > 0)   # heat alone is no work; squeezing adds it


def lc_pair(rotating, counter):
    G = cn.network(drive_frequency=0.0)   # the lab frame
    cn.add_cell(G, "charger", omega=1.0, n0=1.0)
    cn.add_cell(G, "battery", omega=1.0, battery=True)
    if rotating:
        cn.add_coherent_link(G, "charger", "battery", rotating)
    if counter:
        cn.add_parametric_link(G, "charger", "battery", counter)
    return G


times = np.linspace(0.0, 40.0, 401)
runs = {label: cn.simulate(lc_pair(*g), times) for label, g in
        [("rotating only", (0.1, 0.0)), ("counter-rotating only", (0.0, 0.1)), ("both (position coupling)", (0.1, 0.1))]}
for label, res in runs.items():
    print(f"{label:26s} max E_B = {res.battery_energy.max():.4f}, max W_B = {cn.ergotropy(res).max():.4f}")

fig = Figure(figsize=(11, 3.8), layout="constrained")
ax1, ax2 = fig.subplots(1, 2)
ax1.plot(fractions, energy, "o-", label=r"stored energy $E_B$")
ax1.plot(fractions, work, "s-", label=r"ergotropy $W_B$")
ax1.plot(fractions, sd, "^--", label=r"energy spread $\sqrt{\mathrm{Var}\,H_B}$")
ax1.set_xlabel(r"squeezing of the charger's bath, $|m_{th}| / \sqrt{n_{th}(n_{th}+1)}$")
ax1.set_ylabel(r"steady battery ($\omega$)")
ax1.set_title(r"charged by noise alone ($n_{th} = 1$)")
ax1.legend(fontsize="small")
ax1.grid(alpha=0.3)
for k, (label, res) in enumerate(runs.items()):
    ax2.plot(times, cn.ergotropy(res), "-" if k == 2 else "--", color=f"C{k}", label=label)
ax2.set_xlabel(r"time ($1/\omega$)")
ax2.set_ylabel(r"battery ergotropy $W_B$ ($\omega$)")
ax2.set_title("two LC circuits: work needs both couplings")
ax2.legend(fontsize="small")
ax2.grid(alpha=0.3)
save_figure(fig, out / "squeezed_battery_work.png", dpi=100)
print(f"wrote {out / 'squeezed_battery_work.png'}")
