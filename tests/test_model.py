"""Model assembly (graph -> M, drive, Q, initial state) against the naive loops of tests/naive.py."""

import networkx as nx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import chiralnet as cn
from conftest import ASSEMBLY_ABS, BALANCE_ABS
from naive import naive_arrays
from strategies import networks


def _compare(model, ref):
    assert list(model.cells) == ref["cells"]
    np.testing.assert_allclose(model.dense_M(), ref["M"], rtol=0, atol=ASSEMBLY_ABS)
    np.testing.assert_allclose(model.dense_Q(), ref["Q"], rtol=0, atol=ASSEMBLY_ABS)
    np.testing.assert_array_equal(model.drive, ref["E"])
    np.testing.assert_array_equal(model.omega, ref["omega"])


@given(networks(damped=False))
def test_initial_state_matches_naive(G):
    ref = naive_arrays(G)
    state = cn.initial_state(G)
    assert list(state.cells) == ref["cells"]
    np.testing.assert_array_equal(state.alpha, ref["alpha0"])
    np.testing.assert_array_equal(state.dense_Nc(), np.diag(ref["n0"]).astype(complex))
    assert (state.Nc is None) == (not np.any(ref["n0"] > 0))


@given(networks(damped=False))
def test_dense_assembly_matches_naive(G):
    _compare(cn.build_model(G), naive_arrays(G))


@given(networks(damped=False))
def test_sparse_assembly_matches_naive(G):
    model = cn.build_model(G, sparse=True)
    assert model.is_sparse
    _compare(model, naive_arrays(G))


@given(networks(damped=False, thermal=False))
def test_zero_temperature_has_no_noise_matrix(G):
    assert cn.build_model(G).Q is None


@given(networks(damped=False, thermal=True))
def test_noise_matrix_is_hermitian_psd(G):
    Q = cn.build_model(G).dense_Q()
    np.testing.assert_allclose(Q, Q.conj().T, rtol=0, atol=ASSEMBLY_ABS)
    assert np.linalg.eigvalsh(Q).min() >= -1e-14


@given(networks(damped=False), st.randoms())
def test_nodelist_permutes_every_array(G, rnd):
    order = list(cn.cells(G))
    rnd.shuffle(order)
    m0 = cn.build_model(G)
    m1 = cn.build_model(G, nodelist=order)
    perm = [m0.index(c) for c in order]
    assert list(m1.cells) == order
    np.testing.assert_array_equal(m1.dense_M(), m0.dense_M()[np.ix_(perm, perm)])
    np.testing.assert_array_equal(m1.dense_Q(), m0.dense_Q()[np.ix_(perm, perm)])
    np.testing.assert_array_equal(m1.drive, m0.drive[perm])


@given(networks(damped=False))
def test_dissipator_is_negative_semidefinite(G):
    # The Hermitian part of M is -D/2 with D >= 0: no random network can have a growing mode.
    M = cn.build_model(G).dense_M()
    assert np.linalg.eigvalsh((M + M.conj().T) / 2).max() <= 1e-14


@pytest.mark.parametrize("xi", [1.0, 0.3, 2.7, 1 / 3, 5.773502691896258])
@pytest.mark.parametrize("gamma", [0.04, 0.01, 1.3])
def test_chiral_link_is_one_way(xi, gamma):
    G = cn.network(drive_frequency=1.1)
    cn.add_cell(G, "u", omega=1.0, kappa=0.01, drive=0.1)
    cn.add_cell(G, "v", omega=1.2, kappa=0.02)
    cn.add_chiral_link(G, "u", "v", gamma=gamma, xi=xi)
    model = cn.build_model(G)
    M = model.dense_M()
    assert abs(M[0, 1]) <= BALANCE_ABS * max(1.0, gamma)   # v never acts on u
    assert abs(M[1, 0] - gamma) <= BALANCE_ABS * max(1.0, gamma)
    # Diagonal: -i(omega - omega_L) - Lambda/2 with Lambda_u = kappa_u + xi gamma, Lambda_v = kappa_v + gamma/xi.
    np.testing.assert_allclose(M[0, 0], 0.1j - (0.01 + xi * gamma) / 2, rtol=1e-15, atol=1e-16)
    np.testing.assert_allclose(M[1, 1], -0.1j - (0.02 + gamma / xi) / 2, rtol=1e-15, atol=1e-16)


def test_reverse_balance_reverses_direction():
    # docs/theory/model.md, "The chiral balance condition": J = +i mu Gamma / 2 makes the link v -> u.
    gamma, pu, pv = 0.05, 0.8 * np.exp(0.3j), 1.1 * np.exp(-1.2j)
    mu = -pv * np.conj(pu)
    G = cn.network()
    cn.add_cell(G, "u", omega=1.0, kappa=0.01)
    cn.add_cell(G, "v", omega=1.0, kappa=0.01)
    cn.add_reservoir(G, {"u": pu, "v": pv}, gamma=gamma)
    cn.add_coherent_link(G, "u", "v", +1j * mu * gamma / 2)
    M = cn.build_model(G).dense_M()
    assert abs(M[1, 0]) <= BALANCE_ABS
    np.testing.assert_allclose(M[0, 1], mu * gamma, rtol=1e-14)


def test_model_from_plain_networkx_graph():
    # Any graph following the schema works, not only the ones the helpers make.
    G = nx.DiGraph(drive_frequency=1.0)
    G.add_node("x", omega=1.0, kappa=0.1, drive=0.2j)
    G.add_node("y", kind="cell", omega=1.5)
    G.add_node("bath", kind="reservoir", gamma=0.3, n_th=0.1)
    G.add_edge("x", "y", J=0.1 - 0.2j)
    G.add_edge("bath", "x", p=1.0)
    G.add_edge("bath", "y", p=-1j)
    _compare(cn.build_model(G), naive_arrays(G))


def test_model_index_unknown_cell():
    model = cn.build_model(cn.two_cell())
    assert model.index("b") == 1
    with pytest.raises(cn.NetworkError, match="'zz'"):
        model.index("zz")


def test_battery_defaults_to_all_cells():
    G = cn.network()
    cn.add_cell(G, 0, omega=1.0)
    cn.add_cell(G, 1, omega=1.0)
    assert cn.build_model(G).battery.tolist() == [True, True]
    assert cn.battery_cells(G) == [0, 1]
    G.nodes[1]["battery"] = True
    assert cn.build_model(G).battery.tolist() == [False, True]


@pytest.mark.parametrize("options, what", [
    (dict(gamma=1e308), "generator M overflows in the row of cell"),
    (dict(gamma=1e200, n_th=1e200), "noise matrix Q .* is not finite in the row of cell 0"),
])
def test_rates_too_large_to_represent_are_refused_at_assembly(options, what):
    """M, Q and their row/column sums must be finite (norms, discs and products of every solver form them):
    a clear error naming the cell, never finite nonsense or a self-contradicting stability message."""
    with pytest.raises(cn.NetworkError, match=what):
        cn.build_model(cn.chain(5, **options))


def test_huge_but_representable_rates_give_the_exact_answer():
    """gamma = 1e150: the diagonal's squared modulus overflows inside the fast stability scale; the check
    falls back to the diagonal itself instead of calling a decaying mode unstable."""
    ss = cn.steady_state(cn.chain(5, gamma=1e150))
    assert np.isfinite(ss.energies).all() and ss.method == "forward-substitution"


# Issue 18: a State with an impossible Nc was accepted and gave plausible energies.

def test_state_refuses_a_non_hermitian_or_negative_fluctuation_matrix():
    from chiralnet.model import State
    from chiralnet.errors import NetworkError

    cells = ("a", "b")
    with pytest.raises(NetworkError, match=r"not Hermitian: Nc\['a', 'b'\]"):
        State(cells, np.zeros(2), np.array([[1.0, 0.5j], [0.5j, 1.0]]))
    with pytest.raises(NetworkError, match="negative occupation on cell 'b'"):
        State(cells, np.zeros(2), np.diag([1.0, -0.5]).astype(complex))
    with pytest.raises(NetworkError, match=r"lowest eigenvalue is -1 "):     # diagonal fine, eigenvalues 3, -1
        State(cells, np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]], complex))
    # within the tolerance (relative to max |Nc|): rounding of a solver's output is accepted
    tiny = 0.1 * cn.config.STATE_NC_RTOL
    State(cells, np.zeros(2), np.array([[1.0, tiny * 1j], [0.0, -tiny]], complex))
    # a hot steady state is a valid state
    ss = cn.steady_state(cn.chain(5, n_th=0.3))
    assert ss.state.Nc is not None


def test_state_check_of_a_large_nc_is_hermiticity_and_diagonal_only(monkeypatch):
    from chiralnet.model import State
    from chiralnet.errors import NetworkError

    monkeypatch.setattr(cn.config, "STATE_NC_EIG_MAX_CELLS", 1)   # "large" from 2 cells on: no eigvalsh
    State(("a", "b"), np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]], complex))   # documented: not caught
    with pytest.raises(NetworkError, match="negative occupation"):
        State(("a", "b"), np.zeros(2), np.diag([-1.0, 1.0]).astype(complex))
    with pytest.raises(NetworkError, match="not Hermitian"):
        State(("a", "b"), np.zeros(2), np.array([[1.0, 1.0], [0.0, 1.0]], complex))


# ---------------------------------------------------------------------------------------------
# Issue 21: the dense route of small models (config.SMALL_MAX_CELLS) is bitwise the CSR route.


def _same_bits(a, b):
    return a.shape == b.shape and a.tobytes() == b.tobytes()


@given(networks(damped=False))
def test_small_dense_assembly_is_bitwise_the_csr_route(G):
    """Same terms, same order of summation, NumPy's complex products: the same bits as CSR (a changed
    summation order or complex rounding moved ill-conditioned Lyapunov solves by ~1e-14)."""
    dense, csr = cn.build_model(G), cn.build_model(G, sparse=True)
    assert type(dense.M) is np.ndarray and dense.M.flags.c_contiguous
    assert _same_bits(dense.M, csr.M.toarray())
    assert (dense.Q is None) == (csr.Q is None)
    if dense.Q is not None:
        assert _same_bits(dense.Q, csr.Q.toarray())


def test_rows_of_more_than_16_terms_take_the_csr_sum():
    """CSR sorts a row of more than 16 terms in an order of its own (std::sort); the dense kernel then
    defers to it, so even 17 reservoirs on one cell give today's bits."""
    G = cn.network()
    cn.add_cell(G, "a", omega=1.0, kappa=0.01, n_th=0.1, drive=0.1)
    cn.add_cell(G, "b", omega=1.1, kappa=0.02)
    rng = np.random.default_rng(3)
    for _ in range(17):
        p = rng.normal(size=2) + 1j * rng.normal(size=2)
        cn.add_reservoir(G, {"a": complex(p[0]), "b": complex(p[1])}, gamma=float(rng.uniform(0.01, 0.1)), n_th=0.2)
    dense, csr = cn.build_model(G), cn.build_model(G, sparse=True)
    assert type(dense.M) is np.ndarray and type(dense.Q) is np.ndarray
    assert _same_bits(dense.M, csr.M.toarray()) and _same_bits(dense.Q, csr.Q.toarray())


def test_dense_route_applies_up_to_its_threshold(monkeypatch):
    """Above config.SMALL_MAX_CELLS a dense model is assembled as CSR and converted, as before: same bits."""
    G = cn.chain(6, n_th=0.1)
    small = cn.build_model(G)
    monkeypatch.setattr(cn.config, "SMALL_MAX_CELLS", 5)
    big = cn.build_model(G)
    assert _same_bits(small.M, big.M) and _same_bits(small.Q, big.Q)


@pytest.mark.parametrize("options, what", [
    (dict(gamma=1e308), "generator M overflows in the row of cell"),
    (dict(gamma=1e200, n_th=1e200), "noise matrix Q .* is not finite in the row of cell 0"),
    (dict(kappa=1e300, n_th=1.5e8), "noise matrix Q .* overflows in the row of cell 0"),
])
@pytest.mark.parametrize("sparse", [None, True])
def test_both_routes_refuse_unrepresentable_rates_alike(options, what, sparse):
    with pytest.raises(cn.NetworkError, match=what):
        cn.build_model(cn.chain(3, **options), sparse=sparse)


def test_kernel_pair_terms_are_numpys_for_real_or_imaginary_couplings():
    """The kernel forms a reservoir's pair terms itself only when no amplitude has both a real and an
    imaginary part: then every product is exact-rounded, in NumPy's fused multiply-adds and in Numba alike.
    Amplitudes with both parts have NumPy form them (the case where the two roundings differ)."""
    from chiralnet.model import _pair_index, _pair_terms, _terms

    rng = np.random.default_rng(4)
    z = np.zeros(0, np.int64)
    for kind in ("real", "imaginary", "either"):
        re, im = rng.normal(size=6), rng.normal(size=6)
        cp = {"real": re + 0j, "imaginary": 1j * im, "either": np.where(rng.random(6) < 0.5, re + 0j, 1j * im)}[kind]
        cres, ccell = np.array([0, 0, 0, 1, 1, 1]), np.array([0, 1, 2, 0, 1, 2])
        rate, occ = rng.uniform(0.01, 1.0, 2), rng.uniform(0.0, 1.0, 2)
        first, second, mixed = _pair_index(cres, cp)
        assert not mixed and first.size == 18
        want = _pair_terms(rate[cres[first]], occ[cres[first]], cp[first], cp[second])
        args = (np.ones(3), np.zeros(3), np.zeros(3), 1.0, z, z, np.zeros(0, complex), ccell, first, second)
        got = _terms(*args, False, np.zeros(0, complex), np.zeros(0, complex), cres, rate, occ, cp)
        assert got[2][3:].tobytes() == want[0].tobytes() and got[5][3:].tobytes() == want[1].tobytes()
    assert _pair_index(cres, np.array([1 + 1j, 1, 1, 1, 1, 1]))[2]


def test_state_accepts_subnormal_rounding_in_nc():
    """A run that decays to nothing leaves Nc of subnormal numbers (-4.9e-324 on the diagonal, found by
    hypothesis in CI): rounding below the smallest normal double is zero, not a negative occupation."""
    from chiralnet.model import State

    State(("a",), np.zeros(1), np.array([[-5e-324 + 0j]]))
    with pytest.raises(cn.NetworkError, match="negative occupation"):
        State(("a",), np.zeros(1), np.array([[-1e-300 + 0j]]))


# ---------------------------------------------------------------------------------------------
# Issue 21: build_model's memo of an unchanged small graph (chiralnet.model._MEMO).


def _fresh_build(G):
    """build_model without the memo: a copy of the graph is a new object, read and checked anew."""
    return cn.build_model(G.copy())


def _same_model(a, b):
    assert a.cells == b.cells and a.drive_frequency == b.drive_frequency
    for name in ("omega", "M", "drive", "battery", "kappa"):
        assert _same_bits(getattr(a, name), getattr(b, name)), name
    assert (a.Q is None) == (b.Q is None) and (a.Q is None or _same_bits(a.Q, b.Q))
    sa, sb = a.initial, b.initial
    assert sa.cells == sb.cells and _same_bits(sa.alpha, sb.alpha) and (sa.Nc is None) == (sb.Nc is None)
    assert sa.Nc is None or _same_bits(sa.Nc, sb.Nc)


@given(networks(max_cells=10, damped=False))
def test_memo_hit_is_the_built_model_bit_for_bit(G):
    first, second = cn.build_model(G), cn.build_model(G)
    _same_model(first, _fresh_build(G))
    _same_model(second, first)
    assert second is not first and second.M is not first.M and second.initial.alpha is not first.initial.alpha


@given(networks(min_cells=2, max_cells=10, damped=False, thermal=True))
def test_memo_never_returns_a_stale_model(G):
    """Every change to the graph (a value, a new link, a removed reservoir, a value set again to an equal
    number of another type) is seen; changes to a returned model's arrays never reach the next call."""
    m = cn.build_model(G)
    m.M[0, 0] = 99.0
    m.initial.alpha[0] = 7.0
    _same_model(cn.build_model(G), _fresh_build(G))
    G.nodes[0]["kappa"] = G.nodes[0]["kappa"] + 0.125
    after = cn.build_model(G)
    _same_model(after, _fresh_build(G))
    assert after.M[0, 0] != m.M[0, 0]
    G.graph["drive_frequency"] = G.graph["drive_frequency"] + 0.5
    _same_model(cn.build_model(G), _fresh_build(G))
    if not G.has_edge(0, 1) and not G.has_edge(1, 0):
        cn.add_coherent_link(G, 0, 1, 0.05j)
        _same_model(cn.build_model(G), _fresh_build(G))
    G.nodes[0]["n_th"] = np.float64(G.nodes[0]["n_th"])
    _same_model(cn.build_model(G), _fresh_build(G))
    res = cn.reservoirs(G)
    if res:
        G.remove_node(res[0])
        _same_model(cn.build_model(G), _fresh_build(G))


def test_memo_keeps_every_check():
    """A value made invalid after a model was memoised is refused as on a first build, even when it compares
    equal to the old one (True == 1.0)."""
    G = cn.chain(4)
    cn.build_model(G), cn.build_model(G)
    G.nodes[0]["omega"] = True
    with pytest.raises(cn.NetworkError, match="omega"):
        cn.build_model(G)
    G.nodes[0]["omega"] = 1.0
    cn.build_model(G)
    G.nodes[0]["kapa"] = 0.1
    with pytest.raises(cn.NetworkError, match="unknown attribute 'kapa'"):
        cn.build_model(G)
    del G.nodes[0]["kapa"]
    G.nodes[1]["alpha0"] = float("nan")
    with pytest.raises(cn.NetworkError, match="alpha0"):
        cn.build_model(G)


def test_memo_follows_the_tunables_and_mutable_values(monkeypatch):
    from chiralnet import model as model_module

    G = cn.chain(6, n_th=0.1)
    small = cn.build_model(G)
    monkeypatch.setattr(cn.config, "DENSE_MAX_CELLS", 5)
    assert cn.build_model(G).is_sparse and not small.is_sparse
    monkeypatch.undo()
    H = cn.chain(3)
    H.nodes[0]["pos"] = [0.0, 1.0]  # a list can change in place: never memoised
    cn.build_model(H)
    assert model_module._MEMO[H][2] is None  # a miss on record (backing off its snapshots), no model kept
    H.nodes[0]["pos"] = (0.0, 1.0)
    cn.build_model(H)  # the record's first skipped snapshot ...
    cn.build_model(H)  # ... then a snapshot, and the model kept
    assert model_module._MEMO[H][2] is not None


def test_memo_does_not_snapshot_a_graph_it_cannot_keep_on_every_build(monkeypatch):
    """A network the memo does not keep (more than config.SMALL_MAX_CELLS cells, or a general Gaussian one) is a
    miss: after a few builds its graph is snapshotted once in 16 builds, not on every one."""
    from chiralnet import model as model_module

    calls = []
    real = model_module._snapshot
    monkeypatch.setattr(model_module, "_snapshot", lambda G: calls.append(1) or real(G))
    pumped = cn.chain(3)
    pumped.nodes[0]["pump"] = 0.001
    for G in (cn.chain(cn.config.SMALL_MAX_CELLS + 1), pumped):
        calls.clear()
        for _ in range(48):
            cn.build_model(G)
        assert len(calls) <= 8, len(calls)
        assert model_module._MEMO[G][2] is None


def test_memo_backs_off_on_a_graph_changed_before_every_call():
    from chiralnet import model as model_module

    G = cn.chain(3)
    for k in range(40):
        G.nodes[0]["kappa"] = 0.001 * (k + 1)
        _same_model(cn.build_model(G), _fresh_build(G))
    assert model_module._MEMO[G][3] >= 3
    for _ in range(40):  # unchanged again: found again within two windows of 15 calls, then every call hits
        cn.build_model(G)
    assert model_module._MEMO[G][3] == 0
