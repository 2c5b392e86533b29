"""The QuTiP export (chiralnet.formats.qutip.to_qutip) against chiralnet's moment equations.

- Moments at t = 0: the master equation of the exported (H, c_ops) at rho0 gives d<a>/dt and
  d<a_j^dag a_k>/dt, which must equal M alpha - i E and the moment equations of the README
  (conj(M) Nc + Nc M^T + Q plus the mean-field part) up to the Fock truncation of rho0.
- Dynamics: ``qutip.mesolve`` on the export against ``chiralnet.simulate`` on a thermal chiral pair
  (hot baths and reservoir, complex drive, detuning, thermal and coherent initial states): the
  difference shrinks geometrically with the cutoff and stays within the truncation error, estimated
  as the change to the next cutoff.
"""

import sys

import numpy as np
import pytest

qt = pytest.importorskip("qutip")

import chiralnet as cn  # noqa: E402
from chiralnet import config  # noqa: E402
from chiralnet.errors import MemoryLimitError  # noqa: E402

#: Moments at t = 0 (cutoff 12 for the pair, 8 for three cells: measured truncation ~1e-11).
MOMENT_ABS = 1e-10
#: mesolve's own tolerances, far below every difference asserted.
MESOLVE_OPTIONS = {"atol": 1e-12, "rtol": 1e-10}
#: The error at cutoff N is at most this times |q_N - q_{N+1}| (geometric tail: error ~ 1.1 x the step).
TRUNCATION_FACTOR = 1.5
#: Each cutoff step must shrink the error at least this much (measured: ~10x).
MIN_RATIO = 5.0
#: The error at the largest cutoff (measured ~7e-6 on <a>, 2e-6 on <n>).
QUTIP_ABS = 2e-5
CUTOFFS = (3, 4, 5, 6)
TIMES = np.array([0.0, 5.0, 15.0, 40.0])


def thermal_pair():
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.0, kappa=0.1, n_th=0.05, drive=0.02 + 0.01j, n0=0.05)
    cn.add_cell(G, "b", omega=1.02, kappa=0.08, n_th=0.03, alpha0=0.05 - 0.03j)
    cn.add_chiral_link(G, "a", "b", gamma=0.1, n_th=0.04)
    return G


def three_cells():
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "x", omega=1.00, kappa=0.10, n_th=0.05, drive=0.015, n0=0.02)
    cn.add_cell(G, "y", omega=1.05, kappa=0.15, n_th=0.07, drive=0.01j, alpha0=0.05 - 0.05j)
    cn.add_cell(G, "z", omega=0.97, kappa=0.12, alpha0=0.03j, n0=0.04)
    cn.add_coherent_link(G, "x", "y", 0.05 + 0.03j)
    cn.add_coherent_link(G, "z", "y", -0.02j)
    cn.add_reservoir(G, {"x": 1.0, "y": 0.7 * np.exp(0.5j), "z": -0.6j}, gamma=0.2, n_th=0.05)
    return G


def test_structure():
    G = three_cells()
    H, c_ops, rho0, a = cn.to_qutip(G, [3, 4, 2])
    assert H.dims == [[3, 4, 2], [3, 4, 2]] and H.isherm
    assert len(a) == 3 and all(x.dims == H.dims for x in a)
    # 3 baths (x, y hot: 2 ops each; z cold: 1) + the hot reservoir (2)
    assert len(c_ops) == 2 + 2 + 1 + 2
    assert rho0.isherm and abs(rho0.tr() - 1) < 1e-14
    # a[i] lowers only its own mode: <n_y> of a one-photon state in y
    psi = qt.tensor(qt.basis(3, 0), qt.basis(4, 1), qt.basis(2, 0))
    assert [qt.expect(x.dag() * x, psi) for x in a] == [0.0, 1.0, 0.0]
    # rotating frame: a resonant, undriven, uncoupled cell contributes nothing to H
    G1 = cn.network(drive_frequency=1.0)
    cn.add_cell(G1, "s", omega=1.0, kappa=0.1)
    H1, c1, rho1, a1 = cn.to_qutip(G1, 3)
    assert H1.norm() == 0 and len(c1) == 1 and (rho1 - qt.fock_dm(3, 0)).norm() == 0


@pytest.mark.parametrize("make, cutoff", [(thermal_pair, 12), (three_cells, 8)], ids=["pair", "three"])
def test_moments_at_t0_match_the_moment_equations(make, cutoff):
    G = make()
    model = cn.build_model(G)
    M, Q, E = model.dense_M(), model.dense_Q(), model.drive
    H, c_ops, rho0, a = cn.to_qutip(G, cutoff)
    # the master equation's right-hand side at rho0 (operator products: no D^2 x D^2 Liouvillian)
    drho = -1j * (H * rho0 - rho0 * H)
    for c in c_ops:
        cdc = c.dag() * c
        drho += c * rho0 * c.dag() - 0.5 * (cdc * rho0 + rho0 * cdc)
    alpha = np.array([qt.expect(x, rho0) for x in a])
    second = np.array([[qt.expect(x.dag() * y, rho0) for y in a] for x in a])
    Nc = second - np.outer(alpha.conj(), alpha)
    start = cn.initial_state(G)
    np.testing.assert_allclose(alpha, start.alpha, atol=MOMENT_ABS)
    np.testing.assert_allclose(Nc, start.dense_Nc(), atol=MOMENT_ABS)
    d_alpha = M @ alpha - 1j * E
    d_Nc = M.conj() @ Nc + Nc @ M.T + Q
    d_second = np.outer(d_alpha.conj(), alpha) + np.outer(alpha.conj(), d_alpha) + d_Nc
    got_alpha = np.array([qt.expect(x, drho) for x in a])
    got_second = np.array([[qt.expect(x.dag() * y, drho) for y in a] for x in a])
    assert np.abs(got_alpha - d_alpha).max() <= MOMENT_ABS
    assert np.abs(got_second - d_second).max() <= MOMENT_ABS


@pytest.fixture(scope="module")
def pair_runs():
    G = thermal_pair()
    runs = {}
    for N in CUTOFFS:
        H, c_ops, rho0, a = cn.to_qutip(G, N)
        r = qt.mesolve(H, rho0, TIMES, c_ops, e_ops=[x.dag() * x for x in a] + a, options=MESOLVE_OPTIONS)
        runs[N] = np.concatenate([np.array(r.expect[:2]).T.real, np.array(r.expect[2:]).T], axis=1)
    return G, runs


def test_mesolve_matches_simulate_within_truncation(pair_runs):
    G, runs = pair_runs
    res = cn.simulate(G, TIMES)
    ours = np.concatenate([res.energies / cn.build_model(G).omega, res.amplitudes], axis=1)
    err = {N: np.abs(runs[N] - ours).max() for N in CUTOFFS}
    for lo, hi in zip(CUTOFFS, CUTOFFS[1:]):
        assert err[lo] / err[hi] >= MIN_RATIO, (lo, err)                       # shrinks with the cutoff
        step = np.abs(runs[lo] - runs[hi]).max()
        assert err[lo] <= TRUNCATION_FACTOR * step, (lo, err[lo], step)       # within the truncation error
    assert err[CUTOFFS[-1]] <= QUTIP_ABS


def test_per_cell_cutoff_list(pair_runs):
    G, runs = pair_runs
    H, c_ops, rho0, a = cn.to_qutip(G, [6, 6])
    H6 = cn.to_qutip(G, 6)[0]
    assert (H - H6).norm() == 0 and H.dims == [[6, 6], [6, 6]]


def test_bad_cutoffs_and_inputs(monkeypatch):
    G = thermal_pair()
    with pytest.raises(cn.ChiralnetError, match="cell 'a' is 1; it must be >= 2"):
        cn.to_qutip(G, 1)
    with pytest.raises(cn.ChiralnetError, match="cell 'b' is 0"):
        cn.to_qutip(G, [3, 0])
    with pytest.raises(cn.ChiralnetError, match="cell 'a' must be an integer"):
        cn.to_qutip(G, 2.5)
    with pytest.raises(cn.ChiralnetError, match="cell 'b' must be an integer"):
        cn.to_qutip(G, [3, True])
    with pytest.raises(cn.ChiralnetError, match="lists 3 values for 2 cells"):
        cn.to_qutip(G, [3, 3, 3])
    with pytest.raises(MemoryLimitError, match=r"D = prod\(cutoff\) = 1000000000000 .*smaller cutoff"):
        cn.to_qutip(G, 10**6)
    monkeypatch.setattr(config, "MEMORY_LIMIT_GB", 1e-3)   # 1 MB: cutoff 20 on two cells (D^2 = 1.6e5) is over it
    with pytest.raises(MemoryLimitError, match="D = prod"):
        cn.to_qutip(G, 20)
    with pytest.raises(cn.ChiralnetError, match="needs the network graph"):
        cn.to_qutip(cn.build_model(G), 3)


def test_missing_qutip_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "qutip", None)   # import qutip -> ImportError
    with pytest.raises(cn.ChiralnetError, match=r"pip install 'chiralnet\[qutip\]'"):
        cn.to_qutip(thermal_pair(), 3)


# ---------------------------------------------------------------------------------------------
# Shaped drives: H is a QobjEvo with the rotating-frame coefficient functions.

#: mesolve on the time-dependent export against simulate (cutoff 6, |alpha| <= 0.19, so the Fock
#: truncation is ~1e-12; measured difference 4e-11 (tone) to 3.3e-9 (square: mesolve steps over the switch).
SHAPED_ABS = 1e-7
SHAPED_TIMES = np.array([0.0, 3.0, 8.0, 15.0, 25.0, 40.0])


def _custom(t):
    return 0.01 * np.sin(0.3 * t) + 0.005j


SHAPED = {
    "gaussian": lambda: cn.drives.gaussian(0.02 + 0.01j, t0=10.0, width=4.0),
    "square": lambda: cn.drives.square(0.02, start=5.0, stop=20.0),
    "tone": lambda: cn.drives.tone(0.015j, frequency=1.1),
    "callable": lambda: _custom,
    "sum": lambda: 0.01 + cn.drives.gaussian(0.01, t0=20.0, width=5.0),
}


@pytest.mark.parametrize("shape", sorted(SHAPED))
def test_shaped_drive_export_matches_simulate(shape):
    """It was a TypeError (complex() of a drive); now mesolve on the QobjEvo agrees with simulate."""
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.0, kappa=0.1, drive=SHAPED[shape]())
    cn.add_cell(G, "b", omega=1.02, kappa=0.08, drive=0.005)
    cn.add_chiral_link(G, "a", "b", gamma=0.1)
    H, c_ops, rho0, a = cn.to_qutip(G, 6)
    assert isinstance(H, qt.QobjEvo)
    r = qt.mesolve(H, rho0, SHAPED_TIMES, c_ops, e_ops=a, options=dict(MESOLVE_OPTIONS, max_step=0.5))
    res = cn.simulate(G, SHAPED_TIMES)
    theirs = np.array(r.expect).T
    assert np.abs(res.amplitudes).max() > 0.01  # the drive does something to compare
    np.testing.assert_allclose(theirs, res.amplitudes, rtol=0, atol=SHAPED_ABS)


def test_failing_drive_callable_names_the_cell():
    G = cn.network()
    cn.add_cell(G, "a", omega=1.0, kappa=0.1, drive=lambda t: "x")
    with pytest.raises(cn.ChiralnetError, match="to_qutip: drive of cell 'a': .*returned 'x'"):
        cn.to_qutip(G, 3)


# ---------------------------------------------------------------------------------------------
# General Gaussian terms (docs/theory/gaussian.md): two-photon pumps, a parametric link, squeezed baths, a
# squeezed shared reservoir and a squeezed chiral link (Kossakowski jump-operator pairs), squeezed starts.

#: Cutoffs of the general-Gaussian comparison; the truncation error at the larger is estimated by the change
#: from the smaller (measured: error 3.4e-7 at 13, the step 12 -> 13 is 9.4e-7; mesolve takes ~10 s).
GENERAL_CUTOFFS = (12, 13)
#: The error at the largest cutoff on <a>, <a^dag a>, <a a>, <a_0 a_1>, <a_0^dag a_1> (measured 3.4e-7).
GENERAL_ABS = 1e-6
GENERAL_TIMES = np.array([0.0, 1.5, 4.0, 8.0])


def squeezed_pair():
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.02, kappa=0.6, n_th=0.05, m_th=0.12 * np.exp(0.4j), pump=0.08 * np.exp(0.3j),
                drive=0.05 + 0.02j, alpha0=0.1 - 0.05j, n0=0.02, xi0=0.15 * np.exp(1.1j), battery=True)
    cn.add_cell(G, "b", omega=0.97, kappa=0.5, n_th=0.03, alpha0=0.05j, xi0=0.1, pump=-0.03j, battery=True)
    # a chiral link (its balancing J is the coherent link) whose reservoir is squeezed at the bound
    # |M|^2 = N (N + 1): one jump operator
    cn.add_chiral_link(G, "a", "b", gamma=0.1, n_th=0.1, m_th=np.sqrt(0.11) * np.exp(0.2j))
    cn.add_parametric_link(G, "a", "b", 0.05 * np.exp(-0.8j))
    cn.add_reservoir(G, {"a": 0.8, "b": -0.5j}, gamma=0.2, n_th=0.04, m_th=0.1 * np.exp(-0.5j))
    return G


def _general_moments(G, cut):
    H, c_ops, rho0, a = cn.to_qutip(G, cut)
    e_ops = [a[0], a[1], a[0].dag() * a[0], a[1].dag() * a[1], a[0] * a[0], a[1] * a[1], a[0] * a[1],
             a[0].dag() * a[1]]
    r = qt.mesolve(H, rho0, GENERAL_TIMES, c_ops, e_ops=e_ops, options=MESOLVE_OPTIONS)
    return np.array(r.expect).T, len(c_ops)


def test_general_gaussian_export_matches_simulate():
    G = squeezed_pair()
    res = cn.simulate(G, GENERAL_TIMES)
    assert res.method == "exact-gaussian"
    al = res.amplitudes
    Nb, Mb = res.battery_fluctuations, res.battery_anomalous
    ours = np.stack([al[:, 0], al[:, 1],
                     Nb[:, 0, 0] + abs(al[:, 0]) ** 2, Nb[:, 1, 1] + abs(al[:, 1]) ** 2,
                     Mb[:, 0, 0] + al[:, 0] ** 2, Mb[:, 1, 1] + al[:, 1] ** 2, Mb[:, 0, 1] + al[:, 0] * al[:, 1],
                     Nb[:, 0, 1] + al[:, 0].conj() * al[:, 1]], axis=1)
    runs = {}
    for cut in GENERAL_CUTOFFS:
        runs[cut], n_ops = _general_moments(G, cut)
    # 2 local baths + the squeezed reservoir: 2 each; the chiral link's squeezed vacuum at the bound: 1
    assert n_ops == 7
    lo, hi = GENERAL_CUTOFFS
    err = np.abs(runs[hi] - ours).max()
    step = np.abs(runs[lo] - runs[hi]).max()
    assert np.abs(ours[1:, 4:7]).max() > 0.05          # the anomalous moments are there to compare
    assert err <= GENERAL_ABS, (err, step)
    assert err <= TRUNCATION_FACTOR * step + 1e-10, (err, step)  # within the truncation error (+ mesolve's own)
    # each new term moves the moments far more than the tolerance: dropping one from the export would fail
    for drop in ("pump", "m_th", "g", "xi0"):
        H0 = squeezed_pair()
        for *_, attrs in list(H0.nodes(data=True)) + list(H0.edges(data=True)):
            attrs.pop(drop, None)
        other = cn.simulate(H0, GENERAL_TIMES)
        assert np.abs(other.amplitudes - al).max() + np.abs(other.battery_anomalous - Mb).max() > 100 * GENERAL_ABS


def test_general_gaussian_start_and_baths_at_t0():
    """rho0 has the squeezed thermal moments of cn.initial_state; each squeezed bath alone relaxes to
    <a^dag a> = N, <a a> = M (steady state of the exported Liouvillian, cutoff 30: truncation ~1e-12)."""
    G = squeezed_pair()
    start = cn.initial_state(G)
    H, c_ops, rho0, a = cn.to_qutip(G, 16)
    al = start.alpha
    got_mc = qt.expect(a[0] * a[0], rho0) - al[0] ** 2
    assert abs(got_mc - start.Mc[0, 0]) < 1e-9
    assert abs(qt.expect(a[1].dag() * a[1], rho0) - abs(al[1]) ** 2 - start.Nc[1, 1]) < 1e-9
    S = cn.network(drive_frequency=1.0)
    cn.add_cell(S, "s", omega=1.0, kappa=0.5, n_th=0.3, m_th=0.2 + 0.1j)
    H, c_ops, _, (s,) = cn.to_qutip(S, 30)
    rho = qt.steadystate(H, c_ops)
    assert abs(qt.expect(s * s, rho) - (0.2 + 0.1j)) < 1e-9
    assert abs(qt.expect(s.dag() * s, rho) - 0.3) < 1e-9


def test_state0_product_state_exported_and_correlations_refused():
    """rho0 from a State (a run's final state, in another frame and at a later time): each cell's displaced
    squeezed thermal state has that state's alpha, Nc_ii, Mc_ii (cutoff 20: truncation < 1e-9 here); a state
    that correlates cells is refused naming the pair."""
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.0, kappa=0.5, n_th=0.1, m_th=0.2j, pump=0.1, drive=0.05 - 0.02j)
    cn.add_cell(G, "b", omega=1.1, kappa=0.3, xi0=0.3 * np.exp(-0.7j), n0=0.1, alpha0=0.2)
    end = cn.simulate(G, [0.0, 3.0]).final_state
    assert np.abs(end.Mc[0, 0]) > 0.01 and np.abs(end.Mc[1, 1]) > 0.1
    H, c_ops, rho0, a = cn.to_qutip(G, 20, state0=end)
    for i in range(2):
        al = qt.expect(a[i], rho0)
        assert abs(al - end.alpha[i]) < 1e-9
        assert abs(qt.expect(a[i].dag() * a[i], rho0) - abs(al) ** 2 - end.Nc[i, i].real) < 1e-9
        assert abs(qt.expect(a[i] * a[i], rho0) - al**2 - end.Mc[i, i]) < 1e-9
    # the network's own start is not what was exported
    assert abs(qt.expect(a[1], cn.to_qutip(G, 20)[2]) - 0.2) < 1e-6 and abs(end.alpha[1] - 0.2) > 1e-3
    cn.add_parametric_link(G, "a", "b", 0.1)
    tangled = cn.simulate(G, [0.0, 3.0]).final_state
    with pytest.raises(cn.ChiralnetError, match="state0 correlates cells 'a' and 'b'"):
        cn.to_qutip(G, 4, state0=tangled)
    with pytest.raises(cn.ChiralnetError, match="state0 must be a chiralnet State"):
        cn.to_qutip(G, 4, state0={"a": 1})
