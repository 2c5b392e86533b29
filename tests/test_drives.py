"""Time-dependent drives (chiralnet.drives): every shape against a tight solve_ivp reference,
tones against their closed form, shapes inside protocols, and bad input."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import chiralnet as cn
from chiralnet import drives
from conftest import EXACT_REL
from naive import rel_err

#: Tones, squares and constants are solved exactly: against a closed form.
TONE_ABS = 1e-13
#: Exact shapes against the solve_ivp reference (its own error at rtol 1e-12 dominates).
EXACT_VS_IVP_REL = 1e-10
#: Integrated shapes (Gaussian, callable) at the default rtol = 1e-8, against the reference.
DEFAULT_RTOL_REL = 1e-8
#: The same at rtol = 1e-11, atol = 1e-13.
TIGHT_REL = 1e-10
IVP = dict(method="DOP853", rtol=1e-13, atol=1e-15)


def two_cells(drive, n_th=0.0):
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.0, kappa=0.02, drive=drive, n_th=n_th)
    cn.add_cell(G, "b", omega=1.01, kappa=0.005, battery=True)
    cn.add_chiral_link(G, "a", "b", gamma=0.04)
    cn.add_cell(G, "c", omega=0.99, kappa=0.01)
    cn.add_coherent_link(G, "b", "c", J=0.01 + 0.002j)
    return G


def reference(G, drive_on_a, times, max_step=np.inf):
    M = cn.build_model(G).dense_M()
    f = lambda t, y: M @ y - 1j * np.array([drive_on_a(t), 0.0, 0.0])  # noqa: E731
    sol = solve_ivp(f, (0.0, times[-1]), np.zeros(3, complex), t_eval=times, max_step=max_step, **IVP)
    return sol.y.T


SHAPES = {
    "gaussian": (drives.gaussian(0.1, 150.0, 30.0), 3.0),
    "square": (drives.square(0.1 - 0.05j, 40.0, 260.5), 0.25),
    "tone": (drives.tone(0.1, 1.013), 3.0),
    "sum": (0.02 + drives.gaussian(0.05j, 100.0, 10.0) + drives.tone(0.03, 0.98) + drives.square(0.04, 10, 90), 0.25),
    "callable": (lambda t: 0.1 * np.sin(0.01 * t) ** 2, 3.0),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
@pytest.mark.parametrize("method", ["exact", "exact-sparse", "rk45"])
def test_every_shape_matches_solve_ivp(name, method):
    shape, max_step = SHAPES[name]
    G = two_cells(shape)
    times = np.linspace(0.0, 400.0, 201)
    d = drives.as_drive(shape)
    want = reference(G, lambda t: d(t), times, max_step)
    extra = {"rtol": 1e-11, "atol": 1e-13}
    res = cn.simulate(G, times, method=method, **extra)
    tol = EXACT_VS_IVP_REL if name in ("square", "tone") else TIGHT_REL
    assert rel_err(res.amplitudes, want) <= tol, name
    default = cn.simulate(G, times, method=method)
    assert rel_err(default.amplitudes, want) <= (DEFAULT_RTOL_REL if method != "rk45" else 1e-7)


def test_tones_exact_closed_form():
    """One mode m = -kappa/2 - i(omega - omega_L): with (M + i dw) x = i A, from rest
    alpha(t) = sum_k x_k (e^{-i dw_k t} - e^{m t}) (each tone a constant drive in its own frame)."""
    kappa, A1, A2, w1, w2 = 0.03, 0.2 - 0.1j, 0.05j, 1.02, 0.97
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.005, kappa=kappa, drive=drives.tone(A1, w1) + drives.tone(A2, w2))
    t = np.linspace(0, 2000, 1001)
    m = -kappa / 2 - 1j * 0.005
    want = sum(1j * A / (m + 1j * (w - 1.0)) * (np.exp(-1j * (w - 1.0) * t) - np.exp(m * t)) for A, w in ((A1, w1), (A2, w2)))
    for method in ("exact", "exact-sparse"):
        res = cn.simulate(G, t, method=method)
        assert np.abs(res.amplitudes[:, 0] - want).max() <= TONE_ABS


def test_resonant_tone_on_undamped_mode_grows_linearly():
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.2, drive=drives.tone(0.01, 1.2))  # on resonance with the cell, off omega_L
    t = np.linspace(0, 500, 11)
    res = cn.simulate(G, t)
    want = -1j * 0.01 * t * np.exp(-1j * 0.2 * t)
    assert np.abs(res.amplitudes[:, 0] - want).max() <= TONE_ABS * 100


def test_thermal_fluctuations_unchanged_by_drives():
    t = np.linspace(0, 300, 31)
    shaped = cn.simulate(two_cells(drives.gaussian(0.1, 100, 20), n_th=0.7), t)
    plain = cn.simulate(two_cells(0.0, n_th=0.7), t)
    np.testing.assert_allclose(shaped.fluctuations, plain.fluctuations, rtol=EXACT_REL)
    assert shaped.final_state.Nc is not None


def test_drive_sees_simulation_time_in_protocols_and_state0():
    pulse = drives.gaussian(0.1, 150.0, 30.0) + drives.tone(0.02, 1.01) + drives.square(0.05, 50, 120)
    G = two_cells(pulse)
    t = np.linspace(0, 300, 61)
    whole = cn.simulate(G, t, rtol=1e-11, atol=1e-13)
    p = cn.protocol([(G, 100.0), (G.copy(), 200.0)])
    split = cn.simulate(p, t, rtol=1e-11, atol=1e-13)
    assert rel_err(split.amplitudes, whole.amplitudes) <= TIGHT_REL
    first = cn.simulate(G, t[:21], rtol=1e-11, atol=1e-13)
    rest = cn.simulate(G, t[20:], state0=first.final_state, rtol=1e-11, atol=1e-13)
    assert rel_err(rest.amplitudes, whole.amplitudes[20:]) <= TIGHT_REL


def test_drives_add_and_evaluate():
    d = 0.1 + drives.gaussian(1.0, 0.0, 1.0) + drives.square(2.0, 0.0, 1.0) + drives.tone(1.0, 1.5)
    assert len(d.terms()) == 4
    assert abs(d(0.0, drive_frequency=1.0) - 4.1) < 1e-15
    assert abs(d(1.0, drive_frequency=1.5) - (0.1 + np.exp(-0.5) + 1.0)) < 1e-15  # square is open at stop
    assert sum([drives.gaussian(1.0, 0, 1), drives.gaussian(1.0, 0, 1)])(0.0) == 2.0


@pytest.mark.parametrize("make, match", [
    (lambda: drives.gaussian(0.1, float("nan"), 1.0), "gaussian drive: 't0'"),
    (lambda: drives.gaussian(0.1, 0.0, 0.0), "gaussian drive: 'width' must be > 0"),
    (lambda: drives.gaussian(complex("inf"), 0.0, 1.0), "gaussian drive: 'amplitude'"),
    (lambda: drives.square(0.1, 5.0, 1.0), "square drive: 'stop'"),
    (lambda: drives.square(0.1, 0.0, float("inf")), "square drive: 'stop' must be finite"),
    (lambda: drives.tone(0.1, float("nan")), "tone drive: 'frequency'"),
    (lambda: drives.tone("x", 1.0), "tone drive: 'amplitude'"),
    (lambda: drives.gaussian(0.1, 0, 1) + "x", "a drive must be"),
])
def test_bad_shape_parameters(make, match):
    with pytest.raises(cn.ChiralnetError, match=match):
        make()


def test_bad_callables_name_the_cell():
    t = np.linspace(0, 10, 3)

    def boom(t):
        raise RuntimeError("no")

    with pytest.raises(cn.ChiralnetError, match=r"drive of cell 'a'.*raised RuntimeError: no"):
        cn.simulate(two_cells(boom), t)
    with pytest.raises(cn.ChiralnetError, match=r"drive of cell 'a'.*returned 'x'"):
        cn.simulate(two_cells(lambda t: "x"), t)
    with pytest.raises(cn.ChiralnetError, match=r"drive of cell 'a'.*must be finite"):
        cn.simulate(two_cells(lambda t: float("nan")), t)
    G = cn.network()
    with pytest.raises(cn.NetworkError, match="cell 'a' attribute 'drive'"):
        cn.add_cell(G, "a", omega=1.0, drive="x")
