"""chiralnet.linalg: cascade order, forward substitution, triangular Lyapunov, stability, small expm."""

import numpy as np
import pytest
import scipy.linalg as la
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import chiralnet as cn
from chiralnet import config
from chiralnet.arrays import chain_model, lattice_model
from chiralnet.linalg.cascade import cascade_order, forward_substitution, lyapunov_cascaded, solve_cascaded

SOLVES_AGREE = 1e-12     # cascaded (triangular) vs general solve, relative


def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def test_cascade_order_finds_permuted_triangular_structure():
    G = cn.lattice(3, 3)
    order = list(reversed(list(G.nodes)[:9]))  # cells listed against the flow: M upper triangular
    model = cn.build_model(G, nodelist=order, sparse=True)
    M = model.M.toarray()
    assert np.count_nonzero(np.triu(M, 1)) > 0
    perm = cascade_order(model.M)
    assert perm is not None
    P = M[np.ix_(perm, perm)]
    assert np.count_nonzero(np.abs(np.triu(P, 1)) > 0) == 0
    x = solve_cascaded(model.M, -model.forcing, perm)
    assert rel(x, spla.spsolve(model.M.tocsc(), -model.forcing)) <= SOLVES_AGREE
    assert cascade_order(cn.build_model(cn.ring(4)).M) is None


def test_triangular_steady_state_matches_general_solves():
    model = cn.build_model(cn.lattice(4, 5, n_th=0.4), nodelist=list(reversed(range(20))))
    order = cascade_order(model.M)
    alpha = solve_cascaded(model.M, -model.forcing, order)
    assert rel(alpha, la.solve(model.dense_M(), -model.forcing)) <= SOLVES_AGREE
    A = np.conj(model.dense_M())
    X = lyapunov_cascaded(A, -model.dense_Q(), order)
    ref = la.solve_continuous_lyapunov(A, -model.dense_Q())
    assert rel(X, ref) <= SOLVES_AGREE
    ss = cn.steady_state(model)
    assert rel(ss.fluctuations, ref.diagonal().real) <= SOLVES_AGREE


def test_chiral_link_with_asymmetric_coupling_counts_as_cascade():
    """xi != 1 leaves |M[u, v]| ~ 1e-18 of rounding where the link cancels it: still a cascade."""
    model = cn.build_model(cn.two_cell(kappa_a=0.1, kappa_b=0.003, gamma=0.01, optimal=True))
    assert cascade_order(model.M) is not None
    assert cn.steady_state(model).method == "forward-substitution"


def test_large_chain_steady_state_closed_form():
    """The chiral chain of docs/theory/model.md on 20,000 cells (sparse, O(N)):
    alpha_n = (2 Gamma / Lambda_n) alpha_{n-1}."""
    n, g, k, E = 20_000, 0.04, 0.003, 0.1
    ss = cn.steady_state(chain_model(n, gamma=g, kappa=k, drive=E))
    lam = np.full(n, k + 2 * g)
    lam[[0, -1]] = k + g
    ratio = np.r_[1.0, 2 * g / lam[1:]]
    expect = np.abs(-2j * E / lam[0] * np.cumprod(ratio)) ** 2
    head = expect > 1e-250  # beyond, the amplitudes underflow (they are flushed to zero)
    assert rel(ss.energies[head], expect[head]) <= SOLVES_AGREE
    assert np.all(ss.energies[~head] < 1e-200)


def test_duplicate_csr_entries_are_summed():
    M = sp.csr_array((np.array([-1.0, -1.0, 0.5, -2.0], complex), np.array([0, 0, 0, 1]), np.array([0, 2, 4])),
                     shape=(2, 2))
    order = cascade_order(M)
    x = solve_cascaded(M, np.array([1.0, 1.0], complex), order)
    assert rel(x, la.solve(M.toarray(), [1.0, 1.0])) <= SOLVES_AGREE


def test_one_pass_substitution_checks_triangularity_and_reports_the_diagonal():
    model = chain_model(50, drive=0.3, sparse=True)
    sub = forward_substitution(model.M, 1j * model.drive, model.omega)
    alpha = spla.spsolve(model.M.tocsc(), 1j * model.drive)
    assert rel(sub.x, alpha) <= SOLVES_AGREE
    assert rel(sub.energy, model.omega * np.abs(alpha) ** 2) <= SOLVES_AGREE
    diag = model.M.diagonal()
    assert sub.diag_max_real == diag.real.max() and sub.diag_max_abs == pytest.approx(np.abs(diag).max(), rel=1e-15)
    assert np.array_equal(forward_substitution(model.M, model.drive, model.omega, scale=1j).x, sub.x)  # exact
    lattice = lattice_model(4, 5, sparse=True)  # rows with two off-diagonal entries: the general loop
    sub = forward_substitution(lattice.M, 1j * lattice.drive)
    assert rel(sub.x, spla.spsolve(lattice.M.tocsc(), 1j * lattice.drive)) <= SOLVES_AGREE
    upper = cn.build_model(cn.chain(6), nodelist=list(reversed(range(6))), sparse=True)
    assert forward_substitution(upper.M, np.ones(6)) is None  # a real entry above the diagonal


def test_unstable_cascade_names_the_first_undamped_cell():
    """Triangular M: stable iff every Re M_ii < 0. Cell 3 (of 5) undamped; both cell orders."""
    M = np.diag([-0.1, -0.2, -0.3, 0.0, -0.5]).astype(complex) + np.diag(np.full(4, 0.05 + 0.01j), -1)
    base = chain_model(5)
    for perm in (np.arange(5), np.array([4, 2, 0, 3, 1])):
        model = cn.Model(cells=tuple(np.array(base.cells)[perm].tolist()), omega=base.omega, drive_frequency=1.0,
                         M=sp.csr_array(M[np.ix_(perm, perm)]), drive=np.full(5, 0.1 + 0j), Q=None,
                         battery=base.battery)
        with pytest.raises(cn.NoSteadyStateError, match=r"no steady state.*cell 3\b"):
            cn.steady_state(model)
        with pytest.raises(cn.NoSteadyStateError, match=r"cell 3\b"):
            cn.check_stability(model)


def test_small_expm_kernel_matches_scipy():
    """linalg.expm.expm_small (the dense exact method's propagators for a few cells) against scipy's expm,
    with and without scaling and squaring."""
    from chiralnet.linalg.expm import expm_small

    rng = np.random.default_rng(3)
    for m, size in ((3, 0.1), (3, 5.0), (9, 40.0)):
        A = (rng.standard_normal((4, m, m)) + 1j * rng.standard_normal((4, m, m))) * size / m
        out = np.empty_like(A)
        expm_small(A, out)
        assert rel(out, la.expm(A)) <= 1e-13, (m, size)


def test_a_weak_real_coupling_beside_a_far_detuned_cell_is_kept():
    """Only the exact cancellation of a balanced chiral link is dropped, decided from the entry's own terms:
    a coupling 1e-18 of max|M| (a cell detuned by 1e3 elsewhere) stays in M, in the cascade and in the
    steady state, on the dense and the sparse paths (it was dropped by a threshold relative to max|M|)."""
    G = cn.network()
    cn.add_cell(G, "far", omega=1001.0, kappa=0.01, drive=0.1)
    cn.add_cell(G, "a", omega=1.0, kappa=0.01, drive=0.1)
    cn.add_cell(G, "b", omega=1.0, kappa=0.01, battery=True)
    cn.add_coherent_link(G, "a", "b", J=1e-15)
    for sparse in (False, True):
        model = cn.build_model(G, sparse=sparse)
        ss = cn.steady_state(model)
        ref = la.solve(model.dense_M(), 1j * model.drive)
        assert rel(ss.amplitudes, ref) <= SOLVES_AGREE
        assert abs(ss.amplitudes[2]) > 0          # the battery is reached through the weak link
        res = cn.simulate(model, [0.0, 50.0, 100.0], method="exact-sparse")
        dense = cn.simulate(model, [0.0, 50.0, 100.0], method="exact")
        assert rel(res.amplitudes[:, 2], dense.amplitudes[:, 2]) <= 1e-10 and np.all(res.energies[1:, 2] > 0)


def test_balanced_chiral_links_cancel_exactly_for_any_xi():
    """M[u, v] of a balanced link is an exact zero (its two terms cancel to their own rounding), so a
    chiral chain with asymmetric couplings is still recognised as cascaded and solved by substitution."""
    for xi in (1.0, 0.3, 7.0, np.sqrt(2.0)):
        G = cn.network()
        for c in "abc":
            cn.add_cell(G, c, omega=1.0, kappa=0.003, drive=0.1 if c == "a" else 0.0)
        cn.add_chiral_link(G, "a", "b", gamma=0.04, xi=xi)
        cn.add_chiral_link(G, "b", "c", gamma=0.02, xi=1 / xi)
        M = cn.build_model(G).dense_M()
        assert M[0, 1] == 0 and M[1, 2] == 0 and M[1, 0] != 0
        assert cn.steady_state(G).method == "forward-substitution"


# ---------------------------------------------------------------------------------------------
# Sparse propagators (chiralnet.linalg.propagator)

PROPAGATOR_AGREES = 1e-14  # P against scipy's expm, relative to the largest entry


def test_a_priori_terms_meet_the_bound_and_one_fewer_does_not():
    import math

    from chiralnet.linalg.propagator import terms_a_priori

    tol = config.TAYLOR_TOL
    for theta in (1e-3, 0.18, 0.9, 3.0):
        K = terms_a_priori(theta)

        def bound(k):
            return theta ** (k + 1) / math.factorial(k + 1) * math.exp(2 * theta)

        assert bound(K) <= tol < bound(K - 1)
    assert terms_a_priori(0.0) == 0
    assert terms_a_priori(float("nan")) is None
    assert terms_a_priori(1e3) is None  # beyond TAYLOR_MAX_TERMS: no propagator, never a wrong one


@pytest.mark.parametrize("nonreciprocal", [True, False])
def test_sparse_propagator_matches_expm_and_keeps_its_band(nonreciprocal):
    from chiralnet.linalg.csr import pruned_csr
    from chiralnet.linalg.propagator import sparse_propagator
    from chiralnet.linalg.csr import shifted

    model = chain_model(60, nonreciprocal=nonreciprocal, sparse=True)
    B, mu = shifted(pruned_csr(model.M))
    P, K = sparse_propagator(B, mu, 3.0)
    ref = la.expm(model.dense_M() * 3.0)
    assert np.abs(P.toarray() - ref).max() <= PROPAGATOR_AGREES * np.abs(ref).max()
    rows, cols = P.nonzero()
    band = K if nonreciprocal else 2 * K  # a one-way chain reaches K cells down, a two-way one K both ways
    assert (np.abs(rows - cols) <= K).all() and P.nnz <= (band + 1) * 60
    if nonreciprocal:
        assert (cols <= rows).all()  # a cascade stays triangular


def test_sparse_propagator_declines_when_it_would_fill_in(monkeypatch):
    from chiralnet.linalg.csr import pruned_csr
    from chiralnet.linalg.propagator import sparse_propagator
    from chiralnet.linalg.csr import shifted

    B, mu = shifted(pruned_csr(lattice_model(12, 12).M))
    P, K = sparse_propagator(B, mu, 20.0)
    assert P is not None and P.nnz > 8 * 144  # a 2D lattice fills in as K^2 a row
    monkeypatch.setattr(config, "PROPAGATOR_MAX_ROW_ENTRIES", 8)
    assert sparse_propagator(B, mu, 20.0)[0] is None


def test_a_subnormal_coupling_is_a_dependency():
    """5.6e-309 squares to zero but is a coupling: a feedback loop through it is not a cascade, and forward
    substitution refuses an entry above the diagonal however small (found by the scattering fuzz test)."""
    tiny = -5.56268465e-309
    M = sp.csr_array(np.array([[-0.25, tiny], [tiny, -0.25]], complex))
    assert cascade_order(M) is None
    assert forward_substitution(M, np.ones(2, complex)) is None
    upper = sp.csr_array(np.array([[-0.25, tiny], [0.0, -0.25]], complex))
    assert list(cascade_order(upper)) == [1, 0]
    G = cn.network()
    for c in ("a", "b"):
        cn.add_cell(G, c, omega=1.0, kappa=0.5)
    cn.add_coherent_link(G, "a", "b", J=-tiny)
    delta = np.linspace(-1.0, 1.0, 5)
    S = {m: cn.scattering(G, delta, method=m).S for m in ("auto", "dense", "sparse")}
    assert np.array_equal(S["auto"], S["dense"]) or np.abs(S["auto"] - S["dense"]).max() <= 1e-15


# ---------------------------------------------------------------------------------------------
# Issue 21: small dense routes (config.SMALL_MAX_CELLS) give the general routes' answers.


def test_small_dense_csr_parts_are_scipys():
    from chiralnet.linalg.csr import csr_parts

    rng = np.random.default_rng(2)
    for n in (1, 2, 5, 9):
        M = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
        M[rng.random((n, n)) < 0.5] = 0
        A = sp.csr_array(M)
        for got, want in zip(csr_parts(M), (A.indptr, A.indices, A.data)):
            assert got.dtype == want.dtype and np.array_equal(got, want)


def _random_generator(rng, n):
    M = np.zeros((n, n), complex)
    M[np.diag_indices(n)] = -rng.uniform(-0.02, 0.1, n) - 1j * rng.normal(size=n)
    mask = rng.random((n, n)) < rng.uniform(0, 0.6)
    M[mask] += (rng.normal(size=mask.sum()) + 1j * rng.normal(size=mask.sum())) * rng.uniform(0, 0.5)
    return np.tril(M) if rng.random() < 0.3 else M


def test_small_stability_check_decides_as_the_general_route(monkeypatch):
    """Blocks, Gershgorin discs and eig of doubtful blocks in one kernel: the same verdict and message as
    the scipy.sparse route on random generators (stable, unstable, cascaded, with feedback blocks)."""
    from chiralnet.errors import NoSteadyStateError
    from chiralnet.linalg.stability import check_stability_arrays

    def verdict(M, cells):
        try:
            check_stability_arrays(M, cells, cascade_order(M))
        except NoSteadyStateError as exc:
            return str(exc)
        return None

    rng = np.random.default_rng(5)
    cases = [_random_generator(rng, int(rng.integers(1, 9))) for _ in range(400)]
    cases.append(np.array([[-0.01, 0.3j], [0.3j, 0.0]]))  # discs in doubt, eig proves it stable
    cases.append(np.array([[0.0, 0.3j], [0.3j, 0.0]]))    # a lossless pair: unstable
    small = [verdict(M, tuple(range(M.shape[0]))) for M in cases]
    monkeypatch.setattr(config, "SMALL_MAX_CELLS", 0)
    general = [verdict(M, tuple(range(M.shape[0]))) for M in cases]
    assert small == general
    assert 50 < sum(v is not None for v in small) < 350  # both verdicts are exercised
    assert small[-2] is None and ("cell 0" in small[-1] or "cell 1" in small[-1])


def test_small_lyapunov_has_scipys_bits():
    """linalg.lyapunov.solve_continuous_lyapunov makes SciPy's LAPACK calls without its wrapping: the same bits,
    on random stable generators and the conj(M), -Q of assembled models; other inputs go to SciPy."""
    import scipy.linalg as la

    from chiralnet.linalg.lyapunov import solve_continuous_lyapunov

    rng = np.random.default_rng(5)
    for _ in range(300):
        n = int(rng.integers(1, 14))
        A = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n)) - 3 * n * np.eye(n)
        B = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
        Q = -(B @ B.conj().T)
        np.testing.assert_array_equal(solve_continuous_lyapunov(A, Q), la.solve_continuous_lyapunov(A, Q))
    for G in (cn.chain(4, nonreciprocal=False, n_th=0.1), cn.two_cell(n_th=0.2)):
        m = cn.build_model(G)
        a, q = np.conj(m.dense_M()), -m.dense_Q()
        np.testing.assert_array_equal(solve_continuous_lyapunov(a, q), la.solve_continuous_lyapunov(a, q))
    real = np.array([[-1.0, 0.2], [0.0, -2.0]])
    np.testing.assert_array_equal(solve_continuous_lyapunov(real, -np.eye(2)), la.solve_continuous_lyapunov(real, -np.eye(2)))


def test_expm_one_with_zero_rows_forms_the_rows_above_them_only():
    """expm_one forms only the rows above an augmented matrix's trailing zero rows (those of every product are
    the identity's times a number): the same matrix exponential, to 1e-13 of scipy's, real and complex; the
    zero rows' own rows are the identity's exactly."""
    import scipy.linalg as sla

    from chiralnet.linalg.expm import expm_one, expm_parameters, one_norm_small

    rng = np.random.default_rng(21)
    for m in (1, 2, 3, 6, 12):
        for zero_rows in range(0, min(m, 2) + 1):
            for dtype in (float, complex):
                A = rng.normal(size=(m, m)) * 3
                if dtype is complex:
                    A = A + 1j * rng.normal(size=(m, m))
                A[m - zero_rows:] = 0
                s, q = expm_parameters(one_norm_small(A))
                X, E, T, out = (np.empty((m, m), dtype) for _ in range(4))
                expm_one(A, 1.0, s, q, X, E, T, out)
                want = sla.expm(A)
                assert np.abs(out - want).max() <= 1e-13 * np.abs(want).max()
                assert np.array_equal(out[m - zero_rows:], np.eye(m)[m - zero_rows:])


def test_cascade_order_keeps_a_stored_triangular_order():
    """Two independent chains stored one after the other are triangular as stored: cascade_order returns that
    order (Kahn's breadth-first order would interleave them), and the triangular solves agree either way."""
    n = 30
    M = sp.lil_array((2 * n, 2 * n), dtype=complex)
    for i in range(2 * n):
        M[i, i] = -0.05 - 0.01 * (i % 7)
        if i % n:
            M[i, i - 1] = 0.04
    M = sp.csr_array(M)
    order = cascade_order(M)
    assert np.array_equal(order, np.arange(2 * n))
    Q = np.diag(np.linspace(0.1, 0.3, 2 * n)).astype(complex)
    X = lyapunov_cascaded(M.conj(), -Q, order)
    ref = la.solve_continuous_lyapunov(M.toarray().conj(), -Q)
    assert np.abs(X - ref).max() < 1e-13 * np.abs(ref).max()


def test_real_triangular_lyapunov_is_the_complex_solve_in_real_arithmetic():
    """lyapunov_cascaded with a real A and a real C solves in real arithmetic (a float result); it equals the
    complex solve of the same equation to 1e-15 relative, and a complex C still gets the complex solve."""
    rng = np.random.default_rng(4)
    n = 40
    A = np.tril(rng.normal(size=(n, n)) * 0.05, -1) - np.diag(rng.uniform(0.1, 1.0, n))
    C = rng.normal(size=(n, n))
    C = C + C.T
    order = np.arange(n)
    real = lyapunov_cascaded(sp.csr_array(A.astype(complex)), C, order)
    cplx = lyapunov_cascaded(sp.csr_array(A.astype(complex)), C.astype(complex), order)
    assert real.dtype == np.float64 and cplx.dtype == np.complex128
    assert np.abs(real - cplx).max() <= 1e-15 * np.abs(cplx).max()
    assert np.abs(A @ real + real @ A.T - C).max() < 1e-13 * np.abs(C).max()


def test_symmetrize_in_place():
    """linalg.lyapunov.symmetrize: (A + A^H)/2 or (A + A^T)/2 in place (the same array back), exact."""
    from chiralnet.linalg.lyapunov import symmetrize

    rng = np.random.default_rng(5)
    for n in (1, 7, 130):
        A = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
        want_h, want_s = 0.5 * (A + A.conj().T), 0.5 * (A + A.T)
        B = A.copy()
        assert symmetrize(B, True) is B and np.array_equal(B, B.conj().T)
        assert np.abs(B - want_h).max() < 1e-15 * np.abs(A).max()
        C = A.copy()
        assert symmetrize(C, False) is C and np.array_equal(C, C.T)
        assert np.abs(C - want_s).max() < 1e-15 * np.abs(A).max()


@pytest.mark.parametrize("real_data", [True, False])
def test_real_deviation_passes_equal_the_complex_ones(real_data):
    """propagate_deviation(real=True) on a real triangular M and a real D0 steps D as a real array with the
    imaginary planes skipped; it equals the complex passes to 1e-14 relative. Given complex data it runs the
    complex passes (the flag is checked, not trusted) and equals them exactly."""
    from chiralnet.solve.fluctuations import propagate_deviation

    rng = np.random.default_rng(6)
    n = 80
    M = sp.diags_array([-0.05 - 0.02 * rng.random(n), 0.04 * np.ones(n - 1)], offsets=[0, -1], format="csr")
    M = sp.csr_array(M.astype(complex) + (0 if real_data else sp.diags_array(0.01j * np.ones(n)).tocsr()))
    a = rng.normal(size=(n, n)) + (0 if real_data else 1j * rng.normal(size=(n, n)))
    D0 = a @ a.conj().T / n
    X_ss = np.diag(rng.random(n)).astype(complex)
    steps, kind = np.array([3.0, 7.5]), np.array([0, 1, 1, 0, 1])
    out = {}
    for real in (False, True):
        diag = np.empty((kind.size, n))
        Nc, _ = propagate_deviation(M, X_ss.copy(), D0, steps, kind, out_diag=diag, real=real)
        out[real] = (Nc, diag)
    tol = 1e-14 if real_data else 0.0
    for k in range(2):
        assert np.abs(out[True][k] - out[False][k]).max() <= tol * np.abs(out[False][k]).max()
    P = [la.expm(M.toarray().conj() * h) for h in steps]
    D = D0.copy()
    for s in kind:
        D = P[s] @ D @ P[s].conj().T
    assert np.abs(out[True][0] - (X_ss + D)).max() < 1e-12 * np.abs(X_ss + D).max()
