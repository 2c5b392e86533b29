"""The scattering view (chiralnet.solve.response), its figures, and the ``chiralnet spectrum`` command.

References: the matched isolator's closed forms (docs/theory/beyond.md, "Scattering"), a chiral chain's product
formula, a one-way ring of three cells (closed form below), and a naive dense solve written here
from the graph, one node and edge at a time.
"""

import re
import doctest
import math
from pathlib import Path

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from strategies import networks

import chiralnet as cn
from chiralnet import cli, config
from chiralnet.plotting import scattering as ps
from chiralnet.errors import MemoryLimitError, NoSteadyStateError
from chiralnet.solve.response import SCATTERING_METHODS as METHODS
from chiralnet.arrays import chain_model

ROOT = Path(__file__).resolve().parent.parent

#: |S|^2 of the matched isolator against its closed form (values in [0, 1]: a few ulps).
CLOSED_FORM_ABS = 4e-15
#: S against the naive dense inverse on random networks, max |got - want| / max |want|.
NAIVE_REL = 1e-11
#: The cascaded kernel against the dense and sparse LU paths (same quantity, other algorithm).
PATHS_REL = 1e-12
#: A chiral chain's transmission against its product formula (relative, per detuning).
CHAIN_REL = 1e-12
#: Edges of the isolation band against the ring's closed form, relative to the edge.
BAND_REL = 1e-9
#: 0.643594 kappa is the half-power detuning to 6 digits: |S21|^2 = 0.5 there to this.
HALF_POWER_6_DIGITS = 1e-6


# ---------------------------------------------------------------------------------------------
# Networks and the naive reference.


def isolator(kappa=0.01):
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.0, kappa=kappa)
    cn.add_cell(G, "b", omega=1.0, kappa=kappa)
    cn.add_chiral_link(G, "a", "b", gamma=kappa)
    return G


def naive_scattering(G, detunings, ports=None):
    """S(delta) = I + K^1/2 (M + i delta)^-1 K^1/2 on the ports, M assembled by loops over the graph."""
    cells = [n for n, d in G.nodes(data=True) if d.get("kind", "cell") == "cell"]
    pos = {c: i for i, c in enumerate(cells)}
    n = len(cells)
    wL = G.graph.get("drive_frequency", 1.0)
    H = np.zeros((n, n), complex)
    D = np.zeros((n, n), complex)
    for c in cells:
        i = pos[c]
        H[i, i] += G.nodes[c]["omega"] - wL
        D[i, i] += G.nodes[c].get("kappa", 0.0)
    for u, v, d in G.edges(data=True):
        if "J" in d:
            H[pos[u], pos[v]] += d["J"]
            H[pos[v], pos[u]] += np.conj(d["J"])
    for r, d in G.nodes(data=True):
        if d.get("kind") == "reservoir":
            amps = {c: p for _, c, p in G.out_edges(r, data="p")}
            for cj, pj in amps.items():
                for ck, pk in amps.items():
                    D[pos[cj], pos[ck]] += d["gamma"] * np.conj(pj) * pk
    M = -1j * H - D / 2
    ports = [c for c in cells if G.nodes[c].get("kappa", 0.0) > 0] if ports is None else list(ports)
    idx = [pos[p] for p in ports]
    sk = np.sqrt([G.nodes[p]["kappa"] for p in ports])
    S = np.empty((len(detunings), len(ports), len(ports)), complex)
    for f, delta in enumerate(detunings):
        inv = np.linalg.inv(M + 1j * delta * np.eye(n))
        for a, i in enumerate(idx):
            for b, j in enumerate(idx):
                S[f, a, b] = (a == b) + sk[a] * inv[i, j] * sk[b]
    return S


def rel(got, want):
    return np.abs(got - want).max() / np.abs(want).max()


def random_cascade(rng, n=7):
    """Random one-way network: detuned cells, chiral links i -> j (i < j) with random Gamma, xi, n_th."""
    G = cn.network(drive_frequency=1.0)
    for i in range(n):
        cn.add_cell(G, f"c{i}", omega=1.0 + rng.uniform(-0.05, 0.05), kappa=rng.uniform(0.01, 0.1))
    for i in range(n):
        for j in range(i + 1, n):
            if rng.random() < 0.5:
                cn.add_chiral_link(G, f"c{i}", f"c{j}", gamma=rng.uniform(0.01, 0.1), xi=rng.uniform(0.5, 2.0))
    return G


def ring3(kappa=0.01, gamma=0.01):
    """One-way ring of 3: M + i delta = d I + Gamma P (P^3 = I), d = i delta - Lambda/2, Lambda = kappa + 2 Gamma,
    so S_10 = -kappa d Gamma / (d^3 + Gamma^3), S_01 = kappa Gamma^2 / (d^3 + Gamma^3) and
    isolation(0 -> 1) = 10 log10((Lambda^2/4 + delta^2) / Gamma^2)."""
    return cn.ring(3, kappa=kappa, gamma=gamma)


# ---------------------------------------------------------------------------------------------
# Closed forms.


@pytest.mark.parametrize("method", METHODS)
def test_matched_isolator(method):
    k = 0.01
    delta = np.linspace(-5 * k, 5 * k, 1001)
    res = cn.scattering(isolator(k), delta, method=method)
    assert res.S.shape == (delta.size, 2, 2) and res.ports == ("a", "b") and res.method == method
    np.testing.assert_array_equal(res.detunings, delta)
    assert np.abs(res.transmission("a", "b", db=False) - k**4 / (k**2 + delta**2) ** 2).max() <= CLOSED_FORM_ABS
    assert np.abs(res.reflection("a", db=False) - delta**2 / (k**2 + delta**2)).max() <= CLOSED_FORM_ABS
    assert np.all(res.amplitude("b", "a") == 0)                    # S12 = 0 exactly
    assert np.all(res.transmission("b", "a") == -np.inf)
    at = cn.scattering(isolator(k), [k, k * math.sqrt(math.sqrt(2) - 1), 0.643594 * k], method=method)
    assert abs(at.reflection("a", db=False)[0] - 0.5) <= CLOSED_FORM_ABS   # |S11|^2 = 1/2 at delta = kappa
    assert abs(at.transmission("a", "b", db=False)[1] - 0.5) <= CLOSED_FORM_ABS
    assert abs(at.transmission("a", "b", db=False)[2] - 0.5) <= HALF_POWER_6_DIGITS
    assert np.all(cn.isolation(isolator(k), "a", "b", delta, method=method) == np.inf)
    assert np.all(cn.isolation(isolator(k), "b", "a", delta, method=method) == -np.inf)


def test_result_helpers():
    res = cn.scattering(isolator(), [0.0, 0.01])
    np.testing.assert_allclose(res.transmission("a", "b"), [0.0, 10 * np.log10(0.25)], atol=1e-13)
    np.testing.assert_array_equal(res.phase("a", "b"), np.angle(res.S[:, 1, 0]))
    np.testing.assert_array_equal(res.isolation("a", "b"), [np.inf, np.inf])
    np.testing.assert_array_equal(res.kappa, [0.01, 0.01])
    assert res.index("b") == 1
    with pytest.raises(cn.ChiralnetError, match="'zz' is not a port"):
        res.index("zz")
    with pytest.raises(cn.ChiralnetError, match="two different"):
        res.isolation("a", "a")
    assert cn.scattering(isolator(), 0.0).S.shape == (1, 2, 2)      # a scalar detuning


def test_chain_product_formula_and_port_subsets():
    # Chiral chain: x_0 = sqrt(k) / d_0, x_n = -Gamma x_{n-1} / d_n, d_n = i delta - Lambda_n / 2.
    n, k, g = 40, 0.003, 0.04
    delta = np.linspace(-0.1, 0.1, 101)
    lam = np.full(n, k + 2 * g)
    lam[0] = lam[-1] = k + g
    d = 1j * delta[:, None] - lam[None, :] / 2
    x = np.empty((delta.size, n), complex)
    x[:, 0] = np.sqrt(k) / d[:, 0]
    for i in range(1, n):
        x[:, i] = -g * x[:, i - 1] / d[:, i]
    ports = [5, 0, 39, 17]                      # not in cascade order: the kernel's start and stop rows
    res = cn.scattering(cn.chain(n, kappa=k, gamma=g), delta, ports)
    for p in ports:
        want = np.sqrt(k) * x[:, p] if p else 1 + np.sqrt(k) * x[:, 0]
        got = res.amplitude(0, p)
        assert np.max(np.abs(got - want) / np.abs(want)) <= CHAIN_REL
    assert np.all(res.amplitude(39, 5) == 0) and np.all(res.amplitude(17, 0) == 0)   # nothing upstream
    # the same chain as an array-level Model (which needs kappa passed)
    model = chain_model(n, kappa=k, gamma=g)
    res_m = cn.scattering(model, delta, ports, kappa=np.full(n, k))
    np.testing.assert_array_equal(res_m.S, res.S)
    for parallel in (False, True):
        np.testing.assert_array_equal(cn.scattering(model, delta, ports, kappa=np.full(n, k), parallel=parallel).S,
                                      res.S)


def test_ring_isolation_and_bandwidth():
    k, g = 0.01, 0.01
    lam = k + 2 * g
    delta = np.linspace(-0.05, 0.05, 201)
    G = ring3(k, g)
    res = cn.scattering(G, delta)
    assert res.method == "dense"                # a ring has a feedback loop
    dd = 1j * delta - lam / 2
    np.testing.assert_allclose(res.amplitude(0, 1), -k * dd * g / (dd**3 + g**3), rtol=1e-13)
    np.testing.assert_allclose(res.amplitude(1, 0), k * g**2 / (dd**3 + g**3), rtol=1e-13)
    np.testing.assert_allclose(cn.isolation(G, 0, 1, delta), 10 * np.log10((lam**2 / 4 + delta**2) / g**2), rtol=1e-12)
    # 1 -> 0 leaks back (>= level) near resonance: a finite band, both edges found
    level = -6.0
    edge = math.sqrt(g**2 * 10 ** (-level / 10) - lam**2 / 4)
    band = cn.isolation_bandwidth(G, 1, 0, level, span=0.05)
    assert band.low_found and band.high_found
    assert abs(band.high - edge) <= BAND_REL * edge and abs(band.low + edge) <= BAND_REL * edge
    assert abs(band.width - 2 * edge) <= 2 * BAND_REL * edge
    # 0 -> 1 reaches 10 dB only for |delta| >= d_c: from center 2 d_c the band runs to the window's end
    d_c = math.sqrt(g**2 * 10 - lam**2 / 4)
    band = cn.isolation_bandwidth(G, 0, 1, 10.0, span=3 * d_c, center=2 * d_c)
    assert band.low_found and not band.high_found
    assert abs(band.low - d_c) <= BAND_REL * d_c and band.high == pytest.approx(5 * d_c, rel=1e-15)
    assert band.isolation_center == pytest.approx(10 * np.log10((lam**2 / 4 + 4 * d_c**2) / g**2), rel=1e-12)
    # ... and fails at resonance: an empty band
    band = cn.isolation_bandwidth(G, 0, 1, 10.0, span=0.05)
    assert band.width == 0.0 and band.low == band.high == 0.0


def test_isolator_bandwidth_is_the_whole_window():
    band = cn.isolation_bandwidth(isolator(), "a", "b", 60.0, span=0.1, n_grid=11)
    assert (band.low, band.high, band.width) == (-0.1, 0.1, 0.2)
    assert not band.low_found and not band.high_found and band.isolation_center == np.inf


# ---------------------------------------------------------------------------------------------
# Random networks against the naive solve; cascaded kernel against LU.


@given(networks(min_cells=2, max_cells=6))
def test_random_networks_match_naive(G):
    delta = np.linspace(-1.0, 1.0, 7) + 0.01
    want = naive_scattering(G, delta)
    for method in ("auto", "dense", "sparse"):  # every cell is damped: M is stable
        assert rel(cn.scattering(G, delta, method=method).S, want) <= NAIVE_REL, method


def test_shared_reservoirs_and_detunings_match_naive():
    rng = np.random.default_rng(12)
    for trial in range(5):
        G = cn.network(drive_frequency=1.0)
        n = 8
        for i in range(n):
            cn.add_cell(G, i, omega=1 + rng.uniform(-0.3, 0.3), kappa=rng.uniform(0.02, 0.3) if i % 3 else 0.0)
        for _ in range(3):                      # reservoirs on 3-5 cells with complex amplitudes
            members = rng.choice(n, size=rng.integers(3, 6), replace=False)
            cn.add_reservoir(G, {int(c): complex(*rng.normal(size=2)) for c in members}, gamma=rng.uniform(0.05, 0.3))
        for _ in range(4):
            u, v = rng.choice(n, size=2, replace=False)
            if not G.has_edge(int(u), int(v)) and not G.has_edge(int(v), int(u)):
                cn.add_coherent_link(G, int(u), int(v), complex(*rng.normal(scale=0.1, size=2)))
        try:
            cn.check_stability(G)
        except NoSteadyStateError:
            continue
        ports = [c for c in range(n) if G.nodes[c]["kappa"] > 0]
        delta = rng.uniform(-0.5, 0.5, 9)
        want = naive_scattering(G, delta, ports)
        for method in ("auto", "dense", "sparse"):
            assert rel(cn.scattering(G, delta, method=method).S, want) <= NAIVE_REL, (trial, method)


@pytest.mark.parametrize("seed", range(4))
def test_cascaded_equals_lu(seed):
    G = random_cascade(np.random.default_rng(seed))
    delta = np.linspace(-0.2, 0.2, 41)
    ports = ["c6", "c0", "c3"]
    S = {m: cn.scattering(G, delta, ports, method=m).S for m in METHODS}
    assert cn.scattering(G, delta).method == "cascaded"
    assert rel(S["dense"], S["cascaded"]) <= PATHS_REL and rel(S["sparse"], S["cascaded"]) <= PATHS_REL
    assert rel(S["cascaded"], naive_scattering(G, delta, ports)) <= NAIVE_REL
    # one-way: nothing flows upstream, exactly
    assert np.all(S["cascaded"][:, 1, 0] == 0) and np.all(S["cascaded"][:, 1, 2] == 0)


# ---------------------------------------------------------------------------------------------
# Bad input.


def test_bad_ports_and_detunings():
    G = isolator()
    cn.add_cell(G, "dark", omega=1.0)           # undamped and uncoupled: M is not stable
    G2 = isolator()
    with pytest.raises(cn.NetworkError, match="port 'zz' is not a cell"):
        cn.scattering(G2, [0.0], ["a", "zz"])
    with pytest.raises(cn.ChiralnetError, match="listed twice"):
        cn.scattering(G2, [0.0], ["a", "a"])
    with pytest.raises(cn.ChiralnetError, match="list of cell names"):
        cn.scattering(G2, [0.0], "a")
    with pytest.raises(cn.ChiralnetError, match="'ports' is empty"):
        cn.scattering(G2, [0.0], [])
    with pytest.raises(cn.ChiralnetError, match=r"detunings\[1\] = nan"):
        cn.scattering(G2, [0.0, np.nan])
    with pytest.raises(cn.ChiralnetError, match=r"detunings\[0\] = inf"):
        cn.scattering(G2, [np.inf])
    with pytest.raises(cn.ChiralnetError, match="real numbers"):
        cn.scattering(G2, [0.1j])
    with pytest.raises(cn.ChiralnetError, match="empty"):
        cn.scattering(G2, [])
    with pytest.raises(cn.ChiralnetError, match="1-D"):
        cn.scattering(G2, np.zeros((2, 2)))
    with pytest.raises(cn.ChiralnetError, match="unknown scattering method 'lu'"):
        cn.scattering(G2, [0.0], method="lu")
    with pytest.raises(cn.ChiralnetError, match="feedback loop"):
        cn.scattering(ring3(), [0.0], method="cascaded")
    # a port without a channel
    G3 = isolator()
    cn.add_cell(G3, "c", omega=1.0, kappa=0.0)
    cn.add_chiral_link(G3, "b", "c", gamma=0.01)
    with pytest.raises(cn.ChiralnetError, match="port 'c' has kappa = 0"):
        cn.scattering(G3, [0.0], ["a", "c"])
    assert cn.scattering(G3, [0.0]).ports == ("a", "b")            # default: cells with kappa > 0
    # no stationary response: the undamped, uncoupled cell
    with pytest.raises(NoSteadyStateError, match="dark"):
        cn.scattering(G, [0.0], ["a", "b"])
    G4 = cn.network()
    cn.add_cell(G4, "x", omega=1.0)
    cn.add_cell(G4, "y", omega=1.0)
    cn.add_chiral_link(G4, "x", "y", gamma=0.1)
    with pytest.raises(cn.ChiralnetError, match="no cell has kappa > 0"):
        cn.scattering(G4, [0.0])


def test_model_kappa_and_bad_kappa():
    model = cn.build_model(isolator())
    np.testing.assert_array_equal(cn.scattering(model, [0.0, 0.01]).S, cn.scattering(isolator(), [0.0, 0.01]).S)
    bare = dataclasses.replace(model, kappa=None)  # a Model assembled by hand without its rates
    with pytest.raises(cn.ChiralnetError, match="pass kappa"):
        cn.scattering(bare, [0.0])
    with pytest.raises(cn.ChiralnetError, match="2 real numbers"):
        cn.scattering(model, [0.0], kappa=[0.01])
    with pytest.raises(cn.ChiralnetError, match="kappa of cell 'b'"):
        cn.scattering(model, [0.0], kappa=[0.01, -1.0])
    with pytest.raises(cn.ChiralnetError, match="only with a Model"):
        cn.scattering(isolator(), [0.0], kappa=[0.01, 0.01])
    np.testing.assert_array_equal(cn.scattering(model, [0.0, 0.01], kappa=[0.01, 0.01]).S,
                                  cn.scattering(isolator(), [0.0, 0.01]).S)


def test_memory_is_estimated_first(monkeypatch):
    monkeypatch.setattr(config, "MEMORY_LIMIT_GB", 1e-6)      # 1 kB
    with pytest.raises(MemoryLimitError, match=r"S \(1000 x 2 x 2 complex\).*fewer ports"):
        cn.scattering(isolator(), np.linspace(-1, 1, 1000))


def test_bandwidth_bad_arguments():
    G = isolator()
    with pytest.raises(cn.ChiralnetError, match="'span' must be > 0"):
        cn.isolation_bandwidth(G, "a", "b", span=0.0)
    with pytest.raises(cn.ChiralnetError, match="'level_db' must be a finite"):
        cn.isolation_bandwidth(G, "a", "b", np.nan, span=1.0)
    with pytest.raises(cn.ChiralnetError, match="'n_grid'"):
        cn.isolation_bandwidth(G, "a", "b", span=1.0, n_grid=2)
    with pytest.raises(cn.ChiralnetError, match="two different"):
        cn.isolation_bandwidth(G, "a", "a", span=1.0)
    with pytest.raises(cn.ChiralnetError, match="two different"):
        cn.isolation(G, "a", "a", [0.0])
    with pytest.raises(cn.NetworkError, match="'q' is not a cell"):
        cn.isolation(G, "a", "q", [0.0])


# ---------------------------------------------------------------------------------------------
# Figures, the command, the guide.


def test_figures():
    res = cn.scattering(ring3(), np.linspace(-0.05, 0.05, 51))
    for fig in (ps.plot_transmission(res, title="ring"), ps.plot_transmission(res, [(0, 1), (1, 1)]),
                ps.plot_isolation(res, [(0, 1), (1, 0)], level_db=3.0), ps.plot_isolation_map(res, detuning=0.01)):
        assert fig.axes
    iso = cn.scattering(isolator(), np.linspace(-0.05, 0.05, 51))
    fig = ps.plot_transmission(iso, [("b", "a")])
    assert "exactly" in fig.axes[0].get_legend().get_texts()[0].get_text()
    assert ps.plot_isolation_map(iso).axes


def test_spectrum_command(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["spectrum", str(ROOT / "examples" / "isolator.spectrum.toml"), "--out", str(out)]) == 0
    assert "isolation a -> b: inf dB" in capsys.readouterr().out
    import json

    summary = json.loads((out / "summary.json").read_text())
    assert summary["ports"] == ["a", "b"] and summary["method"] == "cascaded"
    assert summary["isolation"][0]["at_center_db"] == "inf"
    header, *rows = (out / "spectrum.csv").read_text().splitlines()
    cols = header.split(",")
    table = np.array([[float(x) for x in r.split(",")] for r in rows])
    d, s21 = table[:, 0], table[:, cols.index("power(a->b)")]
    assert np.abs(s21 - 0.01**4 / (0.01**2 + d**2) ** 2).max() <= CLOSED_FORM_ABS
    assert np.all(table[:, cols.index("power(b->a)")] == 0)
    for name in ("transmission.png", "isolation.png", "isolation_map.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*"))


def test_spectrum_builder_network_one_detuning(tmp_path, capsys):
    import json

    path = tmp_path / "ring.spectrum.toml"
    path.write_text('[network]\nbuilder = "ring"\nn_cells = 3\nkappa = 0.01\ngamma = 0.01\n'
                    '[spectrum]\ndetunings = { values = [0.0] }\nisolation = [[0, 1]]\n'
                    '[output]\nfigures = ["isolation_map"]\ncsv = false\n')
    assert cli.main(["spectrum", str(path), "--out", str(tmp_path / "out")]) == 0
    assert "3.522 dB" in capsys.readouterr().out                  # 10 log10(Lambda^2 / (4 Gamma^2)), Lambda = 3 Gamma
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["method"] == "dense" and summary["isolation"][0]["bandwidth"] is None
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["isolation_map.png", "summary.json"]


NETWORK = """
[network]
[[network.cells]]
name = "a"
omega = 1.0
kappa = 0.01
[[network.cells]]
name = "b"
omega = 1.0
kappa = 0.01
[[network.cells]]
name = "dark"
omega = 1.0
[[network.chiral_links]]
from = "a"
to = "b"
gamma = 0.01
[[network.chiral_links]]
from = "b"
to = "dark"
gamma = 0.01
"""


@pytest.mark.parametrize("body, key", [
    ("[spectrum]\ndetunings = { start = -1.0, stop = 1.0 }\nport = ['a']\n", "spectrum.port: unknown key"),
    ("[spectrum]\ndetunings = { start = -1.0, stop = 1.0, n = 1 }\n", "spectrum.detunings.n"),
    ("[spectrum]\ndetunings = { start = 1.0, stop = -1.0 }\n", "spectrum.detunings.start"),
    ("[spectrum]\ndetunings = { values = [0.0, nan] }\n", "spectrum.detunings.values[1]"),
    ("[spectrum]\ndetunings = [0.0]\n", "spectrum.detunings"),
    ("[spectrum]\ndetunings = { stop = 1.0 }\n", "spectrum.detunings.start"),
    ("[spectrum]\ndetunings = { values = [0.0] }\nports = ['a', 'zz']\n", "spectrum.ports[1]"),
    ("[spectrum]\ndetunings = { values = [0.0] }\nports = ['a', 'dark']\n", "spectrum.ports[1]"),
    ("[spectrum]\ndetunings = { values = [0.0] }\nports = ['a', 'a']\n", "spectrum.ports[1]"),
    ("[spectrum]\ndetunings = { values = [0.0] }\npairs = [['a', 'dark']]\n", "spectrum.pairs[0][1]"),
    ("[spectrum]\ndetunings = { values = [0.0] }\npairs = [['a']]\n", "spectrum.pairs[0]"),
    ("[spectrum]\ndetunings = { values = [0.0] }\nisolation = [['a', 'a']]\n", "spectrum.isolation[0]"),
    ("[spectrum]\ndetunings = { values = [0.0] }\nlevel_db = 'high'\n", "spectrum.level_db"),
    ("[spectrum]\ndetunings = { values = [0.0] }\nmethod = 'lu'\n", "spectrum.method"),
    ("[spectrum]\ndetunings = { values = [0.0] }\n[output]\nfigures = ['map']\n", "output.figures[0]"),
    ("[spectrum]\ndetunings = { values = [0.0] }\n[output]\ndpi = 5\n", "output.dpi"),
    ("[spectrum]\ndetunings = { values = [0.0] }\n[times]\nt_end = 1.0\n", "times: unknown key"),
    ("", "spectrum: missing required key"),
])
def test_spectrum_bad_key_exits_2(tmp_path, capsys, body, key):
    path = tmp_path / "bad.spectrum.toml"
    path.write_text(NETWORK + body)
    assert cli.main(["spectrum", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and key in err, err
    assert not (tmp_path / "out").exists()


def test_guide_doctest():
    failures, tests = doctest.testfile(str(ROOT / "docs" / "guide" / "scattering.md"), module_relative=False,
                                       optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert tests > 5 and failures == 0


@pytest.mark.parametrize("spectrum, match", [
    ("detunings = { start = -0.05, stop = 0.05, n = 11 }\ncenter = 0.06",
     r"spectrum.center: the explicit center 0.06 is outside the detunings \[-0.05, 0.05\]"),
    ("detunings = { values = [0.01, 0.02] }",  # the default center 0 is outside too
     r"spectrum.center: the default center 0 is outside the detunings \[0.01, 0.02\]"),
])
def test_spectrum_center_outside_the_detunings_is_an_error(tmp_path, capsys, spectrum, match):
    """It used to report the value at the nearest detuning (an end of the range) as the one at `center`."""
    path = tmp_path / "c.spectrum.toml"
    path.write_text('[network]\nbuilder = "two_cell"\n[spectrum]\n' + spectrum + "\n")
    assert cli.main(["spectrum", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err) and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_huge_spectrum_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    import time

    from chiralnet import config
    from chiralnet.solve import response

    def never(*args, **kwargs):
        raise AssertionError("scattering ran")

    monkeypatch.setattr(response, "scattering", never)
    path = tmp_path / "big.spectrum.toml"
    path.write_text('[network]\nbuilder = "two_cell"\n[spectrum]\ndetunings = { start = -0.05, stop = 0.05, '
                    'n = 10000000000 }\n')
    t0 = time.perf_counter()
    assert cli.main(["spectrum", str(path), "--out", str(tmp_path / "out")]) == 2
    assert time.perf_counter() - t0 < 5  # nothing allocated: 1e10 detunings would take 80 GB for the grid alone
    err = capsys.readouterr().err
    assert re.search(rf"spectrum.detunings.n: 10000000000 detunings x 2 ports would need about [\d.e+]+ [TG]B; .*"
                     rf"at most {config.SPECTRUM_MAX_POINTS} detunings fit \(config.SPECTRUM_MAX_POINTS", err), err
    monkeypatch.setattr(config, "SPECTRUM_MAX_POINTS", 100)  # the limit is the config value
    path.write_text(path.read_text().replace("10000000000", "101"))
    assert cli.main(["spectrum", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "at most 100 detunings fit" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Issue 18: refusals before any work, flags, and inputs NumPy would reject with its own errors.


def test_a_huge_bandwidth_grid_is_refused_before_any_solve(monkeypatch):
    from chiralnet.solve import response

    def no_solve(*args, **kwargs):
        raise AssertionError("a scattering solve ran before the refusal")

    monkeypatch.setattr(response, "_solve", no_solve)
    with pytest.raises(cn.ChiralnetError, match=rf"'n_grid' = 1e\+09 .*GB.*largest that fits is 'n_grid' = "
                                                rf"{config.ISOLATION_MAX_GRID} \(config.ISOLATION_MAX_GRID"):
        cn.isolation_bandwidth(isolator(), "a", "b", span=0.1, n_grid=10**9)
    with pytest.raises(cn.ChiralnetError, match="largest that fits"):
        cn.isolation_bandwidth(isolator(), "a", "b", span=0.1, n_grid=1e9)
    for bad in (2.5, True, float("nan")):
        with pytest.raises(cn.ChiralnetError, match="'n_grid' must be an integer >= 3"):
            cn.isolation_bandwidth(isolator(), "a", "b", span=0.1, n_grid=bad)


def test_scattering_flags_and_malformed_numbers_are_chiralnet_errors():
    G = isolator()
    res = cn.scattering(G, [0.0, 0.01])
    with pytest.raises(cn.ChiralnetError, match="db must be True or False"):
        res.transmission("a", "b", db="no")          # a truthy string would have meant dB
    assert res.transmission("a", "b", db=np.bool_(False))[1] == pytest.approx(0.25, abs=CLOSED_FORM_ABS)
    with pytest.raises(cn.ChiralnetError, match="parallel must be True or False"):
        cn.scattering(G, [0.0], parallel="yes")
    model = cn.build_model(G)
    calls = [lambda: cn.scattering(G, [0.0, [0.1, 0.2]]),                        # ragged
             lambda: cn.scattering(G, [10**400]),                                 # beyond a float
             lambda: cn.isolation_bandwidth(G, "a", "b", 10**400, span=0.1),
             lambda: cn.isolation_bandwidth(G, "a", "b", span=10**400),
             lambda: cn.scattering(model, [0.0], kappa=[0.01, [0.01]]),
             lambda: cn.scattering(model, [0.0], kappa=["0.01", "0.01"])]
    for call in calls:
        with pytest.raises(cn.ChiralnetError):
            call()
