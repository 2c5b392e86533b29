"""Builders: the paper's two-cell system, and the chiral chain of PHYSICS.md section 6."""

import numpy as np
import pytest

import chiralnet as cn
from conftest import BALANCE_ABS, RANDOM_EXACT_REL
from naive import naive_arrays, naive_simulate, rel_err

#: Rounding in the forward substitution of the chain's closed form.
CHAIN_REL = 1e-13


def _chain_lambdas(n, kappa, gamma):
    lam = np.full(n, kappa + 2 * gamma)
    lam[0] = lam[-1] = kappa + gamma
    return lam


@pytest.mark.parametrize("n,kappa,gamma,E", [(6, 0.003, 0.04, 0.1), (2, 0.003, 0.04, 0.1), (9, 0.02, 0.011, 0.3 - 0.1j)])
def test_chain_generator_is_lower_bidiagonal(n, kappa, gamma, E):
    G = cn.chain(n, kappa=kappa, gamma=gamma, drive=E)
    M = cn.build_model(G).dense_M()
    lam = _chain_lambdas(n, kappa, gamma)
    want = np.diag(-lam / 2).astype(complex) + np.diag(np.full(n - 1, gamma), -1)
    assert np.abs(M - want).max() <= BALANCE_ABS
    assert np.all(np.triu(M, 1) == 0) or np.abs(np.triu(M, 1)).max() <= BALANCE_ABS


@pytest.mark.parametrize("n,kappa,gamma,E", [(6, 0.003, 0.04, 0.1), (2, 0.003, 0.04, 0.1), (9, 0.02, 0.011, 0.3 - 0.1j),
                                             (30, 0.003, 0.04, 0.1)])
def test_chain_steady_state_recursion(n, kappa, gamma, E):
    # alpha_0 = -2iE/Lambda_0, alpha_n = (2 Gamma / Lambda_n) alpha_{n-1}.
    lam = _chain_lambdas(n, kappa, gamma)
    alpha = np.empty(n, complex)
    alpha[0] = -2j * E / lam[0]
    for i in range(1, n):
        alpha[i] = 2 * gamma / lam[i] * alpha[i - 1]
    ss = cn.steady_state(cn.chain(n, kappa=kappa, gamma=gamma, drive=E))
    assert rel_err(ss.amplitudes, alpha) <= CHAIN_REL
    assert rel_err(ss.energies, np.abs(alpha) ** 2) <= CHAIN_REL


def test_chain_six_cells_paper_values():
    ss = cn.steady_state(cn.chain(6))
    assert round(ss.energy(5), 1) == 55.8
    assert round(ss.energy(4), 1) == 16.1
    assert int(np.argmax(ss.energies)) == 5          # the end cell stores the most
    assert ss.battery_energy == pytest.approx(ss.energies[1:].sum(), rel=1e-15)
    assert ss.total_energy == pytest.approx(ss.energies.sum(), rel=1e-15)


def test_long_uniform_chain_is_defective_and_exact_still_matches_expm():
    n = 40
    G = cn.chain(n)
    M = cn.build_model(G).dense_M()
    # Defective: the inner cells share one eigenvalue; the eigenvector matrix is numerically singular,
    # so any eigendecomposition-based propagator would be useless here.
    w, V = np.linalg.eig(M)
    assert np.linalg.cond(V) > 1e10
    t = np.linspace(0, 3000, 61)
    want, _ = naive_simulate(G, t)
    res = cn.simulate(G, t, method="exact")
    assert rel_err(res.energies, want) <= RANDOM_EXACT_REL
    ss = cn.steady_state(G)
    assert rel_err(res.energies[-1], ss.energies) <= 1e-8     # e^{-Lambda t / 2} at t = 3000, slow Jordan tail


@pytest.mark.parametrize("build", [lambda: cn.chain(5), lambda: cn.ring(4), lambda: cn.star(3), lambda: cn.lattice(2, 3)])
def test_builders_match_naive_assembly_and_are_one_way(build):
    G = build()
    M = cn.build_model(G).dense_M()
    np.testing.assert_allclose(M, naive_arrays(G)["M"], rtol=0, atol=1e-15)
    for u, v in ((u, v) for u, v, J in G.edges(data="J") if J is not None):
        assert abs(M[u, v]) <= BALANCE_ABS and abs(M[v, u] - 0.04) <= BALANCE_ABS


def test_builders_reciprocal_option():
    G = cn.chain(3, nonreciprocal=False)
    assert cn.reservoirs(G) == []
    M = cn.build_model(G).dense_M()
    assert M[0, 1] == M[1, 0] == -0.02j


def test_lattice_shape():
    G = cn.lattice(3, 4)
    assert len(cn.cells(G)) == 12 and len(cn.reservoirs(G)) == 3 * 3 + 2 * 4
    assert cn.battery_cells(G) == list(range(1, 12))


def test_two_cell_variants():
    G = cn.two_cell()
    assert cn.cells(G) == ["a", "b"] and cn.battery_cells(G) == ["b"]
    with pytest.raises(cn.NetworkError, match="J"):
        cn.two_cell(J=0.1)
    with pytest.raises(cn.NetworkError, match="optimal"):
        cn.two_cell(optimal=True, nonreciprocal=False)
    with pytest.raises(cn.NetworkError, match="kappa"):
        cn.two_cell(optimal=True, kappa_b=0.0)


@pytest.mark.parametrize("call,key", [(lambda: cn.chain(1), "n_cells"), (lambda: cn.chain(2.5), "n_cells"),
                                      (lambda: cn.ring(2), "n_cells"), (lambda: cn.star(0), "n_leaves"),
                                      (lambda: cn.lattice(1, 1), "rows"), (lambda: cn.chain(3, kapa=0.1), "kapa"),
                                      (lambda: cn.chain(3, J=0.1), "J"), (lambda: cn.lattice(2, 2, pos={}), "pos"),
                                      (lambda: cn.chain(3, nonreciprocal=False, gamma="0.04"), "gamma")])
def test_builder_bad_arguments(call, key):
    with pytest.raises(cn.ChiralnetError, match=key):
        call()
