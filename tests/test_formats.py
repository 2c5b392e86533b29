"""chiralnet.formats: JSON round trip of networks (graph_json) and atomic writes (files)."""

import dataclasses
import json
import os

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chiralnet as cn
from chiralnet.errors import NetworkError
from chiralnet.files import atomic_path, atomic_write_text
from chiralnet.formats.graph_json import graph_from_data, graph_to_data, load_graph, save_graph

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)


def _same_graph(G, H):
    """Equal node order, attributes (values and types), edge directions and graph attributes."""
    assert H.is_directed() and not H.is_multigraph()
    assert list(G.nodes) == list(H.nodes)
    assert G.graph == H.graph
    for n in G.nodes:
        assert G.nodes[n] == H.nodes[n], n
        for k, v in G.nodes[n].items():
            assert type(H.nodes[n][k]) is type(v), (n, k)
    assert list(G.edges) == list(H.edges)
    for u, v, data in G.edges(data=True):
        assert H.edges[u, v] == data
        for k, x in data.items():
            assert type(H.edges[u, v][k]) is type(x), (u, v, k)


def _mixed_network():
    """Tuple, int and str names; complex drive, alpha0, J and p; hot baths; pos and labels."""
    G = cn.network(drive_frequency=0.98, name="mixed")
    cn.add_cell(G, (0, 0), omega=1.0, kappa=0.003, drive=0.1 - 0.02j, pos=(0.0, 0.0), label="charger")
    cn.add_cell(G, (0, 1), omega=1.02, kappa=0.004, n_th=0.5, alpha0=0.3j, n0=0.2, battery=True)
    cn.add_cell(G, 7, omega=0.99, kappa=0.0, battery=True)
    cn.add_cell(G, "far", omega=1.0, kappa=0.01, battery=False)
    cn.add_chiral_link(G, (0, 0), (0, 1), gamma=0.04, xi=2.0, n_th=0.1)
    cn.add_coherent_link(G, 7, (0, 1), 0.01 + 0.003j)
    cn.add_reservoir(G, {(0, 1): 1.0, 7: np.exp(0.3j), "far": -0.5}, gamma=0.02, name="waveguide")
    return G


@pytest.mark.parametrize("make", [
    lambda: cn.two_cell(), lambda: cn.two_cell(optimal=True, kappa_a=0.1), lambda: cn.two_cell(nonreciprocal=False),
    lambda: cn.chain(5), lambda: cn.ring(4, n_th=0.2), lambda: cn.star(3), lambda: cn.lattice(2, 3), _mixed_network,
], ids=["two_cell", "optimal", "reciprocal", "chain", "ring_thermal", "star", "lattice", "mixed"])
def test_round_trip_loses_nothing(tmp_path, make):
    G = make()
    path = tmp_path / "g.json"
    save_graph(G, path)
    H = load_graph(path)
    _same_graph(G, H)
    a, b = cn.build_model(G), cn.build_model(H)
    assert a.cells == b.cells
    np.testing.assert_array_equal(a.dense_M(), b.dense_M())  # bit-for-bit: JSON floats round-trip exactly
    np.testing.assert_array_equal(a.dense_Q(), b.dense_Q())
    np.testing.assert_array_equal(a.drive, b.drive)


def test_file_is_plain_node_link_json(tmp_path):
    path = tmp_path / "g.json"
    save_graph(_mixed_network(), path)
    data = json.loads(path.read_text())
    assert data["chiralnet_format"] == 1 and data["directed"] is True and "edges" in data
    cell = next(n for n in data["nodes"] if n["id"] == [0, 0])
    assert cell["drive"] == [0.1, -0.02] and cell["kappa"] == 0.003  # complex as a pair, real as a number
    # NetworkX reads it directly (tuple names come back as lists there; chiralnet restores tuples).
    assert nx.node_link_graph(data, edges="edges").number_of_nodes() == 6


def test_direction_survives(tmp_path):
    G = cn.network()
    cn.add_cell(G, "a", omega=1.0, kappa=0.003)
    cn.add_cell(G, "b", omega=1.0, kappa=0.003, drive=0.1)
    cn.add_chiral_link(G, "b", "a", gamma=0.04)  # one-way b -> a
    save_graph(G, tmp_path / "g.json")
    H = load_graph(tmp_path / "g.json")
    assert H.has_edge("b", "a") and not H.has_edge("a", "b")
    M = cn.build_model(H).dense_M()
    assert M[0, 1] != 0 and M[1, 0] == 0  # a is driven by b, b never by a


@settings(max_examples=30, deadline=None)
@given(J=st.builds(complex, finite, finite), p=st.builds(complex, finite, finite), drive=finite)
def test_complex_values_exact(J, p, drive):
    G = cn.network()
    cn.add_cell(G, "a", omega=1.0, drive=drive)
    cn.add_cell(G, "b", omega=1.0)
    cn.add_coherent_link(G, "a", "b", J)
    cn.add_reservoir(G, {"a": p, "b": 1.0}, gamma=0.1)
    H = graph_from_data(json.loads(json.dumps(graph_to_data(G))))
    _same_graph(G, H)


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d["nodes"][0].update(kapa=0.1), "unknown attribute 'kapa'"),
    (lambda d: d["edges"][0].update(J=[1.0, 2.0, 3.0]), "pair [re, im]"),
    (lambda d: d.update(directed=False), "directed"),
    (lambda d: d["nodes"][0].update(omega=-1.0), "'omega' must be > 0"),
    (lambda d: d.update(chiralnet_format=99), "chiralnet_format"),
])
def test_bad_files_name_file_and_key(tmp_path, edit, expected):
    data = graph_to_data(cn.two_cell())
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(NetworkError) as info:
        load_graph(path)
    msg = str(info.value)
    assert str(path) in msg and expected in msg and "\n" not in msg


def test_not_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{nodes: ")
    with pytest.raises(NetworkError, match="not valid JSON"):
        load_graph(path)


def test_unstorable_name_raises(tmp_path):
    G = cn.network()
    cn.add_cell(G, frozenset({1}), omega=1.0)
    with pytest.raises(NetworkError, match="cannot be stored in JSON"):
        save_graph(G, tmp_path / "g.json")
    assert os.listdir(tmp_path) == []


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "x.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            with open(tmp, "w") as fh:
                fh.write("half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["x.txt"]


# ---------------------------------------------------------------------------------------------
# Bad files are one NetworkError naming the file, never quoting it (issue 14).


def test_write_error_names_the_target_not_the_temporary_file(tmp_path):
    target = tmp_path / "missing-folder" / "x.txt"
    with pytest.raises(FileNotFoundError) as info:
        atomic_write_text(target, "text")
    assert info.value.filename == str(target) and ".tmp" not in str(info.value)
    with pytest.raises(FileNotFoundError) as info:
        save_graph(cn.two_cell(), target)
    assert info.value.filename == str(target)


@pytest.mark.parametrize("content, match", [
    (b"\xff\xfe\x00garbage", "not UTF-8 text at byte 0"),
    (b"[" * 100_000, "nested too deeply"),
    (b"1" * 5000, "while reading numbers"),
    (b'{"nodes": 5, "edges": []}', "'nodes' must be an array, got int"),
    (b'{"nodes": [], "edges": {"a": 1}}', "'edges' must be an array, got dict"),
    (b'{"nodes": [{"id": null}], "edges": []}', "node 0: a node name must be"),
    (b'{"nodes": [{"id": {"a": 1}}], "edges": []}', "node 0: a node name must be"),
    (b'{"nodes": [{"id": "a", "omega": 1}], "edges": [], "graph": "ab"}', "'graph' must be an object"),
    (b'{"nodes": [{"id": "a", "omega": 1' + b"0" * 400 + b'}], "edges": []}', "too large for a float"),
])
def test_malformed_graph_files(tmp_path, content, match):
    path = tmp_path / "g.json"
    path.write_bytes(content)
    with pytest.raises(NetworkError, match=match) as info:
        load_graph(path)
    assert str(path) in str(info.value)


def test_graph_errors_do_not_quote_the_file(tmp_path):
    path = tmp_path / "passwd"
    path.write_text("root:x:0:0:secret-token-xyz:/root:/bin/bash\n")
    with pytest.raises(NetworkError, match="not valid JSON") as info:
        load_graph(path)
    assert "secret" not in str(info.value)
    with pytest.raises(cn.ChiralnetError, match="cannot read graph file"):
        load_graph(tmp_path)  # a folder


def test_every_toml_reader_gives_one_line_errors(tmp_path):
    """Scenario, sweep, spectrum and optimisation files are read by one function (chiralnet.files.read_toml):
    a file nested too deeply was a RecursionError traceback for the spectrum and optimisation readers."""
    from chiralnet.formats.optimize_toml import read_optimization as load_optimization
    from chiralnet.formats.spectrum_toml import read_spectrum as load_spectrum

    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    for load in (cn.load_scenario, cn.load_sweep, load_spectrum, load_optimization):
        with pytest.raises(cn.ChiralnetError, match=r"deep.toml: not valid TOML: arrays or tables nested too deeply"):
            load(deep)
        with pytest.raises(cn.ChiralnetError, match=r"missing.toml: file not found; expected a TOML"):
            load(tmp_path / "missing.toml")


# ---------------------------------------------------------------------------------------------
# TOML files: one read_*/write_* pair per kind; a written file reads back to an equal object.

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def _same_model(G, H):
    """The same cells, generator, noise, drive and battery (exactly: the writer keeps every digit)."""
    a, b = cn.build_model(G), cn.build_model(H)
    assert a.cells == b.cells
    np.testing.assert_array_equal(a.dense_M(), b.dense_M())
    np.testing.assert_array_equal(a.dense_Q(), b.dense_Q())
    np.testing.assert_array_equal(a.drive, b.drive)
    np.testing.assert_array_equal(a.battery, b.battery)


@pytest.mark.parametrize("name", ["two_cell.toml", "chain10.toml", "charge_store_discharge.toml", "ring.toml",
                                  "pulse_chain.toml"])
def test_scenario_file_round_trip(tmp_path, name):
    from chiralnet.formats.scenario_toml import read_scenario, write_scenario

    sc = read_scenario(os.path.join(EXAMPLES, name))
    write_scenario(sc, tmp_path / "copy.toml")
    back = read_scenario(tmp_path / "copy.toml")
    _same_model(sc.network, back.network)
    assert (back.title, back.description, back.method, back.rtol, back.atol, back.max_steps) == \
        (sc.title, sc.description, sc.method, sc.rtol, sc.atol, sc.max_steps)
    assert back.output == sc.output
    if sc.times is None:
        assert back.times is None
    else:
        np.testing.assert_array_equal(back.times, sc.times)
    assert (back.phases is None) == (sc.phases is None)
    for (g, d, n), (h, e, m) in zip(sc.phases or (), back.phases or ()):
        _same_model(g, h)
        assert (d, n) == (e, m)


def test_shaped_drives_are_written_as_shape_tables(tmp_path):
    """Every drive shape (and a sum) writes as TOML and reads back to the same drive at every time; a
    Python callable has no TOML form and is a one-line error naming the cell."""
    from chiralnet.formats.scenario_toml import network_spec, parse_scenario, scenario_to_dict, write_scenario

    G = cn.network()
    cn.add_cell(G, "a", omega=1.0, kappa=0.01, drive=cn.drives.gaussian(0.1 - 0.02j, t0=50.0, width=10.0)
                + cn.drives.square(0.05, start=10.0, stop=90.0) + 0.01)
    cn.add_cell(G, "b", omega=1.0, kappa=0.01, drive=cn.drives.tone(0.02j, frequency=1.03))
    sc = parse_scenario({"network": network_spec(G)})
    write_scenario(sc, tmp_path / "d.toml")
    back = cn.load_scenario(tmp_path / "d.toml")
    t = np.linspace(0, 120, 241)
    for c in ("a", "b"):
        np.testing.assert_array_equal(back.network.nodes[c]["drive"](t, 1.0), G.nodes[c]["drive"](t, 1.0))
    cn.add_cell(G, "c", omega=1.0, kappa=0.01, drive=lambda t: 0.1)
    with pytest.raises(cn.ScenarioError, match="cell 'c' has a drive given by a Python callable"):
        network_spec(G)
    assert scenario_to_dict(back)["network"]["cells"][1]["drive"] == {"shape": "tone", "amplitude": [0.0, 0.02],
                                                                      "frequency": 1.03}


def test_spectrum_file_round_trip(tmp_path):
    from chiralnet.formats.spectrum_toml import read_spectrum, write_spectrum

    spec = read_spectrum(os.path.join(EXAMPLES, "isolator.spectrum.toml"))
    for variant in (spec, dataclasses.replace(spec, detunings=np.array([-0.01, 0.0, 0.003]), center=0.003)):
        write_spectrum(variant, tmp_path / "s.spectrum.toml")
        back = read_spectrum(tmp_path / "s.spectrum.toml")
        _same_model(variant.network, back.network)
        np.testing.assert_array_equal(back.detunings, variant.detunings)
        for f in ("title", "description", "ports", "pairs", "isolation", "level_db", "center", "method", "output"):
            assert getattr(back, f) == getattr(variant, f), f


def test_optimization_file_round_trip(tmp_path):
    from chiralnet.formats.optimize_toml import parse_optimization, read_optimization, write_optimization

    spec = read_optimization(os.path.join(EXAMPLES, "chain_budget.optimize.toml"))
    other = parse_optimization({"base": {"builder": "two_cell", "drive": "0.1-0.02j"},
                                "bounds": {"gamma": [0.01, 0.2]}, "objective": {"name": "battery_energy"},
                                "optimizer": {"x0": {"gamma": 0.05}, "seed": 3}})
    for s in (spec, other):
        write_optimization(s, tmp_path / "o.optimize.toml")
        back = read_optimization(tmp_path / "o.optimize.toml")
        for f in ("title", "description", "builder", "bounds", "objective", "maximize", "budget"):
            assert getattr(back, f) == getattr(s, f), f
        assert back.params.keys() == s.params.keys() and back.options.keys() == s.options.keys()
        for k in s.params:
            np.testing.assert_array_equal(back.params[k], s.params[k])
        assert back.options.get("x0", {}).keys() == s.options.get("x0", {}).keys()
        for k, v in s.options.items():
            if k != "x0":
                assert back.options[k] == v
        for k, v in s.options.get("x0", {}).items():
            np.testing.assert_array_equal(back.options["x0"][k], v)


@pytest.mark.parametrize("name", ["two_cell_map.sweep.toml", "chain_disorder.sweep.toml", "charging_time.sweep.toml",
                                  "chain_cells.sweep.toml"])
def test_sweep_file_round_trip(tmp_path, name):
    from chiralnet.formats.sweep_toml import read_sweep, write_sweep

    spec = read_sweep(os.path.join(EXAMPLES, name))
    write_sweep(spec, tmp_path / "w.sweep.toml")
    back = read_sweep(tmp_path / "w.sweep.toml")
    assert back.to_json() == spec.to_json()  # builder, params, axes, quantities, times, disorder
    assert back.fingerprint() == spec.fingerprint()  # so --resume accepts the written file's folder
    assert (back.output, back.run) == (spec.output, spec.run)


def test_a_callable_builder_cannot_be_written(tmp_path):
    from chiralnet.formats.sweep_toml import write_sweep
    from chiralnet.sweeps import make_spec

    with pytest.raises(cn.ChiralnetError, match="is a Python callable; a sweep file names a registered builder"):
        write_sweep(make_spec(cn.two_cell, {"gamma": [0.01]}), tmp_path / "x.sweep.toml")
    assert not (tmp_path / "x.sweep.toml").exists()


def test_dumps_toml_refuses_values_the_readers_refuse():
    from chiralnet.formats.scenario_toml import dumps_toml

    with pytest.raises(cn.ScenarioError, match=r"network.cells\[0\].kappa: nan cannot be written"):
        dumps_toml({"network": {"cells": [{"name": "a", "kappa": float("nan")}]}})
    with pytest.raises(cn.ScenarioError, match="output.dir: cannot write None"):
        dumps_toml({"output": {"dir": None}})
    assert dumps_toml({"a": np.float64(0.5), "b": (np.int64(2), True)}) == "a = 0.5\nb = [\n    2,\n    true,\n]\n"


# Every reader recognises the other kinds of file by their tables, and names the command that runs them.
KIND_FILES = {"scenario": "two_cell.toml", "sweep": "two_cell_map.sweep.toml",
              "optimize": "chain_budget.optimize.toml", "spectrum": "isolator.spectrum.toml"}
COMMANDS = {"scenario": "chiralnet run", "sweep": "chiralnet sweep", "optimize": "chiralnet optimize",
            "spectrum": "chiralnet spectrum"}


@pytest.mark.parametrize("kind", sorted(KIND_FILES))
@pytest.mark.parametrize("reader", sorted(KIND_FILES))
def test_readers_name_the_command_of_another_kind(tmp_path, kind, reader):
    import shutil

    from chiralnet.formats import optimize_toml, scenario_toml, spectrum_toml, sweep_toml

    read = {"scenario": scenario_toml.read_scenario, "sweep": sweep_toml.read_sweep,
            "optimize": optimize_toml.read_optimization, "spectrum": spectrum_toml.read_spectrum}[reader]
    # a plain .toml name: the kind is decided by the tables, not the name
    path = tmp_path / "plain.toml"
    shutil.copy(os.path.join(EXAMPLES, KIND_FILES[kind]), path)
    if kind == reader:
        read(path)
    else:
        with pytest.raises(cn.ChiralnetError, match=rf"plain.toml: this is an? \w+ file \(it has a \[\w+\] table\), "
                                                    rf"not an? \w+ file: use `{COMMANDS[kind]} {path}"):
            read(path)
