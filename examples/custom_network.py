"""A network no builder makes: two chargers feeding one battery through a common waveguide.

Build it cell by cell, save it as JSON, load it back, and use it from a scenario file
(``[network] graph = "custom.json"``).

Run: python examples/custom_network.py [OUT_DIR]   (writes custom.json and custom.toml, default ".")
"""

import sys
from pathlib import Path

import numpy as np

import chiralnet as cn
from chiralnet.files import atomic_write_text

G = cn.network(drive_frequency=1.0, name="two chargers")
cn.add_cell(G, "A1", omega=1.0, kappa=0.003, drive=0.1, label="charger 1")
cn.add_cell(G, "A2", omega=1.0, kappa=0.003, drive=0.1j, label="charger 2")   # drive 90 degrees out of phase
cn.add_cell(G, "B", omega=1.0, kappa=0.003, battery=True, label="battery")
cn.add_chiral_link(G, "A1", "B", gamma=0.04)
cn.add_chiral_link(G, "A2", "B", gamma=0.04)
cn.add_reservoir(G, {"A1": 0.1, "A2": 0.1, "B": 0.1 * np.exp(0.5j)}, gamma=0.01, name="waveguide")

ss = cn.steady_state(G)
print("steady energies (omega):", {c: round(float(e), 3) for c, e in zip(ss.cells, ss.energies)})
print(f"battery: {ss.battery_energy:.3f} omega")

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")
out.mkdir(parents=True, exist_ok=True)
cn.save_graph(G, out / "custom.json")
H = cn.load_graph(out / "custom.json")
assert np.array_equal(cn.build_model(H).dense_M(), cn.build_model(G).dense_M())   # nothing lost
atomic_write_text(out / "custom.toml", 'title = "Two chargers, one battery"\n\n[network]\ngraph = "custom.json"\n\n'
                  "[times]\nt_end = 2000.0\nn_times = 201\n")
print(f"wrote {out / 'custom.json'} and {out / 'custom.toml'}; next: chiralnet run {out / 'custom.toml'}")
