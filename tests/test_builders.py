"""Builders: the paper's two-cell system, and the chiral chain of docs/theory/model.md."""

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
                                      (lambda: cn.lattice(1, 1), "rows"), (lambda: cn.chain(3, J=0.1), "J"),
                                      (lambda: cn.chain(3, nonreciprocal=False, gamma="0.04"), "gamma"),
                                      (lambda: cn.chain(3, nonreciprocal=1), "nonreciprocal"),
                                      (lambda: cn.chain(3, gamma=0.0), "gamma"),
                                      (lambda: cn.chain(3, drive_frequency="1"), "drive_frequency")])
def test_builder_bad_arguments(call, key):
    with pytest.raises(cn.ChiralnetError, match=key):
        call()


@pytest.mark.parametrize("call", [lambda: cn.chain(3, kapa=0.1), lambda: cn.lattice(2, 2, pos={}),
                                  lambda: cn.chain(3, 0.003), lambda: cn.two_cell(n_cells=3)])
def test_unknown_or_positional_options_are_type_errors(call):
    # Explicit keyword-only signatures: Python itself names the bad keyword (no **options sink).
    with pytest.raises(TypeError):
        call()


# ---------------------------------------------------------------------------------------------
# Signatures, the registry, and per-cell / per-link arrays.

from chiralnet.builders import BUILDERS, REQUIRED  # noqa: E402
import inspect  # noqa: E402


#: Graph and array routes build the same numbers (same arithmetic): exact equality.
EXACT = 0.0


def test_registry_describes_every_builder_signature():
    assert set(BUILDERS) == {"two_cell", "chain", "ring", "star", "lattice"}
    for name, info in BUILDERS.items():
        assert info.function is getattr(cn, name)
        sig = inspect.signature(info.function)
        assert not any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in sig.parameters.values()), name
        assert list(sig.parameters) == list(info.parameters), name
        for pname, p in sig.parameters.items():
            want = info.parameters[pname]
            assert (p.default is p.empty) == want.required, (name, pname)
            if not want.required:
                assert p.default == want.default, (name, pname)
            # everything but the sizes is keyword-only
            assert (p.kind is p.KEYWORD_ONLY) == (want.kind != "int"), (name, pname)
            assert pname in info.function.__doc__, (name, pname)     # numpydoc documents each parameter
    assert BUILDERS["chain"].required == ("n_cells",) and BUILDERS["lattice"].required == ("rows", "cols")
    assert BUILDERS["star"].length("gamma", n_leaves=4) == 4 and BUILDERS["star"].length("kappa", n_leaves=4) == 5
    assert BUILDERS["lattice"].length("gamma", rows=3, cols=4) == 3 * 3 + 2 * 4
    assert BUILDERS["ring"].length("J", n_cells=5) == 5 and BUILDERS["chain"].length("nonreciprocal", n_cells=5) is None
    assert BUILDERS["two_cell"].length("gamma") is None and repr(REQUIRED) == "REQUIRED"


def _hand_links(name, *shape):
    """The documented link order, written out independently of the builders."""
    if name == "chain":
        return [(i, i + 1) for i in range(shape[0] - 1)]
    if name == "ring":
        return [(i, (i + 1) % shape[0]) for i in range(shape[0])]
    if name == "star":
        return [(0, k) for k in range(1, shape[0] + 1)]
    r, c = shape
    return ([(i * c + j, i * c + j + 1) for i in range(r) for j in range(c - 1)]
            + [(i * c + j, (i + 1) * c + j) for i in range(r - 1) for j in range(c)])


def _by_hand(name, shape, omega, kappa, n_th, drive, gamma, n_th_link, nonreciprocal=True, J=None):
    links = _hand_links(name, *shape)
    n = len(omega)
    G = cn.network(omega[0], name=name)
    for i in range(n):
        pos = None
        if name == "lattice":
            pos = (float(i % shape[1]), float(-(i // shape[1])))
        cn.add_cell(G, i, omega=omega[i], kappa=kappa[i], n_th=n_th[i], drive=drive[i], battery=i != 0, pos=pos)
    for k, (u, v) in enumerate(links):
        if nonreciprocal:
            cn.add_chiral_link(G, u, v, gamma=gamma[k], n_th=n_th_link[k])
        else:
            cn.add_coherent_link(G, u, v, gamma[k] / 2 if J is None else J[k])
    return G


SHAPES = {"chain": (5,), "ring": (4,), "star": (3,), "lattice": (2, 3)}


def _sizes(name):
    info = BUILDERS[name]
    kw = dict(zip(info.required, SHAPES[name]))
    return kw, info.sizes(**kw)


def _same_graph(a, b):
    assert list(a.nodes) == list(b.nodes)
    assert dict(a.nodes(data=True)) == dict(b.nodes(data=True))
    assert {(u, v): d for u, v, d in a.edges(data=True)} == {(u, v): d for u, v, d in b.edges(data=True)}
    assert a.graph == b.graph


@pytest.mark.parametrize("name", list(SHAPES))
@pytest.mark.parametrize("nonreciprocal", [True, False])
def test_arrays_equal_the_network_built_by_hand(name, nonreciprocal):
    rng = np.random.default_rng(7)
    kw, size = _sizes(name)
    n, L = size["cell"], size["link"]
    omega = rng.uniform(0.9, 1.1, n)
    kappa = rng.uniform(0.001, 0.01, n)
    n_th = rng.uniform(0.0, 0.5, n)
    drive = rng.uniform(-0.2, 0.2, n) + 1j * rng.uniform(-0.2, 0.2, n)
    gamma = rng.uniform(0.01, 0.08, L)
    n_th_link = rng.uniform(0.0, 0.3, L)
    J = rng.uniform(-0.03, 0.03, L) + 1j * rng.uniform(-0.03, 0.03, L)
    opts = dict(omega=omega, kappa=kappa, n_th=n_th, drive=drive, gamma=gamma, nonreciprocal=nonreciprocal)
    if nonreciprocal:
        opts["n_th_link"] = n_th_link
    G = getattr(cn, name)(**kw, **opts)
    want = _by_hand(name, SHAPES[name], omega.tolist(), kappa.tolist(), n_th.tolist(), drive.tolist(), gamma.tolist(),
                    n_th_link.tolist(), nonreciprocal)
    _same_graph(G, want)
    if not nonreciprocal:  # explicit per-link J (as lists: any sequence is an array)
        G = getattr(cn, name)(**kw, **{**opts, "J": J.tolist()})
        _same_graph(G, _by_hand(name, SHAPES[name], omega.tolist(), kappa.tolist(), n_th.tolist(), drive.tolist(),
                                gamma.tolist(), n_th_link.tolist(), False, J.tolist()))


@pytest.mark.parametrize("name", list(SHAPES))
def test_constant_arrays_equal_numbers(name):
    kw, size = _sizes(name)
    n, L = size["cell"], size["link"]
    fn = getattr(cn, name)
    a = cn.build_model(fn(**kw, omega=1.2, kappa=0.004, gamma=0.05, n_th=0.2, drive=0.3))
    drive = np.zeros(n)
    drive[0] = 0.3
    b = cn.build_model(fn(**kw, omega=np.full(n, 1.2), kappa=np.full(n, 0.004), gamma=np.full(L, 0.05),
                          n_th=np.full(n, 0.2), n_th_link=np.full(L, 0.2), drive=drive))
    assert np.abs(a.dense_M() - b.dense_M()).max() <= EXACT
    assert np.abs(a.dense_Q() - b.dense_Q()).max() <= EXACT
    assert np.array_equal(a.drive, b.drive) and np.array_equal(a.omega, b.omega)
    assert a.drive_frequency == b.drive_frequency == 1.2


@pytest.mark.parametrize("name", list(SHAPES))
def test_wrong_lengths_name_parameter_expected_and_given(name):
    kw, size = _sizes(name)
    fn = getattr(cn, name)
    for key, per in (("omega", "cell"), ("kappa", "cell"), ("n_th", "cell"), ("drive", "cell"), ("gamma", "link"),
                     ("n_th_link", "link")):
        want = size[per]
        for got in (want - 1, want + 2):
            with pytest.raises(cn.NetworkError, match=rf"'{key}' has one entry per {per}: expected {want}, got {got}"):
                fn(**kw, **{key: np.full(got, 0.5)}, **({"n_th_link": 0.0} if key == "n_th" else {}))
    want = size["link"]
    with pytest.raises(cn.NetworkError, match=rf"'J' has one entry per link: expected {want}, got 1"):
        fn(**kw, nonreciprocal=False, J=[0.1])


def test_bad_array_entries_name_the_entry():
    with pytest.raises(cn.NetworkError, match=r"'kappa'\[2\] must be >= 0, got -0.1"):
        cn.chain(4, kappa=[0.003, 0.003, -0.1, 0.003])
    with pytest.raises(cn.NetworkError, match=r"'gamma'\[1\] must be > 0"):
        cn.chain(3, gamma=[0.04, 0.0])
    with pytest.raises(cn.NetworkError, match=r"'omega'\[0\] must be finite"):
        cn.ring(3, omega=[np.nan, 1.0, 1.0])
    with pytest.raises(cn.NetworkError, match=r"'kappa' must be an array of real numbers"):
        cn.chain(2, kappa=[0.1j, 0.1])
    with pytest.raises(cn.NetworkError, match=r"'kappa' must be an array of real numbers"):
        cn.chain(2, kappa=["a", "b"])
    with pytest.raises(cn.NetworkError, match=r"shape \(2, 1\)"):
        cn.chain(2, kappa=[[0.1], [0.1]])
    with pytest.raises(cn.NetworkError, match="n_th_link"):
        cn.chain(3, n_th=[0.1, 0.2, 0.3])        # per-cell baths: the link reservoirs' occupation must be given


def test_per_cell_drive_and_frequency_default():
    G = cn.chain(3, omega=[1.1, 1.0, 0.9], drive=[0.1, 0.0, 0.05j])
    assert G.graph["drive_frequency"] == 1.1            # resonant with the charger, cell 0
    m = cn.build_model(G)
    assert np.array_equal(m.drive, [0.1, 0.0, 0.05j])
    assert np.array_equal(np.diag(m.dense_M()).imag, -np.array([1.1, 1.0, 0.9]) + 1.1)


# ---------------------------------------------------------------------------------------------
# The registry's readers: scenario files and sweeps take per-cell / per-link arrays as TOML lists.


def test_scenario_file_takes_arrays_as_toml_lists():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    doc = tomllib.loads("""
[network]
builder = "chain"
n_cells = 3
kappa = [0.003, 0.002, 0.004]
gamma = [0.04, 0.05]
drive = ["0.1", "0.02j", 0]
""")
    G = cn.build_network(doc["network"], source="s.toml")
    want = cn.chain(3, kappa=[0.003, 0.002, 0.004], gamma=[0.04, 0.05], drive=[0.1, 0.02j, 0.0])
    _same_graph(G, want)
    # a list of exactly two real numbers is one complex number [re, im], as everywhere in scenario files
    assert cn.build_network({"builder": "chain", "n_cells": 3, "drive": [0.1, -0.02]}).nodes[0]["drive"] == 0.1 - 0.02j
    with pytest.raises(cn.ScenarioError, match=r"s.toml: network: .*'gamma' has one entry per link: expected 2, got 3"):
        cn.build_network({"builder": "chain", "n_cells": 3, "gamma": [0.04, 0.04, 0.04]}, source="s.toml")
    with pytest.raises(cn.ScenarioError, match=r"s.toml: network.kappa\[1\]: expected a number >= 0"):
        cn.build_network({"builder": "chain", "n_cells": 3, "kappa": [0.1, -1.0, 0.1]}, source="s.toml")
    with pytest.raises(cn.ScenarioError, match=r"s.toml: network.kappa_a: expected a number >= 0, got array"):
        cn.build_network({"builder": "two_cell", "kappa_a": [0.1, 0.1]}, source="s.toml")
    with pytest.raises(cn.ScenarioError, match="missing required key"):
        cn.build_network({"builder": "lattice", "rows": 2}, source="s.toml")


def test_sweep_base_takes_arrays():
    from chiralnet.sweeps import SweepError, parse_sweep, run_sweep

    gamma = [0.04, 0.03, 0.05]
    spec = parse_sweep({"base": {"builder": "chain", "n_cells": 4, "gamma": gamma}, "grid": {"drive": [0.1, 0.2]}},
                       source="a.sweep.toml")
    res = run_sweep(spec)
    want = [cn.steady_state(cn.chain(4, gamma=gamma, drive=d)).battery_energy for d in (0.1, 0.2)]
    np.testing.assert_allclose(res["battery_energy"], want, rtol=1e-12)     # batched LU vs sparse/dense solve
    with pytest.raises(SweepError, match=r"a.sweep.toml \[base\] key 'gamma': builder 'chain' expects a number"):
        parse_sweep({"base": {"builder": "chain", "n_cells": 4, "gamma": ["x", 0.1, 0.1]}, "grid": {"drive": [0.1]}},
                    source="a.sweep.toml")
    with pytest.raises(SweepError, match="'gamma' has one entry per link: expected 3, got 2"):
        run_sweep(parse_sweep({"base": {"builder": "chain", "n_cells": 4, "gamma": [0.1, 0.1]},
                               "grid": {"drive": [0.1]}}, source="a.sweep.toml"))
    # per-link rates: the two-cell reference takes the network's mean reservoir rate (one definition)
    ratio = cn.sweep("chain", {"drive": [0.1]}, ["ratio_nonreciprocal"], params={"n_cells": 3, "gamma": [0.04, 0.03]})
    want = cn.observables.evaluate(["ratio_nonreciprocal"], cn.chain(3, gamma=[0.04, 0.03], drive=0.1))
    np.testing.assert_allclose(ratio["ratio_nonreciprocal"], [want["ratio_nonreciprocal"]], rtol=1e-12)
    with pytest.raises(SweepError, match="no parameter 'kapa'"):
        parse_sweep({"base": {"builder": "chain", "n_cells": 4, "kapa": 0.1}, "grid": {"drive": [0.1]}})


@pytest.mark.parametrize("call", [lambda: cn.chain(10**9), lambda: cn.ring(10**9), lambda: cn.star(10**9),
                                  lambda: cn.lattice(10**5, 10**5)])
def test_oversized_graphs_are_refused_before_building(call):
    with pytest.raises(cn.MemoryLimitError, match=r"building the graph .* would need about .* GB"):
        call()


# ---------------------------------------------------------------------------------------------
# battery=: which cells count as the battery (issue 20), in graphs, array models, files, sweeps, gradients.

@pytest.mark.parametrize("battery, want", [("all", [1, 2, 3]), ("last", [3]), ([0, 2], [0, 2])])
def test_battery_option_of_graph_and_array_builders(battery, want):
    from chiralnet.arrays import chain_model

    assert cn.battery_cells(cn.chain(4, battery=battery)) == want
    assert np.flatnonzero(chain_model(4, battery=battery).battery).tolist() == want
    assert cn.battery_cells(cn.star(3, battery=battery)) == want
    assert cn.battery_cells(cn.ring(4, battery=battery)) == want
    assert cn.battery_cells(cn.lattice(2, 2, battery=battery)) == want


@pytest.mark.parametrize("battery, match", [("first", "'all', 'last' or a list"), ([], "empty"), ([4], "not a cell"),
                                            ([1, 1], "twice"), ([True], "not a cell"), (3, "'all', 'last' or a list")])
def test_bad_battery_option_names_the_value(battery, match):
    with pytest.raises(cn.ChiralnetError, match=match):
        cn.chain(4, battery=battery)


def test_battery_last_in_scenario_files_sweeps_and_gradients(tmp_path):
    path = tmp_path / "last.toml"
    path.write_text('[network]\nbuilder = "chain"\nn_cells = 4\nbattery = "last"\n[times]\nt_end = 10.0\nn_times = 3\n')
    from chiralnet.formats.scenario_toml import read_scenario

    assert cn.battery_cells(read_scenario(path).network) == [3]
    res = cn.sweep("chain", {"gamma": [0.01, 0.02]}, ["battery_energy"], params={"n_cells": 4, "battery": "last"})
    want = [cn.steady_state(cn.chain(4, gamma=g, battery="last")).battery_energy for g in (0.01, 0.02)]
    np.testing.assert_allclose(res["battery_energy"], want, rtol=1e-12)
    # a last-cell objective has exact adjoint gradients (a central difference agrees to 1e-6)
    g = cn.gradient("chain", {"gamma": np.full(3, 0.04)}, "battery_energy", params={"n_cells": 4, "battery": "last"})
    f = lambda x: cn.steady_state(cn.chain(4, gamma=x, battery="last")).battery_energy  # noqa: E731
    h, x = 1e-6, np.full(3, 0.04)
    fd = [(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(3)]
    np.testing.assert_allclose(g["gamma"], fd, rtol=1e-6)
