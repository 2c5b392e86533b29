"""The exact-sparse method (CSR Taylor stepping) against the dense exact method and rk45."""

import dataclasses

import numpy as np
import pytest
import scipy.linalg as la
import scipy.sparse as sp

import chiralnet as cn
from chiralnet import config
from chiralnet.arrays import chain_model, lattice_model
from chiralnet.solve.fluctuations import propagate_matrix

PATHS_AGREE = 1e-10      # sparse vs dense path, relative to the largest value
SOLVES_AGREE = 1e-12     # cascaded (triangular) vs general solve, relative

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
                assert res.method == method or method == "auto"
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
    assert cn.simulate(chain_model(300), TIMES).method == "exact-sparse"
    # one long output interval: many Taylor substeps per output, so auto goes adaptive
    assert cn.simulate(chain_model(300), [0.0, 1e4]).method == "rk45"
    assert cn.steady_state(chain_model(300)).method == "forward-substitution"
    assert cn.steady_state(cn.build_model(cn.ring(300), sparse=True)).method == "sparse-lu"
    assert cn.steady_state(cn.ring(5)).method == "dense-lu"
    assert cn.steady_state(cn.chain(5, n_th=0.1)).method == "forward-substitution+triangular-lyapunov"
    assert cn.steady_state(cn.ring(5, n_th=0.1)).method == "dense-lu+bartels-stewart"


def test_matrix_stepping_reports_a_non_finite_state_as_such():
    X0 = np.eye(2, dtype=complex)
    X0[1, 1] = np.nan  # a NaN sum never converges: the message must say non-finite, not "did not converge"
    with pytest.raises(cn.SolverError, match="non-finite"):
        propagate_matrix(np.array([[-1.0, 0.0], [1.0, -1.0]], complex), np.eye(2, dtype=complex), X0,
                           np.array([1.0]), np.zeros(1, np.int64), out_diag=np.empty((1, 2)))


def test_exact_sparse_without_amplitudes():
    model = chain_model(500)
    full = cn.simulate(model, TIMES)
    lean = cn.simulate(model, TIMES, store_amplitudes=False)
    assert lean.amplitudes is None
    assert np.array_equal(lean.energies, full.energies)
    pytest.importorskip("xarray")
    ds = lean.to_xarray()
    assert "amplitude" not in ds and np.array_equal(ds["energy"].values, full.energies)
    assert np.allclose(full.energies, model.omega * np.abs(full.amplitudes) ** 2, rtol=1e-14, atol=0)


def test_parallel_kernels_match_serial(monkeypatch):
    model = chain_model(60, n_th=0.1)
    serial = cn.simulate(model, TIMES[:10], method="exact-sparse")
    monkeypatch.setattr(config, "PARALLEL_MIN_CELLS", 1)
    monkeypatch.setattr(config, "PARALLEL_MIN_CELLS_THERMAL", 1)
    threaded = cn.simulate(model, TIMES[:10], method="exact-sparse")
    assert rel(threaded.energies, serial.energies) <= 1e-13


def test_exact_sparse_skips_only_rows_the_signal_has_not_reached():
    """The stepping computes rows up to the reach of the state's support (M's pattern); the answer must
    not depend on where the signal enters (cells listed with or against the flow, so M lower or upper
    triangular) or on a state that starts with a gap (a pulse far ahead of the driven front)."""
    times = np.linspace(0.0, 900.0, 61)
    for nodelist in (None, list(reversed(range(150)))):
        model = cn.build_model(cn.chain(150, kappa=0.2), nodelist=nodelist, sparse=True)
        alpha0 = np.zeros(model.n_cells, complex)
        alpha0[model.index(140)] = 3.0
        start = cn.State(model.cells, alpha0)
        ref = cn.simulate(model, times, method="exact", state0=start)
        res = cn.simulate(model, times, method="exact-sparse", state0=start)
        assert rel(res.amplitudes, ref.amplitudes) <= PATHS_AGREE
        pulse = [model.index(c) for c in range(135, 150)]
        assert rel(res.amplitudes[3][pulse], ref.amplitudes[3][pulse]) <= PATHS_AGREE


def test_a_step_too_long_to_take_lands_on_the_steady_state():
    """t = 1e21 on a damped chain: the step count would overflow int64 (it once wrapped negative and the
    initial state came back as the answer). The damping proves ||e^{M h}|| < 2^-60, so the state is the
    steady state, exactly; with thermal noise too."""
    for G in (cn.chain(100), cn.chain(8, n_th=0.2)):
        ss = cn.steady_state(G)
        for method in ("auto", "exact-sparse"):
            res = cn.simulate(G, [0.0, 1.0, 1e21], method=method)
            assert rel(res.energies[-1], ss.energies) <= 1e-13, method
            assert rel(res.energies[1], cn.simulate(G, [0.0, 1.0], method="exact-sparse").energies[1]) <= 1e-13


def test_unbounded_work_is_refused_before_it_starts():
    """An undamped cell proves no decay: 1e12 time units of Taylor steps would take an hour."""
    G = cn.network()
    cn.add_cell(G, "a", omega=1.0, kappa=0.0, alpha0=1.0)
    cn.add_cell(G, "b", omega=1.0, kappa=0.0)
    cn.add_coherent_link(G, "a", "b", J=0.05)
    with pytest.raises(cn.SolverError, match=r"would need .* Taylor substeps .*MAX_TAYLOR_SUBSTEPS"):
        cn.simulate(G, [0.0, 1e12], method="exact-sparse")


@pytest.mark.parametrize("method", ["exact", "exact-sparse"])
def test_early_outputs_are_not_snapped_to_a_late_time(method):
    """Steps are grouped at their own scale: outputs at t = 1, 2 beside t = 1e17 (or a log grid to 1e13)
    are computed at t = 1, 2, not at the rounding scale of the last time."""
    G = cn.two_cell()
    ref = cn.simulate(G, [1.0, 2.0], method=method).energies
    res = cn.simulate(G, [1.0, 2.0, 1e17], method=method).energies
    assert rel(res[:2], ref) <= 1e-14
    t = np.geomspace(1e-3, 1e13, 30)
    log = cn.simulate(G, t, method=method).energies
    for k in (0, 5, 10):
        one = cn.simulate(G, [t[k]], method=method).energies[0]
        assert rel(log[k], one) <= 1e-12, k


# --- thermal traces stepped one-sidedly: Nc = Nc_ss + P D P^H (chiralnet.solve.fluctuations.propagate_deviation)

def _random_state(model, seed, scale=0.3):
    """A thermal initial state with a full Hermitian positive Nc (off-diagonal coherences too)."""
    rng = np.random.default_rng(seed)
    n = model.n_cells
    B = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    Nc = scale * (B @ B.conj().T) / n
    return cn.State(model.cells, 0.1 * (rng.normal(size=n) + 1j * rng.normal(size=n)), Nc)


def _naive_thermal(model, times, state):
    """Nc(t) = X + e^{At} (Nc0 - X) e^{A^H t} with X from Bartels-Stewart, one expm per time (tests/naive style)."""
    A = np.conj(model.dense_M())
    X = np.zeros_like(A) if model.Q is None else la.solve_continuous_lyapunov(A, -model.dense_Q())
    D0 = state.dense_Nc() - X
    out = []
    for t in times:
        P = la.expm(A * t)
        out.append(X + P @ D0 @ P.conj().T)
    return np.array(out)


THERMAL_CASES = {
    "chain, equal baths, from the vacuum": (lambda: chain_model(30, n_th=0.2, sparse=True), None),
    "chain, hot shared reservoirs, thermal start": (lambda: chain_model(30, n_th=0.1, n_th_link=0.7, sparse=True), 1),
    "reversed chain (upper triangular)": (lambda: cn.build_model(cn.chain(25, n_th=0.3, n_th_link=0.05),
                                                                 nodelist=list(reversed(range(25))), sparse=True), 2),
    "lattice": (lambda: lattice_model(4, 6, n_th=0.2, n_th_link=0.4, sparse=True), 3),
    "ring without noise, coherent feedback": (lambda: cn.build_model(cn.ring(12, nonreciprocal=False), sparse=True), 4),
}


@pytest.mark.parametrize("name", sorted(THERMAL_CASES))
@pytest.mark.parametrize("times", [TIMES[:12], UNEVEN[:9]], ids=["uniform", "uneven"])
def test_one_sided_fluctuations_match_expm_and_the_two_sided_series(name, times, monkeypatch):
    make, seed = THERMAL_CASES[name]
    model = make()
    state = cn.State(model.cells, np.zeros(model.n_cells, complex)) if seed is None else _random_state(model, seed)
    ref = _naive_thermal(model, times, state)
    res = cn.simulate(model, times, method="exact-sparse", state0=state)
    assert res.stats["fluctuation_stepping"] == "one-sided"
    scale = np.abs(ref).max()
    assert np.abs(res.fluctuations - ref.diagonal(axis1=1, axis2=2).real).max() <= PATHS_AGREE * scale
    bat = np.flatnonzero(model.battery)
    assert np.abs(res.battery_fluctuations - ref[:, bat[:, None], bat[None, :]]).max() <= PATHS_AGREE * scale
    assert np.abs(res.final_state.Nc - ref[-1]).max() <= PATHS_AGREE * scale
    assert np.array_equal(res.final_state.Nc, res.final_state.Nc.conj().T)
    monkeypatch.setattr(config, "FLUCTUATION_ONE_SIDED", False)
    two = cn.simulate(model, times, method="exact-sparse", state0=state)
    assert "fluctuation_stepping" not in two.stats
    assert rel(res.energies, two.energies) <= PATHS_AGREE
    assert np.abs(res.battery_fluctuations - two.battery_fluctuations).max() <= PATHS_AGREE * scale


@pytest.mark.parametrize("width", [1, 3, 7, 64])
@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("propagator", [False, True])
def test_one_sided_blocks_do_not_change_the_answer(width, parallel, propagator, monkeypatch):
    """Column blocks of any width (padded at the end), serial or threaded, by the series or by the sparse
    propagator, give the same Nc to rounding."""
    monkeypatch.setattr(config, "PROPAGATOR_MIN_WORK", 0)  # a small network: P would not pay, test it anyway
    from chiralnet.solve.fluctuations import propagate_deviation
    from chiralnet.linalg.lyapunov import steady_covariance

    model = chain_model(20, n_th=0.2, n_th_link=0.6, sparse=True)
    X = steady_covariance(model, np.arange(20))[0]
    state = _random_state(model, 5)
    times = np.linspace(0.0, 90.0, 7)
    from chiralnet.solve.base import distinct_steps

    dts, kind = distinct_steps(times)
    diag = np.empty((7, 20))
    bat = np.arange(1, 20)
    block = np.empty((7, 19, 19), complex)
    Nc, stats = propagate_deviation(model.M, X, state.dense_Nc() - X, dts, kind, out_diag=diag, block_idx=bat,
                                    out_block=block, width=width, parallel=parallel, propagator=propagator)
    ref = _naive_thermal(model, times, state)
    assert np.abs(Nc - ref[-1]).max() <= PATHS_AGREE * np.abs(ref).max()
    assert np.abs(diag - ref.diagonal(axis1=1, axis2=2).real).max() <= PATHS_AGREE * np.abs(ref).max()
    assert np.abs(block - ref[:, 1:, 1:]).max() <= PATHS_AGREE * np.abs(ref).max()
    assert stats["matrix_propagator_products" if propagator else "matrix_terms"] > 0
    assert ("matrix_propagator_products" in stats) == propagator


def test_one_sided_lands_on_the_steady_state_and_falls_back_with_feedback_and_noise():
    from chiralnet.linalg.csr import shifted

    G = cn.chain(8, n_th=0.2, n_th_link=0.5)
    res = cn.simulate(G, [0.0, 1.0, 1e21], method="exact-sparse")
    assert res.stats["fluctuation_stepping"] == "one-sided"
    assert rel(res.energies[-1], cn.steady_state(G).energies) <= 1e-13
    ring = cn.simulate(cn.ring(6, n_th=0.2, nonreciprocal=False), TIMES[:5], method="exact-sparse")
    assert "fluctuation_stepping" not in ring.stats  # feedback + noise: Nc_ss would cost a dense solve
    # the shift: a uniform diagonal is removed exactly, e^{A h} = e^{mu h} e^{(A - mu) h}
    A = np.conj(chain_model(10, sparse=True).M)
    B, mu = shifted(A)
    assert B.nnz < sp.csr_array(A).nnz and mu.real < 0
    h = 7.0
    assert np.allclose(np.exp(mu * h) * la.expm(B.toarray() * h), la.expm(A.toarray() * h), rtol=0, atol=1e-15)


# --- simulate(..., cells=...): per-cell arrays of the chosen cells, totals over every cell

@pytest.mark.parametrize("method", ["exact", "exact-sparse", "rk45"])
@pytest.mark.parametrize("thermal", [False, True])
def test_cells_keeps_the_chosen_columns_and_whole_totals(method, thermal):
    model = chain_model(9, n_th=0.3 if thermal else 0.0, sparse=method == "exact-sparse")
    start = _random_state(model, 7) if thermal else cn.State(model.cells, np.full(9, 0.2 + 0.1j))
    full = cn.simulate(model, TIMES[:8], method=method, state0=start)
    pick = [7, 2, 0]
    part = cn.simulate(model, TIMES[:8], method=method, state0=start, cells=pick)
    assert part.cells == (7, 2, 0) and part.energies.shape == (8, 3)
    assert np.array_equal(part.amplitudes, full.amplitudes[:, pick])
    assert np.array_equal(part.energies, full.energies[:, pick])
    assert np.array_equal(part.fluctuations, np.asarray(full.fluctuations)[:, pick])
    assert np.array_equal(part.battery, model.battery[pick])
    assert rel(part.total_energy, full.total_energy) <= 1e-14
    assert rel(part.battery_energy, full.battery_energy) <= 1e-14
    assert np.array_equal(part.final_state.alpha, full.final_state.alpha)  # the whole state, to continue
    if thermal:  # the battery block of the kept battery cells (7, 2), in their order
        assert np.array_equal(part.battery_fluctuations, full.battery_fluctuations[:, [6, 1]][:, :, [6, 1]])
    assert rel(part.energy(2), full.energy(2)) == 0.0


def test_cells_rejects_unknown_or_repeated_cells():
    for bad in ([99], [1, 1], [], "0"):
        with pytest.raises(cn.ChiralnetError):
            cn.simulate(chain_model(5), TIMES[:3], cells=bad)


def test_energies_are_derived_from_kept_amplitudes_not_stored_twice():
    """A default exact-sparse run keeps the amplitudes only; energies appear on first access, with the
    kernel's arithmetic (the same bits as a run that stores energies only)."""
    model = chain_model(400)
    start = cn.State(model.cells, np.full(400, 0.1 + 0.05j))
    res = cn.simulate(model, TIMES, state0=start)
    assert res.__dict__.get("_energies") is None and res.amplitudes is not None
    assert res.energy_totals.shape == (TIMES.size, 2)
    lean = cn.simulate(model, TIMES, state0=start, store_amplitudes=False)
    assert np.array_equal(res.energies, lean.energies) and res.__dict__["_energies"] is res.energies
    assert rel(res.total_energy, res.energies.sum(axis=1)) <= 1e-14
    thermal = chain_model(30, n_th=0.2)
    a = cn.simulate(thermal, TIMES[:6], method="exact-sparse")
    b = cn.simulate(thermal, TIMES[:6], method="exact-sparse", store_amplitudes=False)
    assert np.array_equal(a.energies, b.energies)


@pytest.mark.parametrize("shift", [False, True])
def test_amplitude_series_with_and_without_the_diagonal_shift(shift, monkeypatch):
    """e^{M h} = e^{mu h} e^{(M - mu) h} with the forcing carried by the augmented component: the
    driven chain and a state nonzero everywhere, against the dense exact method."""
    monkeypatch.setattr(config, "TAYLOR_SHIFT_VECTOR", shift)
    model = chain_model(40, kappa=0.01, sparse=True)
    for start in (None, cn.State(model.cells, np.linspace(0.3, -0.2j, 40))):
        for times in (TIMES, UNEVEN):
            ref = cn.simulate(model, times, method="exact", state0=start)
            res = cn.simulate(model, times, method="exact-sparse", state0=start)
            assert rel(res.amplitudes, ref.amplitudes) <= PATHS_AGREE


def test_sparse_propagator_and_series_step_the_amplitudes_alike(monkeypatch):
    """A state nonzero on every cell: the propagator route (the grid's repeated step) against the series
    and the dense exact method, on a uniform and an uneven grid, one-way and two-way chains, driven."""
    monkeypatch.setattr(config, "PROPAGATOR_MIN_WORK", 0)
    for nonreciprocal in (True, False):
        model = chain_model(300, drive=0.2, nonreciprocal=nonreciprocal, sparse=True)
        start = cn.State(model.cells, np.linspace(0.3, -0.2j, 300))
        grid = np.r_[np.linspace(0.0, 600.0, 41), 611.5, 650.0]  # repeated step, then two others
        for times in (TIMES, grid):
            monkeypatch.setattr(config, "SPARSE_PROPAGATOR", False)
            series = cn.simulate(model, times, method="exact-sparse", state0=start)
            monkeypatch.setattr(config, "SPARSE_PROPAGATOR", True)
            prop = cn.simulate(model, times, method="exact-sparse", state0=start)
            assert "propagator_products" not in series.stats
            assert prop.stats["propagator_products"] >= times.size - 3
            assert rel(prop.amplitudes, series.amplitudes) <= PATHS_AGREE
            assert rel(prop.final_state.alpha, series.final_state.alpha) <= PATHS_AGREE
        small = chain_model(12, drive=0.2, nonreciprocal=nonreciprocal, sparse=True)
        ref = cn.simulate(small, grid, method="exact", state0=cn.State(small.cells, np.linspace(0.3, -0.2j, 12)))
        res = cn.simulate(small, grid, method="exact-sparse", state0=cn.State(small.cells, np.linspace(0.3, -0.2j, 12)))
        assert "propagator_products" in res.stats and rel(res.amplitudes, ref.amplitudes) <= PATHS_AGREE


def test_sparse_propagator_reports_a_growing_state_as_non_finite(monkeypatch):
    """An amplifying cell (gain, not loss) under the propagator: named as non-finite, never returned."""
    monkeypatch.setattr(config, "PROPAGATOR_MIN_WORK", 0)
    base = chain_model(50, sparse=True)
    M = base.M.tolil()
    M[10, 10] = 0.5  # gain e^{0.5 t}: overflows long before t = 5000
    model = dataclasses.replace(base, M=sp.csr_array(M.tocsr()))
    start = cn.State(model.cells, np.full(50, 0.1 + 0j))
    from chiralnet.solve import exact_sparse

    built, original = [], exact_sparse.step_propagator  # the propagator route must be the one that ran into it

    def spy(*args, **kwargs):
        built.append(original(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(exact_sparse, "step_propagator", spy)
    with pytest.raises(cn.SolverError, match="non-finite"):
        cn.simulate(model, np.linspace(0.0, 5000.0, 201), method="exact-sparse", state0=start)
    assert len(built) == 1 and built[0] is not None


def test_a_vacuum_driven_at_one_end_keeps_the_series():
    """Few cells reached: the series' row tracking beats building P over every row."""
    res = cn.simulate(chain_model(5000), TIMES, method="exact-sparse")
    assert "propagator_products" not in res.stats and res.stats["terms"] > 0


def test_a_small_run_keeps_the_series_and_a_large_one_builds_p():
    """Building P costs about K sparse products: below config.PROPAGATOR_MIN_WORK (cells x uses, x N for
    the fluctuations) the series is cheaper and runs; above, P."""
    small = chain_model(300, sparse=True)
    start = cn.State(small.cells, np.full(300, 0.1 + 0j))
    assert 300 * (TIMES.size - 1) < config.PROPAGATOR_MIN_WORK
    assert "propagator_products" not in cn.simulate(small, TIMES, state0=start, method="exact-sparse").stats
    large = chain_model(3000, sparse=True)
    start = cn.State(large.cells, np.full(3000, 0.1 + 0j))
    assert "propagator_products" in cn.simulate(large, TIMES, state0=start, method="exact-sparse").stats
    hot = chain_model(60, n_th=0.2, sparse=True)  # 60 x 60 x 40 uses: P for the fluctuations
    assert "matrix_propagator_products" in cn.simulate(hot, TIMES, method="exact-sparse").stats
    assert "matrix_propagator_products" not in cn.simulate(hot, TIMES[:8], method="exact-sparse").stats


def test_threaded_propagator_products_equal_the_serial_ones(monkeypatch):
    """Runs cut into chunks over threads (20,000 rows: three chunks of VECTOR_CHUNK = 8192): every row is
    computed the same way, so bitwise the same result."""
    monkeypatch.setattr(config, "PROPAGATOR_MIN_WORK", 0)
    model = chain_model(20_000, drive=0.2, sparse=True)
    start = cn.State(model.cells, np.linspace(0.3, -0.2j, 20_000))
    serial = cn.simulate(model, TIMES, state0=start, method="exact-sparse")
    monkeypatch.setattr(config, "PARALLEL_MIN_CELLS", 0)
    threaded = cn.simulate(model, TIMES, state0=start, method="exact-sparse")
    assert "propagator_products" in threaded.stats
    assert np.array_equal(threaded.amplitudes, serial.amplitudes)
    assert np.array_equal(threaded.total_energy, serial.total_energy)
