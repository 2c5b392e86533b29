"""Studies of the general Gaussian class: squeezed reservoirs, counter-rotating couplings, two-photon pumps.

- ``squeezed-reservoirs`` (cf. Liu et al. 2026, arXiv 2603.23009): thermal noise in the link reservoirs
  raises the battery's stored energy but not its ergotropy; a squeezed reservoir raises the ergotropy.
- ``counter-rotating`` (cf. arXiv 2507.07488, two LC circuits): with a thermal charger the battery gains
  ergotropy only when the rotating and the counter-rotating couplings are both present.
- ``two-photon-pump`` (cf. arXiv 2511.12118 and 2405.11662): a two-photon pumped charger below threshold
  charges the battery through a one-way link; energy and ergotropy against the pump strength up to the
  instability, which is found and reported as such.

The models are stated in each function; docs/guide/reproduced.md has the claims and the numbers.
"""

from __future__ import annotations

import numpy as np

from ..errors import NoSteadyStateError
from ..network import add_cell, add_chiral_link, add_coherent_link, add_parametric_link, network
from ..observables import ergotropy
from ..solve import check_stability, simulate, steady_state
from ._common import StudyResult, _figure, _finish

__all__ = ["squeezed_reservoirs", "counter_rotating", "two_photon_pump", "reservoir_chain", "lc_circuits",
           "pumped_pair"]

KAPPA, GAMMA = 0.003, 0.04


def reservoir_chain(n_cells: int, n_th: float, m_th: complex, *, kappa: float = KAPPA, gamma: float = GAMMA):
    """A chiral chain of ``n_cells`` undriven cells (the pair for 2) whose link reservoirs are squeezed
    thermal (occupation ``n_th``, anomalous correlation ``m_th``), local baths at zero temperature; the
    battery is the last cell. Frequencies in units of omega, resonant (omega = omega_L = 1)."""
    G = network(drive_frequency=1.0)
    for i in range(n_cells):
        add_cell(G, i, omega=1.0, kappa=kappa, battery=i == n_cells - 1)
    for i in range(n_cells - 1):
        add_chiral_link(G, i, i + 1, gamma=gamma, n_th=n_th, m_th=m_th)
    return G


def squeezed_reservoirs(*, out=None, quick: bool = False, n_th_max: float = 2.0, n_points: int | None = None
                        ) -> StudyResult:
    """Battery energy and ergotropy against the link reservoirs' occupation N (thermal) and squeezing |M|.

    Parameters
    ----------
    out : path, optional
        Folder for ``squeezed_reservoirs.{csv,png,txt}``.
    quick : bool
        Fewer points.
    n_th_max : float
        Largest occupation N of the thermal scan; the squeezed scan holds N = 1 and takes |M| from 0 to
        sqrt(N (N + 1)), the most a state allows.
    n_points : int, optional
        Points per scan (default 21; quick: 6).
    """
    k = n_points or (6 if quick else 21)
    N = np.linspace(0.0, n_th_max, k)
    m_max = np.sqrt(2.0)  # N = 1
    M = np.linspace(0.0, m_max, k)
    data = {"N": N, "abs_M": M}
    for label, n_cells in (("pair", 2), ("chain", 6)):
        thermal = [steady_state(reservoir_chain(n_cells, x, 0.0)) for x in N]
        squeezed = [steady_state(reservoir_chain(n_cells, 1.0, m)) for m in M]
        data[f"{label}_thermal_energy"] = np.array([s.battery_energy for s in thermal])
        data[f"{label}_thermal_ergotropy"] = np.array([ergotropy(s) for s in thermal])
        data[f"{label}_squeezed_energy"] = np.array([s.battery_energy for s in squeezed])
        data[f"{label}_squeezed_ergotropy"] = np.array([ergotropy(s) for s in squeezed])
    fig, (ax1, ax2) = _two_panels()
    for label, c in (("pair", "C0"), ("chain", "C1")):
        ax1.plot(N, data[f"{label}_thermal_energy"], "o-", c=c, label=f"{label}: energy")
        ax1.plot(N, data[f"{label}_thermal_ergotropy"], "s--", c=c, label=f"{label}: ergotropy")
        ax2.plot(M, data[f"{label}_squeezed_energy"], "o-", c=c, label=f"{label}: energy")
        ax2.plot(M, data[f"{label}_squeezed_ergotropy"], "s--", c=c, label=f"{label}: ergotropy")
    ax1.set_xlabel("link reservoir occupation N (thermal, M = 0)")
    ax2.set_xlabel("link reservoir squeezing |M| (N = 1)")
    for ax in (ax1, ax2):
        ax.set_ylabel("battery (units of omega)")
        ax.legend(fontsize=7)
    fig.suptitle(f"chiral pair and 6-cell chain, Gamma = {GAMMA}, kappa = {KAPPA}, no drive (steady state)",
                 fontsize=9)
    rows = [f"{'':>10} {'E(N=max)':>10} {'W(N=max)':>10} {'E(|M|=max)':>11} {'W(|M|=max)':>11}"]
    for label in ("pair", "chain"):
        rows.append(f"{label:>10} {data[f'{label}_thermal_energy'][-1]:10.6f} "
                    f"{data[f'{label}_thermal_ergotropy'][-1]:10.2e} {data[f'{label}_squeezed_energy'][-1]:11.6f} "
                    f"{data[f'{label}_squeezed_ergotropy'][-1]:11.6f}")
    text = (f"squeezed_reservoirs: battery (last cell) of a chiral pair and a 6-cell chain fed only by its link "
            f"reservoirs (Gamma = {GAMMA}, kappa = {KAPPA}, no drive)\nthermal reservoirs (M = 0, N up to "
            f"{n_th_max:g}): energy rises, ergotropy stays {max(abs(data['pair_thermal_ergotropy']).max(), abs(data['chain_thermal_ergotropy']).max()):.1e}"
            f"\nsqueezed reservoirs (N = 1, |M| up to sqrt(2)): ergotropy rises to "
            f"{data['pair_squeezed_ergotropy'][-1]:.6f} (pair), {data['chain_squeezed_ergotropy'][-1]:.6f} (chain)\n"
            + "\n".join(rows) + "\n")
    return _finish("squeezed_reservoirs", out, data, text, fig, list(data))


def lc_circuits(rotating: float, counter: float, *, n0: float = 1.0):
    """Two lossless LC circuits in the lab frame (omega = 1 each): the charger thermal (``n0``), the battery
    empty, coupled by g_R (a^dag b + h.c.) (``rotating``) and g_C (a^dag b^dag + h.c.) (``counter``)."""
    G = network(drive_frequency=0.0)
    add_cell(G, "charger", omega=1.0, n0=n0)
    add_cell(G, "battery", omega=1.0, battery=True)
    if rotating:
        add_coherent_link(G, "charger", "battery", rotating)
    if counter:
        add_parametric_link(G, "charger", "battery", counter)
    return G


def counter_rotating(*, out=None, quick: bool = False, g: float = 0.1, t_end: float = 60.0) -> StudyResult:
    """Battery ergotropy against time for rotating, counter-rotating and both couplings (thermal charger).

    Parameters
    ----------
    out : path, optional
        Folder for ``counter_rotating.{csv,png,txt}``.
    quick : bool
        A coarser time grid.
    g : float
        Coupling strength of each part (units of omega).
    t_end : float
        Last time (1/omega).
    """
    t = np.linspace(0.0, t_end, 121 if quick else 601)
    cases = {"rotating": (g, 0.0), "counter_rotating": (0.0, g), "both": (g, g)}
    data = {"time": t}
    for name, (gr, gc) in cases.items():
        res = simulate(lc_circuits(gr, gc), t)
        data[f"{name}_energy"] = res.battery_energy
        data[f"{name}_ergotropy"] = ergotropy(res)
    at5 = {name: simulate(lc_circuits(*c), [0.0, 5.0]) for name, c in cases.items()}
    fig, (ax1, ax2) = _two_panels()
    for name in cases:
        ax1.plot(t, data[f"{name}_energy"], label=name.replace("_", "-"))
        ax2.plot(t, data[f"{name}_ergotropy"], label=name.replace("_", "-"))
    ax1.set_ylabel("battery energy (units of omega)")
    ax2.set_ylabel("battery ergotropy (units of omega)")
    for ax in (ax1, ax2):
        ax.set_xlabel("time (1/omega)")
        ax.legend(fontsize=7)
    fig.suptitle(f"two LC circuits, lab frame, charger thermal n0 = 1, g = {g}", fontsize=9)
    rows = [f"{name:>17}: E(5) = {float(r.battery_energy[-1]):.10f}, W(5) = {float(ergotropy(r)[-1]):.10f}, "
            f"max W = {data[f'{name}_ergotropy'].max():.6g}" for name, r in at5.items()]
    text = (f"counter_rotating: battery ergotropy of two LC circuits (thermal charger n0 = 1, g = {g}, lossless, "
            "lab frame)\nwork only with both couplings: max W rotating "
            f"{data['rotating_ergotropy'].max():.1e}, counter-rotating {data['counter_rotating_ergotropy'].max():.1e}, "
            f"both {data['both_ergotropy'].max():.6g}\n" + "\n".join(rows) + "\n")
    return _finish("counter_rotating", out, data, text, fig, list(data))


def pumped_pair(pump: complex, *, kappa: float = 0.01, gamma: float = 0.04):
    """A charger with a two-photon pump ``pump`` (drive frame, resonant) and a one-way link of rate ``gamma``
    to an empty battery; local baths at zero temperature, kappa each."""
    G = network(drive_frequency=1.0)
    add_cell(G, "charger", omega=1.0, kappa=kappa, pump=pump)
    add_cell(G, "battery", omega=1.0, kappa=kappa, battery=True)
    add_chiral_link(G, "charger", "battery", gamma=gamma)
    return G


def two_photon_pump(*, out=None, quick: bool = False, kappa: float = 0.01, gamma: float = 0.04) -> StudyResult:
    """Battery energy and ergotropy against the pump strength of a two-photon pumped charger.

    Parameters
    ----------
    out : path, optional
        Folder for ``two_photon_pump.{csv,png,txt}``.
    quick : bool
        Fewer pump strengths.
    kappa, gamma : float
        Local damping of both cells and the one-way link's rate (units of omega).
    """
    threshold = (kappa + gamma) / 2  # the charger's total damping over 2 (docs/theory/gaussian.md)
    P = threshold * np.r_[np.linspace(0.0, 0.95, 8 if quick else 39), 0.99, 0.999, 1.001, 1.05]
    energy, work, status = [], [], []
    for p in P:
        G = pumped_pair(float(p), kappa=kappa, gamma=gamma)
        try:
            check_stability(G)
        except NoSteadyStateError:
            energy.append(np.nan)
            work.append(np.nan)
            status.append(1)
            continue
        ss = steady_state(G)
        energy.append(ss.battery_energy)
        work.append(ergotropy(ss))
        status.append(0)
    energy, work, status = np.array(energy), np.array(work), np.array(status)
    stable = status == 0
    data = {"pump": P, "pump_over_threshold": P / threshold, "battery_energy": energy, "battery_ergotropy": work,
            "unstable": status}
    fig, ax = _figure()
    ax.semilogy(P[stable] / threshold, energy[stable], "o-", label="battery energy")
    ax.semilogy(P[stable] / threshold, np.where(work[stable] > 0, work[stable], np.nan), "s--", label="battery ergotropy")
    ax.axvline(1.0, c="k", lw=0.8, ls=":", label="threshold (kappa + Gamma)/2: no steady state beyond")
    ax.set_xlabel("pump |P| / threshold")
    ax.set_ylabel("steady state (units of omega)")
    ax.set_title(f"two-photon pumped charger -> one-way link -> battery; kappa = {kappa}, Gamma = {gamma}", fontsize=9)
    ax.legend(fontsize=7)
    last = int(np.flatnonzero(stable)[-1])
    text = (f"two_photon_pump: pumped charger (kappa = {kappa}) -> one-way link (Gamma = {gamma}) -> battery\n"
            f"threshold |P| = (kappa + Gamma)/2 = {threshold:g}: stable below ({int(stable.sum())} points), no steady "
            f"state from {P[~stable].min() / threshold:.3f} x threshold on (reported by check_stability)\n"
            f"at {P[last] / threshold:.3f} x threshold: battery energy {energy[last]:.6g}, ergotropy {work[last]:.6g} "
            f"(ratio {work[last] / energy[last]:.4f})\n"
            + "\n".join(f"  |P|/P_th = {p / threshold:6.3f}: E = {e:.6g}, W = {w:.6g}" if s == 0 else
                        f"  |P|/P_th = {p / threshold:6.3f}: unstable (no steady state)"
                        for p, e, w, s in zip(P, energy, work, status)) + "\n")
    return _finish("two_photon_pump", out, data, text, fig, list(data))


def _two_panels():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 4.2), layout="constrained")
    return fig, fig.subplots(1, 2)
