"""The seed paper's two-cell closed forms (chiralnet.analytic) against simulate and steady_state.

Parameter sets: the paper's Figs. 2-3 and Fig. 4(a,b) (docs/theory/model.md, "Two cells: the seed paper's
results") and other values.
Every method of chiralnet.METHODS is checked at its own tolerance. Negative controls show that
Eq. (6) and Eq. (9) *as printed* are wrong (they are implemented here only, never in the library).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import chiralnet as cn
from chiralnet import analytic as an
from conftest import EXACT_REL, RK_REL, RK_TIGHT, STEADY_REL
from naive import rel_err

#: options and accuracy per method against a closed form
METHOD_OPTIONS = {"exact": {}, "exact-sparse": {}, "rk45": RK_TIGHT}
METHOD_REL = {"exact": EXACT_REL, "exact-sparse": EXACT_REL, "rk45": RK_REL}
METHODS = sorted(cn.METHODS)
#: The printed errata must be off by more than this (relative to the peak value).
PRINTED_WRONG_BY = 0.01

FIG2 = dict(omega=1.0, E=0.1, gamma=0.04, kappa_a=0.003, kappa_b=0.003)       # Figs. 2-3
FIG4 = dict(omega=1.0, E=0.1, gamma=0.01, kappa_a=0.1, kappa_b=0.003)         # Fig. 4(a,b)
OTHER1 = dict(omega=1.7, E=0.23, gamma=0.13, kappa_a=0.02, kappa_b=0.07)
OTHER2 = dict(omega=0.6, E=0.05, gamma=0.3, kappa_a=0.5, kappa_b=0.01)
OTHER_SYM = dict(omega=2.5, E=0.3, gamma=0.07, kappa_a=0.011, kappa_b=0.011)
NONRECIPROCAL = {"fig2": FIG2, "fig4": FIG4, "other1": OTHER1, "other2": OTHER2, "other_sym": OTHER_SYM}


def test_every_method_has_a_tolerance():
    assert set(cn.METHODS) == set(METHOD_OPTIONS) == set(METHOD_REL)


def test_paper_parameter_sets():
    # Delta of Figs. 2-3 is 0.08i, of Fig. 4 about 0.095 (docs/theory/model.md, "Two cells").
    assert abs(an.delta(FIG2["gamma"] / 2, FIG2["kappa_a"], FIG2["kappa_b"]) - 0.08j) < 1e-15
    assert abs(an.delta(FIG4["gamma"] / 2, FIG4["kappa_a"], FIG4["kappa_b"]) - 0.095) < 1e-3


def _nonreciprocal(p, xi):
    G = cn.network(drive_frequency=p["omega"])
    cn.add_cell(G, "a", omega=p["omega"], kappa=p["kappa_a"], drive=p["E"])
    cn.add_cell(G, "b", omega=p["omega"], kappa=p["kappa_b"], battery=True)
    cn.add_chiral_link(G, "a", "b", gamma=p["gamma"], xi=xi)
    La, Lb = p["kappa_a"] + xi * p["gamma"], p["kappa_b"] + p["gamma"] / xi
    return G, La, Lb


def _times(*rates, n=201):
    return np.linspace(0.0, 16.0 / min(rates), n)


def _xi_values(p):
    return [1.0, np.sqrt(p["kappa_a"] / p["kappa_b"]), 2.7]


# ---------------------------------------------------------------------------------------------
# Nonreciprocal link: Eq. (5), corrected Eq. (6), Eq. (7), steady values, C_d.


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", sorted(NONRECIPROCAL))
def test_eq5_eq7_against_simulate(method, name):
    p = NONRECIPROCAL[name]
    for xi in _xi_values(p):               # xi = 1, the optimal sqrt(kappa_a/kappa_b), and another
        G, La, Lb = _nonreciprocal(p, xi)
        t = _times(La, Lb)
        res = cn.simulate(G, t, method=method, **METHOD_OPTIONS[method])
        eb = an.battery_energy_nonreciprocal(t, omega=p["omega"], E=p["E"], gamma=p["gamma"], Lambda_a=La, Lambda_b=Lb)
        ea = an.charger_energy_nonreciprocal(t, omega=p["omega"], E=p["E"], Lambda_a=La)
        assert rel_err(res.energy("b"), eb) <= METHOD_REL[method], (xi, rel_err(res.energy("b"), eb))
        assert rel_err(res.energy("a"), ea) <= METHOD_REL[method], (xi, rel_err(res.energy("a"), ea))
        if abs(La - Lb) > 1e-3 * La:       # Eq. (5) as printed divides by (Lambda_a - Lambda_b)^2
            printed = an.battery_energy_nonreciprocal_eq5(t, omega=p["omega"], E=p["E"], gamma=p["gamma"],
                                                          Lambda_a=La, Lambda_b=Lb)
            assert rel_err(res.energy("b"), printed) <= METHOD_REL[method]


def test_printed_eq6_error_size_at_fig2():
    # Printed: (1 - x)^2, corrected: (1 - x (1 + Lambda t/2))^2 with x = e^{-Lambda t/2}. Their largest
    # difference is 0.41 of the steady value (near Lambda t/2 = 1.65; docs/theory/errata.md, "Eq. (6)").
    p = FIG2
    L = p["kappa_a"] + p["gamma"]
    t = np.linspace(0, 16 / L, 2001)
    kw = dict(omega=1.0, E=p["E"], gamma=p["gamma"], Lambda=L)
    exact = cn.simulate(cn.two_cell(), t, method="exact").energy("b")
    steady = an.steady_battery_energy_nonreciprocal(omega=1.0, E=p["E"], gamma=p["gamma"], Lambda_a=L, Lambda_b=L)
    gap = np.abs(_eq6_printed(t, **kw) - exact).max() / steady
    assert 0.40 < gap < 0.42, gap


def test_two_cell_builder_optimal_is_eq5_with_optimal_xi():
    p = FIG4
    G = cn.two_cell(kappa_a=p["kappa_a"], kappa_b=p["kappa_b"], gamma=p["gamma"], drive=p["E"], optimal=True)
    xi = np.sqrt(p["kappa_a"] / p["kappa_b"])
    La, Lb = p["kappa_a"] + xi * p["gamma"], p["kappa_b"] + p["gamma"] / xi
    t = _times(La, Lb)
    eb = an.battery_energy_nonreciprocal(t, omega=1.0, E=p["E"], gamma=p["gamma"], Lambda_a=La, Lambda_b=Lb)
    assert rel_err(cn.simulate(G, t, method="exact").energy("b"), eb) <= EXACT_REL


def _eq6_printed(t, *, omega, E, gamma, Lambda):
    """Eq. (6) exactly as printed in the paper: WRONG at finite t (negative control)."""
    x = np.exp(-Lambda * t / 2)
    return 16 * omega * gamma**2 * E**2 / Lambda**4 * (1 + x * (x - 2))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", ["fig2", "other_sym"])
def test_corrected_eq6_and_printed_eq6_is_wrong(method, name):
    p = NONRECIPROCAL[name]
    G, L, Lb = _nonreciprocal(p, 1.0)
    assert L == Lb
    t = _times(L)
    res = cn.simulate(G, t, method=method, **METHOD_OPTIONS[method])
    kw = dict(omega=p["omega"], E=p["E"], gamma=p["gamma"], Lambda=L)
    assert rel_err(res.energy("b"), an.battery_energy_symmetric(t, **kw)) <= METHOD_REL[method]
    printed = _eq6_printed(t, **kw)
    assert rel_err(res.energy("b"), printed) > PRINTED_WRONG_BY
    # ... and is right only as t -> infinity.
    late = 80.0 / L
    assert abs(_eq6_printed(late, **kw) - an.battery_energy_symmetric(late, **kw)) <= STEADY_REL * printed[-1]


@pytest.mark.parametrize("name", sorted(NONRECIPROCAL))
def test_nonreciprocal_steady_values_and_cd(name):
    p = NONRECIPROCAL[name]
    for xi in _xi_values(p):
        G, La, Lb = _nonreciprocal(p, xi)
        ss = cn.steady_state(G)
        eb = an.steady_battery_energy_nonreciprocal(omega=p["omega"], E=p["E"], gamma=p["gamma"], Lambda_a=La, Lambda_b=Lb)
        ea = an.steady_charger_energy_nonreciprocal(omega=p["omega"], E=p["E"], Lambda_a=La)
        assert abs(ss.energy("b") - eb) <= STEADY_REL * eb
        assert abs(ss.energy("a") - ea) <= STEADY_REL * ea
        assert ss.battery_energy == ss.energy("b")
        # eta_AB(inf) = E_B/E_A = 4 Gamma^2 / Lambda_b^2 (= C_d when Lambda_a = Lambda_b).
        cd = an.dissipative_cooperativity(p["gamma"], Lb)
        assert abs(ss.energy("b") / ss.energy("a") - cd) <= STEADY_REL * cd
        # The closed form's t -> infinity limit is the same number.
        late = an.battery_energy_nonreciprocal(1e7, omega=p["omega"], E=p["E"], gamma=p["gamma"], Lambda_a=La, Lambda_b=Lb)
        assert abs(late - eb) <= STEADY_REL * eb


def test_fig2_numbers():
    # E_B(inf) = 16 Gamma^2 E^2 / Lambda^4 = 74.88 quanta at Fig. 2, E_A = 21.63; C_d = 4 * 0.04^2/0.043^2.
    ss = cn.steady_state(cn.two_cell())
    assert round(ss.energy("b"), 2) == 74.88
    assert round(ss.energy("a"), 2) == 21.63
    assert abs(ss.energy("b") / ss.energy("a") - 4 * 0.04**2 / 0.043**2) < 1e-12


# ---------------------------------------------------------------------------------------------
# Reciprocal link (Gamma = 0): Eqs. (8)-(9), steady value.

RECIPROCAL = {
    "fig3_underdamped": dict(omega=1.0, E=0.1, J=0.02, kappa_a=0.003, kappa_b=0.003),
    "fig4_overdamped": dict(omega=1.0, E=0.1, J=0.005, kappa_a=0.1, kappa_b=0.003),
    "critical_exact": dict(omega=1.0, E=0.1, J=0.0625, kappa_a=0.5, kappa_b=0.25),   # Delta == 0 exactly
    "critical_rounded": dict(omega=1.0, E=0.1, J=0.02, kappa_a=0.1, kappa_b=0.02),  # Delta ~ 1e-9
    "underdamped_complex_J": dict(omega=1.4, E=0.2, J=0.03 * np.exp(0.7j), kappa_a=0.02, kappa_b=0.05),
    "overdamped_other": dict(omega=0.8, E=0.07, J=-0.01j, kappa_a=0.01, kappa_b=0.2),
}


def _reciprocal(p):
    return cn.two_cell(omega=p["omega"], kappa_a=p["kappa_a"], kappa_b=p["kappa_b"], drive=p["E"],
                       J=p["J"], nonreciprocal=False)


def _eq8_as_printed(t, *, omega, E, J, kappa_a, kappa_b, sinh_sign):
    """Eqs. (8)-(9) transcribed literally (complex arithmetic; Delta != 0); sinh_sign=-1 is the paper's print."""
    C = 4 * abs(J) ** 2 / (kappa_a * kappa_b)
    zeta = 4 * omega * E**2 * C / (kappa_a * kappa_b * (C + 1) ** 2)
    kab = kappa_a + kappa_b
    D = np.sqrt(complex(-16 * abs(J) ** 2 + (kappa_a - kappa_b) ** 2))
    alpha = 2 / D * (D * np.cosh(D * t / 4) + kab * np.sinh(D * t / 4))
    beta = ((D**2 + kab**2) * np.cosh(D * t / 2) + sinh_sign * 2 * kab * D * np.sinh(D * t / 2)) / (2 * D**2)
    val = zeta * (1 - alpha * np.exp(-kab * t / 4) + (beta - 2 * kappa_a * kappa_b * (C + 1) / D**2) * np.exp(-kab * t / 2))
    return val.real


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", sorted(RECIPROCAL))
def test_eq8_eq9_against_simulate(method, name):
    p = RECIPROCAL[name]
    t = _times(p["kappa_a"], p["kappa_b"], 4 * abs(p["J"]), n=301)
    res = cn.simulate(_reciprocal(p), t, method=method, **METHOD_OPTIONS[method])
    want = an.battery_energy_reciprocal(t, **p)
    assert rel_err(res.energy("b"), want) <= METHOD_REL[method], rel_err(res.energy("b"), want)


@pytest.mark.parametrize("name", ["fig3_underdamped", "fig4_overdamped", "underdamped_complex_J", "overdamped_other"])
def test_eq9_printed_sign_is_wrong(name):
    p = RECIPROCAL[name]
    t = _times(p["kappa_a"], p["kappa_b"], 4 * abs(p["J"]), n=301)
    exact = cn.simulate(_reciprocal(p), t, method="exact").energy("b")
    # The literal transcription with the sign corrected is the library's closed form ...
    fixed = _eq8_as_printed(t, **p, sinh_sign=+1)
    assert rel_err(fixed, exact) <= 1e-9
    # ... and with the printed minus sign it is off by more than 1% of the peak.
    printed = _eq8_as_printed(t, **p, sinh_sign=-1)
    assert rel_err(printed, exact) > PRINTED_WRONG_BY


@pytest.mark.parametrize("name", sorted(RECIPROCAL))
def test_reciprocal_steady_value(name):
    p = RECIPROCAL[name]
    want = an.steady_battery_energy_reciprocal(**p)
    ss = cn.steady_state(_reciprocal(p))
    assert abs(ss.energy("b") - want) <= STEADY_REL * want


# ---------------------------------------------------------------------------------------------
# Steady-state ratios: Eqs. (10), (11), (12).

RATIO_CASES = [(FIG2["gamma"], FIG2["kappa_a"], FIG2["kappa_b"]), (FIG4["gamma"], FIG4["kappa_a"], FIG4["kappa_b"]),
               (0.13, 0.02, 0.07), (0.3, 0.5, 0.01), (0.002, 0.04, 0.009)]


def _steady_b(G):
    return cn.steady_state(G).energy("b")


@pytest.mark.parametrize("gamma,ka,kb", RATIO_CASES)
def test_eq10_eta_bb(gamma, ka, kb):
    # Gamma_a = Gamma_b = Gamma and |Gamma| = 2|J|.
    nr = _steady_b(cn.two_cell(kappa_a=ka, kappa_b=kb, gamma=gamma))
    rec = _steady_b(cn.two_cell(kappa_a=ka, kappa_b=kb, J=gamma / 2, nonreciprocal=False))
    want = an.eta_bb(an.cooperativity(gamma / 2, ka, kb), np.sqrt(ka / kb))
    assert abs(nr / rec - want) <= STEADY_REL * want


@pytest.mark.parametrize("J_over_gamma", [0.5, 0.2, 1.7])
@pytest.mark.parametrize("gamma,ka,kb", RATIO_CASES)
def test_eq11_eq12_eta_bb_opt(gamma, ka, kb, J_over_gamma):
    J = J_over_gamma * gamma
    nr = _steady_b(cn.two_cell(kappa_a=ka, kappa_b=kb, gamma=gamma, optimal=True))
    rec = _steady_b(cn.two_cell(kappa_a=ka, kappa_b=kb, J=J, nonreciprocal=False))
    want = an.eta_bb_opt(gamma=gamma, J=J, kappa_a=ka, kappa_b=kb)
    assert abs(nr / rec - want) <= STEADY_REL * want
    if J_over_gamma == 0.5:
        want12 = an.eta_bb_opt_balanced(an.cooperativity(J, ka, kb))
        assert abs(nr / rec - want12) <= STEADY_REL * want12


# ---------------------------------------------------------------------------------------------
# Random parameter values.

rates = st.floats(0.005, 0.5)


@given(omega=st.floats(0.5, 3.0), E=st.floats(0.01, 0.5), gamma=rates, ka=rates, kb=rates, xi=st.floats(0.2, 5.0))
def test_eq5_eq7_random_values(omega, E, gamma, ka, kb, xi):
    p = dict(omega=omega, E=E, gamma=gamma, kappa_a=ka, kappa_b=kb)
    G, La, Lb = _nonreciprocal(p, xi)
    t = _times(La, Lb, n=51)
    res = cn.simulate(G, t, method="exact")
    eb = an.battery_energy_nonreciprocal(t, omega=omega, E=E, gamma=gamma, Lambda_a=La, Lambda_b=Lb)
    ea = an.charger_energy_nonreciprocal(t, omega=omega, E=E, Lambda_a=La)
    assert rel_err(res.energy("b"), eb) <= EXACT_REL
    assert rel_err(res.energy("a"), ea) <= EXACT_REL


@given(omega=st.floats(0.5, 3.0), E=st.floats(0.01, 0.5), J=st.floats(0.001, 0.3), phase=st.floats(0, 6.3),
       ka=rates, kb=rates)
def test_eq8_random_values(omega, E, J, phase, ka, kb):
    p = dict(omega=omega, E=E, J=J * np.exp(1j * phase), kappa_a=ka, kappa_b=kb)
    t = _times(ka, kb, 4 * J, n=51)
    res = cn.simulate(_reciprocal(p), t, method="exact")
    assert rel_err(res.energy("b"), an.battery_energy_reciprocal(t, **p)) <= EXACT_REL
    ss = cn.steady_state(_reciprocal(p))
    want = an.steady_battery_energy_reciprocal(**p)
    assert abs(ss.energy("b") - want) <= STEADY_REL * want


# ---------------------------------------------------------------------------------------------
# Regression: the closed forms overflowed to NaN at late times (inf * 0) before the fix.


@pytest.mark.parametrize("xi", [1.0, np.sqrt(FIG4["kappa_a"] / FIG4["kappa_b"]), 0.1])
def test_eq5_finite_and_steady_at_late_times(xi):
    p = FIG4
    _, La, Lb = _nonreciprocal(p, xi)
    t = np.array([1e4, 1e5, 1e7])   # Fig. 4 runs to J t ~ 50, t = 1e4
    kw = dict(omega=1.0, E=p["E"], gamma=p["gamma"])
    got = an.battery_energy_nonreciprocal(t, Lambda_a=La, Lambda_b=Lb, **kw)
    want = an.steady_battery_energy_nonreciprocal(Lambda_a=La, Lambda_b=Lb, **kw)
    assert np.all(np.abs(got[1:] - want) <= STEADY_REL * want), got
    assert np.isfinite(got[0])


@pytest.mark.parametrize("name", sorted(RECIPROCAL))
def test_eq8_finite_and_steady_at_late_times(name):
    p = RECIPROCAL[name]
    got = an.battery_energy_reciprocal(np.array([1e5, 1e6, 1e8]), **p)
    want = an.steady_battery_energy_reciprocal(**p)
    assert np.all(np.abs(got - want) <= STEADY_REL * want), got
