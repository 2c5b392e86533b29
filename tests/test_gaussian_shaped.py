"""Shaped drives (pulses, tones, squares, callables, sums) on general Gaussian networks, against an independent
reference: the quadrature mean equation d<R>/dt = A <R> + b(E(t)) of tests/test_gaussian.py's plain
description, integrated by SciPy (smooth drives) or by one augmented expm per constant piece (square drives);
the covariance does not see the drive and is that description's exact one."""

import numpy as np
import pytest
import scipy.linalg as la
from scipy.integrate import solve_ivp

import chiralnet as cn
from chiralnet import drives
from chiralnet.errors import ChiralnetError
from chiralnet.gaussian import sigma_to_moments
from test_gaussian import DENSE_REL, _rel, graph_of, random_spec, reference_generator, reference_run, start_of

#: chiralnet's shaped-drive integration at rtol=1e-10, atol=1e-12 against SciPy's DOP853 at rtol=1e-12,
#: atol=1e-14 (the Gaussian and callable share is adaptive: its error is the integrator's tolerance).
SHAPED_REL = 1e-8
#: A network's pump, links and squeezed baths, shaped drives on cells 0 and 1.
RTOL, ATOL = 1e-10, 1e-12


def forcing(spec):
    """b(E) = B_re Re E + B_im Im E (2n,) of the reference's mean equation, linear in the drives E (n,)."""
    n = len(spec["cells"])
    A, b0, _ = reference_generator({**spec, "cells": [{**c, "drive": 0} for c in spec["cells"]]})
    assert not b0.any()
    cols = []
    for unit in (1.0, 1j):
        for i in range(n):
            cells = [{**c, "drive": unit if k == i else 0} for k, c in enumerate(spec["cells"])]
            cols.append(reference_generator({**spec, "cells": cells})[1])
    B = np.array(cols).T  # (2n, 2n): columns Re E_0..Re E_n-1, Im E_0..Im E_n-1
    return A, lambda E: B @ np.concatenate([np.real(E), np.imag(E)])


def shaped_network(seed, shapes):
    """A random general network (every anomalous term) whose cells 0 and 1 carry ``shapes`` (two drives)
    on top of their constant drives."""
    spec = random_spec(np.random.default_rng(seed), n=3)
    G = graph_of(spec)
    for i, shape in enumerate(shapes):
        G.nodes[f"c{i}"]["drive"] = spec["cells"][i]["drive"] + shape
    return spec, G


def drive_values(spec, shapes, t):
    """E (n,) complex at time t: the constant drives plus the shapes (evaluated by chiralnet.drives' own
    __call__, a direct formula per term)."""
    E = np.array([c["drive"] for c in spec["cells"]], complex)
    for i, shape in enumerate(shapes):
        E[i] += complex(shape(t, drive_frequency=spec["wL"]))
    return E


def check_against(spec, res, R, times):
    n = len(spec["cells"])
    alpha = (R[:, :n] + 1j * R[:, n:]) / np.sqrt(2)
    return _rel(res.amplitudes, alpha)


@pytest.mark.parametrize("seed", [0, 1])
def test_smooth_shaped_drives_match_the_quadrature_ode(seed):
    """A Gaussian pulse plus a detuned tone on cell 0, a callable on cell 1: means to SHAPED_REL, the covariance
    (drive-independent) to DENSE_REL."""
    shapes = [drives.gaussian(0.15 - 0.1j, t0=4.0, width=1.2) + drives.tone(0.05j, frequency=1.3),
              drives.function(lambda t: 0.08 * np.sin(0.7 * t) * np.exp(-0.05 * t), max_step=0.5)]
    spec, G = shaped_network(seed, shapes)
    times = np.linspace(0.0, 12.0, 25)
    res = cn.simulate(G, times, rtol=RTOL, atol=ATOL)
    assert res.method == "exact-gaussian" and res.options["rtol"] == RTOL
    A, b = forcing(spec)
    R0, S0 = start_of(spec)
    sol = solve_ivp(lambda t, R: A @ R + b(drive_values(spec, shapes, t)), (0.0, times[-1]), R0, method="DOP853",
                    t_eval=times, rtol=1e-12, atol=1e-14)
    assert _rel(res.amplitudes, (sol.y[:3].T + 1j * sol.y[3:].T) / np.sqrt(2)) < SHAPED_REL
    _, Ss = reference_run(spec, R0, S0, times)
    Nc, Mc = sigma_to_moments(Ss)
    assert _rel(res.fluctuations, Nc.diagonal(axis1=1, axis2=2).real) < DENSE_REL
    assert _rel(res.anomalous, Mc.diagonal(axis1=1, axis2=2)) < DENSE_REL
    assert _rel(res.final_state.dense_Mc(), Mc[-1]) < DENSE_REL
    assert _rel(res.energies, spec_energies(spec, res.amplitudes, res.fluctuations)) < 1e-14
    np.testing.assert_allclose(res.drive[:, :2], np.array([drive_values(spec, shapes, t)[:2] for t in times]),
                               rtol=1e-14, atol=1e-16)


def spec_energies(spec, alpha, fluct):
    omega = np.array([c["omega"] for c in spec["cells"]])
    return omega * (np.abs(alpha) ** 2 + fluct)


@pytest.mark.parametrize("seed", [2, 3])
def test_square_drives_match_the_piecewise_exact_solution(seed):
    """Square pulses (exact on both copies): one augmented expm per constant piece, to DENSE_REL."""
    shapes = [drives.square(0.2 + 0.1j, 1.5, 6.0), drives.square(-0.1j, 3.0, 4.5) + drives.square(0.05, 5.0, 20.0)]
    spec, G = shaped_network(seed, shapes)
    times = np.linspace(0.0, 9.0, 19)
    res = cn.simulate(G, times)
    A, b = forcing(spec)
    R0, _ = start_of(spec)
    m = A.shape[0]
    edges = sorted({0.0, 1.5, 3.0, 4.5, 5.0, 6.0})
    R, t_prev, out = R0.copy(), 0.0, []
    for t in times:
        for e in [x for x in edges if t_prev < x < t] + [t]:
            if e > t_prev:
                aug = np.zeros((m + 1, m + 1))
                aug[:m, :m], aug[:m, m] = A * (e - t_prev), b(drive_values(spec, shapes, t_prev)) * (e - t_prev)
                E = la.expm(aug)
                R, t_prev = E[:m, :m] @ R + E[:m, m], e
        out.append(R.copy())
    R = np.array(out)
    assert _rel(res.amplitudes, (R[:, :3] + 1j * R[:, 3:]) / np.sqrt(2)) < DENSE_REL
    assert res.stats["square_runs"] == 3  # three (start, stop) pairs, each with its conjugate copy inside


# ----------------------------------------------------------------------------------------------------------
# Continued runs, cells=, protocols and simulate_to_file with shaped drives on the general path.

#: A run split in two (the second from the first's final_state) against one run: the adaptive share restarts
#: from zero at the split, so they agree to the integrator's tolerance, not to the last bit.
SPLIT_REL = 1e-8


def test_continued_runs_cells_and_file_agree_with_one_run(tmp_path):
    shapes = [drives.gaussian(0.2j, t0=5.0, width=1.0), drives.tone(0.05, frequency=0.8)]
    spec, G = shaped_network(4, shapes)
    t = np.linspace(0.0, 10.0, 41)
    one = cn.simulate(G, t, rtol=RTOL, atol=ATOL)
    first = cn.simulate(G, t[:21], rtol=RTOL, atol=ATOL)
    rest = cn.simulate(G, t[20:], state0=first.final_state, rtol=RTOL, atol=ATOL)
    assert _rel(rest.amplitudes, one.amplitudes[20:]) < SPLIT_REL
    assert _rel(rest.final_state.dense_Mc(), one.final_state.dense_Mc()) < DENSE_REL
    few = cn.simulate(G, t, cells=["c2", "c0"], rtol=RTOL, atol=ATOL)
    assert few.cells == ("c2", "c0") and _rel(few.amplitudes, one.amplitudes[:, [2, 0]]) < 1e-14
    assert _rel(few.total_energy, one.total_energy) < 1e-14 and _rel(few.battery_energy, one.battery_energy) < 1e-14
    out = cn.simulate_to_file(G, t, tmp_path / "trace.nc", chunk_times=9, store_amplitudes=True,
                              rtol=RTOL, atol=ATOL)
    assert out.method == "exact-gaussian" and out.stats["blocks"] == 5
    with out.open() as ds:
        assert _rel(ds.amplitude.values, one.amplitudes) < SPLIT_REL
        assert _rel(ds.anomalous.values, one.anomalous) < DENSE_REL


def test_protocol_pump_phase_then_pulse_phase():
    """Phase 0: a pump and a parametric link switched on (general); phase 1: no pump, a Gaussian pulse and a
    square drive (general: the state is squeezed). Against running each phase by hand from the last state."""
    spec, G = shaped_network(5, [0.0, 0.0])
    charge = G.copy()
    store = G.copy()
    for c in store.nodes:
        if "pump" in store.nodes[c]:
            store.nodes[c]["pump"] = 0j
    store.nodes["c0"]["drive"] = drives.gaussian(0.3, t0=7.0, width=0.8) + drives.square(0.1j, 8.0, 9.0)
    p = cn.protocol([(charge, 5.0), (store, 6.0)])
    t = np.linspace(0.0, 11.0, 23)
    res = cn.simulate(p, t, rtol=RTOL, atol=ATOL)
    assert res.method == "exact-gaussian" and res.anomalous is not None
    a = cn.simulate(charge, t[t <= 5.0])  # constant drives: exact, no tolerances
    b = cn.simulate(store, np.r_[5.0, t[t > 5.0]], state0=a.final_state, rtol=RTOL, atol=ATOL)
    assert _rel(res.amplitudes, np.r_[a.amplitudes, b.amplitudes[1:]]) < SPLIT_REL
    assert _rel(res.anomalous, np.r_[a.anomalous, b.anomalous[1:]]) < DENSE_REL


def test_steady_state_and_powers_refuse_shaped_drives_on_the_general_path():
    _, G = shaped_network(0, [drives.gaussian(0.1, 3.0, 1.0), 0.0])
    with pytest.raises(ChiralnetError, match="cell 'c0' has a time-dependent drive"):
        cn.steady_state(G)
    with pytest.raises(ChiralnetError, match="time-dependent drives"):
        cn.observables.stored_power(G, [0.0, 1.0])
    with pytest.raises(ChiralnetError, match="time-dependent drive"):
        cn.observables.time_to_fraction(G)


def test_callable_errors_name_the_cell_not_its_conjugate():
    _, G = shaped_network(1, [drives.function(lambda t: 1 / 0 if t > 2 else 0.1), 0.0])
    with pytest.raises(ChiralnetError, match=r"drive of cell 'c0': the drive callable raised ZeroDivisionError"):
        cn.simulate(G, np.linspace(0, 4, 5))


# ----------------------------------------------------------------------------------------------------------
# Powers, injected energy, charging times on the general path, against the reference trace.

#: Simpson's rule on 2,000 intervals of the smooth reference trace (measured 1e-14 relative on seed 0).
QUADRATURE_REL = 1e-9


def _reference_trace(spec, times):
    R0, S0 = start_of(spec)
    Rs, Ss = reference_run(spec, R0, S0, times)
    n = len(spec["cells"])
    Nc, Mc = sigma_to_moments(Ss)
    return (Rs[:, :n] + 1j * Rs[:, n:]) / np.sqrt(2), Nc, Mc


@pytest.mark.parametrize("seed", [0, 6])
def test_powers_and_injected_energy_against_the_reference_trace(seed):
    from scipy.integrate import simpson

    spec = random_spec(np.random.default_rng(seed), n=3)
    G = graph_of(spec)
    G.nodes["c2"]["battery"] = True
    gm = cn.build_model(G)
    omega = np.array([c["omega"] for c in spec["cells"]])
    bat = np.array([False, False, True])
    T = 8.0
    times = np.linspace(0.0, T, 2001)
    alpha, Nc, Mc = _reference_trace(spec, times)
    A, b, D = reference_generator(spec)
    R0, S0 = start_of(spec)
    # stored power: dE_B/dt from the reference generator at a few times (d<R>/dt, d sigma/dt exactly)
    idx = [0, 500, 2000]
    Rs, Ss = reference_run(spec, R0, S0, times[idx])
    n = 3
    dR = Rs @ A.T + b
    dS = A @ Ss + Ss @ A.T + D
    dE = omega * (Rs[:, :n] * dR[:, :n] + Rs[:, n:] * dR[:, n:] + (np.diagonal(dS, axis1=1, axis2=2)[:, :n]
                                                                    + np.diagonal(dS, axis1=1, axis2=2)[:, n:]) / 2)
    assert _rel(cn.observables.stored_power(G, times[idx]), dE[:, bat].sum(axis=1)) < DENSE_REL
    # injected energy: every time-dependent term's work, -2 omega_L Im(conj E . alpha + sum conj G_ij <a_i a_j>)
    E = np.array([c["drive"] for c in spec["cells"]])
    aa = alpha[:, :, None] * alpha[:, None, :] + Mc
    P = -2 * spec["wL"] * ((np.conj(E) * alpha).sum(1) + (np.conj(gm.pairing) * aa).sum((1, 2))).imag
    assert abs(cn.observables.injected_energy(G, T) - simpson(P, x=times)) < QUADRATURE_REL * abs(simpson(P, x=times))
    # the coherent part alone differs by the pumps' work: not what the total returns
    coherent = simpson(-2 * spec["wL"] * (np.conj(E) * alpha).sum(1).imag, x=times)
    assert abs(simpson(P, x=times) - coherent) > 1e3 * QUADRATURE_REL * abs(simpson(P, x=times))
    # time to 90%: the battery energy of the reference at that time is 90% of the steady one
    ss = cn.steady_state(G)
    t90 = cn.observables.time_to_fraction(G)
    a90, N90, _ = _reference_trace(spec, np.array([0.0, t90]))
    e90 = (omega * (np.abs(a90[-1]) ** 2 + N90[-1].diagonal().real))[bat].sum()
    assert abs(e90 - 0.9 * ss.battery_energy) < 1e-9 * ss.battery_energy
    # steady injected power balances... the steady state's own formula, with the network given
    with pytest.raises(ChiralnetError, match="pass the network"):
        cn.observables.injected_power(ss)
    Pss = cn.observables.injected_power(ss, G)
    ass, Mss = ss.amplitudes, ss.state.dense_Mc()
    want = -2 * spec["wL"] * ((np.conj(E) * ass).sum() + (np.conj(gm.pairing) * (np.outer(ass, ass) + Mss)).sum()).imag
    assert abs(Pss - want) < 1e-12 * abs(want)
    res = cn.simulate(G, times[:5])
    with pytest.raises(ChiralnetError, match=r"the parametric link \('c0', 'c1'\)"):
        cn.observables.injected_power(res, G)


def test_one_pumped_mode_injects_what_it_loses():
    """Resonant pump P = 0.2, kappa = 1 (docs/theory/gaussian.md): in the steady state the pump's work
    kappa omega n = 2 P^2 kappa / (kappa^2 - 4 P^2) balances the loss; injected_energy's slope and
    injected_power agree with it."""
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.0, kappa=1.0, pump=0.2)
    want = 2 * 0.2**2 / (1 - 4 * 0.2**2)
    slope = (cn.observables.injected_energy(G, 300.0) - cn.observables.injected_energy(G, 200.0)) / 100.0
    assert abs(slope - want) < 1e-12 and abs(cn.observables.injected_power(cn.steady_state(G), G) - want) < 1e-12


def test_squeezed_start_on_a_phase_insensitive_network_with_a_pulse():
    """A squeezed state0 (State.Mc) on a network without anomalous terms, with a Gaussian pulse and a tone: the
    general path from that state, against the quadrature ODE (means) and the exact covariance."""
    spec = random_spec(np.random.default_rng(7), n=3)
    for c in spec["cells"]:
        c.update(pump=0, m_th=0)
    spec["links"] = [(i, j, J, 0) for i, j, J, _ in spec["links"]]
    spec["reservoirs"] = [(r, N, 0, p) for r, N, _, p in spec["reservoirs"]]
    shapes = [drives.gaussian(0.2, t0=3.0, width=0.7), drives.tone(0.1 - 0.05j, frequency=1.2)]
    G = graph_of(spec)
    for i, shape in enumerate(shapes):
        G.nodes[f"c{i}"]["drive"] = spec["cells"][i]["drive"] + shape
    R0, S0 = start_of(spec)  # the xi0 of the spec, given as a state (the graph has no xi0)
    for c in G.nodes:
        G.nodes[c].pop("xi0", None)
    from chiralnet.gaussian import quadrature_state

    state0 = quadrature_state(tuple(f"c{i}" for i in range(3)), R0, S0)
    assert state0.Mc is not None and not cn.build_model(G).__class__.__name__ == "GaussianModel"
    times = np.linspace(0.0, 8.0, 17)
    res = cn.simulate(G, times, state0=state0, rtol=RTOL, atol=ATOL)
    assert res.method == "exact-gaussian"
    A, b = forcing(spec)
    sol = solve_ivp(lambda t, R: A @ R + b(drive_values(spec, shapes, t)), (0.0, times[-1]), R0, method="DOP853",
                    t_eval=times, rtol=1e-12, atol=1e-14)
    assert _rel(res.amplitudes, (sol.y[:3].T + 1j * sol.y[3:].T) / np.sqrt(2)) < SHAPED_REL
    _, Ss = reference_run(spec, R0, S0, times)
    assert _rel(res.anomalous, sigma_to_moments(Ss)[1].diagonal(axis1=1, axis2=2)) < DENSE_REL
