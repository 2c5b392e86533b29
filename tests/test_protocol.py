"""Protocols (chiralnet.protocol): closed forms, random thermal phases against a naive piecewise
expm of the moment equations, result bookkeeping, and bad input."""

import numpy as np
import pytest
import scipy.linalg as la
from hypothesis import given
from hypothesis import strategies as st

import chiralnet as cn
from conftest import EXACT_REL, RANDOM_EXACT_REL
from naive import naive_arrays, rel_err
from strategies import networks

#: Closed forms of the closed / damped pair (docs/theory/beyond.md, "Closed forms of a coherently coupled
#: pair"), exact methods, absolute in omega.
CLOSED_FORM_ABS = 1e-12
#: The battery energy held after switching everything off at t = pi/g (relative).
HOLD_REL = 1e-12

W, G_LINK, F = 1.0, 0.05, 0.01


def pair(drive=F, g=G_LINK, kappa_a=0.0, kappa_b=0.0, link=True, alpha0=0.0):
    G = cn.network()
    cn.add_cell(G, "A", omega=W, kappa=kappa_a, drive=drive, alpha0=alpha0)
    cn.add_cell(G, "B", omega=W, kappa=kappa_b, battery=True)
    if link:
        cn.add_coherent_link(G, "A", "B", J=g)
    return G


@pytest.mark.parametrize("method", ["exact", "exact-sparse"])
def test_closed_pair_switch_off_keeps_the_energy(method):
    T1 = np.pi / G_LINK
    p = cn.protocol([(pair(), T1), (pair(drive=0.0, link=False), 2000.0)])
    t = np.linspace(0, T1 + 2000.0, 401)
    res = cn.simulate(p, t, method=method)
    full = 4 * W * (F / G_LINK) ** 2
    first = res.phase == 0
    want = full * np.sin(G_LINK * t[first] / 2) ** 4
    assert np.abs(res.energy("B")[first] - want).max() <= CLOSED_FORM_ABS
    assert np.abs(res.energy("B")[~first] - full).max() <= HOLD_REL * full
    assert abs(res.phase_battery_energy[0] - full) <= HOLD_REL * full
    assert np.abs(res.energy("A")[~first]).max() <= CLOSED_FORM_ABS


def test_damped_charger_battery_tends_to_minus_F_over_g():
    for gamma in (0.02, 0.3):
        res = cn.simulate(pair(kappa_a=gamma), [0.0, 4000.0])
        assert abs(res.amplitudes[-1, 1] - (-F / G_LINK)) <= 1e-9  # e^{-gamma t/4}-slow transients


def test_kick_closed_form_in_a_protocol():
    theta, gamma = 0.7, 0.01
    G = pair(drive=0.0, kappa_a=gamma, kappa_b=gamma, alpha0=-1j * theta)
    p = cn.protocol([(G, 100.0), (G.copy(), 150.0)])  # a boundary that changes nothing
    t = np.linspace(0, 250, 251)
    res = cn.simulate(p, t)
    want = W * theta**2 * np.sin(G_LINK * t) ** 2 * np.exp(-gamma * t)
    assert np.abs(res.energy("B") - want).max() <= CLOSED_FORM_ABS


def naive_piecewise(phases, times):
    """Energies (T, N) of phases [(G, duration)] by expm of the moment equations on every interval
    (alpha with the augmented matrix, vec(Nc) with the Kronecker generator), written out here."""
    a0 = naive_arrays(phases[0][0])
    alpha = a0["alpha0"].astype(complex)
    Nc = np.diag(a0["n0"]).astype(complex)
    n = alpha.size
    ends = np.cumsum([d for _, d in phases])
    out, t_now, k = [], 0.0, 0
    frame = phases[0][0].graph.get("drive_frequency", 1.0)
    for G, _ in phases:
        a = naive_arrays(G)
        # alpha is in the frame rotating at the phase's drive frequency: the lab-frame amplitude is continuous
        # at a boundary, so a new omega_L turns alpha by exp(i (omega_L' - omega_L) t) (docs/guide/protocols.md)
        new_frame = G.graph.get("drive_frequency", 1.0)
        alpha = alpha * np.exp(1j * (new_frame - frame) * t_now)
        frame = new_frame
        M, E, Q = a["M"], a["E"], a["Q"]
        aug = np.zeros((n + 1, n + 1), complex)
        aug[:n, :n], aug[:n, n] = M, -1j * E
        L = np.kron(np.conj(M), np.eye(n)) + np.kron(np.eye(n), M)  # vec_row(conj(M) X + X M^T)
        augN = np.zeros((n * n + 1, n * n + 1), complex)
        augN[:-1, :-1], augN[:-1, -1] = L, Q.ravel()

        def step(dt):
            nonlocal alpha, Nc
            y = la.expm(aug * dt) @ np.r_[alpha, 1.0]
            z = la.expm(augN * dt) @ np.r_[Nc.ravel(), 1.0]
            alpha, Nc = y[:n], z[:-1].reshape(n, n)

        end = ends[k]
        while len(out) < times.size and times[len(out)] <= end:
            step(times[len(out)] - t_now)
            t_now = times[len(out)]
            out.append(a["omega"] * (np.abs(alpha) ** 2 + Nc.diagonal().real))
        if len(out) == times.size:
            break
        step(end - t_now)
        t_now, k = end, k + 1
    return np.array(out)


@st.composite
def thermal_phases(draw):
    n = draw(st.integers(1, 4))
    count = draw(st.integers(2, 3))
    return [(draw(networks(min_cells=n, max_cells=n, thermal=True if k == 0 else None)), draw(st.floats(0.5, 20.0)))
            for k in range(count)]


@given(phases=thermal_phases(), n_times=st.integers(2, 30))
@pytest.mark.parametrize("method", ["exact", "exact-sparse"])
def test_random_thermal_phases_match_naive_piecewise_expm(method, phases, n_times):
    total = sum(d for _, d in phases)
    times = np.linspace(0, total, n_times)
    times = np.unique(np.r_[times, np.cumsum([d for _, d in phases])[:-1]])  # boundaries too
    want = naive_piecewise(phases, times)
    res = cn.simulate(cn.protocol(phases), times, method=method)
    assert rel_err(res.energies, want) <= RANDOM_EXACT_REL


def test_result_says_which_phase():
    p = cn.protocol([(pair(), 10.0, "charge"), (pair(drive=0.0), 5.0, "store")])
    res = cn.simulate(p, [0.0, 5.0, 10.0, 12.0, 15.0])
    assert res.phase.tolist() == [0, 0, 0, 1, 1]  # a boundary belongs to the phase ending there
    assert res.phase_ends.tolist() == [10.0, 15.0]
    assert res.phase_names == ("charge", "store")
    np.testing.assert_allclose(res.phase_energies[0], res.energies[2], rtol=EXACT_REL)
    np.testing.assert_allclose(res.phase_energies[1], res.energies[4], rtol=EXACT_REL)
    assert res.final_state.time == 15.0
    # ends before the protocol does: later phases are not reached
    short = cn.simulate(p, [0.0, 3.0])
    assert np.isnan(short.phase_energies[1]).all() and short.phase_states[1] is None
    # no output time inside the first phase: it still runs
    late = cn.simulate(p, [12.0, 15.0])
    np.testing.assert_allclose(late.energies, res.energies[3:], rtol=EXACT_REL)


def test_protocol_equals_chained_runs_and_state0():
    G1, G2 = pair(kappa_a=0.01), pair(drive=0.0, kappa_a=0.01, link=False)
    p = cn.protocol([(G1, 30.0), (G2, 20.0)])
    res = cn.simulate(p, np.linspace(0, 50, 11))
    r1 = cn.simulate(G1, np.linspace(0, 30, 7))
    r2 = cn.simulate(G2, np.linspace(30, 50, 5), state0=r1.final_state)
    np.testing.assert_allclose(res.energies, np.r_[r1.energies, r2.energies[1:]], rtol=EXACT_REL, atol=1e-15)
    start = cn.State(("A", "B"), np.array([0.3, 0.1j]))
    res0 = cn.simulate(p, [50.0], state0=start)
    r1 = cn.simulate(G1, [0.0, 30.0], state0=start)
    r2 = cn.simulate(G2, [30.0, 50.0], state0=r1.final_state)
    np.testing.assert_allclose(res0.energies[-1], r2.energies[-1], rtol=EXACT_REL)


def test_model_phases_and_sparse_chain():
    from chiralnet.arrays import chain_model

    on, off = chain_model(50, drive=0.1), chain_model(50, drive=0.0)
    p = cn.protocol([(on, 200.0), (off, 100.0)])
    res = cn.simulate(p, np.linspace(0, 300, 31))
    G_on, G_off = cn.chain(50, drive=0.1), cn.chain(50, drive=0.0)
    want = cn.simulate(cn.protocol([(G_on, 200.0), (G_off, 100.0)]), np.linspace(0, 300, 31))
    assert rel_err(res.energies, want.energies) <= RANDOM_EXACT_REL


def test_phases_may_list_cells_in_another_order():
    G1 = pair()
    G2 = cn.network()
    cn.add_cell(G2, "B", omega=W, battery=True)
    cn.add_cell(G2, "A", omega=W)
    res = cn.simulate(cn.protocol([(G1, 10.0), (G2, 10.0)]), [10.0, 20.0])
    np.testing.assert_allclose(res.energies[1], res.energies[0], rtol=EXACT_REL)


def test_bad_input():
    G = pair()
    G3 = pair()
    cn.add_cell(G3, "load", omega=W)
    with pytest.raises(cn.ChiralnetError, match=r"phase 1.*has cell 'load' that phase 0 lacks"):
        cn.protocol([(G, 1.0), (G3, 1.0)])
    with pytest.raises(cn.ChiralnetError, match=r"phase 1 \('x'\) lacks cell 'load'"):
        cn.protocol([(G3, 1.0), (G, 1.0, "x")])
    for bad in (0.0, -1.0, float("inf"), float("nan"), "1", True):
        with pytest.raises(cn.ChiralnetError, match="phase 0: duration"):
            cn.protocol([(G, bad)])
    with pytest.raises(cn.ChiralnetError, match="at least one"):
        cn.protocol([])
    with pytest.raises(cn.ChiralnetError, match="phase 0"):
        cn.protocol([(G,)])
    p = cn.protocol([(G, 1.0), (G, 2.0)])
    with pytest.raises(cn.SolverError, match="past the end of the protocol at t = 3.0"):
        cn.simulate(p, [0.0, 3.5])
    bad = G.copy()
    bad.nodes["A"]["kapa"] = 1.0
    with pytest.raises(cn.NetworkError, match="phase 1.*kapa"):
        cn.protocol([(G, 1.0), (bad, 1.0)])


# --- scenario files ------------------------------------------------------------------------------
EXAMPLES = __import__("pathlib").Path(__file__).resolve().parent.parent / "examples"


def test_charge_store_discharge_scenario():
    run = cn.run_scenario(cn.load_scenario(EXAMPLES / "charge_store_discharge.toml"))
    phases = run.summary()["phases"]
    assert [p["name"] for p in phases] == ["charge", "store", "discharge"]
    charged, stored, drained = (p["end_battery_energy"] for p in phases)
    assert charged > 80 and 0.9 * charged < stored < charged and drained < 1e-6
    # the same protocol written in Python
    sc = cn.load_scenario(EXAMPLES / "charge_store_discharge.toml")
    res = cn.simulate(cn.protocol(sc.phases), sc.times)
    np.testing.assert_allclose(res.phase_battery_energy, [charged, stored, drained], rtol=EXACT_REL, atol=1e-15)


def test_pulse_chain_scenario_has_a_gaussian_drive():
    sc = cn.load_scenario(EXAMPLES / "pulse_chain.toml")
    G = sc.phases[0][0]
    assert type(G.nodes[0]["drive"]).__name__ == "Gaussian"  # not isinstance: doctests import drives twice
    run = cn.run_scenario(sc)
    assert run.steady is None and "time-dependent drive" in run.steady_error
    assert run.result.battery_energy.max() > 10


@pytest.mark.parametrize("change, key", [
    ({"duration": -1.0}, "phase[0].duration"),
    ({"durration": 1.0}, "phase[0].durration"),
    ({"remove": [["a", "b"]]}, "phase[0].remove[0]"),
    ({"cells": [{"name": "zz", "drive": 0.0}]}, "phase[0].cells[0].name"),
    ({"cells": [{"name": "a", "drive": {"shape": "gaussian", "amplitude": 0.1, "t0": 1.0}}]},
     "phase[0].cells[0].drive.width"),
    ({"cells": [{"name": "a", "drive": {"shape": "square", "amplitude": 0.1, "start": 2.0, "stop": 1.0}}]},
     "phase[0].cells[0].drive"),
])
def test_bad_phase_keys_name_file_and_key(change, key):
    data = {"network": {"cells": [{"name": "a", "omega": 1.0}, {"name": "b", "omega": 1.0}]},
            "phase": [{"duration": 1.0, **change}]}
    with pytest.raises(cn.ScenarioError, match=rf"^f\.toml: {__import__('re').escape(key)}"):
        from chiralnet.formats.scenario_toml import parse_scenario
        parse_scenario(data, source="f.toml")


def test_power_and_ergotropy_follow_the_phases():
    """The drive a result reports is the drive of the phase (and time) each output belongs to: after the
    drive is switched off the injected power is exactly zero; with hot baths the battery block of Nc is
    kept through every phase, so the collective ergotropy is defined over the whole protocol."""
    charge = cn.chain(3, n_th=0.2)
    store = charge.copy()
    store.nodes[0]["drive"] = 0.0
    res = cn.simulate(cn.protocol([(charge, 500.0), (store, 500.0)]), np.linspace(0, 1000, 11))
    p = cn.injected_power(res)
    assert np.all(p[res.times > 500] == 0.0) and np.all(p[1:6] != 0.0)
    direct = cn.simulate(charge, np.linspace(0, 500, 6))
    np.testing.assert_allclose(p[:6], cn.injected_power(direct), rtol=1e-12)
    w = cn.ergotropy(res, collective=True)
    assert w.shape == (11,) and np.all(np.isfinite(w))
    np.testing.assert_allclose(w[:6], cn.ergotropy(direct, collective=True), rtol=1e-12, atol=1e-14)


def test_injected_power_of_a_shaped_drive_uses_its_value_at_each_time():
    from chiralnet import drives

    G = cn.two_cell(drive=0.0)
    G.nodes["a"]["drive"] = drives.square(0.1, 0.0, 200.0)
    res = cn.simulate(G, np.linspace(0, 400, 9))
    p = cn.injected_power(res)
    assert np.all(p[res.times >= 200] == 0.0) and np.all(p[1:4] != 0.0)
