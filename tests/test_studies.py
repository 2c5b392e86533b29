"""Built-in scale studies (quick grids): numbers against closed forms and the core, files, the CLI."""

import numpy as np
import pytest

import chiralnet as cn
from chiralnet import analytic, cli, studies
from chiralnet.studies import cavity_line, optimal_rates

RTOL = 1e-12  # steady states of 2..10-cell networks against closed forms / steady_state


def test_cooperativity_matches_eqs_10_to_12(tmp_path):
    r = studies.cooperativity(out=tmp_path, n_points=25)
    C = r.data["C"]
    np.testing.assert_allclose(r.data["eta_bb"], analytic.eta_bb(C, np.sqrt(0.1 / 0.003)), rtol=RTOL)
    np.testing.assert_allclose(r.data["eta_bb_opt"], analytic.eta_bb_opt_balanced(C), rtol=RTOL)
    # Fig. 4(c): optimal couplings never lose to the reciprocal battery at Gamma = 2|J| (Eq. 12 >= 1)
    assert np.all(r.data["eta_bb_opt"] >= 1 - RTOL)
    for ext in ("csv", "png", "txt"):
        assert (tmp_path / f"cooperativity.{ext}").stat().st_size > 0
    assert (tmp_path / "cooperativity.png").read_bytes()[:4] == b"\x89PNG"
    assert "Eq. (10)" in r.text


def test_chain_length_against_two_cell_limits_and_core(tmp_path):
    r = studies.chain_length(out=tmp_path, n_battery=[1, 2, 5, 70])
    lam = studies.GAMMA + studies.KAPPA
    e_nr, e_r = r.data["battery_energy_nonreciprocal"], r.data["battery_energy_reciprocal"]
    assert e_nr[0] == pytest.approx(16 * 0.04**2 * 0.1**2 / lam**4, rel=RTOL)
    assert e_r[0] == pytest.approx(analytic.steady_battery_energy_reciprocal(
        omega=1.0, E=0.1, J=0.02, kappa_a=0.003, kappa_b=0.003), rel=RTOL)
    # the 71-cell chains go through steady_state itself (more than BATCH_MAX_CELLS cells)
    assert e_nr[3] == pytest.approx(cn.steady_state(cn.chain(71)).battery_energy, rel=RTOL)
    assert e_r[3] == pytest.approx(cn.steady_state(cn.chain(71, nonreciprocal=False)).battery_energy, rel=RTOL)
    # nonreciprocal chain of N + 1 = 6 cells (docs/theory/model.md, "The chiral chain"):
    # alpha_n = (2 Gamma / Lambda_n) alpha_{n-1}
    g, k, E = studies.GAMMA, studies.KAPPA, studies.DRIVE
    lams = [k + g] + [k + 2 * g] * 4 + [k + g]
    amp = 2 * E / lams[0]
    battery = 0.0
    for n in range(1, 6):
        amp *= 2 * g / lams[n]
        battery += amp**2
    assert e_nr[2] == pytest.approx(battery, rel=RTOL)
    assert (tmp_path / "chain_length.png").exists()


def test_topology_equal_total_rate(tmp_path):
    for topo, n in (("chain", 9), ("ring", 9), ("star", 9), ("lattice", 9)):
        G = studies.equal_rate_network(topo, n, total_gamma=0.04)
        rates = [G.nodes[r]["gamma"] for r in cn.reservoirs(G)]
        assert len(rates) == studies.n_links(topo, n)
        assert sum(rates) == pytest.approx(0.04, rel=1e-14)
    r = studies.topology(out=tmp_path, sizes=[4, 9])
    limit = analytic.steady_battery_energy_nonreciprocal(omega=1.0, E=0.1, gamma=0.04, Lambda_a=0.043, Lambda_b=0.043)
    ref = cn.steady_state(studies.equal_rate_network("lattice", 9)).battery_energy / limit
    got = r.data["ratio_to_two_cell"][(r.data["topology"] == "lattice") & (r.data["n_cells"] == 9)]
    np.testing.assert_allclose(got, ref, rtol=RTOL)
    assert np.all(np.isfinite(r.data["ratio_to_two_cell"])) and np.all(r.data["ratio_to_two_cell"] > 0)
    with pytest.raises(cn.NetworkError, match="square number"):
        studies.equal_rate_network("lattice", 8)


def test_study_cli(tmp_path, capsys):
    assert cli.main(["study", "topology", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    assert "two-cell limit" in capsys.readouterr().out
    assert (tmp_path / "topology.csv").read_text().startswith("topology,n_cells,battery_energy,ratio_to_two_cell\n")
    # rerunning resumes from the stored chunks
    assert cli.main(["study", "topology", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    with pytest.raises(SystemExit):
        cli.main(["study", "nosuch", "--out", str(tmp_path)])


def test_long_reciprocal_chain_stability_check():
    # check_stability proves damped blocks stable from the Hermitian part (no eig of a 3001-cell block) ...
    m = cn.build_model(cn.chain(3001, nonreciprocal=False))
    cn.check_stability(m)
    assert cn.steady_state(m).battery_energy == pytest.approx(297.8736, rel=1e-6)  # the study's plateau
    # ... and still finds undamped modes: no kappa, coherent link only
    with pytest.raises(cn.NoSteadyStateError, match="no steady state"):
        cn.check_stability(cn.two_cell(kappa_a=0.0, kappa_b=0.0, nonreciprocal=False))
    # a reservoir that damps only the symmetric mode leaves the antisymmetric one undamped
    G = cn.network(1.0)
    cn.add_cell(G, "a", omega=1.0, drive=0.1)
    cn.add_cell(G, "b", omega=1.0)
    cn.add_reservoir(G, {"a": 1.0, "b": 1.0}, gamma=0.04)
    with pytest.raises(cn.NoSteadyStateError):
        cn.check_stability(G)


def test_disorder_study_quick(tmp_path, capsys):
    assert cli.main(["study", "disorder", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    assert "5% relative disorder" in capsys.readouterr().out
    header = (tmp_path / "disorder.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["n_battery", "mean_nonreciprocal", "std_nonreciprocal"] and "q95_reciprocal" in header
    assert (tmp_path / "disorder.png").read_bytes()[:4] == b"\x89PNG"
    r = studies.disorder(n_battery=[1, 2], realisations=50)
    for kind in ("nonreciprocal", "reciprocal"):
        d = r.data
        assert np.all(d[f"q5_{kind}"] <= d[f"mean_{kind}"]) and np.all(d[f"mean_{kind}"] <= d[f"q95_{kind}"])
        assert np.all(np.abs(d[f"mean_{kind}"] / d[f"clean_{kind}"] - 1) < 0.1)  # 5 % disorder, 50 chains
    # without disorder the ensemble is the clean chain, exactly; N = 1 is the two-cell battery
    z = studies.disorder(n_battery=[1, 4], realisations=3, spread=0.0)
    np.testing.assert_array_equal(z.data["mean_nonreciprocal"], z.data["clean_nonreciprocal"])
    np.testing.assert_array_equal(z.data["q95_reciprocal"], z.data["clean_reciprocal"])
    lam = studies.GAMMA + studies.KAPPA
    assert z.data["mean_nonreciprocal"][0] == pytest.approx(16 * 0.04**2 * 0.1**2 / lam**4, rel=RTOL)


# ---------------------------------------------------------------------------------------------
# The field's recent results (docs/guide/reproduced.md), against closed forms and naive solves.

#: The optimiser's optimum against the closed form's root (bounded Brent at xatol 1e-10 in log rate).
OPT_REL = 1e-6


def _chain_optimum(n, kappa):
    """Gamma maximising the last cell's steady energy of a one-way chain with n battery cells: the root of
    d/dGamma log E_last, E_last = 4E^2/(k+G)^2 (2G/(k+2G))^(2(n-1)) (2G/(k+G))^2 (docs/theory/model.md)."""
    from scipy.optimize import brentq

    g = lambda G: -4 / (kappa + G) + 2 * (n - 1) * kappa / (G * (kappa + 2 * G)) + 2 / G  # noqa: E731
    return brentq(g, 1e-6 * kappa, 1e4 * kappa * n, xtol=1e-15, rtol=1e-14)


def test_topology_scaling_against_closed_forms(tmp_path):
    r = studies.topology_scaling(out=tmp_path, sizes=[1, 2, 3, 4, 5, 6, 16])
    k = optimal_rates.KAPPA
    for n, g in zip(r.data["n_battery"], r.data["gamma_op_chain"]):
        assert g == pytest.approx(_chain_optimum(int(n), k), rel=OPT_REL)
    np.testing.assert_allclose(r.data["gamma_op_star_sqrt_n_over_kappa"], 1.0, rtol=OPT_REL)  # kappa / sqrt(N)
    odd = r.data["n_battery"] % 2 == 1
    assert (np.isfinite(r.data["J_op_reciprocal"]) == odd).all()  # the odd-even effect
    assert r.data["gamma_op_chain_over_n_kappa"][-1] == pytest.approx(0.55619, abs=1e-5)  # N = 16, -> 0.5
    assert (tmp_path / "topology_scaling.png").read_bytes()[:4] == b"\x89PNG"


def _naive_end_energy(links, J, kappa, E, nonreciprocal):
    """|alpha_last|^2 of a resonant chain's steady state, M written out (docs/theory/model.md)."""
    n = links + 1
    M = -kappa / 2 * np.eye(n, dtype=complex)
    for i in range(links):
        if nonreciprocal:  # balanced chiral link, Gamma = 2J: M[i+1, i] = Gamma, both ends lose Gamma/2
            G = 2 * J
            M[i, i] -= G / 2
            M[i + 1, i + 1] -= G / 2
            M[i + 1, i] += G
        else:
            M[i, i + 1] += -1j * J
            M[i + 1, i] += -1j * J
    drive = np.zeros(n, complex)
    drive[0] = E
    return abs(np.linalg.solve(M, 1j * drive)[-1]) ** 2


def test_nonreciprocal_gain_against_a_naive_solve():
    r = studies.nonreciprocal_gain(ratios=[0.1, 2.0], max_links=8)
    k, E = 0.003, 0.1
    for ratio, g in zip(r.data["J_over_kappa"], r.data["growth_per_link"]):
        R = [_naive_end_energy(L, ratio * k, k, E, True) / _naive_end_energy(L, ratio * k, k, E, False)
             for L in range(1, 9)]
        assert g == pytest.approx(np.exp(np.polyfit(np.arange(1, 9), np.log(R), 1)[0]), rel=1e-9)
    assert r.data["growth_per_link"][0] == pytest.approx(2.201, abs=1e-3)  # weak coupling: exponential
    assert r.data["max_log_deviation"][0] < 1e-4


def test_charging_line_perfect_transfer_and_uniform_line_against_expm():
    import scipy.linalg as la

    r = studies.charging_line(lengths=[2, 8])
    np.testing.assert_allclose(r.data["parabolic_coherent_ergotropy_at_t_pst"], 1.0, atol=1e-12)
    L = 8
    H = np.zeros((L, L))
    for j in range(1, L):
        H[j - 1, j] = H[j, j - 1] = cavity_line.J0
    t = np.linspace(0.0, (L + 10) / cavity_line.J0, cavity_line.GRID)
    w, V = np.linalg.eigh(H)
    amp = (V[-1] * V[0]) @ np.exp(-1j * np.outer(w, t))  # <L-1| e^{-iHt} |0>
    assert r.data["uniform_coherent_ergotropy_fraction"][1] == pytest.approx((abs(amp) ** 2).max(), rel=1e-10)
    assert abs(la.expm(-1j * H * t[5])[-1, 0] - amp[5]) < 1e-13
    # a squeezed vacuum through a passive line: the battery holds |u|^2 n and u^2 m (n = sinh^2 r, |m| = sinh r
    # cosh r), W = n_b + 1/2 - sqrt((n_b + 1/2)^2 - |m_b|^2) (docs/theory/gaussian.md), largest where |u|^2 is
    u2, sq = (abs(amp) ** 2).max(), cavity_line.SQUEEZING
    nb, mb = u2 * np.sinh(sq) ** 2, u2 * np.sinh(sq) * np.cosh(sq)
    W = nb + 0.5 - np.sqrt((nb + 0.5) ** 2 - mb ** 2)
    assert r.data["uniform_squeezed_ergotropy_fraction"][1] == pytest.approx(W / np.sinh(sq) ** 2, rel=1e-9)
    # the thermal part of a displaced thermal charger arrives as heat: same energy fraction, ergotropy 1/1.5 of it
    np.testing.assert_allclose(r.data["uniform_thermal_ergotropy_fraction"],
                               r.data["uniform_coherent_ergotropy_fraction"] / 1.5, rtol=1e-9)


def test_study_list_names_every_study(capsys):
    assert cli.main(["study", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in studies.STUDIES)


# The general Gaussian studies, against the independent quadrature solution of tests/test_gaussian.py
# (docs/theory/gaussian.md) and the theory page's checked values.

def _battery_of_reference(spec, i):
    """(energy, local ergotropy) of cell i from the quadrature steady state (means R, covariance sigma)."""
    from test_gaussian import reference_steady

    R, S = reference_steady(spec)
    n = len(spec["cells"])
    occ = (S[i, i] + S[n + i, n + i] - 1) / 2
    m = (S[i, i] - S[n + i, n + i] + 2j * S[i, n + i]) / 2
    a2 = ((R[i] ** 2 + R[n + i] ** 2) / 2)
    return a2 + occ, a2 + occ + 0.5 - np.sqrt((occ + 0.5) ** 2 - abs(m) ** 2)


def _pair_spec(cell0, cell1, gamma, N=0.0, M=0.0):
    """A chiral pair as the reference describes it: reservoir p = (1, -1) plus J = -i gamma / 2."""
    return dict(cells=[cell0, cell1], links=[(0, 1, -0.5j * gamma, 0)], reservoirs=[(gamma, N, M, {0: 1.0, 1: -1.0})],
                wL=1.0)


def test_squeezed_reservoirs_thermal_noise_is_heat_squeezing_is_work():
    r = studies.squeezed_reservoirs(n_points=4)
    assert np.abs(r.data["pair_thermal_ergotropy"]).max() < 1e-12 and np.abs(r.data["chain_thermal_ergotropy"]).max() < 1e-12
    assert (np.diff(r.data["pair_thermal_energy"]) > 0).all() and (np.diff(r.data["pair_squeezed_ergotropy"]) > 0).all()
    spec = _pair_spec(dict(omega=1.0, kappa=0.003), dict(omega=1.0, kappa=0.003), 0.04, N=1.0, M=np.sqrt(2.0))
    E, W = _battery_of_reference(spec, 1)
    assert r.data["pair_squeezed_energy"][-1] == pytest.approx(E, rel=1e-9)
    assert r.data["pair_squeezed_ergotropy"][-1] == pytest.approx(W, rel=1e-9)


def test_counter_rotating_reproduces_the_checked_lc_values():
    r = studies.counter_rotating(quick=True)
    assert r.data["rotating_ergotropy"].max() < 1e-12 and r.data["counter_rotating_ergotropy"].max() < 1e-12
    assert r.data["both_ergotropy"].max() > 0.01
    assert "E(5) = 0.2480509529, W(5) = 0.0109671019" in r.text  # docs/theory/gaussian.md, checked values


def test_two_photon_pump_threshold_and_values():
    r = studies.two_photon_pump(quick=True)
    ratio, unstable = r.data["pump_over_threshold"], r.data["unstable"].astype(bool)
    assert (unstable == (ratio > 1)).all()  # found by check_stability at (kappa + Gamma) / 2
    k = int(np.flatnonzero(ratio == 0.99)[0])
    spec = _pair_spec(dict(omega=1.0, kappa=0.01, pump=float(r.data["pump"][k])), dict(omega=1.0, kappa=0.01), 0.04)
    E, W = _battery_of_reference(spec, 1)
    assert r.data["battery_energy"][k] == pytest.approx(E, rel=1e-9)
    assert r.data["battery_ergotropy"][k] == pytest.approx(W, rel=1e-9)
