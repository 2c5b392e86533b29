"""Exact (adjoint) gradients of steady-state quantities: closed forms, an independent naive solve, bad input."""

import numpy as np
import pytest
import scipy.linalg as la

import chiralnet as cn
from chiralnet.design.adjoint import GRADIENT_QUANTITIES
from chiralnet.observables import evaluate

#: Gradient of an affine (registered) builder against a closed form's derivative, relative.
CLOSED_FORM_RTOL = 1e-10
#: Gradient of a callable base (model arrays differenced with Richardson extrapolation) against a closed form.
CALLABLE_RTOL = 1e-8
#: Adjoint gradient against central differences of an independent solve (step error O(h^2) ~ 1e-9).
FD_RTOL = 1e-6
FD_STEP = 1e-6


# ---------------------------------------------------------------------------------------------
# Bases (callables returning networks) and the naive, independent solve.


def pair(gamma_a=0.04, gamma_b=0.04, kappa_a=0.003, kappa_b=0.003, drive=0.1):
    """A one-way pair with per-cell reservoir rates Gamma_a = xi gamma, Gamma_b = gamma / xi."""
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.0, kappa=kappa_a, drive=drive)
    cn.add_cell(G, "b", omega=1.0, kappa=kappa_b, battery=True)
    cn.add_chiral_link(G, "a", "b", gamma=np.sqrt(gamma_a * gamma_b), xi=np.sqrt(gamma_a / gamma_b))
    return G


def closed_form(ga, gb, ka, kb, E, omega=1.0):
    """E_B = 16 omega Ga Gb E^2 / ((Ga + ka)^2 (Gb + kb)^2) and its derivatives (d/dGa, d/dGb, d/dka, d/dkb, d/dE)."""
    f = 16 * omega * ga * gb * E**2 / ((ga + ka) ** 2 * (gb + kb) ** 2)
    return f, np.array([f * (1 / ga - 2 / (ga + ka)), f * (1 / gb - 2 / (gb + kb)), -2 * f / (ga + ka),
                        -2 * f / (gb + kb), 2 * f / E])


WAVEGUIDE = dict(omega=[1.0, 1.01, 0.99, 1.02], kappa=[0.004, 0.002, 0.003, 0.005], n=[0.4, 0.1, 0.0, 0.7],
                 drive=[0.1, 0.0, 0.03, 0.0], p=[1.0, -0.8 + 0.3j, 0.6j, 0.9])


def hot_network(g_wave=0.03, g_link=0.02, kappa0=0.004, n_wave=0.5, omega3=1.02, drive0=0.1):
    """Four hot cells: a waveguide reservoir shared by all four, a two-cell reservoir, a coherent link."""
    w = dict(WAVEGUIDE)
    G = cn.network(drive_frequency=1.0)
    kappa = [kappa0] + w["kappa"][1:]
    omega = w["omega"][:3] + [omega3]
    drive = [drive0] + w["drive"][1:]
    for i in range(4):
        cn.add_cell(G, i, omega=omega[i], kappa=kappa[i], n_th=w["n"][i], drive=drive[i], battery=i >= 2)
    cn.add_reservoir(G, dict(zip(range(4), w["p"])), gamma=g_wave, n_th=n_wave)
    cn.add_reservoir(G, {1: 1.0, 3: -1.0}, gamma=g_link, n_th=0.2)
    cn.add_coherent_link(G, 0, 2, 0.01 - 0.004j)
    return G


def naive_energy(g_wave=0.03, g_link=0.02, kappa0=0.004, n_wave=0.5, omega3=1.02, drive0=0.1,
                 which="battery_energy"):
    """The same network solved from the moment equations of docs/theory/model.md with dense NumPy / SciPy
    (no chiralnet)."""
    w = WAVEGUIDE
    omega = np.array(w["omega"][:3] + [omega3])
    kappa = np.array([kappa0] + w["kappa"][1:])
    n = np.array(w["n"])
    E = np.array([drive0] + w["drive"][1:], complex)
    res = [(g_wave, n_wave, np.array(w["p"], complex)), (g_link, 0.2, np.array([0, 1.0, 0, -1.0], complex))]
    H = np.diag(omega - 1.0).astype(complex)
    H[0, 2], H[2, 0] = 0.01 - 0.004j, 0.01 + 0.004j
    D = np.diag(kappa).astype(complex)
    Q = np.diag(kappa * n).astype(complex)
    for g, nr, p in res:
        D += g * np.outer(p.conj(), p)
        Q += g * nr * np.outer(p, p.conj())
    M = -1j * H - D / 2
    alpha = np.linalg.solve(M, 1j * E)
    X = la.solve_continuous_lyapunov(M.conj(), -Q)
    occ = np.abs(alpha) ** 2 + X.diagonal().real
    bat = np.array([False, False, True, True])
    if which == "total_energy":
        return float((omega * occ).sum())
    if which == "battery_ergotropy":
        return float((omega * np.abs(alpha) ** 2)[bat].sum())
    if which == "battery_ergotropy_collective":
        lam = np.linalg.eigvalsh(X[np.ix_(bat, bat)])[::-1]
        return float((omega * occ)[bat].sum() - (lam * np.sort(omega[bat])).sum())
    return float((omega * occ)[bat].sum())


def central(f, point, key, idx=None, h=FD_STEP):
    def at(s):
        p = {k: (np.array(v, float) if np.ndim(v) else v) for k, v in point.items()}
        if idx is None:
            p[key] = p[key] + s
        else:
            p[key][idx] += s
        return f(**p)
    return (at(h) - at(-h)) / (2 * h)


# ---------------------------------------------------------------------------------------------
# Closed forms.


@pytest.mark.parametrize("kappa_a, kappa_b", [(0.003, 0.003), (0.1, 0.003)])
def test_two_cell_gradient_equals_closed_form(kappa_a, kappa_b):
    """two_cell (xi = 1, Gamma_a = Gamma_b = gamma): exact affine derivatives."""
    gamma, E = 0.02, 0.1
    g = cn.gradient("two_cell", {"gamma": gamma, "kappa_a": kappa_a, "kappa_b": kappa_b, "drive": E})
    f, d = closed_form(gamma, gamma, kappa_a, kappa_b, E)
    want = {"gamma": d[0] + d[1], "kappa_a": d[2], "kappa_b": d[3], "drive": d[4]}
    for k, v in want.items():
        assert g[k] == pytest.approx(v, rel=CLOSED_FORM_RTOL), k


def test_impedance_matching_gradient_of_callable_pair():
    """Per-cell rates Gamma_a, Gamma_b of a one-way pair: the closed form's derivative, and zero at the match."""
    point = {"gamma_a": 0.01, "gamma_b": 0.05, "kappa_a": 0.004, "kappa_b": 0.002, "drive": 0.1}
    g = cn.gradient(pair, point)
    _, d = closed_form(*point.values())
    for k, v in zip(point, d):
        assert g[k] == pytest.approx(v, rel=CALLABLE_RTOL), k
    at_match = cn.gradient(pair, {"gamma_a": 0.004, "gamma_b": 0.002}, params={"kappa_a": 0.004, "kappa_b": 0.002})
    f, _ = closed_form(0.004, 0.002, 0.004, 0.002, 0.1)
    assert f == pytest.approx(1.0 * 0.1**2 / (0.004 * 0.002), rel=1e-14)   # E_B = omega E^2 / (kappa_a kappa_b)
    assert abs(at_match["gamma_a"]) < CALLABLE_RTOL * f / 0.004 and abs(at_match["gamma_b"]) < CALLABLE_RTOL * f / 0.002


def test_chain_per_link_gradient_matches_recursion():
    """Cold chain, per-link gamma: against central differences of the closed recursion alpha_n = 2 g / L_n alpha_{n-1}."""
    gam = np.array([0.04, 0.05, 0.03, 0.06, 0.02])

    def energy(gamma, kappa=0.003, E=0.1):
        n = gamma.size + 1
        lam = kappa + np.r_[gamma, 0.0] + np.r_[0.0, gamma]
        a = np.empty(n, complex)
        a[0] = -2j * E / lam[0]
        for i in range(1, n):
            a[i] = 2 * gamma[i - 1] / lam[i] * a[i - 1]
        return float((np.abs(a[1:]) ** 2).sum())

    g = cn.gradient("chain", {"gamma": gam}, params={"n_cells": 6})["gamma"]
    num = np.array([central(lambda gamma: energy(gamma), {"gamma": gam}, "gamma", i) for i in range(5)])
    np.testing.assert_allclose(g, num, rtol=FD_RTOL)


# ---------------------------------------------------------------------------------------------
# Hot networks: shared multi-cell reservoirs, adjoint Lyapunov, against the naive solve.


@pytest.mark.parametrize("quantity", ["battery_energy", "total_energy", "battery_ergotropy",
                                      "battery_ergotropy_collective"])
def test_hot_shared_reservoirs_against_naive_solve(quantity):
    point = {"g_wave": 0.03, "g_link": 0.02, "kappa0": 0.004, "n_wave": 0.5, "omega3": 1.02, "drive0": 0.1}
    value = evaluate([quantity], hot_network(**point))[quantity]
    assert value == pytest.approx(naive_energy(**point, which=quantity), rel=1e-10)
    g = cn.gradient(hot_network, point, quantity)
    for k in point:
        num = central(lambda **p: naive_energy(**p, which=quantity), point, k)
        assert g[k] == pytest.approx(num, rel=FD_RTOL, abs=FD_RTOL * abs(value) / point[k]), k


@pytest.mark.parametrize("builder, params", [("chain", {"n_cells": 5}), ("ring", {"n_cells": 4}),
                                             ("lattice", {"rows": 2, "cols": 2})])
def test_hot_builders_against_build_model_differences(builder, params):
    """Affine route, hot baths: cascaded (triangular Lyapunov) and not (ring: Bartels-Stewart, LU)."""
    rng = np.random.default_rng(3)
    info = cn.builders.BUILDERS[builder]
    L = info.length("gamma", **params)
    n = info.length("kappa", **params)
    point = {"gamma": rng.uniform(0.02, 0.05, L), "kappa": rng.uniform(0.002, 0.006, n), "n_th": 0.3,
             "drive": 0.1, "omega": 1.0}
    fixed = {**params, "drive_frequency": 1.001}

    def f(**p):
        return evaluate(["battery_energy"], info.function(**fixed, **p))["battery_energy"]

    g = cn.gradient(builder, point, params=fixed)
    for k, v in point.items():
        num = (np.array([central(f, point, k, i) for i in range(np.size(v))]) if np.ndim(v)
               else central(f, point, k))
        np.testing.assert_allclose(g[k], num, rtol=FD_RTOL, atol=FD_RTOL * np.abs(num).max(), err_msg=k)


@pytest.mark.parametrize("quantity", ["ratio_nonreciprocal", "ratio_reciprocal"])
def test_ratio_gradients(quantity):
    """Ratios to the two-cell reference: the reference's own rates differentiated exactly (chain, per-link)."""
    point = {"gamma": np.array([0.04, 0.05, 0.03]), "kappa": np.array([0.004, 0.003, 0.002, 0.005]), "drive": 0.1}

    def f(**p):
        return evaluate([quantity], cn.chain(4, **p))[quantity]

    g = cn.gradient("chain", point, quantity, params={"n_cells": 4})
    for k, v in point.items():
        num = (np.array([central(f, point, k, i) for i in range(np.size(v))]) if np.ndim(v)
               else central(f, point, k))
        scale = max(np.abs(num).max(), abs(f(**point)) / np.abs(v).min())   # the ratio is flat in the drive
        np.testing.assert_allclose(g[k], num, rtol=FD_RTOL, atol=FD_RTOL * scale, err_msg=k)
    # callable base: the reference rates differenced with the model
    gp = cn.gradient(pair, {"gamma_a": 0.01, "gamma_b": 0.03}, quantity)
    fp = lambda **p: evaluate([quantity], pair(**p))[quantity]  # noqa: E731
    for k in ("gamma_a", "gamma_b"):
        assert gp[k] == pytest.approx(central(fp, {"gamma_a": 0.01, "gamma_b": 0.03}, k), rel=FD_RTOL, abs=1e-9), k


def test_large_chain_gradient_is_exact_against_a_directional_difference():
    """10^3 cells, 999 link rates: the adjoint gradient dotted with a direction equals the directional difference."""
    n = 1000
    rng = np.random.default_rng(0)
    gam = rng.uniform(0.03, 0.05, n - 1)
    g = cn.gradient("chain", {"gamma": gam}, params={"n_cells": n})["gamma"]
    d = rng.standard_normal(n - 1)
    f = lambda s: cn.steady_state(cn.arrays.chain_model(n, gamma=gam + s * d)).battery_energy  # noqa: E731
    h = 1e-7
    assert g @ d == pytest.approx((f(h) - f(-h)) / (2 * h), rel=FD_RTOL)


# ---------------------------------------------------------------------------------------------
# Bad input.


def test_bad_input():
    with pytest.raises(cn.ChiralnetError, match="no parameter 'gama'"):
        cn.gradient("two_cell", {"gama": 0.04})
    with pytest.raises(cn.ChiralnetError, match="time_to_90.*no exact gradient"):
        cn.gradient("two_cell", {"gamma": 0.04}, "time_to_90")
    with pytest.raises(cn.ChiralnetError, match="cell_energy.*not a scalar"):
        cn.gradient("two_cell", {"gamma": 0.04}, "cell_energy")
    with pytest.raises(cn.ChiralnetError, match="unknown quantity 'energy'"):
        cn.gradient("two_cell", {"gamma": 0.04}, "energy")
    with pytest.raises(cn.ChiralnetError, match="structural"):
        cn.gradient("chain", {"n_cells": 4})
    with pytest.raises(cn.ChiralnetError, match="not finite"):
        cn.gradient("two_cell", {"gamma": float("nan")})
    with pytest.raises(cn.ChiralnetError, match="both"):
        cn.gradient("two_cell", {"gamma": 0.04}, params={"gamma": 0.04})
    with pytest.raises(cn.NoSteadyStateError):
        cn.gradient("two_cell", {"kappa_a": 0.0}, params={"kappa_b": 0.0, "nonreciprocal": False, "gamma": 0.0})
    assert set(GRADIENT_QUANTITIES) <= set(cn.observables.QUANTITIES)


# ---------------------------------------------------------------------------------------------
# Issue 18: a time-dependent drive gave a zero gradient; preflight; introspection errors.


def shaped_pair(gamma=0.04, shape="gaussian"):
    """The pair with a time-dependent drive on the charger (its constant part is zero)."""
    drive = {"gaussian": cn.drives.gaussian(0.1, 100.0, 20.0), "tone": cn.drives.tone(0.1, 1.01),
             "square": cn.drives.square(0.1, 0.0, 50.0), "callable": lambda t: 0.1 * np.exp(-t / 50.0)}[shape]
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.0, kappa=0.003, drive=drive)
    cn.add_cell(G, "b", omega=1.0, kappa=0.003, battery=True)
    cn.add_chiral_link(G, "a", "b", gamma=gamma)
    return G


@pytest.mark.parametrize("shape", ["gaussian", "tone", "square", "callable"])
def test_a_time_dependent_drive_is_refused_naming_the_cell(shape):
    def base(gamma=0.04):
        return shaped_pair(gamma, shape)

    with pytest.raises(cn.ChiralnetError, match="cell 'a' of the base's network has a time-dependent drive"):
        cn.gradient(base, {"gamma": 0.04})            # it returned {'gamma': 0.0}
    with pytest.raises(cn.ChiralnetError, match="time-dependent drive"):
        cn.optimize(base, {"gamma": (0.01, 0.1)})     # it reported success at the start


def test_a_time_dependent_drive_parameter_of_a_builder_is_refused():
    with pytest.raises(cn.ChiralnetError, match="parameter 'drive' is a time-dependent drive"):
        cn.gradient("two_cell", {"gamma": 0.04}, params={"drive": cn.drives.gaussian(0.1, 100.0, 20.0)})
    with pytest.raises(cn.ChiralnetError, match="parameter 'drive' is a time-dependent drive"):
        cn.optimize("two_cell", {"gamma": (0.01, 0.1)}, params={"drive": cn.drives.gaussian(0.1, 100.0, 20.0)})


def test_callable_gradient_with_a_constant_drive_against_central_differences():
    """The control of the refusal above: the same base with a constant drive differentiates correctly."""
    def base(gamma=0.04, drive=0.1):
        G = shaped_pair(gamma)
        G.nodes["a"]["drive"] = drive
        return G

    point = {"gamma": 0.03, "drive": 0.1}
    g = cn.gradient(base, point)
    for k, x in point.items():
        h = FD_STEP * x
        f = [cn.steady_state(base(**{**point, k: x + s * h})).battery_energy for s in (1.0, -1.0)]
        fd = (f[0] - f[1]) / (2 * h)
        assert abs(g[k] - fd) <= FD_RTOL * abs(fd), (k, g[k], fd)


def test_a_huge_chain_is_refused_before_it_is_built(monkeypatch):
    from chiralnet.design import adjoint

    def no_build(*args, **kwargs):
        raise AssertionError("the model was built before the refusal")

    monkeypatch.setattr(adjoint, "affine_model", no_build)
    with pytest.raises(cn.MemoryLimitError, match=r"gradient of chain with 1e\+12 cells.*at most about \d+ cells"):
        cn.gradient("chain", {"gamma": 0.04}, params={"n_cells": 10**12})
    with pytest.raises(cn.MemoryLimitError, match=r"fluctuation matrices.*at most about \d+ cells .*with hot baths"):
        cn.gradient("chain", {"gamma": 0.04}, params={"n_cells": 10**6, "n_th": 0.1})


def test_the_largest_size_the_preflight_names_fits(monkeypatch):
    import re

    from chiralnet import config

    monkeypatch.setattr(config, "MEMORY_LIMIT_GB", 1e-3)     # 1 MB
    with pytest.raises(cn.MemoryLimitError) as err:
        cn.gradient("chain", {"gamma": 0.04}, params={"n_cells": 10**5})
    largest = int(re.search(r"at most about (\d+) cells", str(err.value)).group(1))
    assert 2 < largest < 10**5
    g = cn.gradient("chain", {"gamma": 0.04}, params={"n_cells": largest})         # fits: runs
    assert np.isfinite(g["gamma"])
    with pytest.raises(cn.MemoryLimitError):
        cn.gradient("chain", {"gamma": 0.04}, params={"n_cells": largest + 2})


def test_builder_introspection_raises_chiralnet_errors_not_sweep_errors():
    from chiralnet.errors import SweepError
    from chiralnet.sweeps.spec import resolve_builder

    def loose(gamma=0.04, **options):
        return cn.two_cell(gamma=gamma)

    for call, text in ((lambda: cn.gradient(loose, {"gamma": 0.04}), "takes \\*\\*kwargs"),
                       (lambda: cn.gradient(3, {"gamma": 0.04}), "base must be a builder name"),
                       (lambda: cn.gradient("nope", {"gamma": 0.04}), "unknown builder 'nope'"),
                       (lambda: cn.optimize("nope", {"gamma": (0.01, 0.1)}), "unknown builder 'nope'")):
        with pytest.raises(cn.ChiralnetError, match=text) as err:
            call()
        assert not isinstance(err.value, SweepError)
    with pytest.raises(SweepError, match="unknown builder"):   # a sweep still reports its own error class
        resolve_builder("nope")


def test_gradient_inputs_numpy_would_reject_are_chiralnet_errors():
    for point, params in (({"gamma": 10**400}, None), ({"gamma": [0.04, [0.04]]}, {"n_cells": 3}),
                          ({"gamma": True}, None), ({"gamma": "0.04"}, None), ({"gamma": 0.04}, ["n_cells"]),
                          ({"gamma": 0.04}, {"kappa_a": [0.1, [0.2]]})):
        with pytest.raises(cn.ChiralnetError):
            cn.gradient("chain" if params and "n_cells" in params else "two_cell", point, params=params)
    for quantity in (["battery_energy"], 3, None):
        with pytest.raises(cn.ChiralnetError, match="quantity must be a name"):
            cn.gradient("two_cell", {"gamma": 0.04}, quantity)
