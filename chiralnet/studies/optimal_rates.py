"""Study: how the optimal link rate scales with the number of battery cells, cascaded against parallel.

Cf. Liu et al. 2026 (arXiv 2603.23009). The claims, in the model chiralnet solves (steady state, the
seed paper's kappa = 0.003 and E = 0.1, resonant):

- a nonreciprocal chain, a driven charger and N battery cells in a line, battery = the last cell: the
  optimal (uniform) link rate grows as N, Gamma_op / (N kappa) -> 1/2;
- a star, the driven charger at the hub and N battery leaves, battery = all leaves: Gamma_op = kappa / sqrt(N);
- a reciprocal (coherent-only) chain, battery = the last cell: a finite optimal J for an odd number of
  battery cells, none for an even one (the energy rises to a plateau as J grows): the odd-even effect.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from ..builders import chain, star
from ..solve import steady_state
from ._common import StudyResult, _figure, _finish

__all__ = ["topology_scaling", "optimal_rate"]

KAPPA, DRIVE = 0.003, 0.1
#: Battery-cell counts: odd and even, up to 256 (quick: up to 16).
SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 15, 16, 31, 32, 63, 64, 127, 128, 255, 256)
QUICK_SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 15, 16)
#: The log-grid of J a reciprocal chain is scanned on (units of kappa), before refining an interior maximum.
J_GRID = np.geomspace(1e-2, 1e3, 121)


def _energy(kind: str, n: int, rate: float) -> float:
    """Steady battery energy of a chain ('chain', 'reciprocal', battery = last cell) or star (all leaves)."""
    if kind == "star":
        return steady_state(star(n, kappa=KAPPA, gamma=rate, drive=DRIVE)).battery_energy
    G = chain(n + 1, kappa=KAPPA, drive=DRIVE, nonreciprocal=kind == "chain",
              gamma=rate if kind == "chain" else 0.04, J=None if kind == "chain" else rate, battery="last")
    return steady_state(G).battery_energy


def optimal_rate(kind: str, n: int) -> tuple[float, float]:
    """(rate, battery energy) at the optimum of the link rate: Gamma for 'chain' and 'star', J for
    'reciprocal' ((nan, plateau energy) when the energy has no interior maximum). Units of omega."""
    if kind == "reciprocal":
        J = J_GRID * KAPPA
        e = np.array([_energy(kind, n, j) for j in J])
        k = int(e.argmax())
        if k >= J.size - 1 or e[-1] >= e[k] * (1 - 1e-9):
            return float("nan"), float(e[-1])
        lo, hi = np.log(J[max(k - 1, 0)]), np.log(J[k + 1])
    else:
        lo, hi = np.log(KAPPA * 1e-3), np.log(KAPPA * 10 * (n + 1))
    best = minimize_scalar(lambda x: -np.log(_energy(kind, n, float(np.exp(x)))), bounds=(lo, hi),
                           method="bounded", options={"xatol": 1e-10})
    rate = float(np.exp(best.x))
    return rate, _energy(kind, n, rate)


def _slope(n, y):
    """Least-squares exponent of y ~ n^p over the larger half of the sizes."""
    keep = n >= np.median(n)
    return float(np.polyfit(np.log(n[keep]), np.log(y[keep]), 1)[0])


def topology_scaling(*, out=None, quick: bool = False, sizes=None) -> StudyResult:
    """Optimal link rate against the number of battery cells N: nonreciprocal chain, star, reciprocal chain.

    Parameters
    ----------
    out : path, optional
        Folder for ``topology_scaling.{csv,png,txt}``.
    quick : bool
        N up to 16 (seconds) instead of 256.
    sizes : sequence of int, optional
        Battery-cell counts N.
    """
    n = np.array(sorted({int(k) for k in (sizes or (QUICK_SIZES if quick else SIZES))}))
    rows = {kind: np.array([optimal_rate(kind, int(k)) for k in n]) for kind in ("chain", "star", "reciprocal")}
    data = {
        "n_battery": n,
        "gamma_op_chain": rows["chain"][:, 0],
        "gamma_op_chain_over_n_kappa": rows["chain"][:, 0] / (n * KAPPA),
        "energy_chain": rows["chain"][:, 1],
        "gamma_op_star": rows["star"][:, 0],
        "gamma_op_star_sqrt_n_over_kappa": rows["star"][:, 0] * np.sqrt(n) / KAPPA,
        "energy_star": rows["star"][:, 1],
        "J_op_reciprocal": rows["reciprocal"][:, 0],
        "energy_reciprocal": rows["reciprocal"][:, 1],
    }
    p_chain, p_star = _slope(n, data["gamma_op_chain"]), _slope(n, data["gamma_op_star"])
    finite = np.isfinite(data["J_op_reciprocal"])
    odd = n % 2 == 1
    fig, ax = _figure()
    ax.loglog(n, data["gamma_op_chain"] / KAPPA, "o-", label=f"nonreciprocal chain, fit N^{p_chain:.3f}")
    ax.loglog(n, data["gamma_op_star"] / KAPPA, "s-", label=f"star, fit N^{p_star:.3f}")
    ax.loglog(n[finite], data["J_op_reciprocal"][finite] / KAPPA, "^", label="reciprocal chain, J_op (odd N only)")
    ax.loglog(n, n / 2, ":", c="C0", lw=0.8, label="N / 2")
    ax.loglog(n, 1 / np.sqrt(n), ":", c="C1", lw=0.8, label="1 / sqrt(N)")
    ax.set_xlabel("battery cells N")
    ax.set_ylabel("optimal link rate / kappa")
    ax.set_title(f"kappa = {KAPPA}, E = {DRIVE} (steady state)", fontsize=9)
    ax.legend(fontsize=7)
    lines = [f"{'N':>4} {'Gop chain/(N k)':>16} {'Gop star sqrt(N)/k':>19} {'J_op recip/k':>13}"]
    for i, k in enumerate(n):
        j = data["J_op_reciprocal"][i]
        lines.append(f"{k:>4d} {data['gamma_op_chain_over_n_kappa'][i]:16.5f} "
                     f"{data['gamma_op_star_sqrt_n_over_kappa'][i]:19.6f} "
                     f"{(f'{j / KAPPA:13.5f}' if np.isfinite(j) else '         none')}")
    text = (f"topology_scaling: optimal link rate vs battery cells N (kappa = {KAPPA}, E = {DRIVE})\n"
            f"nonreciprocal chain (battery = last cell): Gamma_op ~ N^{p_chain:.3f}, Gamma_op/(N kappa) = "
            f"{data['gamma_op_chain_over_n_kappa'][-1]:.4f} at N = {n[-1]} (claim: -> 0.5)\n"
            f"star (battery = all leaves): Gamma_op ~ N^{p_star:.3f}, Gamma_op sqrt(N)/kappa = "
            f"{data['gamma_op_star_sqrt_n_over_kappa'][-1]:.6f} (claim: 1)\n"
            f"reciprocal chain (battery = last cell): finite J_op for odd N: {bool((finite == odd).all())} "
            f"({int(finite.sum())} of {int(odd.sum())} odd, {int((finite & ~odd).sum())} even)\n"
            + "\n".join(lines) + "\n")
    return _finish("topology_scaling", out, data, text, fig, list(data))
