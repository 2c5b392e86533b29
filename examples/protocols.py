"""A charging protocol: charge a battery through a chiral link, store it, discharge it into a load;
and the same battery charged by a Gaussian pulse. Writes docs/figures/protocols.png.

Run: python examples/protocols.py [OUT_DIR]   (default docs/figures; writes OUT_DIR/protocols.png)
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import chiralnet as cn  # noqa: E402
from chiralnet import drives, plotting  # noqa: E402


def base(drive=0.1):
    G = cn.network()
    cn.add_cell(G, "charger", omega=1.0, kappa=0.003, drive=drive)
    cn.add_cell(G, "battery", omega=1.0, kappa=0.0001, battery=True)
    cn.add_cell(G, "load", omega=1.0, kappa=0.05)
    return G


charge = base()
cn.add_chiral_link(charge, "charger", "battery", gamma=0.04)
store = base(drive=0.0)                                   # no drive, no links: the battery holds
discharge = base(drive=0.0)
cn.add_chiral_link(discharge, "battery", "load", gamma=0.02)
protocol = cn.protocol([(charge, 1500.0, "charge"), (store, 1000.0, "store"), (discharge, 1500.0, "discharge")])
res = cn.simulate(protocol, np.linspace(0.0, 4000.0, 801))

pulsed = charge.copy()
pulsed.nodes["charger"]["drive"] = drives.gaussian(0.4, t0=400.0, width=80.0)
pulse = cn.simulate(pulsed, np.linspace(0.0, 1500.0, 601))

for k, name in enumerate(res.phase_names):
    print(f"{name:>10} ends at t = {res.phase_ends[k]:6.0f}: battery {res.phase_battery_energy[k]:8.3f} omega")
print(f"Gaussian pulse: battery peaks at {pulse.battery_energy.max():.3f} omega "
      f"(t = {pulse.times[pulse.battery_energy.argmax()]:.0f}); {pulse.stats['drive_steps']} adaptive steps")

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir", nargs="?", default=str(Path(__file__).resolve().parent.parent / "docs" / "figures"))
    args = ap.parse_args()
    out = Path(args.out_dir) / "protocols.png"
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    plotting.plot_energies(res, title="charge, store, discharge", ax=a)
    plotting.plot_energies(pulse, title="Gaussian-pulse charge", ax=b)
    fig.tight_layout()
    plotting.save_figure(fig, out)
    print(f"wrote {out}")
