"""The scattering view: a matched isolator against its closed form, and the leak of a one-way ring.

Ports are the cells' local damping channels (rate kappa); S(delta) = I + K^1/2 (M + i delta)^-1 K^1/2.
Left: the matched isolator (Gamma = kappa) transmits a -> b with |S_ba|^2 = kappa^4 / (kappa^2 + delta^2)^2
and nothing back. Right: in a one-way ring of 3 cells power also reaches the previous cell the long
way round, so the isolation of a link is finite: 10 log10((Lambda^2/4 + delta^2) / Gamma^2).

Run: python examples/scattering.py [OUT_DIR]     (writes OUT_DIR/scattering.png, default: this folder)
"""

import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import chiralnet as cn
from chiralnet.plotting import save_figure
from chiralnet.plotting.scattering import DETUNING_LABEL

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
kappa = 0.01
delta = np.linspace(-5 * kappa, 5 * kappa, 501)

G = cn.network(drive_frequency=1.0)
cn.add_cell(G, "a", omega=1.0, kappa=kappa)
cn.add_cell(G, "b", omega=1.0, kappa=kappa)
cn.add_chiral_link(G, "a", "b", gamma=kappa)
iso = cn.scattering(G, delta)
closed = kappa**4 / (kappa**2 + delta**2) ** 2
err = np.abs(iso.transmission("a", "b", db=False) - closed).max()
print(f"isolator ({iso.method}): max | |S_ba|^2 - closed form | = {err:.1e}; "
      f"max |S_ab| = {np.abs(iso.amplitude('b', 'a')).max():g} (exactly one-way)")
band = cn.isolation_bandwidth(G, "a", "b", 20.0, span=5 * kappa)
print(f"isolator: 20 dB isolation over the whole window searched: {not (band.low_found or band.high_found)}")

gamma = 0.01
ring = cn.ring(3, kappa=kappa, gamma=gamma)
ring_iso = cn.isolation(ring, 0, 1, delta)
Lam = kappa + 2 * gamma
print(f"one-way ring of 3: isolation 0 -> 1 on resonance {ring_iso[250]:.3f} dB "
      f"(closed form {10 * np.log10(Lam**2 / 4 / gamma**2):.3f} dB)")
band = cn.isolation_bandwidth(ring, 1, 0, -6.0, span=5 * kappa)
print(f"one-way ring of 3: link 1 -> 0 leaks back >= -6 dB for |delta| <= {band.high:.6f} "
      f"(closed form {np.sqrt(gamma**2 * 10**0.6 - Lam**2 / 4):.6f})")

fig = Figure(figsize=(10, 3.8), layout="constrained")
ax1, ax2 = fig.subplots(1, 2)
x = delta / kappa
ax1.plot(x, iso.transmission("a", "b"), label=r"$|S_{ba}|^2$ (a $\to$ b)")
ax1.plot(x, iso.reflection("a"), label=r"$|S_{aa}|^2$ (reflection)")
ax1.plot(x[::25], 10 * np.log10(closed[::25]), "k.", label=r"$\kappa^4/(\kappa^2+\delta^2)^2$")
ax1.plot([], [], "--", label=r"$|S_{ab}|^2 = 0$ exactly")
ax1.set_ylim(-30, 2)
ax1.set_xlabel(r"probe detuning $\delta/\kappa$")
ax1.set_ylabel("power (dB)")
ax1.set_title(r"matched isolator ($\Gamma = \kappa$)")
ax1.legend(fontsize="small")
ax1.grid(alpha=0.3)
ax2.plot(delta, ring_iso, label=r"isolation $0 \to 1$")
ax2.plot(delta[::25], 10 * np.log10((Lam**2 / 4 + delta[::25] ** 2) / gamma**2), "k.", label="closed form")
ax2.set_xlabel(DETUNING_LABEL)
ax2.set_ylabel("isolation (dB)")
ax2.set_title("one-way ring of 3 cells: the long way back")
ax2.legend(fontsize="small")
ax2.grid(alpha=0.3)
save_figure(fig, out / "scattering.png", dpi=100)
print(f"wrote {out / 'scattering.png'}")
