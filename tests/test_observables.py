"""The observables registry: one definition per quantity, used by run, sweeps and the API.

Every quantity is checked against an independent computation (tests/naive.py, the seed paper's
closed forms, root finding on scipy's expm); run and sweep must give the same numbers.
"""

import numpy as np
import pytest
import scipy.linalg as la
from scipy.optimize import brentq

import chiralnet as cn
from chiralnet import analytic
from chiralnet.errors import ChiralnetError
from chiralnet.observables import QUANTITIES, evaluate, time_to_fraction, two_cell_reference
from chiralnet.observables import charging
from chiralnet.scenario import parse_scenario, run_scenario
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
    monkeypatch.setattr(charging, "KERNEL_MAX_CELLS", 0)
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
