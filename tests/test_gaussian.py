"""The general Gaussian class (issue 19): squeezed baths and reservoirs, two-photon pumps, parametric links,
squeezed starts. docs/theory/gaussian.md states the equations and the checked values used here.

Three independent checks:
- the checked values of docs/theory/gaussian.md ("Checked values"), closed forms, to 1e-9;
- random networks with every new term against an independent dense solution of the quadrature equations
  written out here: H and every dissipator expanded term by term on R = (x, p), each squeezed bath
  diagonalised into two jump operators, A = Omega (H_R + Im C^dag C), D = Omega Re(C^dag C) Omega^T, the
  covariance propagated by one matrix exponential of the vectorised equation (not the Lyapunov shift
  chiralnet uses), the steady state by scipy's Lyapunov solver;
- QuTiP mesolve on a truncated two-mode case (every term at once), to its truncation: moments, the energy
  variance and the log-negativity.
"""

import numpy as np
import pytest
import scipy.linalg as la

import chiralnet as cn
from chiralnet import config
from chiralnet.errors import NetworkError, NoSteadyStateError, SolverError
from chiralnet.gaussian import GaussianModel, moments_to_sigma, sigma_to_moments, squeezed_thermal

#: Checked values of docs/theory/gaussian.md (quoted to 10 digits there).
CHECKED_ABS = 1e-9
#: chiralnet against the independent dense quadrature solution (rounding of expm on 2N x 2N and 4N^2 systems).
DENSE_REL = 1e-9
#: QuTiP mesolve at QUTIP_CUTOFF Fock states per mode against the moment equations. The differences are
#: QuTiP's truncation: measured max over the moments 4.6e-4 at cutoff 7, 7.7e-6 at 10, 1.1e-7 at 13 (a
#: geometric fall, x ~ 70 per three levels); ~7 s at 13. The energy variance (cross terms included) and the
#: log-negativity (0.05-0.12 ebits here, from the density matrix's partial transpose) agree to 4e-7 and 7e-8.
QUTIP_CUTOFF = 13
QUTIP_ABS = 1e-6


# ----------------------------------------------------------------------------------------------------------
# The independent reference: a plain description of the network, expanded on the quadratures.

def _ladder(n):
    """l[i] (2n,) complex with a_i = l[i] . R, R = (x_1..x_n, p_1..p_n)."""
    l = np.zeros((n, 2 * n), complex)
    for i in range(n):
        l[i, i] = 1 / np.sqrt(2)
        l[i, n + i] = 1j / np.sqrt(2)
    return l


def reference_generator(spec):
    """(A, b, D) of d<R>/dt = A <R> + b, d sigma/dt = A sigma + sigma A^T + D from a description
    ``spec`` (cells: omega, kappa, n_th, m_th, pump, drive; links: (i, j, J, g); reservoirs: (gamma, n, m, {i: p}))."""
    cells, wL = spec["cells"], spec["wL"]
    n = len(cells)
    l = _ladder(n)
    ld = l.conj()                                   # a_i^dag = conj(l_i) . R
    K = np.zeros((2 * n, 2 * n), complex)           # H = R^T K R + linear + const (K not yet symmetric)
    h = np.zeros(2 * n, complex)
    for i, c in enumerate(cells):
        K += (c["omega"] - wL) * np.outer(ld[i], l[i])
        P = c.get("pump", 0)
        K += 0.5 * (P * np.outer(ld[i], ld[i]) + np.conj(P) * np.outer(l[i], l[i]))
        E = c.get("drive", 0)
        h += E * ld[i] + np.conj(E) * l[i]
    for i, j, J, g in spec["links"]:
        K += J * np.outer(ld[i], l[j]) + np.conj(J) * np.outer(ld[j], l[i])
        K += g * np.outer(ld[i], ld[j]) + np.conj(g) * np.outer(l[i], l[j])
    H_R = (K + K.T)                                 # R^T K R = R^T (K + K^T)/2 R + const;  H = R^T H_R R / 2
    assert np.abs(H_R.imag).max() < 1e-14 and np.abs(h.imag).max() < 1e-14
    H_R, h = H_R.real, h.real
    channels = [(c["kappa"], c.get("n_th", 0), c.get("m_th", 0), {i: 1.0}) for i, c in enumerate(cells)]
    channels += spec["reservoirs"]
    CdC = np.zeros((2 * n, 2 * n), complex)
    for rate, N, Mth, couplings in channels:
        z = sum(p * l[i] for i, p in couplings.items())
        zd = z.conj()
        # rate [(N+1) L[z] + N L[z^dag]] - rate M (z^dag rho z^dag - ..) - rate conj(M) (z rho z - ..):
        # Kossakowski matrix on F = (z, z^dag), diagonalised into two jump operators.
        kos = rate * np.array([[N + 1, -np.conj(Mth)], [-Mth, N]])
        lam, V = np.linalg.eigh(kos)
        for k in range(2):
            c_op = np.sqrt(max(lam[k], 0.0)) * (V[0, k] * z + V[1, k] * zd)
            CdC += np.outer(c_op.conj(), c_op)
    Om = np.block([[np.zeros((n, n)), np.eye(n)], [-np.eye(n), np.zeros((n, n))]])
    A = Om @ (H_R + CdC.imag)
    D = Om @ CdC.real @ Om.T
    return A, Om @ h, D


def reference_run(spec, R0, S0, times):
    """Means (T, 2n) and covariances (T, 2n, 2n) at ``times`` from t = 0: one augmented expm per time of the
    affine mean equation, and of the vectorised covariance equation vec(sigma)' = (A (+) A) vec(sigma) + vec(D)."""
    A, b, D = reference_generator(spec)
    m = A.shape[0]
    L = np.kron(A, np.eye(m)) + np.kron(np.eye(m), A)
    Rs, Ss = [], []
    for t in times:
        aug = np.zeros((m + 1, m + 1))
        aug[:m, :m], aug[:m, m] = A * t, b * t
        E = la.expm(aug)
        Rs.append(E[:m, :m] @ R0 + E[:m, m])
        big = np.zeros((m * m + 1, m * m + 1))
        big[:-1, :-1], big[:-1, -1] = L * t, D.reshape(-1) * t
        F = la.expm(big)
        Ss.append((F[:-1, :-1] @ S0.reshape(-1) + F[:-1, -1]).reshape(m, m))
    return np.array(Rs), np.array(Ss)


def reference_steady(spec):
    A, b, D = reference_generator(spec)
    return np.linalg.solve(A, -b), la.solve_continuous_lyapunov(A, -D)


def graph_of(spec, names=None):
    cells = spec["cells"]
    names = names or [f"c{i}" for i in range(len(cells))]
    G = cn.network(drive_frequency=spec["wL"])
    for name, c in zip(names, cells):
        cn.add_cell(G, name, **{k: v for k, v in c.items()})
    for i, j, J, g in spec["links"]:
        if J != 0:
            cn.add_coherent_link(G, names[i], names[j], J)
        if g != 0:
            cn.add_parametric_link(G, names[i], names[j], g)
    for rate, N, Mth, couplings in spec["reservoirs"]:
        cn.add_reservoir(G, {names[i]: p for i, p in couplings.items()}, gamma=rate, n_th=N, m_th=Mth)
    return G


def start_of(spec):
    """(R0, sigma0) of the cells' alpha0, n0, xi0 (squeezed thermal, displaced), written out here."""
    cells = spec["cells"]
    n = len(cells)
    R0 = np.zeros(2 * n)
    S0 = np.zeros((2 * n, 2 * n))
    for i, c in enumerate(cells):
        a = complex(c.get("alpha0", 0))
        R0[i], R0[n + i] = np.sqrt(2) * a.real, np.sqrt(2) * a.imag
        n0, xi = c.get("n0", 0.0), complex(c.get("xi0", 0))
        r, phi = abs(xi), np.angle(xi)
        # S(xi) (x, p) S(xi)^dag: the thermal covariance (n0 + 1/2) I squeezed along the angle phi/2.
        Rot = np.array([[np.cos(phi / 2), -np.sin(phi / 2)], [np.sin(phi / 2), np.cos(phi / 2)]])
        Sq = Rot @ np.diag([np.exp(-2 * r), np.exp(2 * r)]) @ Rot.T * (n0 + 0.5)
        idx = [i, n + i]
        S0[np.ix_(idx, idx)] = Sq
    return R0, S0


def random_spec(rng, n=3, stable=True):
    """Every new term, thermal and squeezed: pumps, parametric links, squeezed baths and a squeezed shared
    reservoir, drives, detunings, complex J, displaced squeezed thermal starts."""
    cells = []
    for _ in range(n):
        N = rng.uniform(0, 0.5)
        mmax = np.sqrt(N * (N + 1))
        cells.append(dict(omega=rng.uniform(0.9, 1.1), kappa=rng.uniform(0.4, 0.8), n_th=N,
                          m_th=rng.uniform(0, 0.95) * mmax * np.exp(1j * rng.uniform(0, 2 * np.pi)),
                          pump=rng.uniform(0, 0.1) * np.exp(1j * rng.uniform(0, 2 * np.pi)),
                          drive=complex(rng.normal(0, 0.1), rng.normal(0, 0.1)),
                          alpha0=complex(rng.normal(0, 0.3), rng.normal(0, 0.3)), n0=rng.uniform(0, 0.3),
                          xi0=rng.uniform(0, 0.5) * np.exp(1j * rng.uniform(0, 2 * np.pi))))
    links = [(i, i + 1, complex(rng.normal(0, 0.1), rng.normal(0, 0.1)),
              rng.uniform(0, 0.08) * np.exp(1j * rng.uniform(0, 2 * np.pi))) for i in range(n - 1)]
    Nr = rng.uniform(0, 0.4)
    reservoirs = [(rng.uniform(0.1, 0.3), Nr, 0.9 * np.sqrt(Nr * (Nr + 1)) * np.exp(0.7j),
                   {i: complex(rng.normal(), rng.normal()) / 2 for i in range(n)})]
    if not stable:
        cells[0]["pump"] = 2.0
    return dict(cells=cells, links=links, reservoirs=reservoirs, wL=1.0)


def _rel(got, want):
    return np.abs(np.asarray(got) - np.asarray(want)).max() / max(np.abs(np.asarray(want)).max(), 1e-300)


# ----------------------------------------------------------------------------------------------------------
# Random networks against the independent dense solution.

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_networks_match_dense_quadrature_solution(seed):
    rng = np.random.default_rng(seed)
    spec = random_spec(rng, n=3)
    G = graph_of(spec)
    times = np.r_[0.0, np.sort(rng.uniform(0, 12, 5)), np.linspace(13, 20, 4)]   # ragged and uniform steps
    res = cn.simulate(G, times)
    assert res.method == "exact-gaussian"
    R0, S0 = start_of(spec)
    Rs, Ss = reference_run(spec, R0, S0, times)
    n = 3
    alpha = (Rs[:, :n] + 1j * Rs[:, n:]) / np.sqrt(2)
    Nc, Mc = sigma_to_moments(Ss)
    occ = np.einsum("tii->ti", Nc).real
    assert _rel(res.amplitudes, alpha) < DENSE_REL
    assert _rel(res.fluctuations, occ) < DENSE_REL
    assert _rel(res.anomalous, np.einsum("tii->ti", Mc)) < DENSE_REL
    omega = np.array([c["omega"] for c in spec["cells"]])
    assert _rel(res.energies, omega * (np.abs(alpha) ** 2 + occ)) < DENSE_REL
    assert _rel(res.battery_fluctuations, Nc) < DENSE_REL and _rel(res.battery_anomalous, Mc) < DENSE_REL
    fs = res.final_state
    assert _rel(fs.Nc, Nc[-1]) < DENSE_REL and _rel(fs.Mc, Mc[-1]) < DENSE_REL and fs.time == times[-1]
    # steady state
    ss = cn.steady_state(G)
    Rss, Sss = reference_steady(spec)
    Nss, Mss = sigma_to_moments(Sss)
    assert ss.method == "gaussian-lyapunov"
    assert _rel(ss.amplitudes, (Rss[:n] + 1j * Rss[n:]) / np.sqrt(2)) < DENSE_REL
    assert _rel(ss.state.Nc, Nss) < DENSE_REL and _rel(ss.state.Mc, Mss) < DENSE_REL


def test_unstable_network_propagates_exactly_and_has_no_steady_state():
    """Above threshold the run still is exact (Van Loan's block exponential instead of the steady shift)."""
    spec = random_spec(np.random.default_rng(5), n=2, stable=False)
    G = graph_of(spec)
    times = np.linspace(0, 3, 4)
    res = cn.simulate(G, times)
    Rs, Ss = reference_run(spec, *start_of(spec), times)
    Nc, Mc = sigma_to_moments(Ss)
    assert _rel(res.fluctuations, np.einsum("tii->ti", Nc).real) < DENSE_REL
    assert _rel(res.anomalous, np.einsum("tii->ti", Mc)) < DENSE_REL
    with pytest.raises(NoSteadyStateError, match="pump on cell 'c0'"):
        cn.steady_state(G)


def test_squeezed_start_written_out_matches_squeezed_thermal():
    """The start (R0, sigma0) built here by rotating a squeezed covariance agrees with the closed-form moments."""
    spec = dict(cells=[dict(omega=1.0, kappa=0.0, n0=0.3, xi0=0.4 * np.exp(0.6j), alpha0=0.7 + 0.2j)], links=[],
                reservoirs=[], wL=0.0)
    _, S0 = start_of(spec)
    n, m = squeezed_thermal(0.3, 0.4 * np.exp(0.6j))
    assert np.abs(S0 - moments_to_sigma(np.diag(n), np.diag(m))).max() < 1e-14
    st = cn.initial_state(graph_of(spec))
    assert abs(st.Nc[0, 0] - n[0]) < 1e-15 and abs(st.Mc[0, 0] - m[0]) < 1e-15


# ----------------------------------------------------------------------------------------------------------
# Checked values (docs/theory/gaussian.md, "Checked values").

def test_squeezed_bath_steady_state_and_ergotropy():
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.0, kappa=0.5, n_th=0.3, m_th=0.2 + 0.1j)
    ss = cn.steady_state(G)
    assert abs(ss.state.Nc[0, 0] - 0.3) < CHECKED_ABS and abs(ss.state.Mc[0, 0] - (0.2 + 0.1j)) < CHECKED_ABS
    assert abs(cn.ergotropy(ss) - 0.0318854252) < CHECKED_ABS
    assert abs(cn.ergotropy(ss, collective=True) - 0.0318854252) < CHECKED_ABS
    G.nodes["a"]["m_th"] = 0.0                   # a thermal bath: no work
    assert cn.steady_state(G).method != "gaussian-lyapunov" and cn.ergotropy(cn.steady_state(G)) == 0.0


def test_resonant_pump_steady_state_drive_and_threshold():
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.0, kappa=1.0, pump=0.2)
    ss = cn.steady_state(G)
    assert abs(ss.state.Nc[0, 0] - 0.0952380952) < CHECKED_ABS
    assert abs(ss.state.Mc[0, 0] - (-0.2380952381j)) < CHECKED_ABS
    G.nodes["a"]["drive"] = 0.1
    ss = cn.steady_state(G)
    assert abs(ss.amplitudes[0] - (0.0952380952 - 0.2380952381j)) < CHECKED_ABS
    assert abs(ss.energies[0] - 0.1609977324) < CHECKED_ABS
    assert abs(cn.ergotropy(ss) - 0.1154530068) < CHECKED_ABS
    res = cn.simulate(G, np.linspace(0, 80, 9))     # relaxes to it
    assert abs(res.energies[-1, 0] - 0.1609977324) < CHECKED_ABS
    # the eigenvalues on resonance are -kappa/2 +- |P|: stable just below kappa/2, not at it
    G.nodes["a"]["pump"] = 0.5 - 1e-9
    cn.steady_state(G)
    G.nodes["a"]["pump"] = 0.5
    with pytest.raises(NoSteadyStateError, match=r"pump on cell 'a'.*sqrt\(kappa\^2/4 \+ Delta\^2\) = 0\.5 "):
        cn.steady_state(G)
    # detuned: the threshold grows to sqrt(kappa^2/4 + Delta^2)
    H = cn.network(drive_frequency=0.7)
    cn.add_cell(H, "a", omega=1.0, kappa=1.0, pump=0.58)          # sqrt(0.25 + 0.09) = 0.583
    cn.check_stability(H)
    H.nodes["a"]["pump"] = 0.59
    with pytest.raises(NoSteadyStateError, match=r"= 0\.583095"):
        cn.check_stability(H)


def test_nondegenerate_parametric_threshold_names_the_link():
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "s", omega=1.0, kappa=1.0)
    cn.add_cell(G, "i", omega=1.0, kappa=1.0)
    cn.add_parametric_link(G, "s", "i", 0.3)
    cn.steady_state(G)
    G.edges["s", "i"]["g"] = 0.5
    with pytest.raises(NoSteadyStateError, match=r"parametric link \('s', 'i'\).*\|g\| < 0\.5\b"):
        cn.steady_state(G)


def test_energy_variance_one_mode_and_thermal():
    G = cn.network(drive_frequency=0.0)
    cn.add_cell(G, "a", omega=1.0, alpha0=0.7 + 0.2j, n0=0.3, xi0=0.4 * np.exp(0.6j))
    res = cn.simulate(G, [0.0, 1.0])
    assert abs(cn.energy_variance(res)[0] - 1.7813174017) < CHECKED_ABS
    assert abs(cn.energy_variance(res)[1] - 1.7813174017) < CHECKED_ABS     # a lossless mode keeps it
    # the closed form n(n+1) + |m|^2 + |alpha|^2 (2n+1) + 2 Re(conj(alpha)^2 m), from the final state
    fs = res.final_state
    a, n, m = fs.alpha[0], fs.Nc[0, 0].real, fs.Mc[0, 0]
    want = n * (n + 1) + abs(m) ** 2 + abs(a) ** 2 * (2 * n + 1) + 2 * (np.conj(a) ** 2 * m).real
    assert abs(cn.energy_variance(res)[1] - want) < CHECKED_ABS
    # thermal: omega^2 n (n + 1), phase-insensitive path
    H = cn.network(drive_frequency=1.0)
    cn.add_cell(H, "a", omega=2.0, kappa=0.1, n_th=0.4)
    assert abs(cn.energy_variance(cn.steady_state(H)) - 4 * 0.4 * 1.4) < CHECKED_ABS


def test_log_negativity_two_mode_squeezed_vacuum():
    r = 0.5
    sc = np.sinh(r) * np.cosh(r)
    s = cn.State(("a", "b"), np.zeros(2), np.diag([np.sinh(r) ** 2] * 2), Mc=np.array([[0, sc], [sc, 0]]))
    assert abs(cn.log_negativity(s, "a", "b") - 1.4426950409) < CHECKED_ABS
    assert abs(cn.log_negativity(s, ["a"], ["b"]) - 2 * r * np.log2(np.e)) < 1e-12
    # a parametric link makes it from the vacuum: g t = r, lossless resonant pair
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.0, battery=True)
    cn.add_cell(G, "b", omega=1.0, battery=True)
    cn.add_parametric_link(G, "a", "b", 0.25)
    res = cn.simulate(G, [0.0, 2.0])
    assert abs(res.final_state.Nc[0, 0] - np.sinh(0.5) ** 2) < 1e-12
    assert abs(cn.log_negativity(res, "a", "b")[-1] - 1.4426950409) < CHECKED_ABS
    assert cn.log_negativity(res.final_state, "a", "b") == pytest.approx(1.4426950409, abs=CHECKED_ABS)
    th = cn.State(("a", "b"), np.zeros(2), np.diag([0.3, 0.2]))             # thermal: separable
    assert cn.log_negativity(th, "a", "b") == 0.0


def test_two_lc_circuits_need_both_couplings():
    """Charger thermal n0 = 1, battery vacuum, lossless, lab frame: the battery's ergotropy stays 0 with the
    rotating (beam-splitter) or the counter-rotating (parametric) coupling alone, and is positive with both,
    as a position coupling g (a + a^dag)(b + b^dag) gives."""
    def res_graph(gR, gC):
        G = cn.network(drive_frequency=0.0)
        cn.add_cell(G, "charger", omega=1.0, n0=1.0)
        cn.add_cell(G, "battery", omega=1.0, battery=True)
        if gR:
            cn.add_coherent_link(G, "charger", "battery", gR)
        if gC:
            cn.add_parametric_link(G, "charger", "battery", gC)
        return G

    def run(gR, gC):
        return cn.simulate(res_graph(gR, gC), np.linspace(0, 5, 11))

    for gR, gC in [(0.1, 0.0), (0.0, 0.1)]:
        res = run(gR, gC)
        assert res.battery_energy[-1] > 0.01                       # energy arrives...
        assert np.abs(cn.ergotropy(res, collective=True)).max() < 1e-12   # ...but no work
        assert np.abs(cn.ergotropy(res)).max() < 1e-12
    res = run(0.1, 0.1)
    with pytest.raises(NoSteadyStateError, match="unstable even without its pumps and parametric links"):
        cn.steady_state(res_graph(0.1, 0.1))                       # lossless: no steady state to go to
    assert abs(res.battery_energy[-1] - 0.2480509529) < CHECKED_ABS
    assert abs(cn.ergotropy(res)[-1] - 0.0109671019) < CHECKED_ABS
    assert abs(cn.ergotropy(res, collective=True)[-1] - 0.0109671019) < CHECKED_ABS


def test_collective_ergotropy_with_squeezing():
    """W_G = E - omega sum (nu_k - 1/2): a two-mode squeezed vacuum's modes are thermal alone (no local
    work) but the pair is pure (all of its energy is work)."""
    r = 0.4
    sc = np.sinh(r) * np.cosh(r)
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.0, battery=True)
    cn.add_cell(G, "b", omega=1.0, battery=True)
    cn.add_parametric_link(G, "a", "b", r / 2)
    res = cn.simulate(G, [0.0, 2.0])
    E = res.battery_energy[-1]
    assert abs(E - 2 * np.sinh(r) ** 2) < 1e-12 and abs(res.final_state.Mc[0, 1] + 1j * sc) < 1e-12
    assert abs(cn.ergotropy(res)[-1]) < 1e-12
    assert abs(cn.ergotropy(res, collective=True)[-1] - E) < 1e-12


def test_nondegenerate_parametric_amplifier_gain():
    """Two resonant modes (kappa = 1, ports) with a parametric link g: resonant reflection gain
    ((kappa^2/4 + g^2)/(kappa^2/4 - g^2))^2 = 4.515625 at g = 0.3, conversion gain that minus 1."""
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "s", omega=1.0, kappa=1.0)
    cn.add_cell(G, "i", omega=1.0, kappa=1.0)
    cn.add_parametric_link(G, "s", "i", 0.3)
    r = cn.scattering(G, np.linspace(-1, 1, 5))
    assert r.method == "gaussian-dense"
    assert abs(r.reflection("s", db=False)[2] - 4.515625) < CHECKED_ABS
    assert abs(r.reflection("s")[2] - 10 * np.log10(4.515625)) < 1e-9
    assert abs(abs(r.idler[2, 0, 1]) ** 2 - 3.515625) < CHECKED_ABS and r.idler[2, 0, 0] == 0
    # every loss is a port: |S|^2 - |idler|^2 sums to 1 over the inputs, at every detuning
    assert np.abs((np.abs(r.S) ** 2).sum(-1) - (np.abs(r.idler) ** 2).sum(-1) - 1).max() < 1e-12
    # with the link at g = 0 the signal block is the phase-insensitive scattering matrix
    m = cn.gaussian.general_model(cn.build_model(cn.two_cell()))
    from chiralnet.solve.general import scattering_general
    kap = np.array([0.003, 0.003])
    want = cn.scattering(cn.two_cell(), [0.0, 0.02])
    S, idler = scattering_general(m, kap, np.arange(2), np.array([0.0, 0.02]))
    assert np.abs(S - want.S).max() < 1e-12 and not idler.any()
    G.edges["s", "i"]["g"] = 0.5
    with pytest.raises(NoSteadyStateError, match="parametric link"):
        cn.scattering(G, [0.0])


# ----------------------------------------------------------------------------------------------------------
# QuTiP: every term at once on two truncated modes.

def qutip_differences(cut):
    """max |chiralnet - QuTiP| of each compared moment, QuTiP at ``cut`` Fock states per mode."""
    import qutip as qt

    wL = 1.0
    cells = [dict(omega=1.02, kappa=0.6, n_th=0.05, m_th=0.12 * np.exp(0.4j), pump=0.08 * np.exp(0.3j),
                  drive=0.05 + 0.02j, alpha0=0.1 - 0.05j, n0=0.02, xi0=0.15 * np.exp(1.1j)),
             dict(omega=0.97, kappa=0.5, n_th=0.03, pump=0.0, drive=0.0, alpha0=0.05j, n0=0.0, xi0=0.1)]
    link = (0, 1, 0.07 - 0.03j, 0.05 * np.exp(-0.8j))
    res_spec = (0.2, 0.04, 0.1 * np.exp(-0.5j), {0: 0.8, 1: -0.5j})
    spec = dict(cells=cells, links=[link], reservoirs=[res_spec], wL=wL)
    times = np.array([0.0, 1.5, 4.0, 8.0])
    res = cn.simulate(graph_of(spec, ["a", "b"]), times)

    a = [qt.tensor(qt.destroy(cut), qt.qeye(cut)), qt.tensor(qt.qeye(cut), qt.destroy(cut))]
    H = 0
    for i, c in enumerate(cells):
        H += (c["omega"] - wL) * a[i].dag() * a[i]
        H += 0.5 * (c["pump"] * a[i].dag() ** 2 + np.conj(c["pump"]) * a[i] ** 2)
        H += c["drive"] * a[i].dag() + np.conj(c["drive"]) * a[i]
    i, j, J, g = link
    H += J * a[i].dag() * a[j] + np.conj(J) * a[j].dag() * a[i]
    H += g * a[i].dag() * a[j].dag() + np.conj(g) * a[i] * a[j]
    c_ops = []
    chans = [(c["kappa"], c["n_th"], c.get("m_th", 0), a[k]) for k, c in enumerate(cells)]
    chans.append((res_spec[0], res_spec[1], res_spec[2], sum(p * a[k] for k, p in res_spec[3].items())))
    for rate, N, Mth, z in chans:
        kos = rate * np.array([[N + 1, -np.conj(Mth)], [-Mth, N]])
        lam, V = np.linalg.eigh(kos)
        c_ops += [np.sqrt(max(l_, 0)) * (V[0, k] * z + V[1, k] * z.dag()) for k, l_ in enumerate(lam) if l_ > 1e-15]
    rhos = []
    for c in cells:
        r = qt.displace(cut, c["alpha0"]) * qt.squeeze(cut, c["xi0"])
        rhos.append(r * qt.thermal_dm(cut, c["n0"]) * r.dag())
    rho0 = qt.tensor(*rhos)
    HB = 1.02 * a[0].dag() * a[0] + 0.97 * a[1].dag() * a[1]          # both cells count (none marked)
    e_ops = [a[0], a[1], a[0].dag() * a[0], a[1].dag() * a[1], a[0] * a[0], a[0] * a[1], a[0].dag() * a[1],
             HB, HB * HB]
    out = qt.mesolve(H, rho0, times, c_ops, e_ops=e_ops, options={"atol": 1e-12, "rtol": 1e-10,
                                                                 "store_states": True})
    ex = [np.asarray(e) for e in out.expect]
    # log-negativity from the partial transpose of the density matrix: log2 of its trace norm
    neg = np.array([np.log2(np.abs(np.linalg.eigvalsh(qt.partial_transpose(rho, [0, 1]).full())).sum())
                    for rho in out.states])
    al = res.amplitudes
    occ = res.energies / np.array([1.02, 0.97])
    Rs, _ = reference_run(spec, *start_of(spec), times)
    return {
        "<a0>": np.abs(al[:, 0] - ex[0]).max(), "<a1>": np.abs(al[:, 1] - ex[1]).max(),
        "<a0^dag a0>": np.abs(occ[:, 0] - ex[2].real).max(), "<a1^dag a1>": np.abs(occ[:, 1] - ex[3].real).max(),
        "<a0 a0>": np.abs(res.anomalous[:, 0] + al[:, 0] ** 2 - ex[4]).max(),
        "<a0 a1>": np.abs(res.battery_anomalous[:, 0, 1] + al[:, 0] * al[:, 1] - ex[5]).max(),
        "<a0^dag a1>": np.abs(res.battery_fluctuations[:, 0, 1] + np.conj(al[:, 0]) * al[:, 1] - ex[6]).max(),
        # the dense reference agrees with QuTiP too (it is right, not only consistent)
        "reference <a0>": np.abs((Rs[:, 0] + 1j * Rs[:, 2]) / np.sqrt(2) - ex[0]).max(),
        "Var H_B": np.abs(cn.energy_variance(res) - (ex[8].real - ex[7].real ** 2)).max(),
        "E_N": np.abs(cn.log_negativity(res, "a", "b") - neg).max(),
    }


def test_qutip_mesolve_two_modes_every_term():
    pytest.importorskip("qutip")
    diff = qutip_differences(QUTIP_CUTOFF)
    assert max(diff.values()) < QUTIP_ABS, diff


# ----------------------------------------------------------------------------------------------------------
# The phase-insensitive path is untouched; the general path agrees with it.

def test_phase_insensitive_networks_keep_their_path():
    G = cn.two_cell(n_th=0.2)
    H = cn.network(drive_frequency=1.0)
    cn.add_cell(H, "a", omega=1.0, kappa=0.1, pump=0, m_th=0j, xi0=0)     # zeros are not stored
    assert set(H.nodes["a"]) == {"kind", "omega", "kappa", "n_th", "drive", "alpha0", "n0", "battery"}
    m = cn.build_model(G)
    assert isinstance(m, cn.Model)
    times = np.linspace(0, 400, 9)
    ref = cn.simulate(G, times)
    assert ref.method == "exact" and ref.anomalous is None and ref.final_state.Mc is None
    # the general path on the same network (a state0 with Mc = 0 takes it) agrees
    s0 = cn.State(m.cells, np.zeros(2, complex), Mc=np.zeros((2, 2)))
    gen = cn.simulate(G, times, state0=s0)
    assert gen.method == "exact-gaussian"
    assert _rel(gen.energies, ref.energies) < 1e-11
    assert np.abs(gen.anomalous).max() < 1e-12
    ss = cn.steady_state(G)
    gss = cn.steady_state(cn.gaussian.general_model(m))
    assert _rel(gss.energies, ss.energies) < 1e-11


def test_general_model_refuses_the_phase_insensitive_tools():
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.0, kappa=1.0, pump=0.1, drive=0.1)
    m = cn.build_model(G)
    assert isinstance(m, GaussianModel) and m.terms == (("pump", "a", 0.1 + 0j),)
    with pytest.raises(cn.ChiralnetError, match="squeezing or parametric terms"):
        m.M
    with pytest.raises(SolverError, match="takes method 'exact-gaussian'"):
        cn.simulate(G, [0.0, 1.0], method="exact")
    with pytest.raises(SolverError, match="rtol does not apply"):
        cn.simulate(G, [0.0, 1.0], rtol=1e-6)
    asked = cn.simulate(cn.two_cell(), [0.0, 100.0], method="exact-gaussian")   # any network, by name
    assert asked.method == "exact-gaussian"
    assert _rel(asked.energies, cn.simulate(cn.two_cell(), [0.0, 100.0]).energies) < 1e-11
    with pytest.raises(SolverError, match="rtol does not apply"):
        cn.simulate(cn.two_cell(), [0.0, 1.0], method="exact-gaussian", rtol=1e-6)


def test_continued_runs_cells_and_frames():
    spec = random_spec(np.random.default_rng(3), n=3)
    G = graph_of(spec)
    times = np.linspace(0, 10, 11)
    whole = cn.simulate(G, times)
    first = cn.simulate(G, times[:6])
    rest = cn.simulate(G, times[5:], state0=first.final_state)
    assert _rel(rest.energies, whole.energies[5:]) < 1e-11
    assert _rel(rest.anomalous, whole.anomalous[5:]) < 1e-11
    some = cn.simulate(G, times, cells=["c2", "c0"])
    assert some.cells == ("c2", "c0")
    assert _rel(some.energies, whole.energies[:, [2, 0]]) < 1e-12
    assert _rel(some.anomalous, whole.anomalous[:, [2, 0]]) < 1e-12
    assert _rel(some.total_energy, whole.total_energy) < 1e-12
    # in_frame: a squeezed free mode seen from two frames (no term that depends on the frame)
    H1 = cn.network(drive_frequency=0.9)
    cn.add_cell(H1, "a", omega=1.0, kappa=0.2, xi0=0.3, alpha0=0.4)
    H2 = cn.network(drive_frequency=1.2)
    cn.add_cell(H2, "a", omega=1.0, kappa=0.2)
    r1 = cn.simulate(H1, [0.0, 3.0, 5.0])
    r2 = cn.simulate(H2, [3.0, 5.0], state0=cn.simulate(H1, [0.0, 3.0]).final_state)
    turn = np.exp(2j * (1.2 - 0.9) * 5.0)
    assert abs(r2.final_state.Mc[0, 0] - r1.final_state.Mc[0, 0] * turn) < 1e-12
    assert abs(r2.energies[-1, 0] - r1.energies[-1, 0]) < 1e-12


def test_protocol_pump_then_store():
    """A protocol whose first phase pumps and drives (general path) and whose second only stores (a
    phase-insensitive network, run on the general path because the state it inherits is squeezed) equals the
    two runs chained by hand; the result keeps Mc_ii and the battery block of Mc across both phases."""
    charge = cn.network(drive_frequency=1.0)
    cn.add_cell(charge, "a", omega=1.0, kappa=0.5, pump=0.15, drive=0.1)
    cn.add_cell(charge, "b", omega=1.0, kappa=0.01, battery=True)
    cn.add_chiral_link(charge, "a", "b", gamma=0.2)
    store = cn.network(drive_frequency=1.0)
    cn.add_cell(store, "a", omega=1.0, kappa=0.5)
    cn.add_cell(store, "b", omega=1.0, kappa=0.01, battery=True)
    times = np.linspace(0, 60, 13)
    res = cn.simulate(cn.protocol([(charge, 30.0, "charge"), (store, 30.0, "store")]), times)
    assert res.method == "exact-gaussian" and res.phase.tolist() == [0] * 7 + [1] * 6
    first = cn.simulate(charge, times[:7])
    second = cn.simulate(store, times[6:], state0=first.final_state)
    assert _rel(res.energies, np.r_[first.energies, second.energies[1:]]) < 1e-12
    assert _rel(res.anomalous, np.r_[first.anomalous, second.anomalous[1:]]) < 1e-12
    assert res.battery_anomalous.shape == (13, 1, 1)
    assert abs(res.final_state.Mc[1, 1] - second.final_state.Mc[1, 1]) < 1e-14
    w = cn.ergotropy(res)
    assert _rel(w, np.r_[cn.ergotropy(first), cn.ergotropy(second)[1:]]) < 1e-12


# ----------------------------------------------------------------------------------------------------------
# Schema and validation.

def test_schema_and_errors_name_the_cell_or_reservoir():
    G = cn.network()
    cn.add_cell(G, "a", omega=1.0, kappa=1.0, n_th=0.3, m_th=0.2 + 0.1j)
    cn.add_cell(G, "b", omega=1.0, kappa=1.0)
    with pytest.raises(NetworkError, match=r"cell 'c': the squeezed bath needs \|m_th\|\^2 <= n_th"):
        cn.add_cell(G, "c", omega=1.0, n_th=0.1, m_th=0.5)
    with pytest.raises(NetworkError, match="reservoir 'R7': the squeezed bath.*at least 0.6180339887"):
        cn.add_reservoir(G, {"a": 1, "b": -1}, gamma=0.1, n_th=0.0, m_th=1.0, name="R7")
    with pytest.raises(NetworkError, match="cell 'c' attribute 'pump' must be finite"):
        cn.add_cell(G, "c", omega=1.0, pump=complex("nan"))
    with pytest.raises(NetworkError, match="attribute 'xi0' must be a number"):
        cn.add_cell(G, "c", omega=1.0, xi0="0.3")
    with pytest.raises(NetworkError, match="self-loop"):
        cn.add_parametric_link(G, "a", "a", 0.1)
    cn.add_parametric_link(G, "a", "b", 0.1)
    with pytest.raises(NetworkError, match="already have a parametric link"):
        cn.add_parametric_link(G, "b", "a", 0.1)
    cn.add_coherent_link(G, "b", "a", 0.2j)        # joins the parametric edge (a, b), conjugated
    assert G.edges["a", "b"] == {"g": 0.1 + 0j, "J": -0.2j}
    with pytest.raises(NetworkError, match="already have a coherent link"):
        cn.add_coherent_link(G, "a", "b", 0.1)
    G.nodes["a"]["m_th"] = 1.0                     # edited after the fact: validation catches it
    with pytest.raises(NetworkError, match="cell 'a': the squeezed bath"):
        cn.simulate(G, [0.0])
    G.nodes["a"]["m_th"] = 0.1
    G.edges["a", "b"]["gg"] = 1.0
    with pytest.raises(NetworkError, match="unknown attribute 'gg'"):
        cn.validate_network(G)
    del G.edges["a", "b"]["gg"]
    cn.validate_network(G)
    # a chiral link can carry a squeezed reservoir
    H = cn.network()
    cn.add_cell(H, "u", omega=1.0, kappa=0.1)
    cn.add_cell(H, "v", omega=1.0, kappa=0.1)
    r = cn.add_chiral_link(H, "u", "v", gamma=0.2, n_th=0.2, m_th=0.3)
    assert H.nodes[r]["m_th"] == 0.3 and isinstance(cn.build_model(H), GaussianModel)


def test_state_mc_is_checked_and_carried():
    with pytest.raises(NetworkError, match="symmetric"):
        cn.State(("a", "b"), np.zeros(2), Mc=np.array([[0, 1], [0, 0]]))
    with pytest.raises(NetworkError, match=r"State.Mc must be a finite \(2, 2\)"):
        cn.State(("a", "b"), np.zeros(2), Mc=np.zeros(3))
    s = cn.State(("a", "b"), np.array([0.1, 0.2j]), np.diag([0.5, 0.1]), Mc=np.array([[0.3, 0.1], [0.1, 0.0]]))
    t = s.for_cells(("b", "a"))
    assert t.Mc[0, 0] == 0.0 and t.Mc[1, 1] == 0.3 and t.at(2.0).Mc is t.Mc
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.0, kappa=0.1)
    with pytest.raises(SolverError, match="not a quantum state"):   # |m|^2 > n (n + 1)
        cn.simulate(G, [0.0], state0=cn.State(("a",), np.zeros(1), np.diag([0.1]), Mc=np.diag([0.5])))


def test_quadrature_generator_by_blocks_equals_the_dense_products():
    """_quadratures writes T^-1 Z T and T^-1 Db T^-dag block by block (O(N^2)); the dense products agree to
    rounding (1e-13 relative) on random complex M, symmetric G and S, Hermitian Q."""
    from chiralnet.gaussian import _quadratures, _quadratures_reference

    rng = np.random.default_rng(7)
    n = 6

    def c(*shape):
        return rng.normal(size=shape) + 1j * rng.normal(size=shape)

    M, G, E, Q, S = c(n, n), c(n, n), c(n), c(n, n), c(n, n)
    G, S, Q = G + G.T, S + S.T, Q @ Q.conj().T
    for got, want in zip(_quadratures(M, G, E, Q, S), _quadratures_reference(M, G, E, Q, S)):
        assert _rel(got, want) < 1e-13


def test_large_n_route_equals_the_small_n_kernels(monkeypatch):
    """From 2N >= config.AUTO_DENSE_MAX_CELLS the general path takes a real augmented expm and NumPy's BLAS for
    the covariance steps; forcing the small-N kernels (complex expm, one-kernel loop) on the same 40-cell
    network gives the same trace to rounding (1e-11 relative), with cells= and the battery block."""
    G = cn.chain(40, n_th=0.1)
    first, last = cn.cells(G)[0], cn.cells(G)[-1]
    G.nodes[first]["pump"] = 0.05
    G.nodes[last]["m_th"] = 0.02j
    G.nodes[cn.cells(G)[-2]]["battery"] = True
    times = np.r_[0.0, np.linspace(1.0, 40.0, 12), 55.0]
    keep = [last, first]
    big = [cn.simulate(G, times), cn.simulate(G, times, cells=keep)]
    monkeypatch.setattr(config, "AUTO_DENSE_MAX_CELLS", 10**6)
    small = [cn.simulate(G, times), cn.simulate(G, times, cells=keep)]
    for a, b in zip(big, small):
        assert a.method == b.method == "exact-gaussian"
        for name in ("energies", "amplitudes", "fluctuations", "anomalous", "total_energy", "battery_energy"):
            assert _rel(getattr(a, name), getattr(b, name)) < 1e-11, name
        assert _rel(a.final_state.Mc, b.final_state.Mc) < 1e-11
    assert _rel(big[0].battery_anomalous, small[0].battery_anomalous) < 1e-11
    assert np.abs(big[0].anomalous).max() > 1e-3


@pytest.mark.parametrize("cascaded", [True, False], ids=["chain", "ring"])
def test_unpaired_steady_state_equals_the_quadrature_lyapunov(cascaded):
    """Without pumps or parametric links (G = 0) the steady state reuses the phase-insensitive solvers for
    alpha, Nc and solves M X + X M^T = -S for Mc (by substitution when cascaded); it equals the quadrature
    Lyapunov solution (1e-10 relative) and the independent reference's."""
    from chiralnet.solve import general

    G = cn.chain(6, n_th=0.1, drive=0.05) if cascaded else cn.ring(5, nonreciprocal=False, n_th=0.1)
    names = cn.cells(G)
    G.nodes[names[0]]["m_th"] = 0.05 * np.exp(0.3j)
    G.nodes[names[2]]["m_th"] = -0.08j
    cn.add_reservoir(G, {names[1]: 0.7, names[3]: 0.4j}, gamma=0.2, n_th=0.3, m_th=0.2 * np.exp(-1.1j))
    model = cn.build_model(G)
    assert not model.pairing.any() and model.base is not None
    ss = cn.steady_state(G)
    R, S = general._steady_quadratures(model)
    ref = cn.gaussian.quadrature_state(model.cells, R, S)
    assert np.abs(ss.state.Mc).max() > 1e-3
    for got, want in ((ss.state.alpha, ref.alpha), (ss.state.Nc, ref.Nc), (ss.state.Mc, ref.Mc)):
        assert _rel(got, want) < 1e-10


def test_propagator_budget_counts_real_entries(monkeypatch):
    """The general path's dense propagators are real: K (2N)^2 entries against twice the complex budget of
    config.EXACT_MAX_PROPAGATOR_ENTRIES; past it the error names the sizes and the fixes."""
    G = cn.chain(4, n_th=0.1)
    G.nodes[cn.cells(G)[0]]["pump"] = 0.01
    times = [0.0, 1.0, 3.0]                      # three distinct steps (0, 1, 2): 3 x 8^2 = 192 real entries
    monkeypatch.setattr(config, "EXACT_MAX_PROPAGATOR_ENTRIES", 96)
    assert cn.simulate(G, times).method == "exact-gaussian"
    monkeypatch.setattr(config, "EXACT_MAX_PROPAGATOR_ENTRIES", 95)
    with pytest.raises(SolverError, match=r"3 distinct time steps, 3 x \(2N\)\^2 = 192 real entries > .* = 190\); "
                                          "use a uniform time grid or raise that budget"):
        cn.simulate(G, times)


@pytest.mark.parametrize("seed", [0, 1])
def test_doubled_model_runs_the_general_class_on_phase_insensitive_solvers(seed):
    """gaussian.doubled_model: a 2N-mode phase-insensitive model whose (alpha, X) hold (alpha, Nc, Mc); every
    phase-insensitive method on it reproduces the independent dense quadrature solution."""
    from chiralnet.gaussian import doubled_model, doubled_state, undoubled_moments

    rng = np.random.default_rng(seed)
    spec = random_spec(rng, n=4)
    gm = cn.build_model(graph_of(spec))
    d = doubled_model(gm)
    assert d.n_cells == 8 and not d.battery[4:].any() and (d.omega[4:] == 0).all()
    times = np.r_[0.0, np.sort(rng.uniform(0, 12, 5)), np.linspace(13, 20, 4)]
    R0, S0 = start_of(spec)
    Rs, Ss = reference_run(spec, R0, S0, times)
    Nc, Mc = sigma_to_moments(Ss)
    alpha = (Rs[:, :4] + 1j * Rs[:, 4:]) / np.sqrt(2)
    for method, tol in (("exact", DENSE_REL), ("exact-sparse", DENSE_REL), ("rk45", 1e-9)):
        opts = dict(rtol=1e-10, atol=1e-12) if method == "rk45" else {}
        r = cn.simulate(d, times, state0=doubled_state(gm.initial, d), method=method, **opts)
        a, N, M = undoubled_moments(r.final_state.alpha, r.final_state.dense_Nc())
        assert _rel(r.amplitudes[:, :4], alpha) < tol and _rel(N, Nc[-1]) < tol and _rel(M, Mc[-1]) < tol, method
    ss = cn.steady_state(d)
    Rss, Sss = reference_steady(spec)
    Nss, Mss = sigma_to_moments(Sss)
    a, N, M = undoubled_moments(ss.state.alpha, ss.state.dense_Nc())
    assert _rel(a, (Rss[:4] + 1j * Rss[4:]) / np.sqrt(2)) < DENSE_REL
    assert _rel(N, Nss) < DENSE_REL and _rel(M, Mss) < DENSE_REL
