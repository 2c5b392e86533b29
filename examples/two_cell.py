"""The seed paper's charger-battery pair (Figs. 2-3 parameters): nonreciprocal vs reciprocal.

Run: python examples/two_cell.py
"""

import numpy as np

import chiralnet as cn
from chiralnet import analytic

gamma, kappa, E = 0.04, 0.003, 0.1
times = np.linspace(0.0, 3000.0, 301)

nonrec = cn.simulate(cn.two_cell(gamma=gamma, kappa_a=kappa, kappa_b=kappa, drive=E), times)
recip = cn.simulate(cn.two_cell(gamma=gamma, kappa_a=kappa, kappa_b=kappa, drive=E, nonreciprocal=False), times)

Lam = gamma + kappa
closed = analytic.battery_energy_symmetric(times, omega=1.0, E=E, gamma=gamma, Lambda=Lam)
err = np.max(np.abs(nonrec.energy("b") - closed)) / closed[-1]
print(f"method: {nonrec.method}; max relative deviation from the corrected Eq. (6): {err:.1e}")
print(f"{'t (1/omega)':>12} {'E_A^nr':>10} {'E_B^nr':>10} {'E_B recip':>10}")
for k in range(0, times.size, 50):
    print(f"{times[k]:12.0f} {nonrec.energy('a')[k]:10.3f} {nonrec.energy('b')[k]:10.3f} {recip.energy('b')[k]:10.3f}")
ss_nr, ss_r = cn.steady_state(cn.two_cell()), cn.steady_state(cn.two_cell(nonreciprocal=False))
print(f"steady battery energy: nonreciprocal {ss_nr.battery_energy:.3f}, reciprocal {ss_r.battery_energy:.3f}, "
      f"ratio {ss_nr.battery_energy / ss_r.battery_energy:.4f} (Eq. 10: "
      f"{analytic.eta_bb(analytic.cooperativity(gamma / 2, kappa, kappa), 1.0):.4f})")
