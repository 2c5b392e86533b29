"""The seed paper's Figs. 2(a,b), 3(a,b) and 4(a,b,c), reproduced by simulation.

B. Ahmadi et al., "Nonreciprocal Quantum Batteries", PRL 132, 210402 (2024). Every curve is
simulated with :func:`chiralnet.simulate` on the two-cell network of :func:`chiralnet.two_cell`, and
the closed forms of :mod:`chiralnet.analytic` (errata applied) are overlaid; steady-state ratios come
from :func:`chiralnet.steady_state`. The paper plots against the scaled time J t; here the bottom axis
is t in 1/omega and the top axis J t.

Parameters (units of omega):

* Figs. 2-3: Gamma_a = Gamma_b = 0.04, kappa_a = kappa_b = 0.003, E = 0.1, J = Gamma/2 (Delta = 0.08i).
* Fig. 4(a,b): Gamma = 0.01, kappa_a = 0.1, kappa_b = 0.003, E = 0.1, J = Gamma/2 (Delta ~ 0.095);
  the optimised curves use Gamma_a = xi Gamma, Gamma_b = Gamma/xi, xi = sqrt(kappa_a/kappa_b).
* Fig. 4(c): eta_BB(inf) against C = 4 J^2/(kappa_a kappa_b) at Gamma = 2 J.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from . import analytic
from .builders import two_cell
from .plotting import ENERGY_LABEL, TIME_LABEL, plot_eta_vs_cooperativity
from .solve import simulate, steady_state

__all__ = ["FIG23", "FIG4", "PaperReproduction", "reproduce", "FIGURE_NAMES"]

#: Figs. 2-3 parameters (units of omega); J = gamma / 2.
FIG23 = dict(gamma=0.04, kappa_a=0.003, kappa_b=0.003, drive=0.1)
#: Fig. 4(a,b) parameters (units of omega); J = gamma / 2.
FIG4 = dict(gamma=0.01, kappa_a=0.1, kappa_b=0.003, drive=0.1)

FIGURE_NAMES = ("fig2a", "fig2b", "fig3a", "fig3b", "fig4a", "fig4b", "fig4c")


@dataclass(frozen=True, eq=False)
class PaperReproduction:
    """Figures and numbers from :func:`reproduce`.

    Attributes
    ----------
    figures : dict
        ``"fig2a"`` ... ``"fig4c"`` -> matplotlib Figure.
    ratios : list of dict
        Steady-state ratios: ``name``, ``simulated`` (from :func:`steady_state`), ``closed_form``,
        ``equation``.
    deviations : dict
        Curve name -> max |simulated - closed form| / max |closed form| over the time grid.
    """

    figures: dict
    ratios: list
    deviations: dict


def _printed_eq6(t, *, omega, E, gamma, Lambda):
    """Eq. (6) exactly as printed in the paper (wrong at finite t; shown to make the erratum visible)."""
    x = np.exp(-Lambda * np.asarray(t, float) / 2)
    return 16 * omega * gamma**2 * E**2 / Lambda**4 * (1 + x * (x - 2))


def _time_axes(J, figsize=(5.6, 3.9)):
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    ax.set_xlabel(TIME_LABEL)
    top = ax.secondary_xaxis("top", functions=(lambda t: J * t, lambda x: x / J))
    top.set_xlabel(r"scaled time $Jt$")
    return fig, ax


def _finish(ax, t, *, ylabel, title, loc, ylim=(0, None), yscale="linear"):
    """The styling every time-axis figure shares: labels, x range, y range or scale, legend, title."""
    ax.set_ylabel(ylabel)
    ax.set_xlim(t[0], t[-1])
    if yscale != "linear":
        ax.set_yscale(yscale)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.legend(fontsize="small", frameon=False, loc=loc)
    ax.set_title(title, fontsize="medium")


def _ratio(num, den):
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.asarray(num, float) / np.asarray(den, float)
    r[~np.isfinite(r)] = np.nan
    return r


def _dev(sim, closed):
    return float(np.max(np.abs(sim - closed)) / np.max(np.abs(closed)))


#: Bytes per output time held at once by :func:`reproduce`: up to three two-cell simulations (amplitudes
#: and energies), about ten closed-form curves, and the figures' copies of about fourteen plotted lines.
PAPER_BYTES_PER_TIME = 1000


def _check_n_times(n_times) -> None:
    """Refuse an ``n_times`` whose arrays and figures would not fit in memory, before simulating anything."""
    from numbers import Integral

    from . import memory
    from .errors import ChiralnetError

    if isinstance(n_times, bool) or not isinstance(n_times, Integral) or n_times < 2:
        raise ChiralnetError(f"n_times must be an integer >= 2, got {n_times!r}")
    memory.check({"time grids, simulations, closed forms and figure lines": int(n_times) * PAPER_BYTES_PER_TIME},
                 f"the paper's figures at n_times = {n_times}", "fewer times (--n-times; the default 601 is plenty)")


def reproduce(n_times: int = 601, n_cooperativity: int = 13) -> PaperReproduction:
    """Simulate the paper's two-cell system and draw Figs. 2(a,b), 3(a,b), 4(a,b,c).

    Parameters
    ----------
    n_times : int
        Points on each time grid (Figs. 2-3: t in [0, 3000]; Fig. 4: t in [0, 6000], 1/omega).
    n_cooperativity : int
        Simulated points in Fig. 4(c) (C from 1e-3 to 1e3).

    Returns
    -------
    PaperReproduction

    Examples
    --------
    >>> from chiralnet.paper import reproduce
    >>> rep = reproduce(n_times=51, n_cooperativity=3)
    >>> [round(r["simulated"], 4) for r in rep.ratios][:2]
    [3.4613, 3.029]
    """
    _check_n_times(n_times)
    figs, ratios, dev = {}, [], {}
    omega, E = 1.0, FIG23["drive"]

    # ---- Figs. 2-3: symmetric couplings, underdamped reciprocal comparison.
    g, ka, kb = FIG23["gamma"], FIG23["kappa_a"], FIG23["kappa_b"]
    J, Lam = g / 2, g + ka
    t = np.linspace(0.0, 3000.0, n_times)
    nr = simulate(two_cell(**FIG23), t, method="exact")
    rc = simulate(two_cell(**FIG23, nonreciprocal=False), t, method="exact")
    EA, EB, EBr = nr.energy("a"), nr.energy("b"), rc.energy("b")
    EA_c = analytic.charger_energy_nonreciprocal(t, omega=omega, E=E, Lambda_a=Lam)
    EB_c = analytic.battery_energy_symmetric(t, omega=omega, E=E, gamma=g, Lambda=Lam)
    EBr_c = analytic.battery_energy_reciprocal(t, omega=omega, E=E, J=J, kappa_a=ka, kappa_b=kb)
    EB_printed = _printed_eq6(t, omega=omega, E=E, gamma=g, Lambda=Lam)
    dev.update({"E_A^nr vs Eq. (7)": _dev(EA, EA_c), "E_B^nr vs corrected Eq. (6)": _dev(EB, EB_c),
                "E_B^nr vs Eq. (6) as printed": _dev(EB, EB_printed),
                "E_B reciprocal vs corrected Eqs. (8)-(9)": _dev(EBr, EBr_c)})

    fig, ax = _time_axes(J)
    ax.plot(t, EB, color="C0", lw=2, label=r"$E_B^{nr}$ simulated")
    ax.plot(t, EA, color="C1", lw=2, label=r"$E_A^{nr}$ simulated")
    ax.plot(t, EB_c, "k--", lw=1, label="closed forms (Eqs. 6 corrected, 7)")
    ax.plot(t, EA_c, "k--", lw=1)
    ax.plot(t, EB_printed, ":", color="0.5", lw=1.2, label="Eq. (6) as printed")
    _finish(ax, t, ylabel=ENERGY_LABEL, title="Fig. 2(a): charger and battery, nonreciprocal", loc="center right")
    figs["fig2a"] = fig

    ss_nr = steady_state(two_cell(**FIG23))
    Cd = float(analytic.dissipative_cooperativity(g, Lam))
    fig, ax = _time_axes(J)
    ax.plot(t, _ratio(EB, EA), color="C0", lw=2, label=r"$\eta_{AB}^{nr}(t)$ simulated")
    ax.plot(t, _ratio(EB_c, EA_c), "k--", lw=1, label="closed forms")
    ax.axhline(Cd, color="C3", lw=1, ls=":", label=rf"$C_d = 4\Gamma^2/\Lambda^2 = {Cd:.3f}$")
    ax.axhline(1.0, color="0.6", lw=0.8)
    _finish(ax, t, ylabel=r"$\eta_{AB}^{nr} = E_B^{nr}/E_A^{nr}$",
            title="Fig. 2(b): battery-to-charger ratio", loc="lower right", ylim=(0, 1.15 * Cd))
    figs["fig2b"] = fig
    ratios.append(dict(name="eta_AB(inf), Figs. 2-3 parameters", simulated=ss_nr.energy("b") / ss_nr.energy("a"),
                       closed_form=Cd, equation="C_d = 4 Gamma^2 / Lambda^2"))

    fig, ax = _time_axes(J)
    ax.plot(t, EB, color="C0", lw=2, label=r"$E_B^{nr}$ simulated")
    ax.plot(t, EBr, color="C2", lw=2, label=r"$E_B$ (reciprocal) simulated")
    ax.plot(t, EB_c, "k--", lw=1, label="closed forms (Eqs. 6, 8-9 corrected)")
    ax.plot(t, EBr_c, "k--", lw=1)
    _finish(ax, t, ylabel=ENERGY_LABEL,
            title=r"Fig. 3(a): battery energy, underdamped ($\Delta = 0.08i\,\omega$)", loc="lower right")
    figs["fig3a"] = fig

    C23 = float(analytic.cooperativity(J, ka, kb))
    eta10 = float(analytic.eta_bb(C23, np.sqrt(ka / kb)))
    ss_r = steady_state(two_cell(**FIG23, nonreciprocal=False))
    fig, ax = _time_axes(J)
    ax.plot(t, _ratio(EB, EBr), color="C0", lw=2, label=r"$\eta_{BB}(t)$ simulated")
    ax.plot(t, _ratio(EB_c, EBr_c), "k--", lw=1, label="closed forms")
    ax.axhline(eta10, color="C3", lw=1, ls=":", label=rf"Eq. (10): $\eta_{{BB}}(\infty) = {eta10:.3f}$")
    ax.axhline(1.0, color="0.6", lw=0.8)
    _finish(ax, t, ylabel=r"$\eta_{BB} = E_B^{nr}/E_B$",
            title="Fig. 3(b): nonreciprocal over reciprocal battery energy", loc="upper right", ylim=None, yscale="log")
    figs["fig3b"] = fig
    ratios.append(dict(name="eta_BB(inf), Figs. 2-3 parameters (xi = 1)",
                       simulated=ss_nr.battery_energy / ss_r.battery_energy, closed_form=eta10,
                       equation=f"Eq. (10), C = {C23:.4g}, xi = 1"))

    # ---- Fig. 4: lossy charger, overdamped; symmetric and optimal couplings.
    g, ka, kb = FIG4["gamma"], FIG4["kappa_a"], FIG4["kappa_b"]
    J, xi = g / 2, float(np.sqrt(ka / kb))
    t = np.linspace(0.0, 6000.0, n_times)
    nets = {"nr": two_cell(**FIG4), "opt": two_cell(**FIG4, optimal=True), "rec": two_cell(**FIG4, nonreciprocal=False)}
    sim = {k: simulate(G, t, method="exact").energy("b") for k, G in nets.items()}
    ss = {k: steady_state(G).battery_energy for k, G in nets.items()}
    closed = {
        "nr": analytic.battery_energy_nonreciprocal(t, omega=omega, E=E, gamma=g, Lambda_a=g + ka, Lambda_b=g + kb),
        "opt": analytic.battery_energy_nonreciprocal(t, omega=omega, E=E, gamma=g, Lambda_a=xi * g + ka,
                                                     Lambda_b=g / xi + kb),
        "rec": analytic.battery_energy_reciprocal(t, omega=omega, E=E, J=J, kappa_a=ka, kappa_b=kb),
    }
    dev.update({"Fig. 4 E_B^nr vs Eq. (5)": _dev(sim["nr"], closed["nr"]),
                "Fig. 4 E_B,opt^nr vs Eq. (5)": _dev(sim["opt"], closed["opt"]),
                "Fig. 4 E_B reciprocal vs corrected Eqs. (8)-(9)": _dev(sim["rec"], closed["rec"])})
    labels = {"rec": r"$E_B$ (reciprocal)", "nr": r"$E_B^{nr}$", "opt": r"$E_{B,opt}^{nr}$"}
    colors = {"rec": "C2", "nr": "C0", "opt": "C3"}
    fig, ax = _time_axes(J)
    for k in ("rec", "nr", "opt"):
        ax.plot(t, sim[k], color=colors[k], lw=2, label=labels[k] + " simulated")
        ax.plot(t, closed[k], "k--", lw=1, label="closed forms (Eqs. 5, 8-9)" if k == "opt" else None)
    _finish(ax, t, ylabel=ENERGY_LABEL,
            title=r"Fig. 4(a): overdamped ($\Delta \approx 0.095\,\omega$)", loc="center right")
    figs["fig4a"] = fig

    C4 = float(analytic.cooperativity(J, ka, kb))
    eta10_4 = float(analytic.eta_bb(C4, xi))
    eta11 = float(analytic.eta_bb_opt(gamma=g, J=J, kappa_a=ka, kappa_b=kb))
    eta12 = float(analytic.eta_bb_opt_balanced(C4))
    fig, ax = _time_axes(J)
    ax.plot(t, _ratio(sim["nr"], sim["rec"]), color="C0", lw=2, label=r"$\eta_{BB}(t)$ simulated")
    ax.plot(t, _ratio(sim["opt"], sim["rec"]), color="C3", lw=2, label=r"$\eta_{BB}^{opt}(t)$ simulated")
    ax.plot(t, _ratio(closed["nr"], closed["rec"]), "k--", lw=1, label="closed forms")
    ax.plot(t, _ratio(closed["opt"], closed["rec"]), "k--", lw=1)
    ax.axhline(eta10_4, color="C0", lw=1, ls=":", label=rf"Eq. (10): {eta10_4:.3f}")
    ax.axhline(eta11, color="C3", lw=1, ls=":", label=rf"Eq. (11): {eta11:.3f}")
    _finish(ax, t, ylabel=r"$\eta_{BB} = E_B^{nr}/E_B$",
            title="Fig. 4(b): ratio with and without optimal couplings", loc="lower right")
    figs["fig4b"] = fig
    ratios.append(dict(name="eta_BB(inf), Fig. 4 parameters", simulated=ss["nr"] / ss["rec"], closed_form=eta10_4,
                       equation=f"Eq. (10), C = {C4:.4g}, xi = {xi:.4g}"))
    ratios.append(dict(name="eta_BB^opt(inf), Fig. 4 parameters", simulated=ss["opt"] / ss["rec"],
                       closed_form=eta11, equation="Eq. (11)"))
    ratios.append(dict(name="eta_BB^opt(inf), Fig. 4 parameters (Gamma = 2J)", simulated=ss["opt"] / ss["rec"],
                       closed_form=eta12, equation=f"Eq. (12), C = {C4:.4g}"))

    # ---- Fig. 4(c): steady ratios against cooperativity at Gamma = 2J.
    def steady_ratios(C, kappa_a, kappa_b):
        sym, opt = [], []
        for c in np.atleast_1d(C):
            gamma = np.sqrt(c * kappa_a * kappa_b)  # Gamma = 2J, C = 4 J^2 / (kappa_a kappa_b)
            base = dict(gamma=gamma, kappa_a=kappa_a, kappa_b=kappa_b, drive=E)
            rec = steady_state(two_cell(**base, nonreciprocal=False)).battery_energy
            sym.append(steady_state(two_cell(**base)).battery_energy / rec)
            opt.append(steady_state(two_cell(**base, optimal=True)).battery_energy / rec)
        return np.array(sym), np.array(opt)

    Cline = np.logspace(-3, 3, 400)
    Cpts = np.logspace(-3, 3, n_cooperativity)
    sym_pts, opt_pts = steady_ratios(Cpts, ka, kb)
    fig = plot_eta_vs_cooperativity(
        Cline,
        {rf"$\eta_{{BB}}(\infty)$, Eq. (10), $\xi = {xi:.2f}$": analytic.eta_bb(Cline, xi),
         r"$\eta_{BB}^{opt}(\infty)$, Eq. (12) (= Eq. (10) at $\xi = 1$)": analytic.eta_bb_opt_balanced(Cline)},
        points={"simulated": (Cpts, sym_pts), "simulated, optimal couplings": (Cpts, opt_pts)},
        title=rf"Fig. 4(c): steady-state ratios at $\Gamma = 2J$, $\kappa_a/\kappa_b = {ka / kb:.3g}$",
    )
    figs["fig4c"] = fig
    for C in (1e-8, 1e8):
        _, opt = steady_ratios([C], ka, kb)
        ratios.append(dict(name=f"fourfold limit: eta_BB^opt(inf) at C = {C:g}", simulated=float(opt[0]),
                           closed_form=float(analytic.eta_bb_opt_balanced(C)), equation="Eq. (12) -> 4"))
    for r in ratios:
        r["simulated"] = float(r["simulated"])
        r["closed_form"] = float(r["closed_form"])
    return PaperReproduction(figures=figs, ratios=ratios, deviations=dev)
