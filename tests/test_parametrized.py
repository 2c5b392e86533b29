"""chiralnet.parametrized: the affine model equals build_model at random points; exact derivatives."""

import zlib

import numpy as np
import pytest
import scipy.sparse as sp

import chiralnet as cn
from chiralnet.builders import BUILDERS
from chiralnet.parametrized import AFFINE_PARAMETERS, TabulatedModel, affine_model

#: M(theta), E(theta), Q(theta), omega(theta) against build_model at theta, relative to the largest entry.
AFFINE_REL = 1e-14
#: Central differences of build_model against dX/dtheta_k (exact for an affine map: rounding only),
#: relative to the largest derivative entry, with steps of 1e-3 of the parameter.
FD_REL = 1e-9


def rel(a, b):
    """max |a - b| / max |b| over the entries; sparse operands stay sparse (a 10^4-cell M is 1.6 GB dense)."""
    if sp.issparse(a) or sp.issparse(b):
        a, b = sp.csr_array(a), sp.csr_array(b)
        diff, ref = abs(a - b), abs(b)
        return float((diff.max() if diff.nnz else 0.0) / max(ref.max() if ref.nnz else 0.0, 1e-300))
    a, b = np.asarray(a), np.asarray(b)
    return float(np.abs(a - b).max(initial=0.0) / max(np.abs(b).max(initial=0.0), 1e-300))


def _size(builder, params, name):
    return BUILDERS[builder].length(name, **params)


def _random_value(rng, builder, params, name, array):
    lo, hi = {"omega": (0.9, 1.1), "drive_frequency": (0.95, 1.05), "kappa": (0.001, 0.01), "kappa_a": (0.001, 0.01),
              "kappa_b": (0.001, 0.01), "gamma": (0.01, 0.08), "n_th": (0.0, 0.5), "n_th_link": (0.0, 0.5),
              "drive": (-0.3, 0.3), "J": (-0.05, 0.05)}[name]
    if array:
        return rng.uniform(lo, hi, _size(builder, params, name))
    return float(rng.uniform(lo, hi))


# (builder, fixed params, point parameters, which of them as arrays)
CASES = [
    ("chain", {"n_cells": 6}, ("gamma", "kappa", "drive", "omega"), ("gamma", "kappa", "drive", "omega")),
    ("chain", {"n_cells": 5}, ("gamma", "omega", "drive_frequency"), ()),
    ("chain", {"n_cells": 5, "n_th": 0.2}, ("gamma", "drive", "kappa"), ("gamma",)),
    ("chain", {"n_cells": 5, "kappa": 0.004}, ("n_th", "n_th_link"), ("n_th", "n_th_link")),
    ("chain", {"n_cells": 5, "nonreciprocal": False}, ("gamma", "kappa", "omega"), ("gamma",)),
    ("chain", {"n_cells": 5, "nonreciprocal": False}, ("J", "drive"), ("J", "drive")),
    ("ring", {"n_cells": 5}, ("gamma", "kappa", "drive"), ("gamma", "kappa")),
    ("ring", {"n_cells": 4, "n_th": 0.1}, ("gamma", "omega"), ("gamma", "omega")),
    ("star", {"n_leaves": 4}, ("gamma", "kappa", "omega", "drive"), ("gamma", "omega")),
    ("lattice", {"rows": 3, "cols": 3}, ("gamma", "kappa", "drive"), ("gamma", "kappa", "drive")),
    ("lattice", {"rows": 2, "cols": 3, "n_th_link": 0.3, "n_th": 0.1}, ("gamma", "kappa"), ("gamma",)),
    ("two_cell", {}, ("gamma", "kappa_a", "kappa_b", "drive", "omega"), ()),
    ("two_cell", {"optimal": True, "kappa_a": 0.01, "kappa_b": 0.002, "n_th": 0.3}, ("gamma", "drive"), ()),
    ("two_cell", {"nonreciprocal": False}, ("J", "kappa_b", "omega", "drive_frequency"), ()),
    ("two_cell", {"nonreciprocal": False}, ("gamma", "kappa_a"), ()),
    ("two_cell", {"kappa_a": 0.004}, ("n_th",), ()),
]


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("builder,params,names,arrays", CASES)
def test_affine_model_equals_build_model_at_random_points(builder, params, names, arrays, sparse):
    rng = np.random.default_rng(zlib.crc32(repr((builder, params, names, arrays)).encode()))
    point = {k: _random_value(rng, builder, params, k, k in arrays) for k in names}
    am = affine_model(builder, point, params, sparse=sparse)
    assert am.names == tuple(names) and am.model.is_sparse == sparse
    at_point = cn.build_model(BUILDERS[builder].function(**params, **point), sparse=sparse)
    assert rel(am.model.M, at_point.M) <= AFFINE_REL and am.model.cells == at_point.cells
    assert np.array_equal(am.model.battery, at_point.battery)
    assert am.model.drive_frequency == at_point.drive_frequency
    for _ in range(3):
        other = {k: _random_value(rng, builder, params, k, k in arrays) for k in names}
        theta = am.theta(other)
        want = cn.build_model(BUILDERS[builder].function(**params, **other), sparse=sparse)
        assert rel(am.M(theta), want.M) <= AFFINE_REL
        assert rel(am.drive(theta), want.drive) <= AFFINE_REL
        assert rel(am.omega(theta), want.omega) <= AFFINE_REL
        if am.q_affine:
            Q = am.Q(theta)
            assert (Q is None) == (want.Q is None)
            if Q is not None:
                assert rel(Q, want.Q) <= AFFINE_REL
        at = am.model_at(theta)
        assert rel(at.M, want.M) <= AFFINE_REL and at.cells == want.cells
        # M0 + sum theta_k dM_k, term by term
        M = am.M0.toarray() if sp.issparse(am.M0) else am.M0.copy()
        for k in range(am.n_theta):
            M = M + theta[k] * am.dM.of(k).toarray()
        assert rel(M, want.M) <= AFFINE_REL
        assert am.point(theta).keys() == other.keys()


@pytest.mark.parametrize("builder,params,names,arrays", CASES[:4] + CASES[11:13])
def test_derivatives_equal_central_differences_of_build_model(builder, params, names, arrays):
    rng = np.random.default_rng(11)
    point = {k: _random_value(rng, builder, params, k, k in arrays) for k in names}
    am = affine_model(builder, point, params)
    for k in range(am.n_theta):
        h = 1e-3 * max(abs(am.theta0[k]), 1e-2)
        lo, hi = am.theta0.copy(), am.theta0.copy()
        lo[k] -= h
        hi[k] += h
        m_lo = cn.build_model(BUILDERS[builder].function(**params, **am.point(lo)))
        m_hi = cn.build_model(BUILDERS[builder].function(**params, **am.point(hi)))
        for d, x_hi, x_lo in ((am.dM, m_hi.dense_M(), m_lo.dense_M()), (am.dE, m_hi.drive, m_lo.drive),
                              (am.dQ, m_hi.dense_Q(), m_lo.dense_Q()), (am.domega, m_hi.omega, m_lo.omega)):
            fd = (x_hi - x_lo) / (2 * h)
            exact = d.of(k)
            exact = exact.toarray() if sp.issparse(exact) else exact
            scale = max(np.abs(exact).max(initial=0.0), np.abs(fd).max(initial=0.0))
            assert np.abs(fd - exact).max(initial=0.0) <= FD_REL * max(scale, 1.0), (k, d.shape)


# General Gaussian parameters (complex: real and imaginary parts are two entries of theta) beside old ones, on
# the GaussianModel's arrays; the reference is build_model of the builder's graph (chiralnet.gaussian.gaussian_model,
# a route independent of arrays.general_from_layout and of the primitive maps).
GENERAL_CASES = [
    ("chain", {"n_cells": 4, "n_th": 0.3, "drive_frequency": 1.01},
     {"pump": np.array([0.02 + 0.01j, 0.0, -0.01, 0.03j]), "m_th": np.array([0.1, 0.05j, 0.0, 0.2 - 0.1j]),
      "m_th_link": 0.05 - 0.02j, "parametric": np.array([0.01, 0.02j, 0.0]), "kappa": np.full(4, 0.1),
      "gamma": np.array([0.1, 0.2, 0.15]), "omega": 1.0}),
    ("ring", {"n_cells": 3, "nonreciprocal": False, "n_th": 0.2},
     {"pump": 0.01j, "m_th": 0.1 + 0.1j, "parametric": 0.02, "J": np.array([0.03, 0.02j, 0.01]), "kappa": 0.2}),
    ("lattice", {"rows": 2, "cols": 2, "n_th": 0.4, "n_th_link": np.full(4, 0.3)},
     {"m_th_link": np.array([0.1, 0.0, 0.2j, 0.1]), "gamma": np.full(4, 0.1), "parametric": 0.0, "pump": 0.0}),
]


def _general_arrays(builder, params, point):
    m = cn.gaussian.general_model(cn.build_model(BUILDERS[builder].function(**params, **point)))
    return m.drift, m.pairing, m.noise, m.squeezing, m.drive, m.omega


@pytest.mark.parametrize("builder,params,point", GENERAL_CASES)
def test_general_derivatives_equal_central_differences_of_build_model(builder, params, point):
    """dM, dG, dQ, dS, dE, domega of every theta entry (a complex parameter's imaginary part included)."""
    am = affine_model(builder, point, params)
    assert am.general and set(am.imag_slices) == {k for k in point if k in ("pump", "m_th", "m_th_link", "parametric")}
    assert am.s_affine == (not ({"kappa", "m_th"} <= set(point) or {"gamma", "m_th_link"} <= set(point)))
    for got, want in zip((am.model.drift, am.model.pairing, am.model.noise, am.model.squeezing),
                         _general_arrays(builder, params, point)):
        assert rel(got, want) <= AFFINE_REL
    assert am.point(am.theta0).keys() == point.keys()
    for k in range(am.n_theta):
        h = 1e-3 * max(abs(am.theta0[k]), 1e-2)
        lo, hi = am.theta0.copy(), am.theta0.copy()
        lo[k] -= h
        hi[k] += h
        x_hi = _general_arrays(builder, params, am.point(hi))
        x_lo = _general_arrays(builder, params, am.point(lo))
        for d, a, b in zip((am.dM, am.dG, am.dQ, am.dS, am.dE, am.domega), x_hi, x_lo):
            fd = (a - b) / (2 * h)
            exact = d.of(k)
            exact = exact.toarray() if sp.issparse(exact) else exact
            scale = max(np.abs(exact).max(initial=0.0), np.abs(fd).max(initial=0.0))
            assert np.abs(fd - exact).max(initial=0.0) <= FD_REL * max(scale, 1.0), (k, d.shape)
    # a wrong convention would fail here: the imaginary part of a pump moves G by i, not 1
    if "pump" in point:
        k = am.imag_slices["pump"].start
        assert np.allclose(am.dG.of(k).toarray().diagonal()[0], 1j, rtol=0, atol=0)


def test_chiral_gamma_derivative_is_the_balanced_link():
    am = affine_model("chain", {"gamma": np.full(4, 0.04)}, {"n_cells": 5})
    d = am.dM.of(2).toarray()            # link 2 -> 3
    want = np.zeros((5, 5), complex)
    want[2, 2] = want[3, 3] = -0.5
    want[3, 2] = 1.0                      # M[v, u] = gamma; M[u, v] = 0 exactly
    assert np.array_equal(d, want)
    assert am.dE.nnz == 0 and am.dQ.nnz == 0 and am.domega.nnz == 0


def test_large_per_link_array_is_compact():
    n = 10_000
    am = affine_model("chain", {"gamma": np.full(n - 1, 0.04)}, {"n_cells": n})
    assert am.n_theta == n - 1 and am.model.is_sparse
    assert am.dM.nnz == 3 * (n - 1)      # diag(u), diag(v), M[v, u]: three entries per link
    assert am.dM.ptr.shape == (n,) and np.all(np.diff(am.dM.ptr) == 3)
    # bilinear: g_k = l^T dM_k r for every k in one pass, against a loop over a few k
    rng = np.random.default_rng(0)
    left, right = rng.normal(size=n) + 1j * rng.normal(size=n), rng.normal(size=n) + 1j * rng.normal(size=n)
    g = am.dM.bilinear(left, right)
    for k in (0, 17, n - 2):
        assert abs(g[k] - left @ (am.dM.of(k) @ right)) <= 1e-14 * abs(g[k])
    theta = am.theta0 * rng.uniform(0.5, 1.5, n - 1)
    want = cn.build_model(cn.chain(n, gamma=theta))
    assert rel(am.M(theta), want.M) <= AFFINE_REL


def test_q_not_affine_when_both_factors_are_parameters():
    am = affine_model("chain", {"kappa": 0.003, "n_th": 0.2}, {"n_cells": 3})
    assert not am.q_affine
    with pytest.raises(cn.ChiralnetError, match="not affine"):
        am.Q(am.theta0)
    # dQ are still the exact partial derivatives at the point
    dk = am.dQ.of(0).toarray()
    assert np.allclose(np.diag(dk), 0.2, rtol=0, atol=0)
    assert affine_model("chain", {"kappa": 0.003, "n_th": 0.2}, {"n_cells": 3, "n_th_link": 0.1}).q_affine is False
    assert affine_model("chain", {"gamma": 0.04, "n_th": 0.2}, {"n_cells": 3, "n_th_link": 0.1}).q_affine


@pytest.mark.parametrize("point,params,match", [
    ({"kappa_a": 0.01}, {"optimal": True}, "not affine"),
    ({"n_cells": 3}, {}, "structural"),
    ({"kapa": 0.1}, {"n_cells": 3}, "no parameter 'kapa'"),
    ({"gamma": 0.04}, {}, r"needs \['n_cells'\]"),
    ({"gamma": [0.04, 0.04]}, {"n_cells": 4}, "expected 3, got 2"),
    ({}, {"n_cells": 3}, "non-empty"),
])
def test_bad_input(point, params, match):
    builder = "two_cell" if "kappa_a" in point else "chain"
    with pytest.raises(cn.ChiralnetError, match=match):
        affine_model(builder, point, params)


def test_theta_checks_names_and_shapes():
    am = affine_model("chain", {"gamma": np.full(3, 0.04), "drive": 0.1}, {"n_cells": 4})
    with pytest.raises(cn.ChiralnetError, match="missing"):
        am.theta({"gamma": np.full(3, 0.04)})
    with pytest.raises(cn.ChiralnetError, match="shape"):
        am.theta({"gamma": np.full(2, 0.04), "drive": 0.1})
    with pytest.raises(cn.ChiralnetError, match="theta must be 4"):
        am.M(np.zeros(3))


def test_every_continuous_parameter_is_covered():
    # A new continuous builder parameter must be taught to affine_model (and to these cases); chain, ring,
    # star and lattice share their options and one code path, so a name tested on one counts for all four.
    covered = {("topology" if b != "two_cell" else b, k) for b, _, names, _ in CASES for k in names}
    covered |= {("topology", k) for _, _, point in GENERAL_CASES for k in point}
    for b, names in AFFINE_PARAMETERS.items():
        for k in names:
            assert ("topology" if b != "two_cell" else b, k) in covered, (b, k)


def test_tabulated_model_reports_non_additive_axes():
    # optimal two_cell: xi = sqrt(kappa_a/kappa_b) mixes both axes.
    vals = [np.array([0.01, 0.1]), np.array([0.001, 0.003, 0.01])]

    class P:
        def __init__(self, ka, kb):
            self.model = cn.build_model(cn.two_cell(kappa_a=ka, kappa_b=kb, optimal=True), sparse=False)
            self.M, self.forcing, self.omega = self.model.M, self.model.forcing, self.model.omega
            self.cells, self.battery, self.thermal = self.model.cells, self.model.battery, False
            self.alpha0 = np.zeros(2, complex)

    table, reason = TabulatedModel.build(lambda ci: P(vals[0][ci[0]], vals[1][ci[1]]), vals, ["kappa_a", "kappa_b"],
                                         str)
    assert table is None and "not additive" in reason


#: The dense product of the primitive maps (a few cells) against the sparse join on the primitive index: the same
#: few terms per entry, summed in another order.
DENSE_DERIVATIVE_REL = 1e-13


@pytest.mark.parametrize("builder, point, params", [
    ("chain", {"gamma": np.linspace(0.03, 0.05, 5), "drive": 0.1, "kappa": 0.004, "n_th": 0.2}, {"n_cells": 6}),
    ("chain", {"gamma": 0.04, "n_th_link": np.full(9, 0.1), "omega": 1.1}, {"n_cells": 10}),
    ("ring", {"gamma": 0.04, "J": 0.01, "n_th": 0.1}, {"n_cells": 7, "nonreciprocal": False}),
    ("two_cell", {"gamma": 0.03, "kappa_a": 0.002, "n_th": 0.3, "drive": 0.1}, {"optimal": False}),
])
def test_dense_derivatives_of_a_small_network_agree_with_the_sparse_join(monkeypatch, builder, point, params):
    """affine_model's derivatives of a small network come from a dense product of the primitive maps
    (DERIVATIVE_DENSE_MAX_ENTRIES); the sparse join they replace (forced by a limit of 0) gives the same entries,
    in the same order, to DENSE_DERIVATIVE_REL, for M, Q (thermal: bilinear terms), E and omega."""
    import chiralnet.parametrized as P

    dense = affine_model(builder, point, params)
    monkeypatch.setattr(P, "DERIVATIVE_DENSE_MAX_ENTRIES", 0)
    joined = affine_model(builder, point, params)
    assert joined.dM.nnz > 0
    for name in ("dM", "dQ", "dE", "domega"):
        a, b = getattr(dense, name), getattr(joined, name)
        assert a.k.tolist() == b.k.tolist() and a.ptr.tolist() == b.ptr.tolist(), name
        assert all(x.tolist() == y.tolist() for x, y in zip(a.index, b.index)), name
        if b.nnz:
            assert np.max(np.abs(a.value - b.value)) <= DENSE_DERIVATIVE_REL * np.max(np.abs(b.value)), name
