"""Scale studies of the seed paper's model: chains, topologies, disorder, the two-cell ratios.

chain_length
    Steady battery energy of a chain against its number of battery cells N = 1 ... 10^4, nonreciprocal
    (one-way links) and reciprocal (coherent links J = gamma/2), at the paper's Fig. 2 rates. The chain
    has N + 1 cells: cell 0 is the driven charger, so N = 1 is the two-cell battery.
cooperativity
    The paper's Fig. 4(c): eta_BB(inf) and eta_BB^opt(inf) against the cooperativity C = 4J^2/(kappa_a kappa_b),
    simulated (steady states of the nonreciprocal, optimal nonreciprocal and reciprocal two-cell systems with
    Gamma = 2|J|, kappa_a = 0.1, kappa_b = 0.003) on a dense grid of C and compared with Eqs. (10)-(12).
topology
    The steady battery energy of chains, rings, stars and square lattices over the two-cell limit, at
    *equal total reservoir rate*: every network gets the same budget Gamma_tot = 0.04 of engineered
    dissipation, split equally over its links (per-link gamma = Gamma_tot / n_links), with the same kappa,
    drive and omega; the two-cell limit is the two-cell battery whose one link has the whole Gamma_tot,
    16 omega Gamma_tot^2 E^2 / (Gamma_tot + kappa)^4.
disorder
    The chain_length curves with fabrication disorder: every cell's kappa and every link's gamma scatter by
    5 % (relative standard deviation, normal) around the Fig. 2 values; 1000 chains per length and link
    kind (one-way / reciprocal), reported as the mean with the 5-95 % band, beside the clean chain.

Each keeps its sweeps' chunk stores under ``out/sweeps/`` (so a rerun resumes).
"""

from __future__ import annotations

import math

import numpy as np

from .. import analytic
from ..builders import chain, lattice, ring, star
from ..errors import NetworkError
from ..observables import two_cell_limits
from ._common import StudyResult, _figure, _finish, _sweep

__all__ = ["chain_length", "cooperativity", "topology", "equal_rate_network", "disorder"]

#: The seed paper's Fig. 2 rates (units of omega).
GAMMA, KAPPA, DRIVE = 0.04, 0.003, 0.1


def chain_length(*, out=None, quick: bool = False, n_battery=None, workers=None, scheduler=None,
                 processes=None, progress=None) -> StudyResult:
    """Battery energy vs chain length N (battery cells), nonreciprocal and reciprocal chains.

    Parameters
    ----------
    n_battery : sequence of int, optional
        Battery-cell counts (default 1 ... 10^4 on a log grid; ``quick``: 1 ... 50).
    """
    if n_battery is None:
        n_battery = [1, 2, 3, 5, 10, 20, 50]
        if not quick:
            n_battery += [100, 200, 500, 1000, 2000, 5000, 10000]
    n_battery = sorted({int(n) for n in n_battery})
    res = _sweep(out, "chain_length", "chain", {"n_cells": [n + 1 for n in n_battery], "nonreciprocal": [True, False]},
                 ["battery_energy", "total_energy"], workers=workers, scheduler=scheduler, processes=processes,
                 progress=progress)
    eb = res["battery_energy"]
    lim_nr, lim_r = (float(x) for x in two_cell_limits(omega=1.0, E=DRIVE, kappa_a=KAPPA, kappa_b=KAPPA, gamma=GAMMA))
    n = np.array(n_battery)
    data = {"n_battery": n, "battery_energy_nonreciprocal": eb[:, 0], "battery_energy_reciprocal": eb[:, 1],
            "ratio_nonreciprocal_to_reciprocal": eb[:, 0] / eb[:, 1]}
    fig, ax = _figure()
    ax.loglog(n, eb[:, 0], "o-", label="nonreciprocal chain")
    ax.loglog(n, eb[:, 1], "s-", label="reciprocal chain (J = gamma/2)")
    ax.axhline(lim_nr, ls="--", c="C0", lw=0.8, label="two-cell limit, nonreciprocal")
    ax.axhline(lim_r, ls="--", c="C1", lw=0.8, label="two-cell limit, reciprocal")
    ax.set_xlabel("battery cells N (chain of N + 1 cells)")
    ax.set_ylabel("steady battery energy (omega)")
    ax.set_title(f"gamma = {GAMMA}, kappa = {KAPPA}, E = {DRIVE}")
    ax.legend(fontsize=8)
    rows = [f"{'N':>6} {'E_B nonrec':>12} {'E_B recip':>12} {'ratio':>8}"]
    rows += [f"{k:>6d} {a:12.4f} {b:12.4f} {a / b:8.3f}" for k, a, b in zip(n, eb[:, 0], eb[:, 1])]
    text = (f"chain_length: steady battery energy vs battery cells N (gamma={GAMMA}, kappa={KAPPA}, E={DRIVE})\n"
            f"two-cell limits: nonreciprocal {lim_nr:.4f}, reciprocal {lim_r:.4f}; "
            f"N = 1 reproduces them to {max(abs(eb[0, 0] / lim_nr - 1), abs(eb[0, 1] / lim_r - 1)):.1e} "
            "(relative)\n" + "\n".join(rows) + "\n")
    return _finish("chain_length", out, data, text, fig, list(data))


def cooperativity(*, out=None, quick: bool = False, n_points=None, kappa_a: float = 0.1, kappa_b: float = 0.003,
                  workers=None, scheduler=None, processes=None, progress=None) -> StudyResult:
    """eta_BB(inf) and eta_BB^opt(inf) vs cooperativity C (the paper's Fig. 4(c)), simulated vs Eqs. 10-12."""
    n_points = n_points or (40 if quick else 2000)
    C = np.geomspace(1e-2, 1e3, n_points)
    gamma = np.sqrt(C * kappa_a * kappa_b)  # Gamma = 2|J| and C = 4 J^2/(kappa_a kappa_b)
    common = dict(params={"kappa_a": kappa_a, "kappa_b": kappa_b, "drive": DRIVE}, workers=workers,
                  scheduler=scheduler, processes=processes, progress=progress)
    grid = {"gamma": gamma, "nonreciprocal": [True, False]}
    both = _sweep(out, "cooperativity", "two_cell", grid, ["battery_energy"], **common)
    opt = _sweep(out, "cooperativity_opt", "two_cell", {"gamma": gamma}, ["battery_energy"],
                 **{**common, "params": {**common["params"], "optimal": True}})
    e_nr, e_r = both["battery_energy"][:, 0], both["battery_energy"][:, 1]
    e_opt = opt["battery_energy"]
    eta, eta_opt = e_nr / e_r, e_opt / e_r
    xi = math.sqrt(kappa_a / kappa_b)
    eq10 = analytic.eta_bb(C, xi)
    eq11 = analytic.eta_bb_opt(gamma=gamma, J=gamma / 2, kappa_a=kappa_a, kappa_b=kappa_b)
    eq12 = analytic.eta_bb_opt_balanced(C)
    dev10 = float(np.max(np.abs(eta / eq10 - 1)))
    dev11 = float(np.max(np.abs(eta_opt / eq11 - 1)))
    dev12 = float(np.max(np.abs(eta_opt / eq12 - 1)))
    i1 = int(np.argmin(np.abs(np.log(C))))
    data = {"C": C, "gamma": gamma, "eta_bb": eta, "eta_bb_opt": eta_opt, "eq10": eq10, "eq11": eq11, "eq12": eq12}
    fig, ax = _figure()
    step = max(1, n_points // 60)
    ax.semilogx(C, eq10, "-", c="C0", label=f"Eq. (10), xi = {xi:.3g}")
    ax.semilogx(C, eq12, "-", c="C1", label="Eq. (12), optimal couplings")
    ax.semilogx(C[::step], eta[::step], "o", ms=3.5, mfc="none", c="C0", label="simulated eta_BB(inf)")
    ax.semilogx(C[::step], eta_opt[::step], "s", ms=3.5, mfc="none", c="C1", label="simulated eta_BB^opt(inf)")
    ax.axhline(1.0, c="k", lw=0.6)
    ax.set_xlabel("cooperativity C = 4 J^2 / (kappa_a kappa_b)")
    ax.set_ylabel("battery energy ratio, nonreciprocal / reciprocal")
    ax.set_yscale("log")
    ax.set_title(f"Fig. 4(c): kappa_a = {kappa_a}, kappa_b = {kappa_b}, Gamma = 2|J|")
    ax.legend(fontsize=8)
    text = (f"cooperativity: {n_points} values of C in [1e-2, 1e3], kappa_a={kappa_a}, kappa_b={kappa_b}, "
            f"Gamma = 2|J|\nmax relative deviation of the simulated ratios from the closed forms: "
            f"Eq. (10) {dev10:.2e}, Eq. (11) {dev11:.2e}, Eq. (12) {dev12:.2e}\n"
            f"at C = {C[i1]:.4g} (nearest grid point to 1): eta_BB(inf) = {eta[i1]:.6f} (Eq. 10: {eq10[i1]:.6f}), "
            f"eta_BB^opt(inf) = {eta_opt[i1]:.6f} (Eq. 12: {eq12[i1]:.6f})\n")
    return _finish("cooperativity", out, data, text, fig, list(data))


TOPOLOGIES = ("chain", "ring", "star", "lattice")


def n_links(topology: str, n_cells: int) -> int:
    """Number of links of a builder network with ``n_cells`` cells."""
    if topology in ("chain", "star"):
        return n_cells - 1
    if topology == "ring":
        return n_cells
    if topology == "lattice":
        r = math.isqrt(n_cells)
        return 2 * r * (r - 1)
    raise NetworkError(f"unknown topology {topology!r}; valid: {list(TOPOLOGIES)}")


def equal_rate_network(topology: str, n_cells: int, *, total_gamma: float = GAMMA, kappa: float = KAPPA,
                       drive: float = DRIVE, nonreciprocal: bool = True):
    """A builder network whose links share ``total_gamma`` equally (per-link gamma = total_gamma / n_links).

    ``n_cells`` must be a perfect square for ``lattice`` (a sqrt x sqrt grid); a star has n_cells - 1 leaves.
    """
    if topology == "lattice" and math.isqrt(n_cells) ** 2 != n_cells:
        raise NetworkError(f"lattice needs a square number of cells, got n_cells = {n_cells}")
    g = total_gamma / n_links(topology, n_cells)
    opts = dict(gamma=g, kappa=kappa, drive=drive, nonreciprocal=nonreciprocal)
    if topology == "chain":
        return chain(n_cells, **opts)
    if topology == "ring":
        return ring(n_cells, **opts)
    if topology == "star":
        return star(n_cells - 1, **opts)
    r = math.isqrt(n_cells)
    return lattice(r, r, **opts)


def topology(*, out=None, quick: bool = False, sizes=None, total_gamma: float = GAMMA, workers=None,
             scheduler=None, processes=None, progress=None) -> StudyResult:
    """Battery energy over the two-cell limit across topologies at equal total reservoir rate."""
    sizes = sizes or ([4, 9] if quick else [4, 9, 16, 25, 36, 49, 64, 100, 225, 400])
    res = _sweep(out, "topology", equal_rate_network, {"topology": list(TOPOLOGIES), "n_cells": list(sizes)},
                 ["battery_energy"], params={"total_gamma": total_gamma}, workers=workers, scheduler=scheduler,
                 processes=processes, progress=progress)
    limit = float(two_cell_limits(omega=1.0, E=DRIVE, kappa_a=KAPPA, kappa_b=KAPPA, gamma=total_gamma)[0])
    ratio = res["battery_energy"] / limit
    data = {"topology": np.repeat(TOPOLOGIES, len(sizes)), "n_cells": np.tile(sizes, len(TOPOLOGIES)),
            "battery_energy": res["battery_energy"].reshape(-1), "ratio_to_two_cell": ratio.reshape(-1)}
    fig, ax = _figure()
    for k, t in enumerate(TOPOLOGIES):
        ax.semilogx(sizes, ratio[k], "o-", label=t)
    ax.axhline(1.0, c="k", lw=0.6)
    ax.set_xlabel("cells N")
    ax.set_ylabel("battery energy / two-cell limit")
    ax.set_title(f"equal total reservoir rate Gamma_tot = {total_gamma}, kappa = {KAPPA}, E = {DRIVE}")
    ax.legend(fontsize=8)
    rows = [f"{'N':>5} " + " ".join(f"{t:>9}" for t in TOPOLOGIES)]
    rows += [f"{s:>5d} " + " ".join(f"{ratio[k, j]:9.4f}" for k in range(len(TOPOLOGIES))) for j, s in enumerate(sizes)]
    text = (f"topology: steady battery energy / two-cell limit ({limit:.4f} omega, one link with Gamma_tot = "
            f"{total_gamma}); every network's links share Gamma_tot equally\n" + "\n".join(rows) + "\n")
    return _finish("topology", out, data, text, fig, list(data))


def disorder(*, out=None, quick: bool = False, n_battery=None, spread: float = 0.05, realisations=None,
             seed: int = 1, workers=None, scheduler=None, processes=None, progress=None) -> StudyResult:
    """Battery energy vs chain length with fabrication disorder in kappa and gamma, one-way vs reciprocal.

    Parameters
    ----------
    n_battery : sequence of int, optional
        Battery-cell counts (default 1 ... 12, 15, 20, 30, 50, 100, 200; ``quick``: 1, 2, 3, 5, 10, 20).
        The chain has N + 1 cells; above ``config.BATCH_MAX_CELLS`` each realisation goes
        through ``steady_state``.
    spread : float
        Relative spread (standard deviation) of every cell's kappa and every link's gamma (0.05 = 5 %).
    realisations : int, optional
        Disordered chains per length and link kind (default 1000; ``quick``: 200).
    seed : int
        Seed of the ensemble (:mod:`chiralnet.sweeps.disorder`); the same seed gives the same numbers.
    """
    if n_battery is None:
        n_battery = [1, 2, 3, 5, 10, 20] if quick else list(range(1, 13)) + [15, 20, 30, 50, 100, 200]
    n_battery = sorted({int(n) for n in n_battery})
    realisations = realisations or (200 if quick else 1000)
    grid = {"n_cells": [n + 1 for n in n_battery], "nonreciprocal": [True, False]}
    engine = dict(workers=workers, scheduler=scheduler, processes=processes, progress=progress)
    res = _sweep(out, "disorder", "chain", grid, ["battery_energy"], disorder={"kappa": spread, "gamma": spread},
                 realisations=realisations, seed=seed, **engine)
    clean = _sweep(out, "disorder_clean", "chain", grid, ["battery_energy"], **engine)["battery_energy"]
    n = np.array(n_battery)
    data = {"n_battery": n}
    kinds = (("nonreciprocal", 0), ("reciprocal", 1))
    for kind, j in kinds:
        for stat in ("mean", "std", "q5", "q50", "q95"):
            data[f"{stat}_{kind}"] = res.stat("battery_energy", stat)[:, j]
        data[f"clean_{kind}"] = clean[:, j]
    fig, ax = _figure()
    for (kind, j), marker, label in zip(kinds, "os", ("nonreciprocal chain", "reciprocal chain (J = gamma/2)")):
        c = f"C{j}"
        ax.fill_between(n, data[f"q5_{kind}"], data[f"q95_{kind}"], color=c, alpha=0.25, lw=0)
        ax.plot(n, data[f"mean_{kind}"], marker + "-", c=c, label=f"{label}: mean, 5-95 % band")
        ax.plot(n, data[f"clean_{kind}"], "--", c=c, lw=0.9, label=f"{label}: no disorder")
    ax.set_xscale("log")
    ax.set_xlabel("battery cells N (chain of N + 1 cells)")
    ax.set_ylabel("steady battery energy (omega)")
    ax.set_title(f"{spread:.0%} disorder in every kappa and gamma, {realisations} chains per point\n"
                 f"nominal gamma = {GAMMA}, kappa = {KAPPA}, E = {DRIVE}", fontsize=9)
    ax.legend(fontsize=7)
    rows = [f"{'N':>5} {'nonrec mean':>12} {'5%':>9} {'95%':>9} {'clean':>9} {'recip mean':>12} {'5%':>9} "
            f"{'95%':>9} {'clean':>9}"]
    for i, k in enumerate(n):
        rows.append(f"{k:>5d} " + " ".join(
            f"{data[f'mean_{kind}'][i]:12.4f} {data[f'q5_{kind}'][i]:9.3f} {data[f'q95_{kind}'][i]:9.3f} "
            f"{data[f'clean_{kind}'][i]:9.3f}" for kind, _ in kinds))
    cv = {kind: float(np.max(data[f"std_{kind}"] / data[f"mean_{kind}"])) for kind, _ in kinds}
    text = (f"disorder: steady battery energy vs battery cells N with {spread:.0%} relative disorder in every kappa "
            f"and gamma ({realisations} chains per point, normal, seed {seed}; gamma={GAMMA}, kappa={KAPPA}, "
            f"E={DRIVE})\nlargest relative spread std/mean of the battery energy: nonreciprocal "
            f"{cv['nonreciprocal']:.3f}, reciprocal {cv['reciprocal']:.3f}\n" + "\n".join(rows) + "\n")
    return _finish("disorder", out, data, text, fig, list(data))

