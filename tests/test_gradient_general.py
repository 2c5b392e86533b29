"""Exact (adjoint) gradients and optimisation of general Gaussian networks (issue 19): pumps, squeezed baths,
squeezed link reservoirs and shared reservoirs, parametric links.

The reference is an independent route: central differences of the steady-state value of networks rebuilt at
shifted parameters (builder -> graph -> cn.steady_state -> cn.observables.evaluate), never the adjoint's own
quadrature arrays. A complex parameter is stepped along its real and its imaginary part.
"""

import numpy as np
import pytest

import chiralnet as cn
from chiralnet.design.adjoint import GRADIENT_QUANTITIES
from chiralnet.observables import evaluate

#: Adjoint gradient against central differences (step FD_STEP times the parameter's size, Richardson
#: extrapolated: error ~1e-10), relative to the largest entry of the gradient of that quantity.
FD_RTOL = 1e-7
FD_STEP = 1e-4
#: Values against closed forms (docs/theory/gaussian.md, its table of checked values).
CLOSED_RTOL = 1e-10
GENERAL = ("pump", "m_th", "m_th_link", "parametric")


def _shift(point, key, i, h):
    p = dict(point)
    v = np.array(point[key], dtype=complex if np.iscomplexobj(point[key]) or np.iscomplexobj(h) else float, copy=True)
    if v.ndim:
        v[i] += h
    else:
        v = v + h
    p[key] = v if v.ndim else v.item()
    return p


def numeric_gradient(f, point):
    """name -> central differences of f (Richardson, steps h and h/2): d/dx + i d/dy for the general parameters,
    d/d(real part) for the others (the convention of cn.gradient)."""
    out = {}
    for key, value in point.items():
        entries = []
        for i in range(np.size(value)):
            parts = []
            for direction in ((1.0, 1j) if key in GENERAL else (1.0,)):
                h = FD_STEP * max(np.abs(value).max(), 0.01) * direction

                def diff(s):
                    return (f(**_shift(point, key, i, s * h)) - f(**_shift(point, key, i, -s * h))) / (2 * s * abs(h))

                parts.append((4 * diff(0.5) - diff(1.0)) / 3)
            entries.append(parts[0] + 1j * parts[1] if len(parts) == 2 else parts[0])
        out[key] = np.array(entries) if np.ndim(value) else entries[0]
    return out


def assert_gradients_match(g, num, label):
    scale = max(np.abs(v).max() for v in num.values())
    for key in num:
        np.testing.assert_allclose(g[key], num[key], rtol=0, atol=FD_RTOL * scale, err_msg=f"{label}: {key}")


def random_point(rng, builder, params):
    """A stable general point: every general term and the old rates as per-cell / per-link arrays."""
    info = cn.builders.BUILDERS[builder]
    n, L = info.length("kappa", **params), info.length("gamma", **params)
    c = lambda size, scale: scale * (rng.uniform(-1, 1, size) + 1j * rng.uniform(-1, 1, size))  # noqa: E731
    return {"pump": c(n, 0.03), "m_th": c(n, 0.1), "m_th_link": c(L, 0.1), "parametric": c(L, 0.02),
            "kappa": rng.uniform(0.2, 0.4, n), "gamma": rng.uniform(0.05, 0.15, L), "omega": rng.uniform(0.98, 1.02, n),
            "drive": c(n, 0.1).real, "n_th_link": rng.uniform(0.3, 0.5, L)}


CASES = [("chain", {"n_cells": 4}), ("ring", {"n_cells": 3}), ("star", {"n_leaves": 2}),
         ("lattice", {"rows": 2, "cols": 2})]


@pytest.mark.parametrize("builder,params", CASES)
def test_builder_gradients_equal_central_differences_of_the_steady_state(builder, params):
    """Every parameter (general ones in both parts, old ones too) of random general networks, every quantity."""
    rng = np.random.default_rng(sum(map(ord, builder)))
    point = random_point(rng, builder, params)
    fixed = {**params, "n_th": np.full(cn.builders.BUILDERS[builder].length("kappa", **params), 0.3),
             "drive_frequency": 1.003}
    quantities = ["battery_energy", "total_energy", "battery_ergotropy", "battery_ergotropy_collective"]
    if builder == "chain":
        quantities += ["ratio_nonreciprocal", "ratio_reciprocal"]
    for q in quantities:
        f = lambda **p: evaluate([q], cn.builders.BUILDERS[builder].function(**fixed, **p))[q]  # noqa: E731
        g = cn.gradient(builder, point, q, params=fixed)
        for key in GENERAL:
            assert np.iscomplexobj(g[key]) and np.shape(g[key]) == np.shape(point[key]), key
        assert_gradients_match(g, numeric_gradient(f, point), f"{builder} {q}")


def test_scalar_parameters_and_coherent_links():
    """A number for every cell / link (one theta entry, the sum of the per-entry derivatives), J and
    drive_frequency on a reciprocal ring with pumps, squeezed baths and parametric links."""
    point = {"pump": 0.02 - 0.01j, "m_th": 0.1 + 0.05j, "parametric": 0.015j, "J": 0.03, "drive_frequency": 1.01,
             "n_th": 0.3, "kappa": 0.3}
    fixed = {"n_cells": 3, "nonreciprocal": False, "drive": 0.1}
    for q in ("battery_energy", "battery_ergotropy"):
        f = lambda **p: evaluate([q], cn.ring(**fixed, **p))[q]  # noqa: E731
        assert_gradients_match(cn.gradient("ring", point, q, params=fixed), numeric_gradient(f, point), q)


def shared(g=0.02, P=0.03, m_res=0.2, gamma_res=0.1, J=0.01):
    """A callable base: a squeezed shared reservoir (complex p), a pump, a parametric and a coherent link."""
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.0, kappa=0.3, n_th=0.2, drive=0.1, pump=P)
    cn.add_cell(G, "b", omega=1.01, kappa=0.25, battery=True)
    cn.add_cell(G, "c", omega=0.99, kappa=0.35, battery=True)
    cn.add_reservoir(G, {"a": 1.0, "b": 0.6 - 0.3j, "c": 0.5j}, gamma=gamma_res, n_th=0.4, m_th=m_res * (1 + 0.5j))
    cn.add_parametric_link(G, "a", "b", g)
    cn.add_coherent_link(G, "b", "c", J)
    return G


@pytest.mark.parametrize("quantity", sorted(q for q in GRADIENT_QUANTITIES if not q.startswith("ratio")))
def test_callable_base_with_a_squeezed_shared_reservoir(quantity):
    """Model-differences route (the model arrays of a callable differenced, the solve by the adjoint)."""
    point = {"g": 0.02, "P": 0.03, "m_res": 0.2, "gamma_res": 0.1, "J": 0.01}
    f = lambda **p: evaluate([quantity], shared(**p))[quantity]  # noqa: E731
    g = cn.gradient(shared, point, quantity)
    num = {k: numeric_gradient(f, {k: v, **{j: w for j, w in point.items() if j != k}})[k] for k, v in point.items()}
    assert_gradients_match(g, num, quantity)
    # a zero general term at the point (the network phase-insensitive there) still differentiates along it
    g0 = cn.gradient(shared, {"g": 0.0, "P": 0.0, "m_res": 0.0})
    f0 = lambda **p: evaluate(["battery_energy"], shared(**p))["battery_energy"]  # noqa: E731
    num0 = {k: numeric_gradient(f0, {k: 0.0, **{j: 0.0 for j in ("g", "P", "m_res") if j != k}})[k]
            for k in ("g", "P", "m_res")}
    for k in num0:  # real axis for a callable's parameters: the numeric gradient's real part
        assert g0[k] == pytest.approx(np.real(num0[k]), abs=FD_RTOL * max(abs(np.real(v)) for v in num0.values()))


def test_the_complex_convention_and_a_wrong_sign_fail():
    """d/dx + i d/dy: the conjugate (or a flipped sign) of the pump's gradient would not match."""
    point = {"pump": np.array([0.05 + 0.02j, 0.01])}
    fixed = {"n_cells": 2, "kappa": 0.3, "drive": 0.1}
    f = lambda **p: evaluate(["battery_ergotropy"], cn.chain(**fixed, **p))["battery_ergotropy"]  # noqa: E731
    g = cn.gradient("chain", point, "battery_ergotropy", params=fixed)["pump"]
    num = numeric_gradient(f, point)["pump"]
    tol = FD_RTOL * np.abs(num).max()
    assert np.abs(g - num).max() <= tol
    assert np.abs(num.imag).max() > 1e3 * tol and np.abs(num.real).max() > 1e3 * tol
    assert np.abs(np.conj(g) - num).max() > 1e3 * tol and np.abs(-g - num).max() > 1e3 * tol


def test_pumped_cell_closed_form():
    """One resonant cell, kappa = 1, drive E = 0.1, pump P: W = |alpha|^2 + n + 1/2 - sqrt((n + 1/2)^2 - |m|^2),
    n = 2P^2/(kappa^2 - 4P^2), |m| = P kappa/(kappa^2 - 4P^2), |alpha|^2 = 4E^2 (kappa^2 + 4P^2)/(kappa^2 - 4P^2)^2
    (docs/theory/gaussian.md: W = 0.1154530068 at P = 0.2), and dW/dP of that closed form."""
    from chiralnet.design.adjoint import problem, value_and_gradient

    def W(P, k=1.0, E=0.1):
        d = k * k - 4 * P * P
        n, m, a2 = 2 * P * P / d, P * k / d, 4 * E * E * (k * k + 4 * P * P) / d**2
        return a2 + n + 0.5 - np.sqrt((n + 0.5) ** 2 - m * m)

    fixed = {"n_cells": 2, "nonreciprocal": False, "J": 0.0, "kappa": 1.0, "drive": 0.1, "battery": [0]}
    value, grad = value_and_gradient(problem("chain", {"pump": 0.2}, fixed), "battery_ergotropy")
    assert value == pytest.approx(0.1154530068, rel=1e-9) and value == pytest.approx(W(0.2), rel=CLOSED_RTOL)
    h = 1e-4
    exact = (8 * (W(0.2 + h / 2) - W(0.2 - h / 2)) - (W(0.2 + h) - W(0.2 - h))) / (6 * h)   # Richardson
    assert grad[0] == pytest.approx(exact, rel=1e-9)
    # the imaginary part: with the drive, the pump's phase relative to it matters (not zero)
    f = lambda **p: evaluate(["battery_ergotropy"], cn.chain(**fixed, **p))["battery_ergotropy"]  # noqa: E731
    num = numeric_gradient(f, {"pump": 0.2})["pump"]
    assert abs(num.imag) > 0.1 and grad[1] == pytest.approx(num.imag, rel=FD_RTOL)


def test_optimize_a_pump_toward_threshold():
    """The ergotropy of the pumped cell grows with P up to threshold kappa/2 = 0.5: within bounds (0, 0.4) the
    optimum is the bound, W(0.4) = 86/81 (closed form above)."""
    fixed = {"n_cells": 2, "nonreciprocal": False, "J": 0.0, "kappa": 1.0, "drive": 0.1, "battery": [0]}
    r = cn.optimize("chain", {"pump": (0.0, 0.4)}, "battery_ergotropy", params=fixed, x0={"pump": 0.1})
    assert r.success and r.jac_source == "adjoint"
    assert r.x["pump"] == pytest.approx(0.4, abs=1e-12)
    assert r.fun == pytest.approx(86 / 81, rel=CLOSED_RTOL)
    assert isinstance(r.jac["pump"], float) and r.jac["pump"] > 0


def test_optimize_a_squeezed_bath_to_the_bound_of_a_state():
    """A cell alone in a squeezed bath (N, M) relaxes to it: W = omega (N + 1/2 - sqrt((N + 1/2)^2 - |M|^2)) grows
    with |M| up to |M|^2 = N (N + 1), where W = omega N (the bath's state is pure up to its thermal part)."""
    N = 0.5
    fixed = {"n_cells": 2, "nonreciprocal": False, "J": 0.0, "kappa": 1.0, "drive": 0.0, "n_th": N, "battery": "last"}
    top = np.sqrt(N * (N + 1))
    r = cn.optimize("chain", {"m_th": (-top, top)}, "battery_ergotropy_collective", params=fixed, x0={"m_th": 0.1})
    assert r.success and abs(r.x["m_th"]) == pytest.approx(top, rel=1e-12)
    assert r.fun == pytest.approx(N, rel=CLOSED_RTOL)
    with pytest.raises(cn.ChiralnetError, match=r"bounds of 'm_th' reach \|m_th\| = 0.9, but a squeezed bath needs "
                                                r"\|m_th\|\^2 <= n_th \(n_th \+ 1\), so \|m_th\| <= 0.8660254038"):
        cn.optimize("chain", {"m_th": (0.0, 0.9)}, params=fixed)
    with pytest.raises(cn.ChiralnetError, match=r"'m_th_link'.*n_th_link \(n_th_link \+ 1\)"):
        cn.optimize("chain", {"m_th_link": (0.0, 0.5)}, params={"n_cells": 2, "n_th_link": 0.1})


def test_errors_name_the_parameter_and_the_fix():
    with pytest.raises(cn.ChiralnetError, match=r"no parameter 'pmup'.*'pump'"):
        cn.gradient("chain", {"pmup": 0.1}, params={"n_cells": 2})
    with pytest.raises(cn.ChiralnetError, match=r"'m_th_link' applies to nonreciprocal=True only"):
        cn.gradient("chain", {"m_th_link": 0.0}, params={"n_cells": 2, "nonreciprocal": False})
    with pytest.raises(cn.NoSteadyStateError, match=r"the pump on cell 1 \(\|P\| = 0.6\) drives it above threshold; alone, that cell is stable for \|P\| < sqrt\(kappa\^2/4 \+ Delta\^2\) = 0.52"):
        cn.gradient("chain", {"pump": 0.6}, params={"n_cells": 2, "kappa": 1.0})
    with pytest.raises(cn.NoSteadyStateError, match=r"parametric link \(0, 1\)"):
        cn.gradient("chain", {"parametric": 0.8}, params={"n_cells": 2, "kappa": 1.0})
    fixed = {"n_cells": 2, "nonreciprocal": False, "J": 0.0, "kappa": 1.0, "drive": 0.1, "battery": [0]}
    with pytest.raises(cn.NoSteadyStateError, match=r"optimize: no steady state at pump=0.7 .*narrow the bounds"):
        cn.optimize("chain", {"pump": (0.0, 0.7)}, "battery_ergotropy", params=fixed, x0={"pump": 0.1})
    with pytest.raises(cn.NetworkError, match=r"'m_th'\[0\].*raise 'n_th'\[0\]"):
        cn.gradient("chain", {"m_th": 0.5}, params={"n_cells": 2, "n_th": 0.1})


def test_phase_insensitive_gradients_do_not_take_the_general_route():
    """Without a general term or parameter the old adjoint runs (its own model class, no dG)."""
    from chiralnet.design.adjoint import problem

    assert not problem("chain", {"gamma": 0.04}, {"n_cells": 3}).general
    assert problem("chain", {"gamma": 0.04}, {"n_cells": 3, "pump": 0.01}).general
    assert problem("chain", {"pump": 0.0}, {"n_cells": 3}).general


def test_memory_preflight_counts_the_dense_quadrature_matrices(monkeypatch):
    """A general gradient holds ~16 dense (2N)^2 real matrices: refused before the model is built, with the
    largest size that fits, which then runs; beyond config.GAUSSIAN_MAX_CELLS the dense path refuses itself."""
    import re

    from chiralnet import config
    from chiralnet.design import adjoint

    monkeypatch.setattr(config, "MEMORY_LIMIT_GB", 2e-3)     # 2 MB
    with pytest.raises(cn.MemoryLimitError, match=r"quadrature matrices") as err:
        cn.gradient("chain", {"pump": 0.01}, params={"n_cells": 400})
    largest = int(re.search(r"at most about (\d+) cells", str(err.value)).group(1))
    assert 2 <= largest < 400
    g = cn.gradient("chain", {"pump": 0.01}, params={"n_cells": largest})
    assert np.isfinite(g["pump"])
    with pytest.raises(cn.MemoryLimitError):   # general through a nonzero fixed term as well
        cn.gradient("chain", {"gamma": 0.04}, params={"n_cells": largest + 2, "m_th_link": 0.01, "n_th": 0.1})
    monkeypatch.setattr(config, "MEMORY_LIMIT_GB", 1e3)
    monkeypatch.setattr(config, "GAUSSIAN_MAX_CELLS", 5)
    with pytest.raises(cn.ChiralnetError, match=r"GAUSSIAN_MAX_CELLS = 5 cells, this network has 6"):
        cn.gradient("chain", {"pump": 0.01}, params={"n_cells": 6})
    assert adjoint.gradient_bytes(10, 9, True)["fluctuation matrices (3 x N x N complex)"] == 4800
