"""TOML scenarios: the format (chiralnet.formats.scenario_toml: forms, round trips, bad input) and runs (chiralnet.scenario: summaries)."""

import json
import textwrap
from pathlib import Path

import numpy as np

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib
import pytest

import chiralnet as cn
from chiralnet import analytic
from chiralnet.formats.graph_json import save_graph
from chiralnet.formats.scenario_toml import build_network, dumps_toml, load_scenario, network_spec
from chiralnet.scenario import run_scenario
from chiralnet.observables import charging_time, two_cell_reference
from chiralnet.errors import ScenarioError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: Two assemblies of the same physics (builder vs explicit TOML) agree to rounding.
SAME_MODEL_ABS = 1e-15
#: Steady ratios against closed forms.
STEADY_REL = 1e-10


def _write(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_explicit_form_equals_builder():
    sc = load_scenario(EXAMPLES / "two_cell_explicit.toml")
    a, b = cn.build_model(sc.network), cn.build_model(cn.two_cell())
    assert a.cells == b.cells
    np.testing.assert_allclose(a.dense_M(), b.dense_M(), rtol=0, atol=SAME_MODEL_ABS)
    np.testing.assert_array_equal(a.drive, b.drive)
    np.testing.assert_array_equal(a.battery, b.battery)


@pytest.mark.parametrize("text, value", [
    ("0.1", 0.1), ('"0.1-0.02j"', 0.1 - 0.02j), ('"0.1 - 0.02j"', 0.1 - 0.02j), ("[0.1, -0.02]", 0.1 - 0.02j),
    ('"-0.02j"', -0.02j), ("1", 1.0), ('"1e-3+2e-3j"', 1e-3 + 2e-3j),
])
def test_complex_forms(tmp_path, text, value):
    path = _write(tmp_path, f"""
        [network]
        [[network.cells]]
        name = "a"
        omega = 1.0
        kappa = 0.1
        drive = {text}
        """)
    assert load_scenario(path).network.nodes["a"]["drive"] == value


@pytest.mark.parametrize("make", [
    lambda: cn.two_cell(), lambda: cn.two_cell(optimal=True, kappa_a=0.1), lambda: cn.two_cell(nonreciprocal=False),
    lambda: cn.chain(6, n_th=0.3), lambda: cn.ring(5), lambda: cn.star(4), lambda: cn.lattice(3, 2),
], ids=["two_cell", "optimal", "reciprocal", "chain_thermal", "ring", "star", "lattice"])
def test_toml_round_trip(make):
    """graph -> explicit [network] -> TOML text -> parsed -> graph: the same model, the same battery."""
    G = make()
    text = dumps_toml({"title": "round trip", "network": network_spec(G)})
    H = build_network(tomllib.loads(text)["network"])
    a, b = cn.build_model(G), cn.build_model(H)
    assert a.cells == b.cells
    np.testing.assert_array_equal(a.dense_M(), b.dense_M())
    np.testing.assert_array_equal(a.dense_Q(), b.dense_Q())
    np.testing.assert_array_equal(a.drive, b.drive)
    np.testing.assert_array_equal(a.battery, b.battery)
    assert [H.nodes[c].get("pos") for c in a.cells] == [G.nodes[c].get("pos") for c in a.cells]


def test_graph_file_form_and_battery_override(tmp_path):
    save_graph(cn.chain(5), tmp_path / "chain.json")
    path = _write(tmp_path, """
        [network]
        graph = "chain.json"
        battery = [4]
        [times]
        values = [0.0, 100.0, 1000.0]
        """)
    sc = load_scenario(path)
    assert cn.battery_cells(sc.network) == [4]
    np.testing.assert_array_equal(sc.times, [0.0, 100.0, 1000.0])


def test_times_and_solver(tmp_path):
    path = _write(tmp_path, """
        [network]
        builder = "chain"
        n_cells = 3
        [times]
        t_start = 10.0
        t_end = 20.0
        n_times = 11
        [solver]
        method = "rk45"
        rtol = 1e-9
        atol = 1e-12
        max_steps = 1000
        [output]
        figures = ["energy"]
        dpi = 80
        """)
    sc = load_scenario(path)
    np.testing.assert_array_equal(sc.times, np.linspace(10.0, 20.0, 11))
    assert sc.solver_options() == dict(method="rk45", rtol=1e-9, atol=1e-12, max_steps=1000)
    assert sc.output["figures"] == ("energy",) and sc.output["dpi"] == 80
    assert run_scenario(sc).result.method == "rk45"


def test_two_cell_summary_matches_paper():
    run = run_scenario(load_scenario(EXAMPLES / "two_cell.toml"))
    g, k, E = 0.04, 0.003, 0.1
    want = analytic.steady_battery_energy_nonreciprocal(omega=1.0, E=E, gamma=g, Lambda_a=g + k, Lambda_b=g + k)
    assert run.steady.battery_energy == pytest.approx(want, rel=STEADY_REL)
    ratios = run.ratios()
    assert ratios["nonreciprocal"] == pytest.approx(1.0, rel=STEADY_REL)
    assert ratios["reciprocal"] == pytest.approx(analytic.eta_bb(analytic.cooperativity(g / 2, k, k), 1.0),
                                                 rel=STEADY_REL)
    # 90% time from the corrected Eq. (6): E_B(t)/E_B(inf) = [1 - e^{-x}(1 + x)]^2, x = Lambda t / 2.
    t = np.linspace(0, 3000, 600001)
    closed = analytic.battery_energy_symmetric(t, omega=1.0, E=E, gamma=g, Lambda=g + k)
    t90 = t[np.argmax(closed >= 0.9 * want)]
    assert run.t90 == pytest.approx(t90, abs=0.2)  # linear interpolation on a grid of step 5
    json.dumps(run.summary(), allow_nan=False)


def test_reciprocal_reference_is_itself():
    run = run_scenario(load_scenario(EXAMPLES / "two_cell_reciprocal.toml"), simulate_times=False)
    assert run.ratios()["reciprocal"] == pytest.approx(1.0, rel=STEADY_REL)
    assert run.result is None and run.t90 is None


def test_reference_for_optimal_couplings_uses_link_rate():
    ref = two_cell_reference(cn.two_cell(gamma=0.01, kappa_a=0.1, kappa_b=0.003, optimal=True))
    assert ref["gamma"] == pytest.approx(0.01, rel=1e-14)  # geometric mean of Gamma_a = xi G, Gamma_b = G / xi
    assert (ref["kappa_a"], ref["kappa_b"], ref["E"]) == (0.1, 0.003, 0.1)


def test_no_steady_state_is_reported_not_raised(tmp_path):
    path = _write(tmp_path, """
        [network]
        builder = "two_cell"
        nonreciprocal = false
        kappa_a = 0.0
        kappa_b = 0.0
        [times]
        t_end = 10.0
        n_times = 11
        """)
    run = run_scenario(load_scenario(path))
    assert run.steady is None and "no steady state" in run.steady_error and run.t90 is None
    assert np.isfinite(run.result.energies).all()


def test_charging_time():
    t = [0.0, 1.0, 2.0, 3.0, 4.0]
    assert charging_time(t, [0.0, 1.0, 0.5, 1.0, 1.0], target=1.0) == pytest.approx(0.9, abs=1e-15)
    assert charging_time(t, [0.0, 1.0, 0.5, 1.0, 1.0], target=1.0, stay=True) == pytest.approx(2.8, abs=1e-15)
    assert charging_time(t, [0.0, 0.1, 0.2, 0.3, 0.4], target=1.0) is None
    assert charging_time(t, [0.0, 1.0, 0.5, 1.0, 0.5], target=1.0, stay=True) is None


# ---------------------------------------------------------------------------------------------
# Bad input: one line naming the file and the key.

BAD = [
    ("[network]\nbuilder = 'chain'\nn_cells = 4\nkapa = 0.1\n", "network.kapa", "did you mean 'kappa'"),
    ("[network]\nbuilder = 'chain'\nn_cells = 'four'\n", "network.n_cells", "expected an integer"),
    ("[network]\nbuilder = 'chain'\nn_cells = 4\nkappa = -0.1\n", "network.kappa", ">= 0"),
    ("[network]\nbuilder = 'chian'\nn_cells = 4\n", "network.builder", "did you mean 'chain'"),
    ("[network]\nbuilder = 'chain'\n", "network.n_cells", "missing required key"),
    ("[network]\nbuilder = 'chain'\nn_cells = 1\n", "network", "n_cells must be an integer >= 2"),
    ("[network]\nbuilder = 'chain'\nn_cells = 4\ncells = []\n", "network", "not 'builder' and 'cells'"),
    ("[network]\n[[network.cells]]\nname = 'a'\nomega = 1.0\ndrive = '0.1+x'\n", "network.cells[0].drive",
     "complex number"),
    ("[network]\n[[network.cells]]\nname = 'a'\nomega = 0\n", "network.cells[0].omega", "> 0"),
    ("[network]\n[[network.cells]]\nname = 'a'\n", "network.cells[0].omega", "missing required key"),
    ("[network]\n[[network.cells]]\nname = 'a'\nomega = 1.0\n[[network.chiral_links]]\nfrom = 'a'\nto = 'b'\n"
     "gamma = 0.1\n", "network.chiral_links[0]", "cell 'b' does not exist"),
    ("[network]\n[[network.cells]]\nname = 'a'\nomega = 1.0\n[[network.cells]]\nname = 'b'\nomega = 1.0\n"
     "[[network.reservoirs]]\ngamma = 0.1\ncells = ['a', 'b']\np = [1.0]\n", "network.reservoirs[0].p",
     "one amplitude per cell"),
    ("[network]\n[[network.cells]]\nname = 'a'\nomega = 1.0\n[[network.coherent_links]]\ncells = ['a', 'a']\n"
     "J = 0.1\n", "network.coherent_links[0]", "self-loop"),
    ("[network]\nbuilder = 'chain'\nn_cells = 4\nbattery = [7]\n", "network.battery[0]", "does not exist"),
    ("[network]\ngraph = 'nowhere.json'\n", "network.graph", "does not exist"),
    ("[network]\nbuilder = 'chain'\nn_cells = 4\n[time]\nt_end = 1.0\n", "time", "did you mean 'times'"),
    ("[network]\nbuilder = 'chain'\nn_cells = 4\n[times]\nt_end = -1.0\n", "times.t_end", "> 0"),
    ("[network]\nbuilder = 'chain'\nn_cells = 4\n[times]\nt_end = nan\n", "times.t_end", "finite"),
    ("[network]\nbuilder = 'chain'\nn_cells = 4\n[times]\nt_end = 1.0\nn_times = 1\n", "times.n_times", ">= 2"),
    ("[network]\nbuilder = 'chain'\nn_cells = 4\n[times]\nvalues = [0.0, 2.0, 1.0]\n", "times.values[2]",
     "increase strictly"),
    ("[network]\nbuilder = 'chain'\nn_cells = 4\n[solver]\nmethod = 'rk4'\n", "solver.method", "rk45"),
    ("[network]\nbuilder = 'chain'\nn_cells = 4\n[solver]\nrtol = '1e-8'\n", "solver.rtol", "a number > 0"),
    ("[network]\nbuilder = 'chain'\nn_cells = 4\n[output]\nfigures = ['heat']\n", "output.figures[0]",
     "heatmap"),
    ("[network]\nbuilder = 'chain'\nn_cells = 4\n[output]\ncsv = 'yes'\n", "output.csv", "true or false"),
    ("network = 3\n", "network", "expected a table"),
    ("title = 'x'\n", "network", "missing required key"),
    ("[network\n", "not valid TOML", "line 1"),
]


@pytest.mark.parametrize("text, key, expected", BAD, ids=[b[1] + ":" + b[2][:12] for b in BAD])
def test_bad_input_one_line_with_file_and_key(tmp_path, text, key, expected):
    path = _write(tmp_path, text, name="bad.toml")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: {key}") and expected in msg, msg
    assert "\n" not in msg


def test_missing_file():
    with pytest.raises(ScenarioError, match="nowhere.toml: file not found"):
        load_scenario("nowhere.toml")


def test_run_needs_times(tmp_path):
    sc = load_scenario(_write(tmp_path, "[network]\nbuilder = 'chain'\nn_cells = 3\n"))
    with pytest.raises(ScenarioError, match=r"s.toml: times: missing section \[times\]"):
        run_scenario(sc)
    assert run_scenario(sc, simulate_times=False).steady is not None


def test_build_network_spec_errors_name_spec():
    with pytest.raises(ScenarioError, match=r"^<spec>: network.gamma: expected a number >= 0"):
        build_network({"builder": "ring", "n_cells": 4, "gamma": -1.0})
    G = build_network({"builder": "star", "n_leaves": 3, "kappa": 0.01})
    assert cn.battery_cells(G) == [1, 2, 3]


# ---------------------------------------------------------------------------------------------
# One-line errors and preflight (issue 14).

BIG = "9" * 400


@pytest.mark.parametrize("text, match", [
    (f'[network]\nbuilder = "two_cell"\ngamma = {BIG}\n', "network.gamma: expected a finite number, got an integer with 400"),
    (f'[network]\nbuilder = "two_cell"\ndrive = [{BIG}, 0]\n', "network.drive: expected a finite number"),
    (f'[network]\nbuilder = "chain"\nn_cells = {BIG}\n', "network.n_cells: expected an integer, got one with 400"),
    (f'[network]\nbuilder = "two_cell"\n[times]\nvalues = [0, {BIG}]\n', r"times.values\[1\]"),
    (f'[network]\nbuilder = "two_cell"\n[solver]\nmax_steps = {BIG}\n', "solver.max_steps"),
    ("a = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
])
def test_bad_numbers_and_nesting_are_scenario_errors(tmp_path, text, match):
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=match):
        load_scenario(path)


@pytest.mark.parametrize("network, match", [
    ('builder = "chain"\nn_cells = 1000000000', "n_cells = 1000000000 would need about"),
    ('builder = "ring"\nn_cells = 1000000000', "n_cells = 1000000000 would need about"),
    ('builder = "star"\nn_leaves = 1000000000', "n_leaves = 1000000000 would need about"),
    ('builder = "lattice"\nrows = 100000\ncols = 100000', "10000000000 cells would need about"),
])
def test_oversized_builders_are_refused_before_building(tmp_path, network, match, monkeypatch):
    from chiralnet import config

    monkeypatch.setattr(config, "MEMORY_LIMIT_GB", 10.0)
    path = tmp_path / "s.toml"
    path.write_text(f"[network]\n{network}\n")
    with pytest.raises(cn.ChiralnetError, match=match) as info:
        load_scenario(path)
    assert "limit of 10 GB" in str(info.value)


def test_too_many_times_are_refused_before_allocating(tmp_path, monkeypatch):
    from chiralnet import config

    monkeypatch.setattr(config, "MEMORY_LIMIT_GB", 10.0)
    path = tmp_path / "s.toml"
    path.write_text('[network]\nbuilder = "two_cell"\n[times]\nt_end = 10.0\nn_times = 1000000000000\n')
    with pytest.raises(cn.MemoryLimitError, match=r"times.n_times = 1000000000000 \(2 cells\) would need about"):
        load_scenario(path)


def test_graph_file_named_in_a_scenario_is_not_quoted(tmp_path):
    (tmp_path / "secret.txt").write_text("token = secret-token-xyz\n")
    path = tmp_path / "s.toml"
    path.write_text('[network]\ngraph = "secret.txt"\n')
    with pytest.raises(ScenarioError, match="not valid JSON") as info:
        load_scenario(path)
    assert "secret-token" not in str(info.value)
