"""The sparse path agrees with the dense one; cascaded solves agree with general solves.

Tolerances are named; no timing assertions.
"""

import numpy as np
import pytest
import scipy.linalg as la
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import chiralnet as cn
from chiralnet import config
from chiralnet import sparse as S

PATHS_AGREE = 1e-10      # sparse vs dense path, relative to the largest value
SOLVES_AGREE = 1e-12     # cascaded (triangular) vs general solve, relative
BUILDERS_AGREE = 1e-15   # array-level builder vs graph builder (same arithmetic)

TIMES = np.linspace(0.0, 600.0, 41)
UNEVEN = np.r_[0.0, np.geomspace(0.5, 800.0, 15)]

NETWORKS = {
    "two_cell": lambda: cn.two_cell(),
    "two_cell_reciprocal": lambda: cn.two_cell(nonreciprocal=False),
    "two_cell_optimal": lambda: cn.two_cell(kappa_a=0.1, kappa_b=0.003, gamma=0.01, optimal=True),
    "chain": lambda: cn.chain(12),
    "chain_reciprocal": lambda: cn.chain(12, nonreciprocal=False),
    "ring": lambda: cn.ring(7),
    "ring_reciprocal": lambda: cn.ring(7, nonreciprocal=False),
    "star": lambda: cn.star(6),
    "star_reciprocal": lambda: cn.star(6, nonreciprocal=False),
    "lattice": lambda: cn.lattice(3, 4),
    "lattice_reciprocal": lambda: cn.lattice(3, 4, nonreciprocal=False),
    "chain_thermal": lambda: cn.chain(8, n_th=0.3),
    "ring_thermal": lambda: cn.ring(5, n_th=0.2, nonreciprocal=False),
    "lattice_thermal": lambda: cn.lattice(2, 3, n_th=0.5),
}


def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_sparse_and_dense_paths_agree(name):
    G = NETWORKS[name]()
    dense = cn.build_model(G, sparse=False)
    csr = cn.build_model(G, sparse=True)
    assert not dense.is_sparse and csr.is_sparse
    for times in (TIMES, UNEVEN):
        ref = cn.simulate(dense, times, method="exact")
        assert ref.method == "exact"
        for model in (dense, csr):
            for method in ("exact", "exact-sparse", "auto"):
                res = cn.simulate(model, times, method=method)
                assert res.method in cn.METHODS
                assert rel(res.energies, ref.energies) <= PATHS_AGREE, (name, method, model.is_sparse)
                assert rel(res.fluctuations, ref.fluctuations) <= PATHS_AGREE
    ss_dense, ss_csr = cn.steady_state(dense), cn.steady_state(csr)
    assert rel(ss_csr.energies, ss_dense.energies) <= PATHS_AGREE
    assert rel(ss_csr.amplitudes, ss_dense.amplitudes) <= PATHS_AGREE
    general = la.solve(dense.M, -dense.forcing)
    assert rel(ss_csr.amplitudes, general) <= SOLVES_AGREE


def test_rk45_on_csr_matches_exact():
    """The adaptive CSR branch is accurate to its tolerance (it chooses its own steps)."""
    model = cn.build_model(cn.chain(40), sparse=True)
    ref = cn.simulate(model, TIMES, method="exact-sparse")
    res = cn.simulate(model, TIMES, method="rk45", rtol=1e-10, atol=1e-12)
    assert rel(res.energies, ref.energies) <= 1e-7


def test_auto_records_its_choice():
    assert cn.simulate(cn.two_cell(), TIMES).method == "exact"
    assert cn.simulate(S.chain_model(300), TIMES).method == "exact-sparse"
    # one long output interval: many Taylor substeps per output, so auto goes adaptive
    assert cn.simulate(S.chain_model(300), [0.0, 1e5]).method == "rk45"
    assert cn.steady_state(S.chain_model(300)).method == "forward-substitution"
    assert cn.steady_state(cn.build_model(cn.ring(300), sparse=True)).method == "sparse-lu"
    assert cn.steady_state(cn.ring(5)).method == "dense-lu"
    assert cn.steady_state(cn.chain(5, n_th=0.1)).method == "forward-substitution+triangular-lyapunov"
    assert cn.steady_state(cn.ring(5, n_th=0.1)).method == "dense-lu+bartels-stewart"


def test_cascade_order_finds_permuted_triangular_structure():
    G = cn.lattice(3, 3)
    order = list(reversed(list(G.nodes)[:9]))  # cells listed against the flow: M upper triangular
    model = cn.build_model(G, nodelist=order, sparse=True)
    M = model.M.toarray()
    assert np.count_nonzero(np.triu(M, 1)) > 0
    perm = S.cascade_order(model.M)
    assert perm is not None
    P = M[np.ix_(perm, perm)]
    assert np.count_nonzero(np.abs(np.triu(P, 1)) > 0) == 0
    x = S.solve_cascaded(model.M, -model.forcing, perm)
    assert rel(x, spla.spsolve(model.M.tocsc(), -model.forcing)) <= SOLVES_AGREE
    assert S.cascade_order(cn.build_model(cn.ring(4)).M) is None


def test_triangular_steady_state_matches_general_solves():
    model = cn.build_model(cn.lattice(4, 5, n_th=0.4), nodelist=list(reversed(range(20))))
    order = S.cascade_order(model.M)
    alpha = S.solve_cascaded(model.M, -model.forcing, order)
    assert rel(alpha, la.solve(model.dense_M(), -model.forcing)) <= SOLVES_AGREE
    A = np.conj(model.dense_M())
    X = S.lyapunov_cascaded(A, -model.dense_Q(), order)
    ref = la.solve_continuous_lyapunov(A, -model.dense_Q())
    assert rel(X, ref) <= SOLVES_AGREE
    ss = cn.steady_state(model)
    assert rel(ss.fluctuations, ref.diagonal().real) <= SOLVES_AGREE


def test_chiral_link_with_asymmetric_coupling_counts_as_cascade():
    """xi != 1 leaves |M[u, v]| ~ 1e-18 of rounding where the link cancels it: still a cascade."""
    model = cn.build_model(cn.two_cell(kappa_a=0.1, kappa_b=0.003, gamma=0.01, optimal=True))
    assert S.cascade_order(model.M) is not None
    assert cn.steady_state(model).method == "forward-substitution"


def test_array_builders_equal_graph_builders():
    cases = [
        (S.chain_model, cn.chain, (2,), {}),
        (S.chain_model, cn.chain, (9,), dict(n_th=0.2, kappa=0.01, gamma=0.05, drive=0.2 + 0.1j)),
        (S.chain_model, cn.chain, (6,), dict(nonreciprocal=False, J=0.03)),
        (S.chain_model, cn.chain, (5,), dict(omega=1.3, drive_frequency=1.0)),
        (S.lattice_model, cn.lattice, (3, 4), dict(n_th=0.1)),
        (S.lattice_model, cn.lattice, (1, 5), dict(nonreciprocal=False)),
    ]
    for fast, graph, args, opts in cases:
        a = fast(*args, **opts)
        b = cn.build_model(graph(*args, **opts))
        assert a.cells == b.cells
        for key in ("omega", "drive", "alpha0", "n0", "battery"):
            assert np.array_equal(getattr(a, key), getattr(b, key)), key
        assert a.drive_frequency == b.drive_frequency
        assert rel(a.dense_M(), b.dense_M()) <= BUILDERS_AGREE
        assert (a.Q is None) == (b.Q is None)
        if a.Q is not None:
            assert rel(a.dense_Q(), b.dense_Q()) <= BUILDERS_AGREE
    with pytest.raises(cn.NetworkError, match="unknown option"):
        S.chain_model(4, kapa=0.1)
    with pytest.raises(cn.NetworkError, match="drop J"):
        S.chain_model(4, J=0.1)
    # Same checks as the graph builders, which add_cell(G, 0, ...) would raise.
    for bad, key in ((dict(kappa=-0.1), "kappa"), (dict(omega=0.0), "omega"), (dict(drive="0.1"), "drive"),
                     (dict(gamma="0.04"), "gamma"), (dict(n_th=float("nan")), "n_th")):
        with pytest.raises(cn.NetworkError, match=key):
            S.lattice_model(2, 3, **bad)
        with pytest.raises(cn.NetworkError, match=key):
            cn.lattice(2, 3, **bad)


def test_matrix_stepping_reports_a_non_finite_state_as_such():
    X0 = np.eye(2, dtype=complex)
    X0[1, 1] = np.nan  # a NaN sum never converges: the message must say non-finite, not "did not converge"
    with pytest.raises(cn.SolverError, match="non-finite"):
        S.propagate_matrix(np.array([[-1.0, 0.0], [1.0, -1.0]], complex), np.eye(2, dtype=complex), X0,
                           np.array([1.0]), np.zeros(1, np.int64), out_diag=np.empty((1, 2)))


def test_large_chain_steady_state_closed_form():
    """PHYSICS.md section 6 on 20,000 cells (sparse, O(N)): alpha_n = (2 Gamma / Lambda_n) alpha_{n-1}."""
    n, g, k, E = 20_000, 0.04, 0.003, 0.1
    ss = cn.steady_state(S.chain_model(n, gamma=g, kappa=k, drive=E))
    lam = np.full(n, k + 2 * g)
    lam[[0, -1]] = k + g
    ratio = np.r_[1.0, 2 * g / lam[1:]]
    expect = np.abs(-2j * E / lam[0] * np.cumprod(ratio)) ** 2
    head = expect > 1e-250  # beyond, the amplitudes underflow (they are flushed to zero)
    assert rel(ss.energies[head], expect[head]) <= SOLVES_AGREE
    assert np.all(ss.energies[~head] < 1e-200)


def test_exact_sparse_without_amplitudes():
    model = S.chain_model(500)
    full = cn.simulate(model, TIMES)
    lean = cn.simulate(model, TIMES, store_amplitudes=False)
    assert lean.amplitudes is None
    assert np.array_equal(lean.energies, full.energies)
    pytest.importorskip("xarray")
    ds = lean.to_xarray()
    assert "amplitude" not in ds and np.array_equal(ds["energy"].values, full.energies)
    assert np.allclose(full.energies, model.omega * np.abs(full.amplitudes) ** 2, rtol=1e-14, atol=0)


def test_parallel_kernels_match_serial(monkeypatch):
    model = S.chain_model(60, n_th=0.1)
    serial = cn.simulate(model, TIMES[:10], method="exact-sparse")
    monkeypatch.setattr(config, "PARALLEL_MIN_CELLS", 1)
    monkeypatch.setattr(config, "PARALLEL_MIN_CELLS_THERMAL", 1)
    threaded = cn.simulate(model, TIMES[:10], method="exact-sparse")
    assert rel(threaded.energies, serial.energies) <= 1e-13


def test_duplicate_csr_entries_are_summed():
    M = sp.csr_array((np.array([-1.0, -1.0, 0.5, -2.0], complex), np.array([0, 0, 0, 1]), np.array([0, 2, 4])),
                     shape=(2, 2))
    order = S.cascade_order(M)
    x = S.solve_cascaded(M, np.array([1.0, 1.0], complex), order)
    assert rel(x, la.solve(M.toarray(), [1.0, 1.0])) <= SOLVES_AGREE


def test_one_pass_substitution_checks_triangularity_and_reports_the_diagonal():
    model = S.chain_model(50, drive=0.3, sparse=True)
    sub = S.forward_substitution(model.M, 1j * model.drive, model.omega)
    alpha = spla.spsolve(model.M.tocsc(), 1j * model.drive)
    assert rel(sub.x, alpha) <= SOLVES_AGREE
    assert rel(sub.energy, model.omega * np.abs(alpha) ** 2) <= SOLVES_AGREE
    diag = model.M.diagonal()
    assert sub.diag_max_real == diag.real.max() and sub.diag_max_abs == pytest.approx(np.abs(diag).max(), rel=1e-15)
    assert np.array_equal(S.forward_substitution(model.M, model.drive, model.omega, scale=1j).x, sub.x)  # exact
    lattice = S.lattice_model(4, 5, sparse=True)  # rows with two off-diagonal entries: the general loop
    sub = S.forward_substitution(lattice.M, 1j * lattice.drive)
    assert rel(sub.x, spla.spsolve(lattice.M.tocsc(), 1j * lattice.drive)) <= SOLVES_AGREE
    upper = cn.build_model(cn.chain(6), nodelist=list(reversed(range(6))), sparse=True)
    assert S.forward_substitution(upper.M, np.ones(6)) is None  # a real entry above the diagonal


def test_unstable_cascade_names_the_first_undamped_cell():
    """Triangular M: stable iff every Re M_ii < 0. Cell 3 (of 5) undamped; both cell orders."""
    M = np.diag([-0.1, -0.2, -0.3, 0.0, -0.5]).astype(complex) + np.diag(np.full(4, 0.05 + 0.01j), -1)
    base = S.chain_model(5)
    for perm in (np.arange(5), np.array([4, 2, 0, 3, 1])):
        model = cn.Model(cells=tuple(np.array(base.cells)[perm].tolist()), omega=base.omega, drive_frequency=1.0,
                         M=sp.csr_array(M[np.ix_(perm, perm)]), drive=np.full(5, 0.1 + 0j), Q=None,
                         alpha0=base.alpha0, n0=base.n0, battery=base.battery)
        with pytest.raises(cn.NoSteadyStateError, match=r"no steady state.*cell 3\b"):
            cn.steady_state(model)
        with pytest.raises(cn.NoSteadyStateError, match=r"cell 3\b"):
            cn.check_stability(model)


def test_exact_sparse_skips_only_rows_the_signal_has_not_reached():
    """The stepping computes rows up to the reach of the state's support (M's pattern); the answer must
    not depend on where the signal enters (cells listed with or against the flow, so M lower or upper
    triangular) or on a state that starts with a gap (a pulse far ahead of the driven front)."""
    times = np.linspace(0.0, 900.0, 61)
    for nodelist in (None, list(reversed(range(150)))):
        model = cn.build_model(cn.chain(150, kappa=0.2), nodelist=nodelist, sparse=True)
        alpha0 = model.alpha0.copy()
        alpha0[model.index(140)] = 3.0
        model = cn.Model(cells=model.cells, omega=model.omega, drive_frequency=model.drive_frequency, M=model.M,
                         drive=model.drive, Q=None, alpha0=alpha0, n0=model.n0, battery=model.battery)
        ref = cn.simulate(model, times, method="exact")
        res = cn.simulate(model, times, method="exact-sparse")
        assert rel(res.amplitudes, ref.amplitudes) <= PATHS_AGREE
        pulse = [model.index(c) for c in range(135, 150)]
        assert rel(res.amplitudes[3][pulse], ref.amplitudes[3][pulse]) <= PATHS_AGREE


def test_small_expm_kernel_matches_scipy():
    """kernels.expm_small (the dense exact method's propagators for a few cells) against scipy's expm,
    with and without scaling and squaring."""
    from chiralnet import kernels

    rng = np.random.default_rng(3)
    for m, size in ((3, 0.1), (3, 5.0), (9, 40.0)):
        A = (rng.standard_normal((4, m, m)) + 1j * rng.standard_normal((4, m, m))) * size / m
        out = np.empty_like(A)
        kernels.expm_small(A, out)
        assert rel(out, la.expm(A)) <= 1e-13, (m, size)
