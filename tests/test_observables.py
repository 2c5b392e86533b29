"""The observables registry: one definition per quantity, used by run, sweeps and the API.

Every quantity is checked against an independent computation (tests/naive.py, the seed paper's
closed forms, root finding on scipy's expm); run and sweep must give the same numbers.
"""

import numpy as np
import pytest
import scipy.linalg as la
from scipy.integrate import quad
from scipy.optimize import brentq, minimize_scalar

import chiralnet as cn
from chiralnet import analytic
from chiralnet.errors import ChiralnetError
from chiralnet.observables import QUANTITIES, evaluate, time_to_fraction, two_cell_reference
from chiralnet.formats.scenario_toml import parse_scenario
from chiralnet.scenario import run_scenario
from chiralnet.sweeps import sweep
from conftest import STEADY_REL
from naive import naive_arrays, naive_steady, naive_steady_state, naive_simulate, rel_err

#: Two exact computations of one crossing time (kernel vs simulate-based bisection, run vs sweep):
#: both resolve the time to its last bits; the energy near the crossing carries rounding ~1e-15.
T90_REL = 1e-12
#: t90 against the closed form root (brentq at xtol 1e-13 on Eq. (6) corrected).
T90_CLOSED_REL = 1e-11
#: Energy at the exact crossing against the level.
LEVEL_REL = 1e-12

ISSUE_PAIR = dict(optimal=True, kappa_a=0.1, kappa_b=0.003, gamma=0.01)


# ---------------------------------------------------------------------------------------------
# The two fixes of issue 8.


def test_ratio_to_two_cell_limit_takes_xi_into_account_everywhere():
    G = cn.two_cell(**ISSUE_PAIR)
    ref = two_cell_reference(G)
    xi = np.sqrt(0.1 / 0.003)
    assert ref["xi"] == pytest.approx(xi, rel=1e-14) and ref["gamma"] == pytest.approx(0.01, rel=1e-14)
    want = analytic.steady_battery_energy_nonreciprocal(omega=1.0, E=0.1, gamma=0.01, Lambda_a=xi * 0.01 + 0.1,
                                                         Lambda_b=0.01 / xi + 0.003)
    assert ref["nonreciprocal"] == pytest.approx(want, rel=1e-14)
    run = run_scenario(parse_scenario({"network": {"builder": "two_cell", **ISSUE_PAIR}}), simulate_times=False)
    swept = sweep("two_cell", {"gamma": [0.01]}, ["ratio_nonreciprocal", "ratio_reciprocal"],
                  params={k: v for k, v in ISSUE_PAIR.items() if k != "gamma"})
    assert run.ratios()["nonreciprocal"] == pytest.approx(1.0, rel=STEADY_REL)  # was 3.67
    assert swept["ratio_nonreciprocal"][0] == pytest.approx(run.ratios()["nonreciprocal"], rel=STEADY_REL)
    assert swept["ratio_reciprocal"][0] == pytest.approx(run.ratios()["reciprocal"], rel=STEADY_REL)
    # Eq. (11): the optimal pair over the reciprocal one at J = Gamma/2
    assert run.ratios()["reciprocal"] == pytest.approx(
        analytic.eta_bb_opt(gamma=0.01, J=0.005, kappa_a=0.1, kappa_b=0.003), rel=STEADY_REL)


def test_time_to_90_is_exact_and_the_same_in_run_and_sweep():
    G = cn.two_cell(**ISSUE_PAIR)
    sc = parse_scenario({"network": {"builder": "two_cell", **ISSUE_PAIR}, "times": {"t_end": 3000.0}})
    run = run_scenario(sc)
    swept = sweep("two_cell", {"gamma": [0.01]}, ["time_to_90"],
                  params={k: v for k, v in ISSUE_PAIR.items() if k != "gamma"})["time_to_90"][0]
    assert run.t90 == pytest.approx(swept, rel=T90_REL)       # was 1270.43 (run) vs 1268.03 (sweep)
    assert run.t90 == pytest.approx(1268.03296719257, rel=1e-12)
    # independent: brentq on alpha(t) = alpha_ss + e^{Mt}(alpha0 - alpha_ss) with scipy's expm
    a = naive_arrays(G)
    alpha_ss, _ = naive_steady(a["M"], a["E"], a["Q"])
    level = 0.9 * a["omega"][1] * abs(alpha_ss[1]) ** 2

    def f(t):
        alpha = alpha_ss + la.expm(a["M"] * t) @ (a["alpha0"] - alpha_ss)
        return a["omega"][1] * abs(alpha[1]) ** 2 - level

    assert run.t90 == pytest.approx(brentq(f, 1000.0, 1500.0, xtol=1e-12, rtol=1e-15), rel=T90_REL)
    assert run.t90_stay == pytest.approx(run.t90, rel=T90_REL)  # monotone charging: first = stays


def test_time_to_90_against_the_closed_form_of_the_symmetric_pair():
    g, k, E = 0.04, 0.003, 0.1
    lam = g + k
    want = analytic.steady_battery_energy_nonreciprocal(omega=1.0, E=E, gamma=g, Lambda_a=lam, Lambda_b=lam)
    root = brentq(lambda t: analytic.battery_energy_symmetric(t, omega=1.0, E=E, gamma=g, Lambda=lam) - 0.9 * want,
                  1.0, 3000.0, xtol=1e-13, rtol=1e-15)
    assert time_to_fraction(cn.two_cell()) == pytest.approx(root, rel=T90_CLOSED_REL)
    # another fraction, one definition
    half = brentq(lambda t: analytic.battery_energy_symmetric(t, omega=1.0, E=E, gamma=g, Lambda=lam) - 0.5 * want,
                  1.0, 3000.0, xtol=1e-13, rtol=1e-15)
    assert time_to_fraction(cn.two_cell(), 0.5) == pytest.approx(half, rel=T90_CLOSED_REL)


def test_time_to_90_general_path_equals_the_kernel(monkeypatch):
    """Hot or large networks bisect through simulate (exact methods); on a small cold one both paths run."""
    G = cn.chain(5, gamma=0.03)
    kernel = time_to_fraction(G)
    monkeypatch.setattr(cn.config, "BATCH_MAX_CELLS", 0)
    assert time_to_fraction(G) == pytest.approx(kernel, rel=T90_REL)


@pytest.mark.parametrize("network", ["hot", "large"])
def test_time_to_90_of_hot_and_large_networks_is_the_crossing(network):
    G = cn.two_cell(n_th=0.7) if network == "hot" else cn.chain(80, gamma=0.05, kappa=0.01)
    ss = cn.steady_state(G)
    t90 = time_to_fraction(G, steady=ss)
    level = 0.9 * ss.battery_energy
    res = cn.simulate(G, [0.0, t90 * (1 - 1e-9), t90], method="exact")
    assert res.battery_energy[-1] == pytest.approx(level, rel=LEVEL_REL)
    assert res.battery_energy[1] < level
    coarse = cn.simulate(G, np.linspace(0, t90, 400), method="exact").battery_energy
    assert np.all(coarse[:-1] < level)  # the first crossing, not a later one


# ---------------------------------------------------------------------------------------------
# Each quantity against an independent computation.


def test_steady_quantities_against_naive_solve():
    G = cn.ring(5, gamma=0.03, n_th=0.2)
    G.nodes[2]["omega"] = 1.1
    e, _ = naive_steady_state(G)
    bat = np.array([G.nodes[c].get("battery", False) for c in cn.cells(G)])
    v = evaluate(["battery_energy", "total_energy", "cell_energy"], G)
    assert rel_err(v["cell_energy"], e) < STEADY_REL
    assert v["battery_energy"] == pytest.approx(e[bat].sum(), rel=STEADY_REL)
    assert v["total_energy"] == pytest.approx(e.sum(), rel=STEADY_REL)


def test_trace_quantities_against_naive_propagation():
    G = cn.chain(4, gamma=0.05)
    G.nodes[0]["alpha0"] = 0.3j
    times = np.array([0.0, 10.0, 250.0])
    e, _ = naive_simulate(G, times)
    bat = np.array([G.nodes[c].get("battery", False) for c in cn.cells(G)])
    v = evaluate(["battery_energy_at"], G, times=times)
    assert rel_err(v["battery_energy_at"], e[:, bat].sum(axis=1)) < 1e-12
    res = cn.simulate(G, times)
    assert rel_err(evaluate(["energies"], G, result=res)["energies"], e) < 1e-12


def test_ratios_of_a_chain_against_the_formula():
    G = cn.chain(4, gamma=0.05, kappa=0.002, drive=0.2)
    eb = cn.steady_state(G).battery_energy
    v = evaluate(["ratio_nonreciprocal", "ratio_reciprocal"], G)
    lam = 0.052
    nonrec = 16 * 0.05**2 * 0.2**2 / lam**4
    C = 0.05**2 / 0.002**2
    recip = 4 * 0.2**2 * C / (0.002**2 * (C + 1) ** 2)
    assert v["ratio_nonreciprocal"] == pytest.approx(eb / nonrec, rel=STEADY_REL)
    assert v["ratio_reciprocal"] == pytest.approx(eb / recip, rel=STEADY_REL)


def test_run_and_sweep_read_one_registry():
    spec = {"builder": "chain", "n_cells": 5, "gamma": 0.03, "kappa": 0.004}
    run = run_scenario(parse_scenario({"network": spec, "times": {"t_end": 500.0, "n_times": 11}}))
    names = ["battery_energy", "total_energy", "cell_energy", "time_to_90", "ratio_nonreciprocal",
             "ratio_reciprocal"]
    res = sweep("chain", {"gamma": [0.03]}, names, params={"n_cells": 5, "kappa": 0.004})
    assert res["battery_energy"][0] == pytest.approx(run.steady.battery_energy, rel=STEADY_REL)
    assert res["total_energy"][0] == pytest.approx(run.steady.total_energy, rel=STEADY_REL)
    assert rel_err(res["cell_energy"][0], run.steady.energies) < STEADY_REL
    assert res["time_to_90"][0] == pytest.approx(run.t90, rel=T90_REL)
    for key in ("nonreciprocal", "reciprocal"):
        assert res[f"ratio_{key}"][0] == pytest.approx(run.ratios()[key], rel=STEADY_REL)
    direct = evaluate(names, run.scenario.network)
    assert direct["time_to_90"] == pytest.approx(run.t90, rel=T90_REL)
    assert set(names) <= set(QUANTITIES)


def test_sweep_ratios_when_xi_varies_with_two_axes():
    """optimal=True makes xi depend on kappa_a and kappa_b: the rates are not additive, every point is built."""
    res = sweep("two_cell", {"kappa_a": [0.01, 0.1], "kappa_b": [0.002, 0.003]}, ["ratio_nonreciprocal"],
                params={"optimal": True, "gamma": 0.02})
    np.testing.assert_allclose(res["ratio_nonreciprocal"], 1.0, rtol=STEADY_REL)


def test_unknown_quantity_and_option_raise():
    with pytest.raises(ChiralnetError, match="unknown quantity 'battery_enrgy'"):
        evaluate(["battery_enrgy"], cn.two_cell())
    with pytest.raises(ChiralnetError, match="unknown option"):
        evaluate(["time_to_90"], cn.two_cell(), horizn=3.0)
    with pytest.raises(ChiralnetError, match="need the network graph"):
        evaluate(["ratio_reciprocal"], cn.build_model(cn.two_cell()))


# ---------------------------------------------------------------------------------------------
# Ergotropy and injected power (issue 10).

#: Ergotropy and power against the naive Lyapunov solve / expm propagation on random networks.
WORK_REL = 1e-10


def _hot_network(seed):
    rng = np.random.default_rng(seed)
    G = cn.network(drive_frequency=1.0)
    n = 5
    for i in range(n):
        cn.add_cell(G, i, omega=1.0 + 0.2 * rng.uniform(-1, 1) * (i > 0), kappa=rng.uniform(0.01, 0.05),
                    n_th=rng.uniform(0.0, 1.0), drive=complex(rng.normal(0, 0.1), rng.normal(0, 0.1)) if i == 0 else 0.0,
                    battery=i >= 2)
    for i in range(n - 1):
        cn.add_chiral_link(G, i, i + 1, gamma=rng.uniform(0.02, 0.08))
    cn.add_reservoir(G, {2: 1.0, 3: rng.uniform(0.5, 1.5), 4: complex(0.0, 0.7)}, gamma=0.03, n_th=0.8)
    return G


def test_displaced_thermal_mode():
    G = cn.network(drive_frequency=1.3)
    cn.add_cell(G, "a", omega=1.3, kappa=0.02, n_th=0.4, drive=0.05)
    ss = cn.steady_state(G)
    alpha = -0.05j / 0.01
    assert cn.ergotropy(ss) == pytest.approx(1.3 * abs(alpha) ** 2, rel=1e-12)
    assert cn.ergotropy(ss, collective=True) == pytest.approx(1.3 * abs(alpha) ** 2, rel=1e-12)
    assert ss.battery_energy == pytest.approx(1.3 * (abs(alpha) ** 2 + 0.4), rel=1e-12)
    assert cn.injected_power(ss) == pytest.approx(4 * 1.3 * 0.05**2 / 0.02, rel=1e-12)  # 4 omega |E|^2 / kappa


def test_two_mode_gaussian_ergotropy():
    from chiralnet.observables import gaussian_ergotropy
    from chiralnet.results import SteadyState

    omega = np.array([1.0, 2.0])
    alpha = np.array([0.3, 0.4j])
    Nc = np.array([[1.0, 0.5], [0.5, 0.5]], complex)
    assert float(gaussian_ergotropy(omega, alpha, Nc)) == pytest.approx(0.7190169944, abs=1e-10)
    lam = np.array([(1.5 + np.sqrt(1.25)) / 2, (1.5 - np.sqrt(1.25)) / 2])  # exact eigenvalues
    assert float(gaussian_ergotropy(omega, alpha, Nc)) == pytest.approx(2.41 - lam[0] - 2 * lam[1], abs=1e-12)
    ss = SteadyState(cells=("x", "y"), energies=omega * (abs(alpha) ** 2 + 1), amplitudes=alpha,
                     fluctuations=Nc.diagonal().real, battery=np.array([True, True]), method="given",
                     state=cn.State(("x", "y"), alpha, Nc), omega=omega, drive=np.zeros(2), drive_frequency=1.0)
    assert cn.ergotropy(ss, collective=True) == pytest.approx(2.41 - lam[0] - 2 * lam[1], abs=1e-12)
    assert cn.ergotropy(ss) == pytest.approx(0.09 + 2 * 0.16, abs=1e-15)
    assert cn.ergotropy(ss, cells=["y"]) == pytest.approx(0.32, abs=1e-15)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ergotropy_and_power_of_random_hot_networks_against_naive(seed):
    G = _hot_network(seed)
    a = naive_arrays(G)
    alpha, Nc = naive_steady(a["M"], a["E"], a["Q"])
    bat = np.array([2, 3, 4])
    w = a["omega"][bat]
    lam = np.sort(np.linalg.eigvals(Nc[np.ix_(bat, bat)]).real)[::-1]
    want_coll = np.sum(w * (abs(alpha[bat]) ** 2 + Nc.diagonal().real[bat])) - np.sum(np.sort(w) * lam)
    want_local = np.sum(w * abs(alpha[bat]) ** 2)
    ss = cn.steady_state(G)
    assert cn.ergotropy(ss, collective=True) == pytest.approx(want_coll, rel=WORK_REL)
    assert cn.ergotropy(ss) == pytest.approx(want_local, rel=WORK_REL)
    assert cn.ergotropy(ss, collective=True) >= cn.ergotropy(ss) - 1e-12
    # energy balance: P_in = omega_L x net photon loss rate, Re sum_jk D_jk G_jk - Tr Q, G = <a_j^dag a_k>
    Gm = np.outer(np.conj(alpha), alpha) + Nc
    loss = float(np.real(np.sum(a["D"] * Gm)) - np.trace(a["Q"]).real)
    assert cn.injected_power(ss) == pytest.approx(1.0 * loss, rel=WORK_REL)
    # over time, every method: the battery block of Nc kept per time (|B|^2 numbers), none of N x N
    times = np.array([0.0, 7.0, 40.0, 300.0])
    from naive import naive_propagate

    al, Ncs = naive_propagate(a["M"], a["E"], a["Q"], a["alpha0"], np.diag(a["n0"]).astype(complex), times)
    lam_t = np.linalg.eigvalsh(Ncs[:, bat[:, None], bat[None, :]])[:, ::-1]
    occ = abs(al[:, bat]) ** 2 + np.real(np.diagonal(Ncs, axis1=1, axis2=2))[:, bat]
    want_t = (w * occ).sum(axis=1) - (np.sort(w) * lam_t).sum(axis=1)
    p_t = -2 * (np.conj(a["E"]) * al).imag.sum(axis=1)
    for method, rel in (("exact", WORK_REL), ("exact-sparse", WORK_REL), ("rk45", 1e-7)):
        kw = dict(rtol=1e-11, atol=1e-13) if method == "rk45" else {}
        res = cn.simulate(G, times, method=method, **kw)
        assert res.battery_fluctuations.shape == (4, 3, 3)
        assert rel_err(cn.ergotropy(res, collective=True), want_t) < rel
        assert rel_err(cn.ergotropy(res), (w * abs(al[:, bat]) ** 2).sum(axis=1)) < rel
        assert rel_err(cn.injected_power(res)[1:], p_t[1:]) < rel


def test_energy_and_ergotropy_part_ways_with_hot_baths():
    cold = cn.steady_state(cn.two_cell())
    hot = cn.steady_state(cn.two_cell(n_th=2.0))
    assert cn.ergotropy(hot) == pytest.approx(cn.ergotropy(cold), rel=1e-12)       # the mean field ignores noise
    assert hot.battery_energy == pytest.approx(cold.battery_energy + 2.0, rel=1e-12)  # omega n_th more energy


def test_ergotropy_bad_input():
    G = cn.two_cell(n_th=0.3)
    ss = cn.steady_state(G)
    with pytest.raises(ChiralnetError, match=r"cells \['c'\] are not in the network"):
        cn.ergotropy(ss, cells=["c"])
    with pytest.raises(ChiralnetError, match="the cell set is empty"):
        cn.ergotropy(ss, cells=[])
    res = cn.simulate(G, [0.0, 10.0], store_amplitudes=False, method="exact-sparse")
    with pytest.raises(ChiralnetError, match="store_amplitudes=True"):
        cn.ergotropy(res)
    res = cn.simulate(G, [0.0, 10.0])
    with pytest.raises(ChiralnetError, match=r"keeps Nc only for the battery cells"):
        cn.ergotropy(res, cells=["a"], collective=True)
    import dataclasses

    with pytest.raises(ChiralnetError, match="battery block of Nc"):
        cn.ergotropy(dataclasses.replace(res, battery_fluctuations=None), collective=True)
    with pytest.raises(ChiralnetError, match="takes a SteadyState"):
        cn.injected_power(G)


def test_run_reports_ergotropy_and_power():
    run = run_scenario(parse_scenario({"network": {"builder": "two_cell", "n_th": 0.5},
                                       "times": {"t_end": 300.0, "n_times": 4}}))
    s = run.summary()
    ss = cn.steady_state(cn.two_cell(n_th=0.5))
    assert s["steady"]["battery_ergotropy"] == pytest.approx(cn.ergotropy(ss), rel=STEADY_REL)
    assert s["steady"]["battery_energy"] - s["steady"]["battery_ergotropy"] == pytest.approx(0.5, rel=1e-10)
    assert s["steady"]["injected_power"] == pytest.approx(cn.injected_power(ss), rel=STEADY_REL)
    assert s["simulation"]["final_battery_ergotropy"] == pytest.approx(cn.ergotropy(run.result)[-1], rel=1e-15)


# ---------------------------------------------------------------------------------------------
# Power over time, maximum average power, efficiency (issue 10).

#: Efficiency against scipy's adaptive quadrature of P_in on an expm-based alpha(t) (quad at epsrel 1e-13).
EFF_REL = 1e-10
#: dE_B/dt against a 5-point central difference of the exact energy (h = 0.05 / Lambda: truncation ~1e-12,
#: rounding ~ eps E / h ~ 1e-13, relative to the largest power).
FD_REL = 1e-8
#: dE_B/dt against the derivative of the corrected Eq. (6) (closed form).
CLOSED_POWER_REL = 1e-10
#: Maximum average power (flat at the maximum) and its time against a dense grid refined by scipy's bounded
#: Brent search (which resolves t to ~ sqrt(eps) t only).
PEAK_POWER_REL = 1e-11
PEAK_TIME_REL = 1e-6
#: int P_in = stored energy change + integrated losses, every term in closed form.
BALANCE_REL = 1e-10
#: Sweep vs per-network functions, kernel vs general path: the same exact algorithms.
POWER_SAME_REL = 1e-11


def _exact_alpha(G):
    a = naive_arrays(G)
    alpha_ss, _ = naive_steady(a["M"], a["E"], a["Q"])

    def alpha(t):
        return alpha_ss + la.expm(a["M"] * t) @ (a["alpha0"] - alpha_ss)
    return a, alpha


def _battery_mask(G):
    return np.array([bool(G.nodes[c].get("battery", False)) for c in cn.cells(G)])


@pytest.mark.parametrize("n_th", [0.0, 1.0])
def test_efficiency_of_the_paper_pair_against_quadrature(n_th):
    G = cn.two_cell(n_th=n_th)
    a, alpha = _exact_alpha(G)
    t90 = time_to_fraction(G)
    omega_L = G.graph.get("drive_frequency", 1.0)

    def p_in(t):
        return -2 * omega_L * float((np.conj(a["E"]) * alpha(t)).imag.sum())

    injected, err = quad(p_in, 0.0, t90, epsabs=0.0, epsrel=1e-13, limit=200)
    assert cn.injected_energy(G, t90) == pytest.approx(injected, rel=EFF_REL)
    res = cn.simulate(G, [0.0, t90])
    work = cn.ergotropy(res, collective=True)[-1]  # W_B at t_90: all of E_B when cold, less when hot
    if n_th == 0:
        assert work == pytest.approx(0.9 * cn.steady_state(G).battery_energy, rel=LEVEL_REL)
    eff = cn.efficiency(G)
    assert eff == pytest.approx(work / injected, rel=EFF_REL)
    assert 0.0 < eff < 1.0
    assert evaluate(["efficiency"], G)["efficiency"] == eff


def test_efficiency_is_between_zero_and_one_for_resonant_networks_from_empty():
    for G in (cn.chain(4, gamma=0.03), cn.ring(3, gamma=0.02), cn.two_cell(nonreciprocal=False),
              cn.chain(3, n_th=0.5)):
        eff = cn.efficiency(G)
        assert 0.0 < eff < 1.0, eff


def _symmetric_power(t, *, E, gamma, Lambda):
    """d/dt of analytic.battery_energy_symmetric (omega = 1): 2 C u(x) x e^{-x} Lambda/2, u = 1 - e^{-x}(1+x)."""
    x = Lambda * t / 2
    C = 16 * gamma**2 * E**2 / Lambda**4
    return 2 * C * (1 - np.exp(-x) * (1 + x)) * x * np.exp(-x) * Lambda / 2


def test_stored_power_against_the_closed_form_and_finite_differences():
    g, k, E = 0.04, 0.003, 0.1
    G = cn.two_cell(gamma=g, kappa_a=k, kappa_b=k, drive=E)
    times = np.linspace(0.0, 600.0, 61)
    p = cn.stored_power(G, times)
    want = _symmetric_power(times, E=E, gamma=g, Lambda=g + k)
    assert np.abs(p - want).max() <= CLOSED_POWER_REL * np.abs(want).max()
    # hot networks: the noise part dNc_ii/dt = 2 Re sum_k conj(M_ik) Nc_ki + Q_ii needs the feeding cells' block
    for H in (cn.two_cell(n_th=1.5), _hot_network(0), cn.chain(4, n_th=0.4, gamma=0.05)):
        lam = 0.05 / max(abs(np.linalg.eigvals(cn.build_model(H).dense_M()).real.min()), 1e-300)
        h = 0.05 * min(lam, 20.0)
        t = np.array([3.0, 40.0, 150.0, 700.0])
        shifts = np.array([-2, -1, 1, 2]) * h
        e = cn.simulate(H, np.sort(np.r_[0.0, (t[:, None] + shifts).ravel()]), method="exact").battery_energy[1:]
        e = e.reshape(t.size, 4)
        fd = (e[:, 0] - 8 * e[:, 1] + 8 * e[:, 2] - e[:, 3]) / (12 * h)
        got = cn.stored_power(H, t)
        assert np.abs(got - fd).max() <= FD_REL * max(np.abs(fd).max(), 1e-3), (got, fd)


def test_power_functions_take_times_not_a_result():
    """Issue 18: average_power(G, result, state0=s) and average_power(G, result.times, state0=s) disagreed (the
    result's energies came from another start than s). A result does not say its start state: the power
    functions take times and pass them and state0 to simulate, and a result is refused naming the call."""
    G = cn.two_cell()
    res = cn.simulate(G, [0.0, 10.0])
    for fn in (cn.stored_power, cn.average_power):
        with pytest.raises(ChiralnetError, match=rf"{fn.__name__}\(G, result.times, state0="):
            fn(G, res)


def test_power_functions_take_a_constant_drive():
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.0, kappa=0.02, drive=cn.drives.gaussian(0.1, 50.0, 10.0))
    cn.add_cell(G, "b", omega=1.0, kappa=0.02, battery=True)
    cn.add_chiral_link(G, "a", "b", gamma=0.04)
    for call in (lambda: cn.stored_power(G, [1.0]), lambda: cn.max_average_power(G), lambda: cn.efficiency(G),
                 lambda: cn.injected_energy(G, 10.0), lambda: cn.average_power(G, [1.0])):
        with pytest.raises(ChiralnetError, match="time-dependent drives"):
            call()


def _peak_reference(G):
    """Dense grid of (E_B(t) - E_B(0))/t (naive expm propagation) refined by scipy's bounded Brent search."""
    a = naive_arrays(G)
    bat = _battery_mask(G)
    M, w = a["M"], a["omega"][bat]
    alpha_ss, Nc_ss = naive_steady(M, a["E"], a["Q"])
    y, Y = a["alpha0"] - alpha_ss, np.diag(a["n0"]).astype(complex) - Nc_ss

    def energy(t):
        U = la.expm(M * t)
        al = alpha_ss + U @ y
        Nc = Nc_ss + np.conj(U) @ Y @ U.T
        return float((w * (abs(al[bat]) ** 2 + Nc.diagonal().real[bat])).sum())

    e0 = energy(0.0)

    def f(t):
        return (energy(t) - e0) / t

    horizon = 40 / -np.linalg.eigvals(M).real.max()
    grid = np.linspace(horizon / 1500, horizon, 1500)
    vals = np.array([f(t) for t in grid])
    k = int(np.argmax(vals))
    opt = minimize_scalar(lambda t: -f(t), bounds=(grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]),
                          method="bounded", options={"xatol": 1e-12 * grid[k]})
    return -opt.fun, opt.x


@pytest.mark.parametrize("network", ["pair", "hot", "reciprocal", "chain"])
def test_max_average_power_against_a_refined_grid_search(network):
    G = {"pair": cn.two_cell(), "hot": cn.two_cell(n_th=1.0, gamma=0.02),
         "reciprocal": cn.two_cell(nonreciprocal=False), "chain": cn.chain(4, gamma=0.03)}[network]
    peak = cn.max_average_power(G)
    want_p, want_t = _peak_reference(G)
    assert peak.power == pytest.approx(want_p, rel=PEAK_POWER_REL)
    assert peak.time == pytest.approx(want_t, rel=PEAK_TIME_REL)
    # at the maximum, stored power = average power (the root the bisection finds)
    assert cn.stored_power(G, [peak.time])[0] == pytest.approx(peak.power, rel=1e-9)
    avg = cn.average_power(G, peak.time * np.array([0.999, 1.0, 1.001]))
    assert avg[1] == pytest.approx(peak.power, rel=1e-14) and avg[1] >= avg[0] and avg[1] >= avg[2]


def test_power_paths_agree(monkeypatch):
    """Small cold networks run the batched kernels; the general path (simulate-based) gives the same numbers."""
    G = cn.chain(5, gamma=0.03)
    kernel = cn.max_average_power(G), cn.efficiency(G)
    monkeypatch.setattr(cn.config, "BATCH_MAX_CELLS", 0)
    general = cn.max_average_power(G), cn.efficiency(G)
    assert general[0].power == pytest.approx(kernel[0].power, rel=POWER_SAME_REL)
    assert general[0].time == pytest.approx(kernel[0].time, rel=1e-9)
    assert general[1] == pytest.approx(kernel[1], rel=POWER_SAME_REL)


def _resonant_loss(G, T):
    """int_0^T omega_L alpha^H D alpha dt in closed form: alpha = alpha_ss + e^{Mt} y, D = -(M + M^H), and
    int_0^T e^{M^H t} D e^{M t} dt = Z with M^H Z + Z M = e^{M^H T} D e^{M T} - D (a Sylvester solve)."""
    a = naive_arrays(G)
    M = a["M"]
    D = -(M + M.conj().T)
    alpha_ss, _ = naive_steady(M, a["E"], a["Q"])
    y = a["alpha0"] - alpha_ss
    U = la.expm(M * T)
    Z = la.solve_sylvester(M.conj().T, M, U.conj().T @ D @ U - D)
    cross = alpha_ss.conj() @ D @ np.linalg.solve(M, (U - np.eye(len(y))) @ y)
    total = (alpha_ss.conj() @ D @ alpha_ss) * T + 2 * cross.real + (y.conj() @ Z @ y)
    return G.graph.get("drive_frequency", 1.0) * float(total.real)


def test_energy_balance_of_a_damped_network_is_exact():
    G = cn.chain(4, gamma=0.03, kappa=0.01)
    cn.add_coherent_link(G, 0, 2, J=0.01)
    G.nodes[1]["alpha0"] = 0.5 - 0.2j
    for T in (30.0, 400.0, 5000.0):
        injected = cn.injected_energy(G, T)
        res = cn.simulate(G, [0.0, T])
        stored = res.total_energy[-1] - res.total_energy[0]
        loss = _resonant_loss(G, T)
        assert injected == pytest.approx(stored + loss, rel=BALANCE_REL)
        _, alpha = _exact_alpha(G)
        E = naive_arrays(G)["E"]
        q, _ = quad(lambda t: -2 * float((np.conj(E) * alpha(t)).imag.sum()), 0.0, T, epsabs=0.0, epsrel=1e-13,
                    limit=400)
        assert injected == pytest.approx(q, rel=EFF_REL)


def test_power_sweep_values_equal_the_per_network_functions():
    names = ["efficiency", "max_average_power", "max_average_power_time"]
    cold = sweep("chain", {"gamma": [0.02, 0.05], "kappa": [0.003, 0.01]}, names, params={"n_cells": 3})
    hot = sweep("chain", {"n_th": [0.0, 0.5]}, names, params={"n_cells": 3, "gamma": 0.03})
    for result, axes in ((cold, ("gamma", "kappa")), (hot, ("n_th",))):
        for idx in np.ndindex(result.shape):
            kw = {ax: float(result.coords[ax][i]) for ax, i in zip(axes, idx)}
            G = cn.chain(3, **({"gamma": 0.03} if "gamma" not in kw else {}), **kw)
            peak = cn.max_average_power(G)
            assert result["efficiency"][idx] == pytest.approx(cn.efficiency(G), rel=POWER_SAME_REL)
            assert result["max_average_power"][idx] == pytest.approx(peak.power, rel=POWER_SAME_REL)
            assert result["max_average_power_time"][idx] == pytest.approx(peak.time, rel=POWER_SAME_REL)
    assert 0 < hot["efficiency"].min() and hot["efficiency"].max() < 1


def test_power_quantities_in_the_registry():
    G = cn.two_cell()
    v = evaluate(["stored_power_at", "average_power_at", "max_average_power", "max_average_power_time"], G,
                 times=[0.0, 100.0])
    assert v["stored_power_at"][0] == 0.0 and v["average_power_at"][1] == pytest.approx(
        cn.average_power(G, [100.0])[0], rel=1e-14)
    assert (QUANTITIES["efficiency"].direction, QUANTITIES["efficiency"].units) == ("max", "1")
    assert QUANTITIES["max_average_power"].units == "omega^2"
    with pytest.raises(ChiralnetError, match="needs times"):
        evaluate(["stored_power_at"], G)


def test_run_reports_efficiency_and_max_average_power(capsys):
    from chiralnet.cli import run as cli_run

    sc = parse_scenario({"network": {"builder": "two_cell", "n_th": 0.5}, "times": {"t_end": 3000.0, "n_times": 4}})
    run = run_scenario(sc)
    G = cn.two_cell(n_th=0.5)
    sim = run.summary()["simulation"]
    assert sim["efficiency"] == pytest.approx(cn.efficiency(G), rel=POWER_SAME_REL)
    peak = cn.max_average_power(G)
    assert sim["max_average_power"] == pytest.approx(peak.power, rel=POWER_SAME_REL)
    assert sim["max_average_power_time"] == pytest.approx(peak.time, rel=POWER_SAME_REL)
    text = "\n".join(cli_run._report_lines(run))
    assert f"charging efficiency:            {sim['efficiency']:.6g}" in text
    assert f"max average charging power:     {peak.power:.6g} omega^2" in text


def test_a_large_battery_keeps_its_block_of_nc_only_when_asked(monkeypatch):
    """The default keeps O(N) per output time: the B x B battery block of Nc only up to
    config.BATTERY_BLOCK_MAX_CELLS cells, more on request; the error names the option."""
    from chiralnet import config
    from chiralnet.arrays import chain_model

    monkeypatch.setattr(config, "BATTERY_BLOCK_MAX_CELLS", 4)
    model = chain_model(8, n_th=0.3)  # 7 battery cells
    times = np.linspace(0.0, 200.0, 5)
    lean = cn.simulate(model, times)
    assert lean.battery_fluctuations is None
    with pytest.raises(ChiralnetError, match="battery_fluctuations=True"):
        cn.ergotropy(lean, collective=True)
    full = cn.simulate(model, times, battery_fluctuations=True)
    assert full.battery_fluctuations.shape == (5, 7, 7)
    np.testing.assert_array_equal(lean.energies, full.energies)
    few = cn.simulate(model, times, cells=[model.cells[6], model.cells[7]])  # two battery cells: kept
    assert few.battery_fluctuations.shape == (5, 2, 2)
    assert cn.simulate(model, times, cells=[model.cells[7]], battery_fluctuations=False).battery_fluctuations is None
    with pytest.raises(cn.SolverError, match="battery_fluctuations must be True, False or None"):
        cn.simulate(model, times, battery_fluctuations="yes")


# ---------------------------------------------------------------------------------------------
# Issue 18: no silent wrong answer from the observables.

#: time_staying_above against expm of the augmented generator + brentq (both solve E_B(t) = level).
STAY_REL = 1e-8


def test_flags_are_keyword_only_real_bools():
    ss = cn.steady_state(_hot_network(0))   # detuned cells, correlated noise: collective > local
    with pytest.raises(ChiralnetError, match="collective must be True or False, got 'no'"):
        cn.ergotropy(ss, collective="no")  # a truthy string used to give the collective value
    with pytest.raises(ChiralnetError, match="collective must be True or False"):
        cn.ergotropy(ss, collective=1)
    with pytest.raises(TypeError):
        cn.ergotropy(ss, None, True)  # keyword-only
    assert cn.ergotropy(ss, collective=np.bool_(True)) == cn.ergotropy(ss, collective=True)
    assert cn.ergotropy(ss, collective=np.bool_(False)) == cn.ergotropy(ss)
    assert cn.ergotropy(ss, collective=True) != cn.ergotropy(ss)  # so the checks above can tell them apart
    with pytest.raises(ChiralnetError, match="stay must be True or False"):
        cn.observables.charging_time([0.0, 1.0], [0.0, 1.0], 1.0, stay="no")


@pytest.mark.parametrize("horizon", [float("nan"), -1.0, 0.0, float("inf"), 1e300, True, 10**400, "100"])
def test_bad_horizons_are_refused_not_answered(horizon):
    G = cn.two_cell()
    for fn in (cn.max_average_power, time_to_fraction, cn.efficiency):
        with pytest.raises(ChiralnetError, match="horizon"):
            fn(G, horizon=horizon)


def test_a_horizon_the_grid_cannot_resolve_names_the_largest_that_it_can():
    G = cn.two_cell()
    with pytest.raises(ChiralnetError, match=r"largest horizon these steps resolve is [0-9.]+"):
        cn.max_average_power(G, horizon=1e6)
    rate = -np.linalg.eigvals(cn.build_model(G).dense_M()).real.max()
    ok = 0.99 * 2000 / rate       # just inside config.OBSERVABLE_MAX_STEP_DECAYS = 1 decay per step
    assert cn.max_average_power(G, horizon=ok) == cn.max_average_power(G, horizon=ok)


def test_unbounded_steps_are_refused_before_any_work(monkeypatch):
    from chiralnet import config
    from chiralnet.observables import charging, power

    def no_work(*args, **kwargs):
        raise AssertionError("the grid was stepped before the refusal")

    monkeypatch.setattr(power, "_kernel_peak", no_work)
    monkeypatch.setattr(charging, "_kernel_time", no_work)
    G = cn.two_cell()
    for fn in (cn.max_average_power, time_to_fraction, cn.efficiency):
        with pytest.raises(ChiralnetError, match=rf"steps = 1e\+09 .*GB.*largest that fits is steps = "
                                                 rf"{config.OBSERVABLE_MAX_STEPS}"):
            fn(G, steps=1e9)
        for bad in (2.5, True, 1, float("nan"), "2000"):
            with pytest.raises(ChiralnetError, match="steps must be an integer >= 2"):
                fn(G, steps=bad)


def test_numbers_beyond_float_range_and_ragged_arrays_are_chiralnet_errors():
    from chiralnet.observables import charging_time, gaussian_ergotropy

    G = cn.two_cell()
    ss = cn.steady_state(G)
    calls = [lambda: cn.injected_energy(G, 10**400), lambda: cn.injected_energy(G, float("nan")),
             lambda: time_to_fraction(G, 10**400), lambda: time_to_fraction(G, True),
             lambda: cn.efficiency(G, t90=10**400),
             lambda: gaussian_ergotropy([1.0, 2.0], [0.1, 0.2], [[1.0, 0.0], [0.0]]),
             lambda: gaussian_ergotropy([1.0, 2.0], [0.1], [[1.0, 0.0], [0.0, 1.0]]),
             lambda: gaussian_ergotropy(["a", "b"], [0.1, 0.2], np.eye(2)),
             lambda: charging_time([0.0, [1.0, 2.0]], [0.0, 1.0], 1.0),
             lambda: charging_time([0.0, 1.0], [0.0, 1.0], 10**400),
             lambda: cn.ergotropy(ss, cells=[["a"]]),
             lambda: cn.stored_power(G, [0.0, 10**400]),
             lambda: cn.average_power(G, [[0.0, 1.0], [2.0]]),
             lambda: cn.observables.two_cell_limits(1.0, [0.1, [0.2]], 0.003, 0.003, 0.04),
             lambda: cn.observables.two_cell_limits(1.0, 0.1, 0.003, 0.003, 10**400),
             lambda: evaluate("battery_energy", G),                     # a string is not a list of names
             lambda: evaluate(None, G),
             lambda: time_to_fraction(G, state0="start")]
    for call in calls:
        with pytest.raises(ChiralnetError):
            call()


def _augmented_energy(G):
    """E_B(t) from the empty start by scipy's expm of the augmented generator [[M, -iE], [0, 0]] (cold)."""
    m = cn.build_model(G)
    n = m.n_cells
    A = np.zeros((n + 1, n + 1), complex)
    A[:n, :n] = m.dense_M()
    A[:n, n] = m.forcing

    def energy(t):
        x = la.expm(A * t)[:n, n]
        return float((m.omega * np.abs(x) ** 2)[m.battery].sum())
    return energy


@pytest.mark.parametrize("nonreciprocal", [True, False])
def test_time_staying_above_is_the_crossing_not_a_sample(nonreciprocal):
    """Issue 18: it returned the sample after the crossing (260.0 for a crossing at 269.18)."""
    G = cn.two_cell(nonreciprocal=nonreciprocal, gamma=0.01 if not nonreciprocal else 0.04)
    level = 0.9 * cn.steady_state(G).battery_energy
    res = cn.simulate(G, np.linspace(0.0, 4000.0, 17))                     # samples 250 apart
    got = cn.observables.time_staying_above(G, res)
    energy = _augmented_energy(G)
    fine = np.linspace(0.0, 4000.0, 4001)
    e = np.array([energy(t) for t in fine]) - level
    j = int(np.flatnonzero(e < 0)[-1])                                      # the last upward crossing
    want = brentq(lambda t: energy(t) - level, fine[j], fine[j + 1], xtol=1e-13, rtol=1e-15)
    assert got not in set(res.times)
    assert abs(got - want) <= STAY_REL * want, (got, want)


def test_time_staying_above_refuses_a_result_of_another_start():
    G = cn.two_cell()
    res = cn.simulate(G, np.linspace(0.0, 2000.0, 9))
    other = cn.steady_state(cn.two_cell(drive=0.05)).state
    with pytest.raises(ChiralnetError, match="not that of this network from this state0"):
        cn.observables.time_staying_above(G, res, state0=other)


def test_times_are_absolute_from_the_start_state():
    """The time rule: a state lives at state.time; a continued run's crossing is the original run's one."""
    G = cn.two_cell()
    first = cn.simulate(G, [0.0, 100.0])
    s = first.final_state
    assert s.time == 100.0
    t90 = time_to_fraction(G)
    assert abs(time_to_fraction(G, state0=s) - t90) <= T90_REL * t90
    early = cn.simulate(G, [0.0, 20.0]).final_state                   # still speeding up: the peak is later
    peak = cn.max_average_power(G, state0=early)
    assert peak.time > 20.0
    e = cn.simulate(G, [0.0, 20.0, peak.time]).battery_energy
    assert peak.power == pytest.approx((e[2] - e[1]) / (peak.time - 20.0), rel=1e-10)
    assert peak.power == pytest.approx(cn.stored_power(G, [peak.time])[0], rel=1e-8)   # the maximum's condition
    times = np.array([100.0, 150.0, 400.0])
    e = cn.simulate(G, [0.0, 100.0, 150.0, 400.0]).battery_energy
    avg = cn.average_power(G, times, state0=s)
    np.testing.assert_allclose(avg[1:], (e[2:] - e[1]) / (times[1:] - 100.0), rtol=1e-10)
    assert avg[0] == pytest.approx(cn.stored_power(G, [100.0])[0], rel=1e-10)
    inj = cn.injected_energy(G, 400.0, state0=s)
    assert inj == pytest.approx(cn.injected_energy(G, 400.0) - cn.injected_energy(G, 100.0), rel=1e-10)
    with pytest.raises(cn.SolverError, match="before state0.time = 100.0"):
        cn.average_power(G, [50.0, 150.0], state0=s)


def test_time_staying_above_is_the_last_crossing_inside_a_coarse_bracket():
    """An oscillating (reciprocal) pair crosses the level up, down and up again between two samples: the
    battery stays above from the last crossing (1911.28), which the old bisection missed (1621.96)."""
    G = cn.two_cell(nonreciprocal=False, gamma=0.04)
    level = 0.9 * cn.steady_state(G).battery_energy
    energy = _augmented_energy(G)
    fine = np.linspace(0.0, 8000.0, 8001)
    e = np.array([energy(t) for t in fine]) - level
    ups = [i for i in np.flatnonzero(np.diff(np.sign(e)) != 0) if e[i] < 0]
    want = brentq(lambda t: energy(t) - level, fine[ups[-1]], fine[ups[-1] + 1], xtol=1e-13, rtol=1e-15)
    times = np.r_[0.0, 1600.0, np.arange(np.ceil(want) + 50.0, 8001.0, 400.0)]   # one bracket over 3 crossings
    got = cn.observables.time_staying_above(G, cn.simulate(G, times))
    assert abs(got - want) <= STAY_REL * want, (got, want)
