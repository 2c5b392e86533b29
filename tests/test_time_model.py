"""The one time model and the one adaptive integrator (docs/guide/state.md, docs/guide/protocols.md).

A State lives at state.time, times are absolute, drives are functions of absolute time, and every surface
that takes state0 follows that rule. Each case here was a plausible wrong number before (issue 18's fuzz
campaign); each is checked against an independent reference: quadrature of the variation-of-constants
integral, scipy.linalg.expm, or a numerical derivative / integral of simulate.
"""

import re

import numpy as np
import pytest
import scipy.linalg as la
from scipy.integrate import quad

import chiralnet as cn
from chiralnet import drives
from chiralnet.errors import SolverError
from chiralnet.solve import dopri5

#: The adaptive integration at its default rtol = 1e-8, against quadrature (relative to the peak).
PULSE_REL = 1e-7
#: Exact methods against each other and against expm.
EXACT_REL = 1e-11
#: Exact amplitudes on both sides of a frame change (phase arithmetic on times of order 100).
FRAME_ABS = 1e-12


def one_cell(drive, kappa=0.01, alpha0=0.0):
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.0, kappa=kappa, drive=drive, alpha0=alpha0)
    return G


def pulse_response(f, kappa, t, points=()):
    """alpha(t) of one resonant cell from vacuum, d alpha/dt = -kappa/2 alpha - i f(t), by quadrature."""
    re = quad(lambda s: (np.exp(-kappa / 2 * (t - s)) * f(s)).real, 0, t, points=points, limit=500, epsabs=1e-14)[0]
    im = quad(lambda s: (np.exp(-kappa / 2 * (t - s)) * f(s)).imag, 0, t, points=points, limit=500, epsabs=1e-14)[0]
    return -1j * (re + 1j * im)


@pytest.mark.parametrize("method", ["exact", "exact-sparse", "rk45"])
def test_a_pulse_after_a_quiet_start_is_not_stepped_over(method):
    # issue 18: a 1-wide Gaussian at t0 = 50 over [0, 100] gave 1e-64 instead of 0.0381
    shape = drives.gaussian(0.1, t0=50.0, width=1.0)
    res = cn.simulate(one_cell(shape), [0.0, 100.0], method=method)
    want = abs(pulse_response(shape, 0.01, 100.0, points=[50.0])) ** 2
    assert want == pytest.approx(0.0381, abs=1e-4)
    assert abs(res.energies[-1, 0] - want) <= PULSE_REL * want
    assert res.stats["drive_breakpoints"] == 3 and res.options["rtol"] == cn.config.RTOL


def test_a_callable_square_pulse_is_found_by_the_default_step_bound_and_by_breakpoints():
    f = lambda t: 0.1 if 50.0 <= t < 51.0 else 0.0  # noqa: E731
    want = abs(pulse_response(f, 0.01, 100.0, points=[50.0, 51.0])) ** 2
    plain = cn.simulate(one_cell(f), [0.0, 100.0])
    assert plain.stats["drive_h_max"] == cn.config.CALLABLE_MAX_STEP
    assert plain.stats["drive_h_max_source"] == "config.CALLABLE_MAX_STEP"
    assert abs(plain.energies[-1, 0] - want) <= 1e-6 * want
    declared = cn.simulate(one_cell(drives.function(f, breakpoints=[50.0, 51.0], max_step=10.0)), [0.0, 100.0])
    assert declared.stats["drive_h_max_source"] == "declared"
    assert abs(declared.energies[-1, 0] - want) <= PULSE_REL * want
    assert declared.stats["drive_steps"] < plain.stats["drive_steps"]


def test_a_too_small_declared_step_is_refused_before_any_work():
    calls = []

    def f(t):
        calls.append(t)
        return 0.0

    with pytest.raises(SolverError, match="max_steps"):
        cn.simulate(one_cell(drives.function(f, max_step=1e-9)), [0.0, 1e6])
    assert calls == []


def test_far_detuned_tone_is_bounded_by_its_particular_solution():
    # issue 18: a tone at a huge detuning with method="exact" gave energies of 4e68
    A, dw, kappa = 0.1, 1e17 - 1.0, 0.01
    G = one_cell(drives.tone(A, frequency=1e17), kappa=kappa)
    bound = (2 * A / np.hypot(dw, kappa / 2)) ** 2
    for method in ("exact", "exact-sparse"):
        res = cn.simulate(G, np.linspace(0, 100, 11), method=method)
        assert res.energies.max() <= bound * (1 + 1e-9)
        assert res.energies[-1, 0] > 0.1 * bound


def test_integrator_decay_to_tolerance_from_a_start_after_zero():
    M = np.array([[-1.0 + 0j]])
    status, out, y, stats = dopri5.integrate(dopri5.System(M, np.zeros(1, complex)), np.ones(1, complex), 2.0,
                                             np.array([3.0, 7.0]), rtol=1e-10, atol=1e-12, max_steps=10**5)
    assert status == dopri5.OK
    assert abs(out[:, 0] - np.exp(-np.array([1.0, 5.0]))).max() <= 1e-9
    assert y[0] == out[-1, 0]


def test_integrator_matches_expm_on_a_random_linear_system():
    rng = np.random.default_rng(3)
    n = 5
    M = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n)) - 4 * np.eye(n)
    b = rng.normal(size=n) + 1j * rng.normal(size=n)
    y0 = rng.normal(size=n) + 0j
    times = np.linspace(0.5, 2.0, 7)
    status, out, y, _ = dopri5.integrate(dopri5.System(M, b), y0, 0.5, times, rtol=1e-11, atol=1e-13,
                                         max_steps=10**6)
    ss = -np.linalg.solve(M, b)
    want = np.array([ss + la.expm(M * (t - 0.5)) @ (y0 - ss) for t in times])
    assert status == dopri5.OK
    assert abs(out - want).max() <= 1e-9 * abs(want).max()


def test_model_keeps_the_graph_start():
    G = one_cell(0.05, alpha0=0.3 - 0.2j)
    t = np.linspace(0, 50, 6)
    a, b = cn.simulate(G, t), cn.simulate(cn.build_model(G), t)
    assert np.array_equal(a.energies, b.energies)
    assert a.energies[0, 0] == pytest.approx(0.13)


@pytest.mark.parametrize("method", ["exact", "exact-sparse", "rk45"])
def test_state0_sits_at_its_time_and_times_are_absolute(method):
    shape = drives.gaussian(0.1, t0=30.0, width=5.0) + 0.02
    G = one_cell(shape)
    whole = cn.simulate(G, np.linspace(0, 60, 13), method=method, rtol=1e-11, atol=1e-13)
    first = cn.simulate(G, np.linspace(0, 20, 5), method=method, rtol=1e-11, atol=1e-13)
    rest = cn.simulate(G, np.linspace(20, 60, 9), state0=first.final_state, method=method, rtol=1e-11, atol=1e-13)
    assert first.final_state.time == 20.0
    assert abs(rest.energies - whole.energies[4:]).max() <= 1e-9 * whole.energies.max()
    # output times that skip the state's time start from it all the same
    later = cn.simulate(G, [40.0, 60.0], state0=first.final_state, method=method, rtol=1e-11, atol=1e-13)
    assert abs(later.energies - whole.energies[[8, 12]]).max() <= 1e-9 * whole.energies.max()
    with pytest.raises(SolverError, match=r"before state0.time = 20.0.*state0.at"):
        cn.simulate(G, [0.0, 10.0], state0=first.final_state)


def test_state_at_places_a_state():
    G = one_cell(0.05)
    ss = cn.steady_state(G)
    assert ss.state.time == 0.0
    res = cn.simulate(G, [100.0, 200.0], state0=ss.state.at(100.0))
    assert np.allclose(res.energies[:, 0], ss.energies[0], rtol=EXACT_REL)
    with pytest.raises(cn.ChiralnetError, match="finite"):
        ss.state.at(np.inf)


def test_one_phase_protocol_equals_the_network_for_the_same_arguments():
    shape = drives.gaussian(0.1, t0=30.0, width=5.0) + drives.square(0.03, 10.0, 25.0)
    G = one_cell(shape)
    s = cn.simulate(G, [0.0, 12.0]).final_state
    t = np.linspace(12.0, 60.0, 9)
    plain = cn.simulate(G, t, state0=s)
    proto = cn.simulate(cn.protocol([(G, 60.0)]), t, state0=s)
    assert abs(proto.energies - plain.energies).max() <= 1e-12 * plain.energies.max()
    assert isinstance(proto, cn.ProtocolResult) and not isinstance(plain, cn.ProtocolResult)
    assert plain.phase is None


def test_protocol_from_a_state_inside_a_later_phase():
    charge = one_cell(0.05)
    store = one_cell(0.0)
    p = cn.protocol([(charge, 100.0), (store, 100.0)])
    whole = cn.simulate(p, np.linspace(0, 200, 21))
    s = cn.simulate(p, [150.0]).final_state
    rest = cn.simulate(p, np.linspace(150, 200, 6), state0=s)
    assert abs(rest.energies - whole.energies[15:]).max() <= 1e-12 * whole.energies.max()
    assert rest.phase.tolist() == [1] * 6
    assert np.isnan(rest.phase_energies[0]).all() and rest.phase_states[0] is None


def test_phases_with_different_drive_frequencies_keep_the_lab_amplitude_and_their_omega_L():
    a = cn.network(drive_frequency=1.0)
    cn.add_cell(a, "a", omega=1.0, kappa=0.05, drive=0.1)
    b = cn.network(drive_frequency=1.03)
    cn.add_cell(b, "a", omega=1.0, kappa=0.05, drive=0.1)
    res = cn.simulate(cn.protocol([(a, 40.0), (b, 60.0)]), np.linspace(0, 100, 11))
    # reference: alpha in phase b obeys the lab-frame equation with the drive 0.1 e^{-i 1.03 t}
    first = cn.simulate(a, np.linspace(0, 40, 5))
    lab = first.final_state.alpha[0] * np.exp(-1j * 1.0 * 40.0)
    rot = lab * np.exp(1j * 1.03 * 40.0)
    m = -1j * (1.0 - 1.03) - 0.025
    tt = np.linspace(40, 100, 7) - 40
    want = -1j * 0.1 / m * (np.exp(m * tt) - 1) + rot * np.exp(m * tt)
    # t = 40 belongs to phase 0 (its amplitude in phase 0's frame); after it, phase 1's frame
    assert abs(res.amplitudes[4, 0] - first.final_state.alpha[0]) <= FRAME_ABS
    assert abs(res.amplitudes[5:, 0] - want[1:]).max() <= FRAME_ABS * 10
    assert res.drive_frequency.tolist() == [1.0] * 5 + [1.03] * 6
    # injected power uses each phase's omega_L
    p = cn.injected_power(res)
    want_p = -2 * res.drive_frequency * (np.conj(res.drive[:, 0]) * res.amplitudes[:, 0]).imag
    assert np.allclose(p, want_p, rtol=1e-14)
    assert p[-1] == pytest.approx(cn.injected_power(cn.simulate(b, [100.0], state0=res.phase_states[0]))[-1],
                                  rel=1e-10)


def test_protocol_battery_follows_the_phase():
    a = cn.network()
    cn.add_cell(a, "x", omega=1.0, kappa=0.01, drive=0.05, battery=True)
    cn.add_cell(a, "y", omega=1.0, kappa=0.01, alpha0=0.5)
    b = a.copy()
    b.nodes["x"]["battery"] = False
    b.nodes["y"]["battery"] = True
    res = cn.simulate(cn.protocol([(a, 10.0), (b, 10.0)]), np.linspace(0, 20, 5))
    want = np.where(res.phase == 0, res.energies[:, 0], res.energies[:, 1])
    assert np.array_equal(res.battery_energy, want)
    assert res.phase_batteries.tolist() == [[True, False], [False, True]]


def test_state_frame_converts_between_networks():
    a = cn.network(drive_frequency=1.0)
    cn.add_cell(a, "a", omega=1.0, kappa=0.05, drive=0.1)
    b = cn.network(drive_frequency=1.03)
    cn.add_cell(b, "a", omega=1.0, kappa=0.05, drive=0.1)
    s = cn.simulate(a, [0.0, 40.0]).final_state
    assert s.frame == 1.0
    direct = cn.simulate(b, [40.0, 100.0], state0=s)
    proto = cn.simulate(cn.protocol([(a, 40.0), (b, 60.0)]), [40.0, 100.0])
    assert abs(direct.amplitudes[1:] - proto.amplitudes[1:]).max() <= FRAME_ABS
    turn = np.exp(1j * (1.03 - 1.0) * 40.0)  # t = 40 ends phase 0: its amplitude is in phase 0's frame
    assert abs(direct.amplitudes[0] - proto.amplitudes[0] * turn).max() <= FRAME_ABS


@pytest.mark.parametrize("bad", [[[0], [1, 2]], [10**400], "abc", [0.0, np.nan], [[0.0, 1.0]]])
def test_bad_times_are_chiralnet_errors(bad):
    with pytest.raises(cn.ChiralnetError):
        cn.simulate(cn.two_cell(), bad)


def test_integrator_does_not_grow_the_step_right_after_a_rejection():
    # attempts are read back from the stage times of a Python drive: stages s = 1 and 6 sit at t + h/5, t + h
    calls = []

    def f(t):
        calls.append(t)
        return 0.1 * np.tanh((t - 50.0) / 0.05)

    M = np.array([[-0.01 + 0j]])
    status, *_ = dopri5.integrate(dopri5.System(M, np.zeros(1, complex)), np.zeros(1, complex), 0.0,
                                  np.array([100.0]), cells=np.array([0]), functions=[f], h_max=1e3,
                                  rtol=1e-8, atol=1e-10, max_steps=10**5)
    assert status == dopri5.OK
    stages = np.array(calls[1:]).reshape(-1, 6)
    h = (stages[:, 5] - stages[:, 0]) / 0.8
    t = stages[:, 0] - h / 5
    accepted = np.r_[~np.isclose(t[1:], t[:-1], rtol=0, atol=1e-12), True]
    after_rejection = np.flatnonzero(accepted[1:-1] & ~accepted[:-2]) + 1  # accepted right after a rejection
    assert after_rejection.size >= 3  # the tanh edge does force rejections
    assert (h[after_rejection + 1] <= h[after_rejection] * (1 + 1e-12)).all()


def test_a_callable_faster_than_the_tolerance_stops_early_naming_the_cell():
    calls = []

    def flip(t):
        calls.append(t)
        return 0.1 if int(t * 1e6) % 2 else -0.1

    G = one_cell(flip)
    with pytest.raises(SolverError, match=r"drive of cell 'a' stopped at t = .*would take far more than max_steps"):
        cn.simulate(G, [0.0, 1e3])
    # stopped at the first pace check (1000 accepted steps and their rejected attempts, 6 evaluations each),
    # not after max_steps = 200,000 steps (over 10^6 evaluations)
    assert len(calls) <= 6 * 4 * dopri5.PACE_EVERY


def test_stored_power_from_a_state_is_the_derivative_of_simulate():
    # issue 18: stored_power(G, times, state0=s) with times[0] != 0 was 0.0778 where dE/dt was 0.3435
    G = cn.two_cell()
    s = cn.simulate(G, [0.0, 40.0]).final_state
    times = np.array([60.0, 120.0, 300.0])
    p = cn.stored_power(G, times, state0=s)
    h = 1e-3
    e = lambda t: cn.simulate(G, [40.0, *t], state0=s).battery_energy[1:]  # noqa: E731
    fd = (-e(times + 2 * h) + 8 * e(times + h) - 8 * e(times - h) + e(times - 2 * h)) / (12 * h)
    np.testing.assert_allclose(p, fd, rtol=1e-8)
    # and the integral: average_power over [s.time, t] times the span is the energy gained
    avg = cn.average_power(G, times, state0=s)
    gained = cn.simulate(G, [40.0, *times], state0=s).battery_energy
    np.testing.assert_allclose(avg * (times - 40.0), gained[1:] - gained[0], rtol=1e-10)


def test_short_grids_take_one_kernel_with_the_numpy_routes_bits():
    """distinct_steps of a short float64 grid runs in one kernel (its uniform case, NumPy's pairwise mean
    reproduced): the same steps and kinds, bit for bit, as the NumPy route on random grids."""
    from chiralnet.solve.base import _distinct_steps_numpy, distinct_steps

    rng = np.random.default_rng(21)
    for trial in range(3000):
        n = int(rng.integers(2, 300)) if trial % 4 else int(rng.integers(2, 4097))
        case = trial % 6
        if case == 0:
            t = np.linspace(0, rng.uniform(1e-3, 1e6), n)
        elif case == 1:
            t = np.linspace(rng.uniform(0, 1e3), rng.uniform(2e3, 1e5), n)
        elif case == 2:
            t = np.arange(n) * rng.uniform(1e-6, 10)
        elif case == 3:
            t = np.unique(rng.uniform(0, 1e4, n))
        elif case == 4:  # a uniform grid with one time a few ulp off
            t = np.linspace(0, 100, n)
            t[int(rng.integers(0, n))] *= 1 + 1e-15 * int(rng.integers(-20, 20))
        else:  # a first step of its own, then uniform
            t = np.r_[rng.uniform(0, 5), rng.uniform(5, 10) + np.linspace(0, rng.uniform(1, 1e3), n - 1)]
        if t.size < 2 or not (np.diff(t) > 0).all():
            continue
        (a, ka), (b, kb) = distinct_steps(t), _distinct_steps_numpy(t)
        assert a.dtype == b.dtype and ka.dtype == kb.dtype
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ka, kb)


@pytest.mark.parametrize("times,fragment", [
    ([0.0, np.nan, 2.0], "times[1]"), ([0.0, 1.0, np.inf], "times[2]"), ([-1.0, 1.0], "negative"),
    ([0.0, 2.0, 1.0], "increase"), ([0.0, 1.0, 1.0], "increase"),
])
def test_float64_times_are_checked_as_lists_are(times, fragment):
    """check_times of a float64 array takes one kernel call; a failure is worded by the general checks."""
    G = cn.two_cell()
    with pytest.raises(SolverError, match=re.escape(fragment)):
        cn.simulate(G, np.array(times))
    good = np.linspace(0.0, 10.0, 5)
    assert cn.simulate(G, good).times is good  # as np.asarray(times, float) returns it
