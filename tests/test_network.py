"""The graph schema: construction helpers, validation, and clear errors on bad input (issue 2 item 8).

Every bad input must raise a ChiralnetError (a ValueError) whose message names the offending
cell, link or key, before any computation.
"""

import math

import networkx as nx
import numpy as np
import pytest

import chiralnet as cn


def _two():
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.0, kappa=0.01, drive=0.1)
    cn.add_cell(G, "b", omega=1.0, kappa=0.01)
    return G


def _raises(fn, *fragments, exc=cn.NetworkError):
    with pytest.raises(exc) as info:
        fn()
    assert isinstance(info.value, cn.ChiralnetError) and isinstance(info.value, ValueError)
    msg = str(info.value)
    for frag in fragments:
        assert frag in msg, (frag, msg)
    return msg


# ---------------------------------------------------------------------------------------------
# Construction helpers.


def test_network_helpers_build_the_schema():
    G = _two()
    cn.add_cell(G, "c", omega=1.2, kappa=0.02, n_th=0.1, drive=0.1j, alpha0=1 - 1j, n0=0.2, battery=True,
                pos=(1, 2), label="third")
    cn.add_coherent_link(G, "a", "c", 0.1 - 0.2j)
    r = cn.add_reservoir(G, {"a": 1.0, "b": 1j, "c": -0.5}, gamma=0.3, n_th=0.05)
    r2 = cn.add_chiral_link(G, "a", "b", gamma=0.04, xi=2.0)
    assert (r, r2) == ("R0", "R1")
    assert cn.cells(G) == ["a", "b", "c"] and cn.reservoirs(G) == ["R0", "R1"]
    assert cn.battery_cells(G) == ["c"]
    assert G.edges["a", "c"]["J"] == 0.1 - 0.2j and G.edges["R0", "b"]["p"] == 1j
    cn.validate_network(G)
    assert cn.add_reservoir(G, {"c": 1}, gamma=0.1, name="mine") == "mine"


# ---------------------------------------------------------------------------------------------
# Bad attribute values.

BAD_RATES = [-0.1, math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("key", ["kappa", "n_th", "n0"])
@pytest.mark.parametrize("value", BAD_RATES)
def test_add_cell_rejects_bad_rates(key, value):
    G = cn.network()
    _raises(lambda: cn.add_cell(G, "x", omega=1.0, **{key: value}), "'x'", key)
    assert "x" not in G


@pytest.mark.parametrize("value", [0.0, -1.0, math.nan, math.inf])
def test_add_cell_rejects_bad_omega(value):
    _raises(lambda: cn.add_cell(cn.network(), "x", omega=value), "'x'", "omega")


@pytest.mark.parametrize("key,value", [("omega", "1.0"), ("kappa", "0.1"), ("kappa", None), ("kappa", 1j),
                                       ("n_th", [0.1]), ("drive", "0.1"), ("alpha0", complex(math.nan, 0)),
                                       ("drive", complex(0, math.inf)), ("omega", True), ("battery", "yes")])
def test_add_cell_rejects_non_numeric(key, value):
    kw = {"omega": 1.0, key: value}
    _raises(lambda: cn.add_cell(cn.network(), "x", **kw), "'x'", key)


@pytest.mark.parametrize("key", ["gamma", "n_th"])
@pytest.mark.parametrize("value", BAD_RATES + ["0.1"])
def test_add_reservoir_rejects_bad_rates(key, value):
    G = _two()
    kw = {"gamma": 0.1, key: value}
    _raises(lambda: cn.add_reservoir(G, {"a": 1, "b": -1}, name="bath", **kw), "'bath'", key)
    assert "bath" not in G and G.number_of_edges() == 0


@pytest.mark.parametrize("value", [math.nan, "1", None])
def test_add_reservoir_rejects_bad_p(value):
    G = _two()
    _raises(lambda: cn.add_reservoir(G, {"a": 1, "b": value}, gamma=0.1, name="bath"), "'bath'", "'b'")
    assert "bath" not in G


@pytest.mark.parametrize("value", [math.nan, complex(math.inf, 0), "0.1", None])
def test_add_coherent_link_rejects_bad_J(value):
    _raises(lambda: cn.add_coherent_link(_two(), "a", "b", value), "'a'", "'b'", "J")


@pytest.mark.parametrize("key,value", [("gamma", -0.1), ("gamma", 0.0), ("gamma", math.nan), ("xi", 0.0), ("xi", -1.0),
                                       ("xi", math.inf), ("n_th", -0.5), ("gamma", "0.1")])
def test_add_chiral_link_rejects_bad_values(key, value):
    G = _two()
    kw = {"gamma": 0.04, key: value}
    _raises(lambda: cn.add_chiral_link(G, "a", "b", **kw), key)
    assert G.number_of_edges() == 0 and cn.reservoirs(G) == []


def test_drive_frequency_must_be_finite_real():
    _raises(lambda: cn.network(drive_frequency=math.nan), "drive_frequency")
    _raises(lambda: cn.network(drive_frequency="1"), "drive_frequency")


# ---------------------------------------------------------------------------------------------
# Bad structure through the helpers.


def test_links_to_missing_cells():
    G = _two()
    _raises(lambda: cn.add_coherent_link(G, "a", "zz", 0.1), "'zz'", "add_cell")
    _raises(lambda: cn.add_chiral_link(G, "zz", "b", gamma=0.1), "'zz'")
    _raises(lambda: cn.add_reservoir(G, {"a": 1, "zz": 1}, gamma=0.1), "'zz'")
    assert cn.reservoirs(G) == []


def test_self_loops():
    G = _two()
    _raises(lambda: cn.add_coherent_link(G, "a", "a", 0.1), "'a'", "self-loop")
    _raises(lambda: cn.add_chiral_link(G, "b", "b", gamma=0.1), "'b'", "self-loop")


def test_duplicate_nodes_and_links():
    G = _two()
    _raises(lambda: cn.add_cell(G, "a", omega=1.0), "'a'", "already")
    cn.add_coherent_link(G, "a", "b", 0.1)
    _raises(lambda: cn.add_coherent_link(G, "b", "a", 0.1), "'a'", "'b'")
    _raises(lambda: cn.add_chiral_link(G, "a", "b", gamma=0.1), "'a'", "'b'")
    _raises(lambda: cn.add_reservoir(G, {"a": 1}, gamma=0.1, name="a"), "'a'")


def test_reservoir_cannot_link_to_a_reservoir_through_helpers():
    G = _two()
    r = cn.add_reservoir(G, {"a": 1}, gamma=0.1)
    _raises(lambda: cn.add_reservoir(G, {r: 1}, gamma=0.1), repr(r), "not a cell")
    _raises(lambda: cn.add_coherent_link(G, "a", r, 0.1), repr(r), "not a cell")


def test_empty_reservoir():
    _raises(lambda: cn.add_reservoir(_two(), {}, gamma=0.1), "couplings")


# ---------------------------------------------------------------------------------------------
# validate_network / build_model on hand-made graphs.


def _build(G):
    return lambda: cn.build_model(G)


@pytest.mark.parametrize("where", ["cell", "reservoir", "coherent", "coupling", "graph"])
def test_unknown_attribute_names_raise(where):
    G = _two()
    cn.add_coherent_link(G, "a", "b", 0.1)
    cn.add_reservoir(G, {"a": 1, "b": -1}, gamma=0.1, name="bath")
    target = {"cell": G.nodes["a"], "reservoir": G.nodes["bath"], "coherent": G.edges["a", "b"],
              "coupling": G.edges["bath", "b"], "graph": G.graph}[where]
    target["kapa"] = 0.1
    msg = _raises(_build(G), "'kapa'")
    named = {"cell": "'a'", "reservoir": "'bath'", "coherent": "'a'", "coupling": "'bath'", "graph": "graph"}[where]
    assert named in msg
    for fn in (lambda: cn.simulate(G, [0.0, 1.0]), lambda: cn.steady_state(G), lambda: cn.validate_network(G)):
        _raises(fn, "'kapa'")


@pytest.mark.parametrize("key,value", [("kappa", -1.0), ("kappa", math.nan), ("n_th", math.inf), ("n0", -0.1),
                                       ("omega", "1"), ("drive", "x"), ("alpha0", math.nan)])
def test_validate_rejects_bad_cell_values_set_directly(key, value):
    G = _two()
    G.nodes["b"][key] = value
    _raises(_build(G), "'b'", key)


@pytest.mark.parametrize("key,value", [("gamma", -1.0), ("gamma", math.nan), ("n_th", -0.2), ("gamma", "1")])
def test_validate_rejects_bad_reservoir_values_set_directly(key, value):
    G = _two()
    cn.add_reservoir(G, {"a": 1, "b": -1}, gamma=0.1, name="bath")
    G.nodes["bath"][key] = value
    _raises(_build(G), "'bath'", key)


def test_validate_rejects_bad_link_values_set_directly():
    G = _two()
    G.add_edge("a", "b", J=math.nan)
    _raises(_build(G), "'a'", "'b'", "J")
    G = _two()
    G.add_edge("a", "b")                      # a cell -> cell edge without J
    _raises(_build(G), "'a'", "'b'", "'J'")
    G = _two()
    G.add_node("bath", kind="reservoir", gamma=0.1)
    G.add_edge("bath", "a", p="1")
    _raises(_build(G), "'bath'", "'a'", "p")


def test_validate_structure_errors():
    G = _two()
    G.add_edge("a", "a", J=0.1)
    _raises(_build(G), "'a'", "self-loop")

    G = _two()
    G.add_edge("a", "b", J=0.1)
    G.add_edge("b", "a", J=0.1)
    _raises(_build(G), "'a'", "'b'", "both ways")

    G = _two()
    G.add_node("r1", kind="reservoir", gamma=0.1)
    G.add_node("r2", kind="reservoir", gamma=0.1)
    G.add_edge("r1", "a", p=1.0)
    G.add_edge("r2", "b", p=1.0)
    G.add_edge("r1", "r2", p=1.0)
    _raises(_build(G), "'r1'", "'r2'", "two reservoirs")

    G = _two()
    G.add_node("r", kind="reservoir", gamma=0.1)
    G.add_edge("r", "a", p=1.0)
    G.add_edge("b", "r", p=1.0)
    _raises(_build(G), "'b'", "'r'", "reservoir -> cell")

    G = _two()
    G.add_node("r", kind="reservoir", gamma=0.1)
    _raises(_build(G), "'r'", "no cell")

    G = _two()
    G.add_node("q", kind="qubit")
    _raises(_build(G), "'q'", "kind")

    G = _two()
    G.add_node("c")                            # a cell without omega
    _raises(_build(G), "'c'", "'omega'")


def test_link_to_missing_cell_in_raw_graph():
    # NetworkX creates the missing endpoint as an attribute-less node: it must not pass as a cell.
    G = _two()
    G.add_edge("a", "ghost", J=0.1)
    _raises(_build(G), "'ghost'", "omega")


@pytest.mark.parametrize("graph_type", [nx.MultiDiGraph, nx.Graph, nx.MultiGraph])
def test_wrong_graph_types(graph_type):
    G = graph_type(drive_frequency=1.0)
    G.add_node("a", omega=1.0, kappa=0.1)
    msg = _raises(_build(G), graph_type.__name__, "DiGraph")
    assert "chiralnet.network()" in msg


@pytest.mark.parametrize("thing", [None, 3, "graph", np.eye(2)])
def test_not_a_graph(thing):
    _raises(_build(thing), "DiGraph")


def test_empty_network():
    _raises(_build(cn.network()), "no cells")
    _raises(lambda: cn.simulate(cn.network(), [0.0, 1.0]), "no cells")
    _raises(lambda: cn.steady_state(cn.network()), "no cells")


def test_nodelist_must_list_every_cell_once():
    G = _two()
    _raises(lambda: cn.build_model(G, nodelist=["a"]), "'b'")
    _raises(lambda: cn.build_model(G, nodelist=["a", "b", "zz"]), "'zz'")
    _raises(lambda: cn.build_model(G, nodelist=["a", "a", "b"]), "nodelist")


# ---------------------------------------------------------------------------------------------
# No steady state: the message names the cell the failing mode lives on.


def test_undamped_isolated_cell():
    G = _two()
    cn.add_cell(G, "free", omega=1.3)
    _raises(lambda: cn.steady_state(G), "'free'", "kappa", exc=cn.NoSteadyStateError)
    _raises(lambda: cn.check_stability(G), "'free'", exc=cn.NoSteadyStateError)


def test_undamped_mode_created_by_a_coupling():
    # No local damping; a reservoir with p = (0.1, 1) damps only the combination 0.1 a + b.
    # The dark mode a - 0.1 b ... orthogonal to it, (1, -0.1), lives mostly on cell 'dark'.
    # (A mode cannot *grow*: the Hermitian part of M is -D/2 <= 0 for any valid graph; failing modes are
    # undamped ones.)
    G = cn.network()
    cn.add_cell(G, "dark", omega=1.0, drive=0.1)
    cn.add_cell(G, "bright", omega=1.0)
    cn.add_reservoir(G, {"dark": 0.1, "bright": 1.0}, gamma=0.2)
    msg = _raises(lambda: cn.steady_state(G), "'dark'", exc=cn.NoSteadyStateError)
    assert "'bright'" not in msg
    # Local damping on either cell removes it.
    G.nodes["bright"]["kappa"] = 0.01
    cn.steady_state(G)


def test_chiral_chain_without_local_damping_has_steady_state():
    # Every cell of a chiral chain touches a reservoir, so even kappa = 0 is stable.
    assert np.all(np.isfinite(cn.steady_state(cn.chain(5, kappa=0.0)).energies))


def test_coherent_pair_with_one_damped_cell_is_stable_but_dark_pair_is_not():
    G = _two()
    G.nodes["b"]["kappa"] = 0.0
    cn.add_coherent_link(G, "a", "b", 0.05)
    cn.steady_state(G)        # b hybridises with the damped a
    G.remove_edge("a", "b")
    _raises(lambda: cn.steady_state(G), "'b'", exc=cn.NoSteadyStateError)


@pytest.mark.parametrize("value", ["yes", 2, 0.5, None])
def test_battery_flag_must_be_boolean(value):
    # Regression: add_cell used to coerce with bool(), so battery="no" silently meant True.
    _raises(lambda: cn.add_cell(cn.network(), "x", omega=1.0, battery=value), "'x'", "battery")
    G = _two()
    G.nodes["a"]["battery"] = value
    _raises(_build(G), "'a'", "battery")


@pytest.mark.parametrize("value", [True, False, 1, 0, np.True_])
def test_battery_flag_accepts_booleans(value):
    G = cn.network()
    cn.add_cell(G, "x", omega=1.0, battery=value)
    assert G.nodes["x"]["battery"] is bool(value)


@pytest.mark.parametrize("value", ["ab", (1.0,), (1.0, "y"), (1.0, np.nan), 3.0])
def test_pos_must_be_a_pair_of_numbers(value):
    _raises(lambda: cn.add_cell(cn.network(), "x", omega=1.0, pos=value), "'x'", "pos")
    G = _two()
    G.nodes["a"]["pos"] = value
    _raises(_build(G), "'a'", "pos")


def test_reservoir_couplings_must_be_a_dict():
    _raises(lambda: cn.add_reservoir(_two(), [("a", 1.0)], gamma=0.1), "couplings", "dict")


# ---------------------------------------------------------------------------------------------
# Inputs NetworkX or float() reject must be NetworkErrors too (issue 14).


@pytest.mark.parametrize("name", [None, [1], {"a": 1}, (1, [2]), np.array([1, 2])])
def test_names_networkx_rejects_are_network_errors(name):
    G = cn.network()
    cn.add_cell(G, "a", omega=1.0)
    with pytest.raises(cn.NetworkError, match="name"):
        cn.add_cell(G, name, omega=1.0)
    if name is not None:  # None asks for the default reservoir name
        with pytest.raises(cn.NetworkError, match="name"):
            cn.add_reservoir(G, {"a": 1.0}, gamma=0.1, name=name)
    with pytest.raises(cn.NetworkError, match="name"):
        cn.add_coherent_link(G, "a", name, 0.1)
    with pytest.raises(cn.NetworkError, match="name"):
        cn.add_chiral_link(G, name, "a", gamma=0.1)
    assert list(G) == ["a"]


@pytest.mark.parametrize("flag", [np.array([True, False]), np.array(1), [True], "yes", 2])
def test_battery_flag_that_is_not_a_boolean(flag):
    with pytest.raises(cn.NetworkError, match="'battery' must be True or False"):
        cn.add_cell(cn.network(), "a", omega=1.0, battery=flag)


@pytest.mark.parametrize("key", ["omega", "kappa", "n_th", "n0", "drive", "alpha0"])
def test_integers_beyond_the_float_range(key):
    kw = {"omega": 1.0, key: 10**400}
    with pytest.raises(cn.NetworkError, match=f"'{key}' must be (a )?finite"):
        cn.add_cell(cn.network(), "a", **kw)
    with pytest.raises(cn.NetworkError, match="finite"):
        cn.network(drive_frequency=10**400)


# ---------------------------------------------------------------------------------------------
# Issue 21: one validating walk (read_network) with a fast pre-check that never accepts what the
# full check refuses.

from chiralnet.network import _check_cell, _check_reservoir, _plain_cell, _plain_reservoir, read_network  # noqa: E402

_VALUES = [1.0, 0.0, -0.0, -1.0, 2.5, math.inf, -math.inf, math.nan, 1e308, 5e-324, 1, 0, True, False,
           np.float64(1.0), np.float64(math.nan), np.int64(1), np.bool_(True), 0.1 + 0.2j, complex(math.inf, 0),
           complex(0, math.nan), "1.0", None, (1.0, 2.0), [1.0]]
_CELL_KEYS = ["omega", "kappa", "n_th", "n0", "drive", "alpha0", "battery", "pos", "label", "kapa"]


@pytest.mark.parametrize("key", _CELL_KEYS)
@pytest.mark.parametrize("value", _VALUES, ids=repr)
def test_fast_cell_check_accepts_only_what_the_full_check_accepts(key, value):
    attrs = {"kind": "cell", "omega": 1.0, "kappa": 0.01, key: value}
    if _plain_cell(attrs):
        _check_cell("a", attrs)  # must not raise
    else:  # the full check decides: either it accepts (a rarer valid type) or it names the key
        try:
            _check_cell("a", attrs)
        except cn.NetworkError as exc:
            assert "'a'" in str(exc) and (key in str(exc) or key == "kapa")


@pytest.mark.parametrize("key", ["gamma", "n_th", "p"])
@pytest.mark.parametrize("value", _VALUES, ids=repr)
def test_fast_reservoir_check_accepts_only_what_the_full_check_accepts(key, value):
    attrs = {"kind": "reservoir", "gamma": 0.1, key: value}
    if _plain_reservoir(attrs):
        _check_reservoir("R", attrs)


@pytest.mark.parametrize("value", [math.nan, math.inf, complex(0, math.inf), "x", True, None])
@pytest.mark.parametrize("key", ["J", "p"])
def test_fast_edge_check_refuses_bad_couplings(key, value):
    G = _two()
    if key == "J":
        G.add_edge("a", "b", J=value)
        where = "coherent link ('a', 'b')"
    else:
        G.add_node("R", kind="reservoir", gamma=0.1)
        G.add_edge("R", "a", p=value)
        where = "coupling of reservoir 'R' to cell 'a'"
    _raises(lambda: cn.validate_network(G), where)


def test_read_network_returns_what_build_model_reads():
    G = cn.chain(3, n_th=0.1)
    cn.add_coherent_link(G, 0, 2, 0.01 + 0.02j)
    parts = read_network(G)
    assert parts.cells == [0, 1, 2] and parts.reservoirs == ["R0", "R1"]
    assert parts.links == ([0, 0, 1], [1, 2, 2], [-0.02j, 0.01 + 0.02j, -0.02j])  # cell indices, J
    assert parts.couplings == ([0, 0, 1, 1], [0, 1, 1, 2], [1 + 0j, -1 + 0j, 1 + 0j, -1 + 0j])  # R0, R1; cells; p
    assert parts.drive_frequency == 1.0 and parts.constant_drives
    G.nodes[0]["drive"] = cn.drives.gaussian(0.1, t0=10.0, width=2.0)
    assert not read_network(G).constant_drives
