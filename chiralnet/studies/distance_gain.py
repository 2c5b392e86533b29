"""Study: the nonreciprocal advantage grows exponentially with distance.

Cf. Zhao et al. 2025 (arXiv 2503.22187). The claim: the ratio of the last cell's steady energy in a
nonreciprocal chain to that in its reciprocal counterpart grows exponentially with the number of links
in the weak-coupling regime. The model: a chain of L links (L + 1 cells), the charger (cell 0) driven on
resonance, equal kappa, battery = the last cell; nonreciprocal: every link a balanced chiral link of rate
Gamma = 2J; reciprocal: the coherent links J alone (the seed paper's pairing, J = Gamma / 2). Reported: the
growth factor per link g (R(L) ~ g^L, a least-squares fit of log R against L) and how straight log R is,
against J / kappa.
"""

from __future__ import annotations

import numpy as np

from ..builders import chain
from ..solve import steady_state
from ._common import StudyResult, _figure, _finish

__all__ = ["nonreciprocal_gain", "end_energy"]

KAPPA, DRIVE = 0.003, 0.1
RATIOS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
QUICK_RATIOS = (0.1, 0.5, 2.0)


def end_energy(links: int, J: float, nonreciprocal: bool) -> float:
    """Steady energy of the last cell of a chain of ``links`` links, charger driven (units of omega)."""
    G = chain(links + 1, kappa=KAPPA, drive=DRIVE, nonreciprocal=nonreciprocal,
              gamma=2 * J if nonreciprocal else 0.04, J=None if nonreciprocal else J, battery="last")
    return steady_state(G).battery_energy


def nonreciprocal_gain(*, out=None, quick: bool = False, ratios=None, max_links: int | None = None) -> StudyResult:
    """End-cell energy of nonreciprocal over reciprocal chains against the number of links L, per J / kappa.

    Parameters
    ----------
    out : path, optional
        Folder for ``nonreciprocal_gain.{csv,png,txt}``.
    quick : bool
        Three coupling ratios and L up to 8.
    ratios : sequence of float, optional
        J / kappa values.
    max_links : int, optional
        Longest chain, in links (default 16; quick: 8).
    """
    ratios = np.array(ratios or (QUICK_RATIOS if quick else RATIOS), float)
    L = np.arange(1, (max_links or (8 if quick else 16)) + 1)
    ratio = np.array([[end_energy(int(k), r * KAPPA, True) / end_energy(int(k), r * KAPPA, False) for k in L]
                      for r in ratios])  # (R, L)
    logs = np.log(ratio)
    fits = [np.polyfit(L, row, 1) for row in logs]
    growth = np.exp([f[0] for f in fits])
    straight = np.array([np.abs(row - np.polyval(f, L)).max() for row, f in zip(logs, fits)])
    data = {"J_over_kappa": ratios, "growth_per_link": growth, "max_log_deviation": straight}
    fig, ax = _figure()
    for r, row in zip(ratios, ratio):
        ax.semilogy(L, row, "o-", ms=3, label=f"J/kappa = {r:g}")
    ax.set_xlabel("links L (chain of L + 1 cells)")
    ax.set_ylabel("E_last nonreciprocal / E_last reciprocal")
    ax.set_title(f"kappa = {KAPPA}, E = {DRIVE}, Gamma = 2J (steady state)", fontsize=9)
    ax.legend(fontsize=7)
    lines = [f"{'J/kappa':>8} {'g per link':>12} {'max |log R - fit|':>18} {'R(L=1)':>10} {'R(L_max)':>12}"]
    lines += [f"{r:8.3g} {g:12.5g} {d:18.3g} {row[0]:10.4g} {row[-1]:12.4g}"
              for r, g, d, row in zip(ratios, growth, straight, ratio)]
    weak = ratios <= 0.2
    text = (f"nonreciprocal_gain: E_last(nonreciprocal) / E_last(reciprocal) against links L = 1..{L[-1]} "
            f"(kappa = {KAPPA}, Gamma = 2J)\nweak coupling (J/kappa <= 0.2): growth per link "
            f"{', '.join(f'{g:.4g}' for g in growth[weak]) or 'not computed'}; log R is a straight line to "
            f"{straight[weak].max() if weak.any() else float('nan'):.2g} (exponential growth)\n"
            + "\n".join(lines) + "\n")
    return _finish("nonreciprocal_gain", out, data, text, fig, list(data))
