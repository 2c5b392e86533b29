"""simulate and steady_state on random networks against the naive expm / Lyapunov reference.

Every method in the registry chiralnet.METHODS is run, so a new method is covered automatically.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import chiralnet as cn
from conftest import RANDOM_EXACT_REL, RANDOM_RK_REL, RANDOM_STEADY_REL, RK_TIGHT
from naive import naive_simulate, naive_steady_state, rel_err
from strategies import networks

#: Options per method that make it as accurate as it can be.
TIGHT = {"exact": {}, "exact-sparse": {}, "rk45": RK_TIGHT}
#: Accuracy each method must reach against the naive reference at TIGHT options.
ACCURACY = {"exact": RANDOM_EXACT_REL, "exact-sparse": RANDOM_EXACT_REL, "rk45": RANDOM_RK_REL}


def test_every_method_has_a_tolerance():
    assert set(cn.METHODS) == set(TIGHT) == set(ACCURACY)


uniform_times = st.builds(lambda t1, k: np.linspace(0.0, t1, k), st.floats(1.0, 60.0), st.integers(2, 25))
nonuniform_times = st.builds(
    lambda steps, start: start + np.cumsum(steps),
    st.lists(st.floats(0.01, 8.0), min_size=1, max_size=20), st.sampled_from([0.0, 0.37]),
)


@pytest.mark.parametrize("method", sorted(cn.METHODS))
@given(G=networks(), times=st.one_of(uniform_times, nonuniform_times))
def test_simulate_matches_naive_expm(method, G, times):
    want, alpha = naive_simulate(G, times)
    res = cn.simulate(G, times, method=method, **TIGHT[method])
    assert res.method == method
    assert res.energies.shape == (times.size, G.number_of_nodes() - len(cn.reservoirs(G)))
    np.testing.assert_array_equal(res.times, times)
    assert rel_err(res.energies, want) <= ACCURACY[method]
    assert rel_err(res.amplitudes, alpha) <= ACCURACY[method] if np.abs(alpha).max() > 0 else True


@given(G=networks(), times=nonuniform_times)
def test_rk45_matches_exact(G, times):
    exact = cn.simulate(G, times, method="exact")
    rk = cn.simulate(G, times, method="rk45", **RK_TIGHT)
    assert rel_err(rk.energies, exact.energies) <= RANDOM_RK_REL


@given(G=networks())
def test_steady_state_matches_naive(G):
    want, alpha = naive_steady_state(G)
    ss = cn.steady_state(G)
    assert ss.energies.shape == want.shape
    assert rel_err(ss.energies, want) <= RANDOM_STEADY_REL
    if np.abs(alpha).max() > 0:
        assert rel_err(ss.amplitudes, alpha) <= RANDOM_STEADY_REL


@given(G=networks())
def test_sparse_model_gives_the_same_results(G):
    dense, sparse = cn.build_model(G, sparse=False), cn.build_model(G, sparse=True)
    a, b = cn.steady_state(dense), cn.steady_state(sparse)
    assert rel_err(b.energies, a.energies) <= RANDOM_STEADY_REL
    t = np.linspace(0, 10, 6)
    for method in cn.METHODS:
        x = cn.simulate(dense, t, method=method, **TIGHT[method])
        y = cn.simulate(sparse, t, method=method, **TIGHT[method])
        assert rel_err(y.energies, x.energies) <= ACCURACY[method]


@pytest.mark.parametrize("method", sorted(cn.METHODS))
@given(G=networks())
def test_long_time_reaches_steady_state(method, G):
    # kappa >= 0.02 everywhere, so every mode decays at least as e^{-0.01 t}: e^{-40} at t = 4000.
    ss = cn.steady_state(G)
    res = cn.simulate(G, [0.0, 1000.0, 4000.0], method=method, **TIGHT[method])
    assert rel_err(res.energies[-1], ss.energies) <= ACCURACY[method]


def test_simulate_accepts_model_and_graph_alike():
    G = cn.chain(4, n_th=0.1)
    t = np.linspace(0, 50, 11)
    a = cn.simulate(G, t)
    b = cn.simulate(cn.build_model(G), t)
    np.testing.assert_array_equal(a.energies, b.energies)
    np.testing.assert_array_equal(cn.steady_state(G).energies, cn.steady_state(cn.build_model(G)).energies)


def test_auto_picks_exact_on_uniform_grid():
    assert cn.simulate(cn.two_cell(), np.linspace(0, 10, 11)).method == "exact"


def test_undamped_cell_simulates_without_steady_state():
    # A resonantly driven, undamped cell: alpha = -i E t, no steady state, simulate still exact.
    G = cn.network()
    cn.add_cell(G, "c", omega=1.0, drive=0.1)
    t = np.linspace(0, 100, 11)
    for method in cn.METHODS:
        res = cn.simulate(G, t, method=method, **TIGHT[method])
        assert rel_err(res.amplitudes[:, 0], -0.1j * t) <= ACCURACY[method]
    with pytest.raises(cn.NoSteadyStateError, match="'c'"):
        cn.steady_state(G)


# ---------------------------------------------------------------------------------------------
# rk45: cost set by accuracy, and convergence.


def _test_network():
    G = cn.network(drive_frequency=1.0)
    for i in range(4):
        cn.add_cell(G, i, omega=1 + 0.2 * i, kappa=0.05, n_th=0.1 * i, drive=0.3 * np.exp(1j * i),
                    alpha0=0.5j, n0=0.1)
    cn.add_coherent_link(G, 0, 1, 0.2 + 0.1j)
    cn.add_coherent_link(G, 2, 1, 0.3j)
    cn.add_reservoir(G, {0: 1, 2: 0.5j, 3: -1}, gamma=0.2, n_th=0.3)
    return G


RTOLS = [1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10]


@pytest.fixture(scope="module")
def rk_sweep():
    G = _test_network()
    t = np.linspace(0, 100, 51)
    exact = cn.simulate(G, t, method="exact").energies
    runs = [cn.simulate(G, t, method="rk45", rtol=r, atol=r * 1e-2) for r in RTOLS]
    return exact, runs


def test_rk45_cost_is_set_by_accuracy(rk_sweep):
    _, runs = rk_sweep
    steps = [r.stats["steps"] for r in runs]
    assert all(a < b for a, b in zip(steps, steps[1:])), steps
    # A fixed tiny step would not care about rtol; 5th order needs ~10^(6/5) = 16x, not 10^6x, more steps.
    assert steps[-1] < 30 * steps[0], steps
    assert runs[0].stats["rhs_evaluations"] < runs[-1].stats["rhs_evaluations"]


def test_rk45_error_tracks_rtol_and_fits_fifth_order(rk_sweep):
    exact, runs = rk_sweep
    errs = np.array([rel_err(r.energies, exact) for r in runs])
    assert np.all(np.diff(errs) < 0), errs
    # Global error within a factor 30 of rtol (error control works, and is not wildly pessimistic).
    ratio = errs / np.array(RTOLS)
    assert np.all((ratio < 30) & (ratio > 1 / 30)), ratio
    # Like diffrax's test_integrate: fit the order p in err ~ steps^-p (Dormand-Prince is 5th order).
    steps = np.array([r.stats["steps"] for r in runs], float)
    order = -np.polyfit(np.log(steps), np.log(errs), 1)[0]
    assert 4.0 <= order <= 6.5, order


def test_rk45_stats_reported():
    res = cn.simulate(cn.two_cell(), np.linspace(0, 100, 5), method="rk45")
    assert set(res.stats) >= {"steps", "rejected", "rhs_evaluations"}
    assert res.stats["rhs_evaluations"] >= 6 * res.stats["steps"]


def test_rk45_max_steps_reports_failure():
    with pytest.raises(cn.SolverError, match="max_steps"):
        cn.simulate(cn.two_cell(), [0.0, 1000.0], method="rk45", max_steps=3)


@pytest.mark.parametrize("method", sorted(cn.METHODS))
@pytest.mark.parametrize("t_end", [1.0, 60.0, 3000.0, 1e5])
def test_thermal_cell_relaxes_exactly_over_long_steps(method, t_end):
    # Regression: the Van Loan block e^{-conj(M) dt} of "exact" overflowed for kappa dt / 2 > 709
    # (reported as "network unstable").
    kappa, n_th, n0 = 0.5, 0.5, 0.1
    G = cn.network()
    cn.add_cell(G, "hot", omega=1.3, kappa=kappa, n_th=n_th, n0=n0)
    t = np.array([0.0, t_end / 3, t_end])
    want = 1.3 * (n_th + (n0 - n_th) * np.exp(-kappa * t))
    res = cn.simulate(G, t, method=method, **TIGHT[method])
    assert rel_err(res.energies[:, 0], want) <= {"exact": 1e-14, "rk45": RANDOM_RK_REL}.get(method, 1e-7)


# ---------------------------------------------------------------------------------------------
# Bad times, methods and options.


@pytest.mark.parametrize("times,fragment", [
    ([0.0, np.nan, 2.0], "times[1]"),
    ([0.0, 1.0, np.inf], "times[2]"),
    ([-1.0, 1.0], "negative"),
    ([0.0, 2.0, 1.0], "increase"),
    ([0.0, 1.0, 1.0], "increase"),
    ([], "non-empty"),
    (np.zeros((2, 2)), "1-D"),
    ("soon", "times"),
    ([0.0, "x"], "times"),
    ([0.0, 1 + 1j], "times"),
    (np.array([0.0, 1 + 1j]), "times"),
    (None, "times"),
])
@pytest.mark.parametrize("method", ["auto", *sorted(cn.METHODS)])
def test_bad_times(times, fragment, method):
    with pytest.raises(cn.SolverError) as info:
        cn.simulate(cn.two_cell(), times, method=method)
    assert fragment in str(info.value)


def test_unknown_method_lists_valid_ones():
    with pytest.raises(cn.ChiralnetError) as info:
        cn.simulate(cn.two_cell(), [0.0, 1.0], method="rk4")
    msg = str(info.value)
    assert "'rk4'" in msg and all(repr(m) in msg for m in ["auto", *cn.METHODS])
    with pytest.raises(cn.ChiralnetError, match="unknown method"):  # not a TypeError (unhashable)
        cn.simulate(cn.two_cell(), [0.0, 1.0], method=["rk45"])


@pytest.mark.parametrize("opts,fragment", [(dict(rtol=-1e-6), "rtol"), (dict(atol=-1.0), "atol"),
                                           (dict(rtol=np.nan), "rtol"), (dict(rtol=0.0), "rtol"),
                                           (dict(atol=0.0), "atol"), (dict(max_steps=0), "max_steps"),
                                           (dict(max_steps=np.inf), "max_steps"),
                                           (dict(rtol=np.complex128(1e-6)), "rtol")])
def test_bad_rk45_options(opts, fragment):
    with pytest.raises(cn.SolverError, match=fragment):
        cn.simulate(cn.two_cell(), [0.0, 1.0], method="rk45", **opts)


@pytest.mark.parametrize("method", ["exact", "exact-sparse"])
@pytest.mark.parametrize("opts", [dict(rtol=1e-6), dict(atol=1e-9), dict(max_steps=10)])
def test_rk45_options_with_an_exact_method_raise(method, opts):
    name = next(iter(opts))
    with pytest.raises(cn.SolverError, match=f"{name} applies to method \\['rk45'\\] only, not '{method}'"):
        cn.simulate(cn.two_cell(), [0.0, 1.0], method=method, **opts)


def test_non_numeric_tolerance_raises():
    with pytest.raises(cn.SolverError, match="rtol must be a number"):
        cn.simulate(cn.two_cell(), [0.0, 1.0], method="rk45", rtol="1e-6")
    with pytest.raises(cn.SolverError, match="store_amplitudes"):
        cn.simulate(cn.two_cell(), [0.0, 1.0], store_amplitudes="no")


def test_unknown_option_raises():
    with pytest.raises(TypeError, match="rtl"):
        cn.simulate(cn.two_cell(), [0.0, 1.0], rtl=1e-6)


def test_single_time_and_time_zero():
    G = cn.two_cell()
    for method in cn.METHODS:
        res = cn.simulate(G, [0.0], method=method)
        assert res.energies.shape == (1, 2) and np.all(res.energies == 0)
        res = cn.simulate(G, [5.0], method=method, **TIGHT[method])
        assert rel_err(res.energies, naive_simulate(G, [5.0])[0]) <= ACCURACY[method]


@given(G=networks(thermal=False, initial=False))
def test_zero_temperature_sparse_rk45_path(G):
    # Zero temperature from vacuum: no fluctuation matrix, and a CSR model takes the sparse rk45 kernel.
    model = cn.build_model(G, sparse=True)
    assert not model.thermal
    t = np.linspace(0, 20, 5)
    want, _ = naive_simulate(G, t)
    res = cn.simulate(model, t, method="rk45", **RK_TIGHT)
    assert rel_err(res.energies, want) <= RANDOM_RK_REL
    assert np.all(res.fluctuations == 0)


def test_auto_avoids_dense_propagators_that_do_not_fit(monkeypatch):
    hot, cold = cn.two_cell(n_th=0.1), cn.two_cell()
    t_hot = np.cumsum(np.linspace(1.0, 2.0, 40))          # 40 distinct steps
    t_cold = np.cumsum(np.linspace(500.0, 900.0, 12))     # outputs far apart: many Taylor substeps each
    exact_hot = cn.simulate(hot, t_hot, method="exact")
    exact_cold = cn.simulate(cold, t_cold, method="exact")
    monkeypatch.setattr(cn.config, "EXACT_MAX_PROPAGATOR_ENTRIES", 100)
    with pytest.raises(cn.SolverError, match="rk45"):
        cn.simulate(hot, t_hot, method="exact")
    # Thermal: exact CSR stepping (rk45 would integrate Nc with dense N^3 products).
    res = cn.simulate(hot, t_hot)
    assert res.method == "exact-sparse"
    assert rel_err(res.energies, exact_hot.energies) <= RANDOM_EXACT_REL
    # Zero temperature, outputs far apart: adaptive rk45.
    res = cn.simulate(cold, t_cold)
    assert res.method == "rk45"
    assert rel_err(res.energies, exact_cold.energies) <= 1e-6   # default rtol = 1e-8


def _paired_chain(kappa_odd, n=8):
    """Coherent pairs (2k, 2k+1), chirally linked 2k+1 -> 2k+2: n/2 feedback blocks of two cells."""
    G = cn.network()
    for i in range(n):
        cn.add_cell(G, i, omega=1.0, kappa=0.01 if i % 2 == 0 else kappa_odd, drive=0.1 if i == 0 else 0.0)
    for k in range(0, n, 2):
        cn.add_coherent_link(G, k, k + 1, 0.02)
        if k + 2 < n:
            cn.add_chiral_link(G, k + 1, k + 2, gamma=0.04)
    return G


def test_stability_of_many_feedback_blocks():
    # kappa = 0 on odd cells: each block fails the Gershgorin test but is stable (eigenvalue check).
    G = _paired_chain(0.0)
    cn.check_stability(G)
    M = cn.build_model(G).dense_M()
    assert np.linalg.eigvals(M).real.max() < 0
    alpha = np.linalg.solve(M, 1j * cn.build_model(G).drive)
    ss = cn.steady_state(G)
    assert rel_err(ss.amplitudes, alpha) <= RANDOM_STEADY_REL
    # a block with no loss at all: undamped pair (6, 7) with no reservoir on 7; named in the error
    G = _paired_chain(0.01)
    G.nodes[6]["kappa"] = 0.0
    G.nodes[7]["kappa"] = 0.0
    G.remove_node("R2")  # the chiral link 5 -> 6 (its reservoir would damp cell 6)
    G.remove_edge(5, 6)
    with pytest.raises(cn.NoSteadyStateError, match="cell (6|7)"):
        cn.check_stability(G)


# --- State: runs start from any state and end with one -------------------------------------------------

CONTINUE_REL = 1e-12   # a run continued from final_state against one long run (rounding of the steps)


@pytest.mark.parametrize("method", sorted(cn.METHODS))
@pytest.mark.parametrize("thermal", [False, True])
def test_a_continued_run_equals_one_long_run(method, thermal):
    G = cn.chain(5, n_th=0.3 if thermal else 0.0)
    cn.add_cell(G, "extra", omega=1.1, kappa=0.02, alpha0=0.4j, n0=0.2)
    cn.add_chiral_link(G, 4, "extra", gamma=0.03)
    opts = {"rtol": 1e-11, "atol": 1e-13} if method == "rk45" else {}
    tol = 1e-8 if method == "rk45" else CONTINUE_REL
    whole = cn.simulate(G, np.linspace(0, 400, 41), method=method, **opts)
    first = cn.simulate(G, np.linspace(0, 200, 21), method=method, **opts)
    second = cn.simulate(G, np.linspace(200, 400, 21), method=method, state0=first.final_state, **opts)
    assert first.final_state.time == 200.0 and second.times[0] == 200.0
    np.testing.assert_allclose(second.energies, whole.energies[20:], rtol=tol, atol=tol * whole.energies.max())
    np.testing.assert_allclose(second.final_state.alpha, whole.final_state.alpha, rtol=0,
                               atol=tol * np.abs(whole.final_state.alpha).max())
    if thermal or method != "rk45":
        a, b = second.final_state.dense_Nc(), whole.final_state.dense_Nc()
        assert np.abs(a - b).max() <= tol * max(np.abs(b).max(), 1.0)


@pytest.mark.parametrize("method", sorted(cn.METHODS))
def test_starting_in_the_steady_state_stays_there(method):
    G = cn.chain(4, n_th=0.1)
    ss = cn.steady_state(G)
    res = cn.simulate(G, np.linspace(50, 1000, 11), state0=ss.state, method=method)
    tol = 1e-7 if method == "rk45" else 1e-12
    np.testing.assert_allclose(res.energies, np.broadcast_to(ss.energies, res.energies.shape), rtol=tol)


def test_state0_must_belong_to_the_network():
    st = cn.steady_state(cn.chain(3)).state
    with pytest.raises(cn.NetworkError, match="does not belong to this network"):
        cn.simulate(cn.chain(4), [0.0, 1.0], state0=st)
    with pytest.raises(cn.SolverError, match="state0 must be a chiralnet.State"):
        cn.simulate(cn.chain(3), [0.0, 1.0], state0=np.zeros(3))
    with pytest.raises(cn.NetworkError, match="finite"):
        cn.State((0, 1), np.array([np.nan, 0.0]))


def test_state0_in_another_cell_order_is_reordered():
    G = cn.chain(3)
    st = cn.simulate(G, [0.0, 300.0]).final_state
    flipped = cn.State(st.cells[::-1], st.alpha[::-1], None, st.time)
    a = cn.simulate(G, [300.0, 600.0], state0=st).energies
    b = cn.simulate(G, [300.0, 600.0], state0=flipped).energies
    np.testing.assert_array_equal(a, b)


def test_non_finite_tolerances_are_refused():
    for bad in (np.inf, np.nan):
        with pytest.raises(cn.SolverError, match="finite"):
            cn.simulate(cn.two_cell(), [0.0, 1.0], method="rk45", atol=bad)
        with pytest.raises(cn.SolverError, match="finite"):
            cn.simulate(cn.two_cell(), [0.0, 1.0], method="rk45", rtol=bad)


# ---------------------------------------------------------------------------------------------
# Issue 21: the small-network kernels of method "exact" against the routes they replace.

#: Fluctuation stepping in loops against BLAS products: the same sums in another order.
SMALL_PRODUCTS_REL = 1e-14


def test_small_affine_kernel_is_bitwise_the_augmented_expm():
    from chiralnet.linalg.expm import expm_small
    from chiralnet.solve.exact import _affine_propagators

    rng = np.random.default_rng(0)
    for n, real in ((1, False), (2, False), (5, False), (11, False), (1, True), (3, True), (11, True)):
        # a real M (a resonant network) takes the real-arithmetic route: the same sums as the complex one
        M = (rng.normal(size=(n, n)) + (0 if real else 1j) * rng.normal(size=(n, n))) * 0.05
        b = rng.normal(size=n) + 1j * rng.normal(size=n)
        dts = np.array([0.3, 50.0, 700.0])
        P, c = _affine_propagators(M, b, dts)
        aug = np.zeros((dts.size, n + 1, n + 1), complex)
        aug[:, :n, :n] = M[None] * dts[:, None, None]
        aug[:, :n, n] = b[None] * dts[:, None]
        E = np.empty_like(aug)
        expm_small(aug, E)
        assert np.array_equal(P, E[:, :n, :n]) and np.array_equal(c, E[:, :n, n])  # bitwise, up to signed zeros


@pytest.mark.parametrize("G", [cn.chain(4, nonreciprocal=False, n_th=0.1), cn.two_cell(n_th=0.3), cn.ring(5, n_th=0.2)],
                         ids=["reciprocal-chain-4", "two-cell", "ring-5"])
@pytest.mark.parametrize("times", [np.linspace(0.0, 3000.0, 61), np.array([0.5, 1.0, 7.0, 7.5, 100.0])],
                         ids=["uniform", "uneven"])
def test_small_fluctuation_kernel_matches_blas_products(monkeypatch, G, times):
    n = len(cn.cells(G))
    start = cn.State(tuple(cn.cells(G)), np.zeros(n, complex), 0.1 * np.eye(n, dtype=complex))  # Nc is stepped
    small = cn.simulate(G, times, state0=start)
    monkeypatch.setattr(cn.config, "SMALL_PRODUCT_MAX_CELLS", 0)
    blas = cn.simulate(G, times, state0=start)
    assert small.method == blas.method == "exact"
    assert rel_err(small.fluctuations, blas.fluctuations) <= SMALL_PRODUCTS_REL
    assert rel_err(small.battery_fluctuations, blas.battery_fluctuations) <= SMALL_PRODUCTS_REL
    assert rel_err(small.final_state.Nc, blas.final_state.Nc) <= SMALL_PRODUCTS_REL


#: The small dense route (simulate._small_run: a few cells, exact propagators) against the sparse route
#: (method="exact-sparse": a Taylor series on CSR) on one network: two exact methods, rounding apart.
SMALL_ROUTE_VS_SPARSE_REL = 1e-12


@given(st.one_of(networks(min_cells=2, max_cells=10, thermal=False, initial=False),  # the small route
                 networks(min_cells=2, max_cells=10)),  # thermal, n0, alpha0: mostly the general route
       st.sampled_from([np.linspace(0.0, 300.0, 61), np.linspace(2.5, 300.0, 61),
                                                                          np.array([0.5, 1.0, 7.0, 7.5, 100.0])]))
def test_small_route_is_the_general_route_and_agrees_with_the_sparse_route(G, times):
    """simulate(model or graph, times) with every option at its default takes the small route for a few cells at
    zero temperature (simulate._small_run) and the general route otherwise (thermal baths, n0, feedback links, any
    network of the strategy): its result is the general route's with method='exact' field by field, to the bit,
    and agrees with method='exact-sparse' to SMALL_ROUTE_VS_SPARSE_REL."""
    model = cn.build_model(G)
    auto = cn.simulate(model, times)
    named = cn.simulate(model, times, method="exact")
    graph = cn.simulate(G, times)  # the graph's model, built once by simulate
    assert auto.method == named.method == graph.method == "exact"
    for field in ("energies", "amplitudes", "fluctuations", "drive", "omega", "battery"):
        assert np.asarray(getattr(auto, field)).tobytes() == np.asarray(getattr(named, field)).tobytes(), field
        assert np.asarray(getattr(graph, field)).tobytes() == np.asarray(getattr(named, field)).tobytes(), field
    assert auto.final_state.alpha.tobytes() == named.final_state.alpha.tobytes()
    assert (auto.final_state.time, auto.final_state.frame, auto.options, auto.stats) == \
        (named.final_state.time, named.final_state.frame, named.options, named.stats)
    sparse = cn.simulate(cn.build_model(G, sparse=True), times, method="exact-sparse")
    assert rel_err(auto.energies, sparse.energies) <= SMALL_ROUTE_VS_SPARSE_REL
    assert rel_err(auto.amplitudes, sparse.amplitudes) <= SMALL_ROUTE_VS_SPARSE_REL


def test_small_route_keeps_the_errors_of_the_general_route():
    """The small route checks what the general route checks: bad times, and a non-finite energy (an unstable
    model) raises SolverError naming the cell."""
    model = cn.build_model(cn.two_cell())
    for bad in ([1.0, 0.5], [-1.0, 2.0], [0.0, np.nan], [[0.0, 1.0]]):
        with pytest.raises(cn.SolverError):
            cn.simulate(model, np.asarray(bad, float))
    G = cn.network()
    cn.add_cell(G, "a", omega=1.0, kappa=0.0, drive=0.1)
    cn.add_cell(G, "b", omega=1.0, kappa=0.0, battery=True)
    cn.add_reservoir(G, {"a": 1.0, "b": 1.0}, gamma=0.0)
    cn.add_coherent_link(G, "a", "b", J=0.5)
    unstable = cn.build_model(G)
    object.__setattr__(unstable, "M", unstable.M + 40.0 * np.eye(2))  # a growth rate e^{40 t}: overflows by t = 20
    with pytest.raises(cn.SolverError, match=r"energy of cell 'a' is not finite"):
        cn.simulate(unstable, np.linspace(0.0, 100.0, 11))


def test_real_stepping_is_the_complex_stepping():
    """A real propagator (a resonant network) steps alpha in real arithmetic (exact._propagate_affine_real):
    the complex kernel's sums without the zero imaginary part's terms, so the same numbers."""
    from chiralnet.solve.exact import _propagate_affine_real, propagate_affine

    rng = np.random.default_rng(5)
    for n in (1, 3, 10):
        P = rng.normal(size=(2, n, n)) * 0.3
        c = rng.normal(size=(2, n)) + 1j * rng.normal(size=(2, n))
        kind = rng.integers(0, 2, 40)
        alpha0 = rng.normal(size=n) + 1j * rng.normal(size=n)
        omega = rng.uniform(0.5, 2.0, n)
        out = [(np.empty((40, n), complex), np.empty((40, n))) for _ in range(2)]
        propagate_affine(P.astype(complex), c, kind, alpha0, omega, *out[0])
        _propagate_affine_real(P, c, kind, alpha0, omega, *out[1])
        assert np.array_equal(out[0][0], out[1][0]) and np.array_equal(out[0][1], out[1][1])
