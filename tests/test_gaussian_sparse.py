"""The general path's sparse routes (chiralnet.solve.general): "unpaired-sparse" (no pairing: the base model's
exact-sparse run for alpha and Nc, one symmetric one-sided pass for Mc) and "doubled-sparse" (the doubled model
of 2N modes through exact-sparse), against the independent dense quadrature solution of tests/test_gaussian.py
and against the dense route, to the tolerances named below."""

import numpy as np
import pytest

import chiralnet as cn
from chiralnet import config
from chiralnet.errors import NoSteadyStateError
from chiralnet.gaussian import sigma_to_moments

from test_gaussian import DENSE_REL, graph_of, random_spec, reference_run, start_of

#: The sparse routes against the dense route on the same network: both exact, they differ by rounding.
ROUTES_REL = 1e-11


def _rel(got, want):
    return np.abs(np.asarray(got) - np.asarray(want)).max() / max(np.abs(np.asarray(want)).max(), 1e-300)


def _unpaired(spec):
    """``spec`` without pumps and parametric links (squeezed baths, reservoir and starts kept)."""
    for c in spec["cells"]:
        c["pump"] = 0.0
    spec["links"] = [(i, j, J, 0.0) for i, j, J, _ in spec["links"]]
    return spec


def _chain(n, *, pump=False, link=False):
    """A chiral thermal chain with squeezed baths on every cell, a squeezed driven start, battery last; with
    ``pump`` a pump on every cell, with ``link`` a parametric link between the first two cells."""
    G = cn.chain(n, n_th=0.1, drive=0.05)
    names = cn.cells(G)
    for k, c in enumerate(names):
        G.nodes[c]["m_th"] = 0.05 * np.exp(0.3j * k)
        if pump:
            G.nodes[c]["pump"] = 0.004 * np.exp(0.2j * k)
    G.nodes[names[1]]["xi0"] = 0.3 * np.exp(0.5j)
    G.nodes[names[1]]["alpha0"] = 0.2 - 0.1j
    G.nodes[names[2]]["n0"] = 0.2
    if link:
        cn.add_parametric_link(G, names[0], names[1], 0.01)
    return G


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kind", ["paired", "unpaired"])
def test_sparse_routes_match_the_dense_quadrature_solution(monkeypatch, seed, kind):
    """Random 4-cell networks with every term (pairing: the doubled route; without: a shared squeezed
    reservoir makes feedback, so Mc_ss is not a cascade and the doubled route runs too), and without squeezed
    noise (squeezed starts only: the unpaired route), forced onto the sparse routes, against the independent
    reference to DENSE_REL."""
    monkeypatch.setattr(config, "GAUSSIAN_SPARSE_MIN_CELLS", 1)
    rng = np.random.default_rng(seed)
    spec = random_spec(rng, n=4)
    cases = [(spec, "doubled-sparse")]
    if kind == "unpaired":
        spec = _unpaired(spec)
        quiet = _unpaired(random_spec(np.random.default_rng(seed + 10), n=4))
        for c in quiet["cells"]:
            c["m_th"] = 0.0
        quiet["reservoirs"] = [(g, N, 0.0, p) for g, N, _, p in quiet["reservoirs"]]
        cases = [(spec, "doubled-sparse"), (quiet, "unpaired-sparse")]
    times = np.r_[0.0, np.sort(rng.uniform(0, 12, 5)), np.linspace(13, 20, 4)]   # ragged and uniform steps
    for spec, route in cases:
        G = graph_of(spec)
        for c in cn.cells(G)[1::2]:
            G.nodes[c]["battery"] = True
        res = cn.simulate(G, times)
        assert res.method == "exact-gaussian" and res.stats["route"] == route
        Rs, Ss = reference_run(spec, *start_of(spec), times)
        alpha = (Rs[:, :4] + 1j * Rs[:, 4:]) / np.sqrt(2)
        Nc, Mc = sigma_to_moments(Ss)
        omega = np.array([c["omega"] for c in spec["cells"]])
        occ = np.einsum("tii->ti", Nc).real
        assert _rel(res.amplitudes, alpha) < DENSE_REL
        assert _rel(res.fluctuations, occ) < DENSE_REL
        assert _rel(res.anomalous, np.einsum("tii->ti", Mc)) < DENSE_REL
        assert _rel(res.energies, omega * (np.abs(alpha) ** 2 + occ)) < DENSE_REL
        b = [1, 3]
        assert _rel(res.battery_fluctuations, Nc[:, b][:, :, b]) < DENSE_REL
        assert _rel(res.battery_anomalous, Mc[:, b][:, :, b]) < DENSE_REL
        fs = res.final_state
        assert _rel(fs.alpha, alpha[-1]) < DENSE_REL
        assert _rel(fs.Nc, Nc[-1]) < DENSE_REL and _rel(fs.Mc, Mc[-1]) < DENSE_REL and fs.time == times[-1]
        assert np.abs(Mc).max() > 1e-2


@pytest.mark.parametrize("pump,link,route", [(False, False, "unpaired-sparse"), (True, False, "doubled-sparse"),
                                             (False, True, "doubled-sparse")], ids=["baths", "pumps", "link"])
def test_sparse_routes_equal_the_dense_route(monkeypatch, pump, link, route):
    """A 60-cell chiral chain (past config.GAUSSIAN_SPARSE_MIN_CELLS: the sparse route by default) with
    squeezed baths on every cell (the cascade gives Mc_ss by substitution), pumps on every cell, or a
    parametric link: the sparse route equals the dense quadrature route to ROUTES_REL, in full, with cells=
    (the totals over every cell), store_amplitudes=False, and continued from a final state."""
    G = _chain(60, pump=pump, link=link)
    times = np.r_[0.0, np.linspace(1.0, 40.0, 12), 55.0]
    keep = [cn.cells(G)[-1], cn.cells(G)[1]]
    runs = [lambda: cn.simulate(G, times), lambda: cn.simulate(G, times, cells=keep),
            lambda: cn.simulate(G, times, store_amplitudes=False),
            lambda: cn.simulate(G, times[6:], state0=cn.simulate(G, times[:7]).final_state)]
    sparse = [r() for r in runs]
    monkeypatch.setattr(config, "GAUSSIAN_SPARSE_MIN_CELLS", 10**9)
    dense = [r() for r in runs]
    assert dense[0].stats["route"] == "dense"
    for k, (a, b) in enumerate(zip(sparse, dense)):
        assert a.stats["route"] == route and a.stats.get("triangularised", True), k   # cascaded after V
        for name in ("energies", "fluctuations", "anomalous", "total_energy", "battery_energy"):
            assert _rel(getattr(a, name), getattr(b, name)) < ROUTES_REL, (k, name)
        if k != 2:
            assert _rel(a.amplitudes, b.amplitudes) < ROUTES_REL, k
        assert _rel(a.final_state.Nc, b.final_state.Nc) < ROUTES_REL
        assert _rel(a.final_state.Mc, b.final_state.Mc) < ROUTES_REL
        assert _rel(a.final_state.alpha, b.final_state.alpha) < ROUTES_REL
    assert _rel(sparse[0].battery_anomalous, dense[0].battery_anomalous) < ROUTES_REL
    assert _rel(sparse[0].battery_fluctuations, dense[0].battery_fluctuations) < ROUTES_REL
    assert _rel(sparse[3].energies, sparse[0].energies[6:]) < ROUTES_REL        # continued = whole
    assert np.abs(sparse[0].anomalous).max() > 1e-3
    assert sparse[1].cells == tuple(keep) and _rel(sparse[1].energies, sparse[0].energies[:, [59, 1]]) < ROUTES_REL


def test_unpaired_route_from_a_squeezed_start_on_a_phase_insensitive_network():
    """A phase-insensitive 60-cell network run from a squeezed state0 (no squeezed noise: Mc_ss = 0) takes the
    unpaired route; its alpha and Nc are the phase-insensitive path's own (the same run, to ROUTES_REL)."""
    G = cn.chain(60, n_th=0.2, drive=0.05)
    m = cn.build_model(G)
    Mc = np.zeros((60, 60), complex)
    Mc[3, 3], Mc[5, 5] = 0.2j, -0.1
    Nc = np.diag(np.full(60, 0.3)).astype(complex)
    times = np.linspace(0, 30, 7)
    gen = cn.simulate(G, times, state0=cn.State(m.cells, np.zeros(60, complex), Nc, Mc=Mc))
    ref = cn.simulate(G, times, state0=cn.State(m.cells, np.zeros(60, complex), Nc))
    assert gen.method == "exact-gaussian" and gen.stats["route"] == "unpaired-sparse"
    assert _rel(gen.energies, ref.energies) < ROUTES_REL and _rel(gen.final_state.Nc, ref.final_state.Nc) < ROUTES_REL
    # Mc decays freely: Mc(t)_33 = Mc(0)_33 e^{2 M_33 t} when cell 3 receives no squeezing from upstream
    M33 = m.M[3, 3] if not m.is_sparse else m.M.toarray()[3, 3]
    assert abs(gen.anomalous[-1, 3] - 0.2j * np.exp(2 * M33 * 30)) < 1e-12


@pytest.mark.parametrize("pump,link", [(True, False), (False, True), (True, True)], ids=["pumps", "link", "both"])
def test_paired_steady_state_by_the_triangular_doubled_model(monkeypatch, pump, link):
    """With pumps or parametric links on a 60-cell chiral chain the doubled model, made triangular block by
    block (solve.general.triangular_doubled), gives the steady state by substitution; it equals the dense
    quadrature Lyapunov solution to ROUTES_REL. Above threshold the message still names the pump."""
    from chiralnet.linalg.cascade import cascade_order
    from chiralnet.solve import general

    G = _chain(60, pump=pump, link=link)
    model = cn.build_model(G)
    tm, V, _ = general.triangular_doubled(model)
    assert cascade_order(tm.M) is not None and V.nnz > 120
    ss = cn.steady_state(G)
    R, S = general._steady_quadratures(model)
    ref = cn.gaussian.quadrature_state(model.cells, R, S)
    assert np.abs(ss.state.Mc).max() > 1e-3
    for got, want in ((ss.state.alpha, ref.alpha), (ss.state.Nc, ref.Nc), (ss.state.Mc, ref.Mc)):
        assert _rel(got, want) < ROUTES_REL
    if pump:
        G.nodes[cn.cells(G)[7]]["pump"] = 5.0
        with pytest.raises(NoSteadyStateError, match=f"pump on cell {cn.cells(G)[7]!r}"):
            cn.steady_state(G)


def test_sparse_route_streams_to_file_like_one_run(tmp_path):
    """simulate_to_file on a pumped 60-cell chain (the doubled sparse route, blocks continued from each final
    state) holds the energies and Mc_ii of one in-memory run, to ROUTES_REL."""
    G = _chain(60, pump=True)
    t = np.linspace(0.0, 40.0, 15)
    ref = cn.simulate(G, t, cells=[cn.cells(G)[-1], cn.cells(G)[1]])
    assert ref.stats["route"] == "doubled-sparse"
    out = cn.simulate_to_file(G, t, tmp_path / "g.nc", chunk_times=4, cells=[cn.cells(G)[-1], cn.cells(G)[1]])
    with out.open() as ds:
        assert _rel(ds.energy.values, ref.energies) < ROUTES_REL
        assert _rel(ds.anomalous.values, ref.anomalous) < ROUTES_REL
        assert _rel(ds.total_energy.values, ref.total_energy) < ROUTES_REL
    assert _rel(out.final_state.Mc, ref.final_state.Mc) < ROUTES_REL


@pytest.mark.parametrize("pump", [False, True], ids=["unpaired", "doubled"])
def test_sparse_routes_refuse_up_front_what_would_not_fit(monkeypatch, pump):
    """The sparse routes estimate their memory (the N- or 2N-mode exact-sparse run, the entries read back)
    before allocating: under a 200 kB limit a 60-cell run is refused with the sizes and the fixes."""
    from chiralnet.errors import MemoryLimitError

    G = _chain(60, pump=pump)
    monkeypatch.setattr(config, "MEMORY_LIMIT_GB", 2e-4)
    with pytest.raises(MemoryLimitError, match=r"60 cells on the general path, 5 output times.*fewer output"):
        cn.simulate(G, np.linspace(0, 10, 5))


def test_doubled_route_without_the_transform_equals_the_dense_route(monkeypatch):
    """Blocks whose eigenvectors are too ill-conditioned (forced here: config.GAUSSIAN_BLOCK_MAX_COND = 0.5 < 1)
    leave the doubled model untransformed: it has feedback, so exact-sparse steps X two-sidedly; the trace still
    equals the dense route to ROUTES_REL, and the steady state falls back to the quadrature Lyapunov solve."""
    G = _chain(60, pump=True)
    times = np.linspace(0.0, 30.0, 7)
    dense_ss = cn.steady_state(G)
    monkeypatch.setattr(config, "GAUSSIAN_BLOCK_MAX_COND", 0.5)
    plain = cn.simulate(G, times)
    assert plain.stats["route"] == "doubled-sparse" and not plain.stats["triangularised"]
    assert plain.stats["matrix_terms"] > 0                       # the two-sided series: no steady X to deviate from
    ss = cn.steady_state(G)
    monkeypatch.setattr(config, "GAUSSIAN_SPARSE_MIN_CELLS", 10**9)
    dense = cn.simulate(G, times)
    for name in ("energies", "fluctuations", "anomalous"):
        assert _rel(getattr(plain, name), getattr(dense, name)) < ROUTES_REL, name
    assert _rel(ss.state.Mc, dense_ss.state.Mc) < ROUTES_REL and _rel(ss.state.Nc, dense_ss.state.Nc) < ROUTES_REL


def test_dense_route_of_a_stable_amplifier_chain_has_no_cancellation():
    """A stable chain of pumped cells with parametric links amplifies along the chain: its steady covariance is
    ~1e13 while the state at t <= 30 is O(1), so W = sigma_ss - P sigma_ss P^T would cancel every digit (it
    gave 1e-2 relative errors and negative occupations at 40-47 cells). The dense route (below
    GAUSSIAN_SPARSE_MIN_CELLS) against the adaptive integrator on the doubled model, an independent route."""
    from chiralnet.gaussian import doubled_model, doubled_state

    n = 40
    assert n < cn.config.GAUSSIAN_SPARSE_MIN_CELLS
    G = cn.chain(n, pump=0.01, n_th=0.1, m_th=0.05, parametric=0.002, battery="last")
    gm = cn.build_model(G)
    t = np.linspace(0.0, 30.0, 31)
    res = cn.simulate(G, t)
    assert res.stats["route"] == "dense"
    d = doubled_model(gm)
    ref = cn.simulate(d, t, state0=doubled_state(gm.initial, d), method="rk45", rtol=1e-12, atol=1e-14)
    assert np.abs(res.energies - ref.energies[:, :n]).max() <= 1e-9 * np.abs(ref.energies[:, :n]).max()


@pytest.mark.parametrize("case,real", [("pumps", True), ("weak link", True), ("strong link", False),
                                       ("detuned pumps", False)])
def test_resonant_networks_run_in_real_arithmetic_and_the_others_in_complex(monkeypatch, case, real):
    """When every block of the quadrature drift has real eigenvalues (cells at resonance: a pumped cell's are
    -kappa/2 +- |P|; a parametric link with the chain coupling through the same two cells, g = 0.001:
    -0.0196, -0.0237, -0.0434, -0.0393), triangular_doubled takes real self-conjugate modes (V = T V_R,
    Sigma conj(V) = V) and M' is real: the trace steps its deviation in real arithmetic (stats["arithmetic"])
    and the steady state is one real Lyapunov solve. A block with a complex pair (a detuned cell; the link at
    g = 0.01, whose loop a_0 -> a_1 -> a_0^dag -> a_1^dag -> a_0 gives -0.0315 +- 0.0141i) keeps the complex
    modes. Either way trace, final state and steady state equal the dense quadrature route to ROUTES_REL."""
    from chiralnet.solve import general

    G = _chain(60, pump="pumps" in case)
    names = cn.cells(G)
    if "link" in case:
        cn.add_parametric_link(G, names[0], names[1], 0.001 if case == "weak link" else 0.01)
    if case == "detuned pumps":
        G.nodes[names[30]]["omega"] = 1.02
    model = cn.build_model(G)
    tm, V, Vi = general.triangular_doubled(model)
    n = model.n_cells
    Sigma = np.block([[np.zeros((n, n)), np.eye(n)], [np.eye(n), np.zeros((n, n))]])
    assert model._cache["triangular_real"] is real
    if real:
        assert not tm.M.data.imag.any()
        assert np.abs(Sigma @ V.toarray().conj() - V.toarray()).max() < 1e-15
    times = np.r_[0.0, np.linspace(1.0, 40.0, 9)]
    sparse, ss = cn.simulate(G, times), cn.steady_state(G)
    assert sparse.stats["arithmetic"] == ("real" if real else "complex")
    monkeypatch.setattr(config, "GAUSSIAN_SPARSE_MIN_CELLS", 10**9)
    dense, dense_ss = cn.simulate(G, times), cn.steady_state(G)
    assert dense.stats["route"] == "dense"
    for name in ("energies", "fluctuations", "anomalous"):
        assert _rel(getattr(sparse, name), getattr(dense, name)) < ROUTES_REL, name
    for got, want in ((sparse.final_state, dense.final_state), (ss.state, dense_ss.state)):
        for part in ("alpha", "Nc", "Mc"):
            assert _rel(getattr(got, part), getattr(want, part)) < ROUTES_REL, part


def test_rounding_residues_are_dropped_and_small_couplings_kept():
    """solve.general._drop_rounding zeroes a part of an entry of L B R no larger than 16 eps (|L| |B| |R|)_ij
    (what rounding leaves of an exact cancellation) and keeps one a little larger (a real, if weak, coupling)."""
    import scipy.sparse as sp

    from chiralnet.solve.general import _drop_rounding

    r = 1 / np.sqrt(2)
    L = sp.csr_array(np.array([[r, r], [r, -r]]))
    for coupling, kept in ((0.0, False), (1e-12, True)):
        B = sp.csr_array(np.array([[0.1 + 0.2, 0.0], [0.0, 0.3 + coupling]]))   # 0.1 + 0.2 = 0.3 + 5.6e-17
        raw = sp.csr_array(L @ B @ L).toarray()           # off-diagonal: (B_00 - B_11) / 2
        assert raw[0, 1] != 0
        X = _drop_rounding(sp.csr_array(raw), abs(L) @ abs(B) @ abs(L)).toarray()
        assert bool(X[0, 1] != 0) is kept and bool(X[1, 0] != 0) is kept
        if kept:
            assert abs(X[0, 1] + coupling / 2) < 1e-16
        assert abs(X[0, 0] - 0.3 - coupling / 2) < 1e-15


def test_sparse_quadrature_drift_is_the_dense_one():
    """solve.general._quadrature_drift (written out block by block from M and G, CSR) is the quadrature drift
    of GaussianModel.quadratures to 4 eps of its largest entry (both sum the same real and imaginary parts; the
    dense one halves a sum of four blocks), on a chain with complex pumps, a parametric link and detuned cells."""
    from chiralnet.solve.general import _quadrature_drift

    G = _chain(60, pump=True, link=True)
    for k, c in enumerate(cn.cells(G)[::7]):
        G.nodes[c]["omega"] = 1.0 + 0.01 * k
    model = cn.build_model(G)
    A = model.quadratures()[0]
    assert np.abs(A).max() > 0.01
    assert np.abs(_quadrature_drift(model).toarray() - A).max() <= 4 * np.finfo(float).eps * np.abs(A).max()
