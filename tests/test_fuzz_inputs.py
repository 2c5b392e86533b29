"""Fuzz the input layer (issue 14): whatever a file or an API call holds, the answer is a result or one
ChiralnetError -- never another exception (a traceback from the command), never code run from a file.

Each test draws CHIRALNET_FUZZ_EXAMPLES examples (default 25, a few seconds in all); raise it for a
longer hunt, e.g. ``CHIRALNET_FUZZ_EXAMPLES=2000 python3 -m pytest -q tests/test_fuzz_inputs.py``.
"""

import json
import os

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chiralnet as cn
from chiralnet.errors import ChiralnetError
from chiralnet.formats.graph_json import graph_from_data, graph_to_data, load_graph
from chiralnet.builders import BUILDERS
from chiralnet.formats.scenario_toml import parse_scenario
from chiralnet.sweeps import SweepSpec, load_sweep, parse_sweep
from chiralnet.sweeps.spec import SECTIONS, sweep_quantities

FUZZ = settings(max_examples=int(os.environ.get("CHIRALNET_FUZZ_EXAMPLES", "25")), deadline=None,
                suppress_health_check=list(HealthCheck))

# ---------------------------------------------------------------------------------------------
# Value strategies: what TOML and JSON can hold, with the awkward cases weighted in.

#: Small integers (cheap networks) or integers past every limit (10**15 cells, beyond int64, beyond float).
ints = st.one_of(st.integers(-3, 12), st.sampled_from([2**63, 10**15, 10**400, -(10**400)]))
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 1e-300, 1e308, 0.04]))
texts = st.one_of(st.text(max_size=12), st.sampled_from(["0.1-0.02j", "chain", "os:system", "a", "b", ""]))
scalars = st.one_of(st.none(), st.booleans(), ints, floats, texts)
toml_scalars = st.one_of(st.booleans(), ints.filter(lambda v: abs(v) < 2**63), floats, texts)


def nested(leaves, max_leaves=12):
    return st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(texts, inner, max_size=4)),
                        max_leaves=max_leaves)


json_values = nested(scalars)
toml_values = nested(toml_scalars)


def only_chiralnet_errors(fn, *args, **kwargs):
    """Call fn; a ChiralnetError is a fine answer, anything else fails the test."""
    try:
        return fn(*args, **kwargs)
    except ChiralnetError:
        return None


# ---------------------------------------------------------------------------------------------
# Graph JSON.

VALID = graph_to_data(cn.chain(3))


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


PATHS = [p for p in _paths(VALID) if p]


def _replace(data, path, new):
    data = json.loads(json.dumps(data))
    target = data
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = new
    return data


@FUZZ
@given(json_values)
def test_any_json_value_is_a_graph_or_one_error(data):
    G = only_chiralnet_errors(graph_from_data, data)
    assert G is None or isinstance(G, nx.DiGraph)


@FUZZ
@given(st.sampled_from(PATHS), json_values)
def test_a_damaged_graph_file_is_a_graph_or_one_error(path, new):
    only_chiralnet_errors(graph_from_data, _replace(VALID, path, new))


@FUZZ
@given(st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())))
def test_any_bytes_are_a_graph_file_or_one_error(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("g") / "g.json"
    path.write_bytes(content)
    only_chiralnet_errors(load_graph, path)


# ---------------------------------------------------------------------------------------------
# The API: names and attribute values.

names = st.one_of(scalars, st.lists(scalars, max_size=2), st.tuples(scalars, st.lists(scalars, max_size=1)),
                  st.dictionaries(texts, scalars, max_size=1), st.just(np.array([1, 2])))
attr_values = st.one_of(scalars, st.lists(scalars, max_size=2), st.complex_numbers(),
                        st.sampled_from([np.array([1.0]), np.array(True), np.float64(2.0), np.int64(3)]))


@FUZZ
@given(names, st.dictionaries(st.sampled_from(["omega", "kappa", "n_th", "drive", "alpha0", "n0", "battery", "pos",
                                               "label"]), attr_values, max_size=4))
def test_add_cell_accepts_or_raises_one_error(name, attrs):
    G = cn.network()
    only_chiralnet_errors(cn.add_cell, G, name, **{"omega": 1.0, **attrs})
    if len(G):
        cn.validate_network(G)  # what was accepted follows the schema
    only_chiralnet_errors(cn.add_reservoir, G, {name: 1.0} if _hashable(name) else {0: 1.0}, gamma=0.1, name=name)
    only_chiralnet_errors(cn.add_coherent_link, G, name, "x", 0.1)


def _hashable(x):
    try:
        hash(x)
    except TypeError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Scenario documents (the dict a TOML file parses to).


@st.composite
def scenario_docs(draw):
    builder = draw(st.sampled_from(sorted(BUILDERS) + ["nope"]))
    info = BUILDERS.get(builder)
    params = sorted(info.parameters if info is not None else {"x"}) + ["battery", "kapa"]
    network = {"builder": builder}
    network.update(draw(st.dictionaries(st.sampled_from(params), toml_values, max_size=4)))
    doc = {"network": draw(st.one_of(st.just(network), toml_values))}
    times = draw(st.dictionaries(st.sampled_from(["t_start", "t_end", "n_times", "values"]), toml_values, max_size=3))
    if times:
        doc["times"] = times
    for key in ("solver", "output", "title"):
        if draw(st.booleans()):
            doc[key] = draw(toml_values)
    return doc


@FUZZ
@given(scenario_docs())
def test_any_scenario_is_a_scenario_or_one_error(doc):
    only_chiralnet_errors(parse_scenario, doc)


# ---------------------------------------------------------------------------------------------
# Sweep documents: never code from the file, never another exception.


@st.composite
def sweep_docs(draw):
    doc = {}
    builder = draw(st.sampled_from(sorted(BUILDERS) + ["os:system", "chiralnet.builders:chain", "nope"]))
    base = {"builder": builder} if draw(st.booleans()) else {}
    keys = ["n_cells", "gamma", "kappa", "omega", "rows", "cols", "n_leaves", "drive", "command"]
    base.update(draw(st.dictionaries(st.sampled_from(keys), toml_values, max_size=3)))
    doc["base"] = base
    grid_value = st.one_of(st.lists(toml_scalars, min_size=1, max_size=4),
                           st.fixed_dictionaries({"start": toml_scalars, "stop": toml_scalars, "num": toml_scalars}),
                           toml_values)
    doc["grid"] = draw(st.dictionaries(st.sampled_from(keys + ["builder"]), grid_value, max_size=2))
    if draw(st.booleans()):
        doc["quantities"] = {"names": draw(st.one_of(st.lists(st.sampled_from(sorted(sweep_quantities())), max_size=3),
                                                     toml_values)),
                             **draw(st.dictionaries(st.sampled_from(["times", "t90_max", "t90_steps"]), toml_values,
                                                    max_size=2))}
    for section in ("output", "run"):
        if draw(st.booleans()):
            doc[section] = draw(st.dictionaries(st.sampled_from(sorted(SECTIONS[section])), toml_values, max_size=2))
    if draw(st.booleans()):  # a disorder ensemble: spreads and options
        disorder_keys = ["kappa", "gamma", "omega", "drive", "n_cells", "J", "n_th", "kappa_a", "realisations", "seed",
                         "distribution", "quantiles", "keep_realisations"]
        doc["disorder"] = draw(st.dictionaries(st.sampled_from(disorder_keys), toml_values, max_size=3))
    return doc


@FUZZ
@given(sweep_docs())
def test_any_sweep_file_is_a_spec_or_one_error_and_never_code(doc):
    spec = only_chiralnet_errors(parse_sweep, doc, "fuzz.sweep.toml")
    if spec is not None:
        assert isinstance(spec, SweepSpec)
        names = [spec.builder] if spec.builder is not None else list(dict(spec.axes)["builder"])
        assert all(b in BUILDERS for b in names), names  # no "module:function" from a file


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_are_a_sweep_file_or_one_error(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("s") / "s.sweep.toml"
    path.write_bytes(content)
    only_chiralnet_errors(load_sweep, path)


# ---------------------------------------------------------------------------------------------
# The Python API: ragged arrays, integers beyond float range and wrong types are one ChiralnetError.

API_CASES = {
    "builder array ragged": lambda: cn.chain(3, kappa=[[0.1], [0.1, 0.2]]),
    "builder number past float": lambda: cn.chain(3, kappa=10**400),
    "gaussian amplitude past float": lambda: cn.drives.gaussian(10**400, 1.0, 1.0),
    "gaussian width past float": lambda: cn.drives.gaussian(0.1, 1.0, 10**400),
    "function breakpoints not a list": lambda: cn.drives.function(lambda t: 0.0, breakpoints=3.0),
    "function max_step <= 0": lambda: cn.drives.function(lambda t: 0.0, max_step=0.0),
    "simulate times ragged": lambda: cn.simulate(cn.two_cell(), [[0], [1, 2]]),
    "simulate times past float": lambda: cn.simulate(cn.two_cell(), [0, 10**400]),
    "simulate cells unhashable": lambda: cn.simulate(cn.two_cell(), [0.0, 1.0], cells=[["a"]]),
    "simulate max_steps past float": lambda: cn.simulate(cn.two_cell(), [0.0, 1.0], method="rk45",
                                                         max_steps=10**400),
    "simulate rtol text": lambda: cn.simulate(cn.two_cell(), [0.0, 1.0], method="rk45", rtol="1e-3"),
    "protocol duration past float": lambda: cn.protocol([(cn.two_cell(), 10**400)]),
    "state0 not a State": lambda: cn.simulate(cn.two_cell(), [0.0, 1.0], state0={"alpha": [0, 0]}),
}


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_api_bad_input_is_one_chiralnet_error(case):
    with pytest.raises(ChiralnetError):
        API_CASES[case]()
