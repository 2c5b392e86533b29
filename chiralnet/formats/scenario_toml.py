"""Scenario files (TOML): the schema, the reader and the writer. :mod:`chiralnet.scenario` runs them.

A scenario file has the sections ``[network]`` (required), ``[times]`` (needed by ``chiralnet run``),
``[solver]`` and ``[output]``, plus optional top-level ``title`` and ``description``. Units: frequencies
and rates in units of omega, times in 1/omega, energies in units of omega (hbar = 1).

The network, one of three forms::

    [network]                       # 1. a builder and its keyword parameters
    builder = "chain"               #    two_cell, chain, ring, star, lattice
    n_cells = 10
    gamma = 0.04
    kappa = 0.003
    drive = 0.1
    # kappa = [0.003, 0.002, ...]   #    a list gives one value per cell (omega, kappa, n_th, drive,
    #                               #    pump, m_th) or per link (gamma, n_th_link, J, m_th_link,
    #                               #    parametric), in the builder's link order

    [network]                       # 2. explicit cells and links
    drive_frequency = 1.0
    [[network.cells]]
    name = "a"                      #    a string or an integer
    omega = 1.0
    kappa = 0.003
    drive = "0.1+0j"
    [[network.cells]]
    name = "b"
    omega = 1.0
    kappa = 0.003
    [[network.chiral_links]]        #    one-way a -> b: reservoir plus balancing J
    from = "a"                      #    (optional: xi, n_th, name)
    to = "b"
    gamma = 0.04
    # ... or the same link spelled out (use one or the other, not both):
    # [[network.coherent_links]]    #    J a_u^dag a_v + h.c.
    # cells = ["a", "b"]
    # J = [0.0, -0.02]
    # [[network.reservoirs]]        #    jump operator sum_i p_i a_i (any number of cells)
    # gamma = 0.04
    # cells = ["a", "b"]
    # p = [1.0, -1.0]

Squeezing and parametric terms (a general Gaussian network, docs/guide/gaussian.md): cells take ``pump``
(two-photon drive), ``m_th`` (squeezed local bath, with ``n_th``) and ``xi0`` (squeezed start);
``reservoirs`` and ``chiral_links`` take ``m_th`` (squeezed reservoir, with ``n_th``); parametric links
g a_u^dag a_v^dag + h.c. are a list of tables or of triples::

    [[network.parametric_links]]
    cells = ["a", "b"]
    g = 0.01
    # or, in [network]: parametric_links = [["a", "b", 0.01], ...]

A builder network takes ``pump``, ``m_th``, ``m_th_link`` and ``parametric`` like its other parameters.

    [network]                       # 3. a graph saved with chiralnet.save_graph
    graph = "my_network.json"       #    relative to the scenario file

In every form, ``battery = [...]`` in ``[network]`` lists the cells that count as the battery
(overriding the builder's choice or the cells' ``battery`` flags).

Complex numbers (``drive``, ``alpha0``, ``J``, ``p``, ``pump``, ``m_th``, ``xi0``, ``g``) are written as a real number (``0.1``), a
string in Python's notation (``"0.1-0.02j"``, ``"-0.02j"``; spaces are ignored), or a pair
``[re, im]``.

Times and solver::

    [times]
    t_end = 3000.0                  # 1/omega; output on linspace(t_start, t_end, n_times)
    n_times = 301                   # default 301; t_start defaults to 0
    # values = [0.0, 10.0, 100.0]   # or an explicit, strictly increasing list

    [solver]
    method = "auto"                 # auto, exact, exact-sparse, rk45
    rtol = 1e-8                     # rk45 only
    atol = 1e-10
    max_steps = 10000000

    [output]
    dir = "out/chain"               # relative to the scenario file; chiralnet run --out overrides it
    figures = ["energy", "heatmap", "profile", "network"]   # heatmap, profile: >= 3 cells; network: <= 1000
    csv = true                      # energies.csv
    summary = true                  # summary.json
    graph = true                    # network.json
    dpi = 150

Drive shapes (explicit cells and phases): ``drive = {shape = "gaussian", amplitude = 0.1, t0 = 500,
width = 100}``; shapes ``gaussian`` (amplitude, t0, width), ``square`` (amplitude, start, stop),
``tone`` (amplitude, frequency), ``constant`` (amplitude); an array of numbers and shapes is their sum
(see :mod:`chiralnet.drives`).

Protocols: a ``[[phase]]`` list holds the base ``[network]`` with changes, one phase after another::

    [[phase]]
    name = "charge"                 # optional
    duration = 600.0                # 1/omega, > 0
    [[phase]]
    name = "discharge"
    duration = 900.0
    remove = [["charger", "battery"]]       # their coherent link and shared reservoirs go
    [[phase.cells]]                 # attributes set on existing cells (any cell key but label)
    name = "charger"
    drive = 0.0
    [[phase.chiral_links]]          # links added as in [network]: coherent_links, chiral_links, reservoirs
    from = "battery"
    to = "load"
    gamma = 0.05

A phase takes ``parametric_links`` too, and its cells any cell key (``pump``, ``m_th``, ``xi0`` included).
Each phase starts from the base network (changes do not accumulate); the state carries over. Without
``[times]`` a protocol is reported at 301 times over its whole length.

A misspelled key, a wrong type or a bad value raises :class:`ScenarioError`, whose one-line message
names the file, the key and what is expected.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path

import networkx as nx
import numpy as np

try:  # Python >= 3.11
    pass
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    pass

from .. import builders, drives
from ..files import read_toml
from ..errors import ChiralnetError, ScenarioError
from ..network import (
    add_cell,
    add_chiral_link,
    add_coherent_link,
    add_parametric_link,
    add_reservoir,
    cells,
    network,
    reservoirs,
    validate_network,
)
from ..solve import METHODS

__all__ = [
    "Scenario",
    "FIGURES",
    "load_scenario",
    "parse_scenario",
    "build_network",
    "network_spec",
    "dumps_toml",
    "write_toml",
    "read_scenario",
    "write_scenario",
    "scenario_to_dict",
]


#: Figures ``chiralnet run`` can draw (``[output] figures``).
FIGURES = ("energy", "heatmap", "profile", "network")


_EXPECT = {
    "int": "an integer", "real": "a real number", "positive": "a number > 0", "nonneg": "a number >= 0",
    "complex": 'a complex number (0.1, "0.1-0.02j" or [0.1, -0.02])', "bool": "true or false",
    "str": "a string", "name": "a cell name (string or integer)",
}

_CELL_KEYS = {"name": "name", "omega": "positive", "kappa": "nonneg", "n_th": "nonneg", "drive": "drive",
              "alpha0": "complex", "n0": "nonneg", "battery": "bool", "label": "str",
              "pump": "complex", "m_th": "complex", "xi0": "complex"}
_TOP_KEYS = {"title", "description", "network", "times", "solver", "output", "phase"}
#: Drive shapes in TOML: drive = {shape = "gaussian", amplitude = 0.1, t0 = 500, width = 100}; an array
#: of numbers and shapes is their sum.
_DRIVE_SHAPES = {
    "gaussian": (drives.gaussian, {"amplitude": "complex", "t0": "real", "width": "positive"}),
    "square": (drives.square, {"amplitude": "complex", "start": "real", "stop": "real"}),
    "tone": (drives.tone, {"amplitude": "complex", "frequency": "real"}),
    "constant": (drives.constant, {"amplitude": "complex"}),
}
#: Keys of a [[phase]]: its duration and the changes to the base [network].
_PHASE_KEYS = {"name", "duration", "cells", "remove", "coherent_links", "chiral_links", "reservoirs",
               "parametric_links"}
#: Integers in scenario files must fit in int64 (sizes, counts, dpi, max_steps go to NumPy and Numba).
_INT_LIMIT = 2**63


# ---------------------------------------------------------------------------------------------
# Small typed readers; every failure names source and key.


class _Reader:
    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, message: str):
        raise ScenarioError(f"{self.source}: {key}: {message}")

    def table(self, value, key: str) -> dict:
        if not isinstance(value, dict):
            self.fail(key, f"expected a table ([{key}] or {key} = {{...}}), got {_show(value)}")
        return value

    def keys(self, table: dict, allowed, key: str, required=()) -> None:
        for k in table:
            if k not in allowed:
                close = difflib.get_close_matches(str(k), sorted(allowed), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.fail(_join(key, k), f"unknown key{hint}; expected one of {', '.join(sorted(allowed))}")
        for k in sorted(required):
            if k not in table:
                self.fail(_join(key, k), "missing required key")

    def value(self, value, kind: str, key: str):
        """Check ``value`` against ``kind`` and return it converted."""
        if kind == "complex":
            return self.complex(value, key)
        if kind == "drive":
            return self.drive(value, key)
        if kind == "bool":
            if not isinstance(value, bool):
                self.fail(key, f"expected true or false, got {_show(value)}")
            return value
        if kind == "str":
            if not isinstance(value, str):
                self.fail(key, f"expected a string, got {_show(value)}")
            return value
        if kind == "name":
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                self.fail(key, f"expected a cell name (string or integer), got {_show(value)}")
            return value
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, Integral):
                self.fail(key, f"expected an integer, got {_show(value)}")
            if not -_INT_LIMIT < value < _INT_LIMIT:
                self.fail(key, f"expected an integer, got one with {len(str(abs(int(value))))} digits "
                               f"(at most {_INT_LIMIT - 1:.2e})")
            return int(value)
        if isinstance(value, bool) or not isinstance(value, Real):
            self.fail(key, f"expected {_EXPECT[kind]}, got {_show(value)}")
        value = self._float(value, key)
        if not math.isfinite(value):
            self.fail(key, f"expected a finite number, got {value}")
        if kind == "positive" and not value > 0:
            self.fail(key, f"expected a number > 0, got {value}")
        if kind == "nonneg" and value < 0:
            self.fail(key, f"expected a number >= 0, got {value}")
        return value

    def _float(self, value, key: str) -> float:
        """``float(value)``; an integer beyond the float range (a 400-digit TOML number) fails here."""
        try:
            return float(value)
        except OverflowError:
            self.fail(key, f"expected a finite number, got an integer with {len(str(abs(int(value))))} digits")

    def complex(self, value, key: str) -> complex | float:
        if isinstance(value, bool):
            self.fail(key, f"expected {_EXPECT['complex']}, got {_show(value)}")
        if isinstance(value, Real):
            out = self._float(value, key)
        elif isinstance(value, str):
            try:
                out = complex(value.replace(" ", ""))
            except ValueError:
                self.fail(key, f"expected {_EXPECT['complex']}, got the string {_show(value)[7:]}")
        elif isinstance(value, list) and len(value) == 2 and all(
            isinstance(x, Real) and not isinstance(x, bool) for x in value
        ):
            out = complex(self._float(value[0], key), self._float(value[1], key))
        else:
            self.fail(key, f"expected {_EXPECT['complex']}, got {_show(value)}")
        if not np.isfinite(out):
            self.fail(key, f"expected a finite number, got {value!r}")
        return float(out) if isinstance(out, Real) else out

    def drive(self, value, key: str):
        """A number, a shape table {shape = "gaussian", ...} or an array of them (their sum)."""
        if isinstance(value, dict):
            shape = self.value(value.get("shape"), "str", _join(key, "shape")) if "shape" in value else None
            if shape not in _DRIVE_SHAPES:
                self.fail(_join(key, "shape"), f"expected one of {', '.join(_DRIVE_SHAPES)}, got {_show(shape)}")
            func, params = _DRIVE_SHAPES[shape]
            self.keys(value, {"shape", *params}, key, required=set(params))
            kw = {k: self.value(v, params[k], _join(key, k)) for k, v in value.items() if k != "shape"}
            try:
                return func(**kw)
            except ChiralnetError as exc:
                self.fail(key, _one_line(exc))
        if isinstance(value, list) and any(isinstance(v, dict) for v in value):
            return sum((self.drive(v, f"{key}[{i}]") for i, v in enumerate(value)), drives.constant(0.0))
        return self.complex(value, key)

    def list(self, value, key: str, kind: str | None = None, min_len: int = 0) -> list:
        if not isinstance(value, list):
            self.fail(key, f"expected an array [...], got {_show(value)}")
        if len(value) < min_len:
            self.fail(key, f"expected an array with at least {min_len} entries, got {len(value)}")
        if kind is None:
            return value
        return [self.value(v, kind, f"{key}[{i}]") for i, v in enumerate(value)]

    def figures_and_dpi(self, out: dict, allowed) -> tuple:
        """(figure names, each once, in the order given; dpi) of an [output] table; default: every figure
        of ``allowed``, 150 dpi."""
        figures = self.list(out.get("figures", list(allowed)), "output.figures", "str")
        for i, f in enumerate(figures):
            if f not in allowed:
                self.fail(f"output.figures[{i}]", f"unknown figure {f!r}; expected some of {', '.join(allowed)}")
        dpi = self.value(out.get("dpi", 150), "int", "output.dpi")
        if not 20 <= dpi <= 1200:
            self.fail("output.dpi", f"expected an integer between 20 and 1200, got {dpi}")
        return tuple(dict.fromkeys(figures)), dpi


def _join(prefix: str, key) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _show(value) -> str:
    kind = {bool: "boolean", str: "string", int: "integer", float: "number", list: "array", dict: "table"}
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{kind.get(type(value), type(value).__name__)} {text}"


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


# ---------------------------------------------------------------------------------------------
# Networks from specs.


def build_network(spec: dict, *, source: str = "<spec>", key: str = "network", base_dir=None) -> nx.DiGraph:
    """Build a network from a dict: a builder with parameters, explicit lists, or a JSON graph file.

    Parameters
    ----------
    spec : dict
        ``{"builder": "chain", "n_cells": 10, "gamma": 0.04, ...}`` (parameters as keyword
        arguments of the builder in :data:`chiralnet.builders.BUILDERS`), or ``{"cells": [...], "chiral_links": [...],
        "coherent_links": [...], "reservoirs": [...], "drive_frequency": 1.0}``, or
        ``{"graph": "file.json"}``. Any form may add ``"battery": [cell, ...]``.
        This is the ``[network]`` table of a scenario file (see the module docstring).
    source, key : str
        File name and key prefix used in error messages.
    base_dir : path, optional
        Folder against which a relative ``graph`` path is resolved (default: the working folder).

    Returns
    -------
    networkx.DiGraph
        A validated chiralnet network.

    Examples
    --------
    >>> import chiralnet as cn
    >>> G = cn.build_network({"builder": "chain", "n_cells": 4, "gamma": 0.04})
    >>> cn.cells(G), cn.battery_cells(G)
    ([0, 1, 2, 3], [1, 2, 3])
    """
    r = _Reader(source)
    spec = r.table(spec, key)
    forms = [k for k in ("builder", "graph", "cells") if k in spec]
    if len(forms) > 1:
        r.fail(key, f"give one of 'builder', 'graph' or 'cells', not {' and '.join(map(repr, forms))}")
    if not forms:
        r.fail(key, "missing 'builder' (e.g. builder = \"chain\"), 'cells' (explicit [[network.cells]]) "
                    "or 'graph' (a JSON file)")
    try:
        if "builder" in spec:
            G = _from_builder(r, spec, key)
        elif "graph" in spec:
            G = _from_graph_file(r, spec, key, base_dir)
        else:
            G = _from_explicit(r, spec, key)
    except ScenarioError:
        raise
    except ChiralnetError as exc:
        r.fail(key, _one_line(exc))
    if "battery" in spec and isinstance(spec["battery"], str):  # "all" / "last": the builder's option
        if "builder" not in spec or "battery" not in builders.BUILDERS[spec["builder"]].parameters:
            r.fail(_join(key, "battery"), f"{spec['battery']!r} names cells of a topology builder (chain, ring, star, "
                                          "lattice); list the battery cells instead")
    elif "battery" in spec:
        names = r.list(spec["battery"], _join(key, "battery"), "name", min_len=1)
        known = set(cells(G))
        for i, c in enumerate(names):
            if c not in known:
                r.fail(f"{key}.battery[{i}]", f"cell {c!r} does not exist; cells are {_few(cells(G))}")
        chosen = set(names)
        for c in known:
            G.nodes[c]["battery"] = c in chosen
    return G


def _few(items, n=8) -> str:
    items = list(items)
    text = ", ".join(map(repr, items[:n]))
    return f"[{text}{', ...' if len(items) > n else ''}]"


def _from_builder(r: _Reader, spec: dict, key: str) -> nx.DiGraph:
    name = r.value(spec["builder"], "str", _join(key, "builder"))
    if name not in builders.BUILDERS:
        close = difflib.get_close_matches(name, builders.BUILDERS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        r.fail(_join(key, "builder"), f"unknown builder {name!r}{hint}; expected one of {', '.join(builders.BUILDERS)}")
    info = builders.BUILDERS[name]
    r.keys(spec, {"builder", "battery", *info.parameters}, key, required=info.required)
    kwargs = {k: _builder_value(r, info.parameters[k], v, _join(key, k)) for k, v in spec.items()
              if k in info.parameters and k != "battery"}
    if isinstance(spec.get("battery"), str) and "battery" in info.parameters:  # a list: cell names, set below
        kwargs["battery"] = spec["battery"]
    _check_size(r, name, kwargs, key)
    try:
        return info.function(**kwargs)
    except ChiralnetError as exc:
        r.fail(key, f"builder {name!r}: {_one_line(exc)}")


def _builder_value(r: _Reader, param, value, key):
    """A builder parameter: one value of its kind or, where it takes one per cell / link, a list of them.

    For a complex parameter, a list of exactly two real numbers is one complex number [re, im]; write a
    two-entry array of complex values with strings or pairs (["0.1", "0"] or [[0.1, 0], [0, 0]])."""
    if param.per is None or not isinstance(value, list):
        return r.value(value, param.kind, key)
    if param.kind == "complex" and len(value) == 2 and all(isinstance(x, Real) and not isinstance(x, bool) for x in value):
        return r.value(value, param.kind, key)
    return r.list(value, key, param.kind, min_len=1)


def builder_size(name: str, kwargs: dict):
    """(cells, links, description) a builder call would make, or None when its size is fixed (two_cell).

    Used to refuse an oversized network before building it (:func:`chiralnet.memory.check_cells`).
    """
    if name in ("chain", "ring") and "n_cells" in kwargs:
        n = kwargs["n_cells"]
        return n, n, f"n_cells = {n}"
    if name == "star" and "n_leaves" in kwargs:
        n = kwargs["n_leaves"]
        return n + 1, n, f"n_leaves = {n}"
    if name == "lattice" and "rows" in kwargs and "cols" in kwargs:
        n = kwargs["rows"] * kwargs["cols"]
        return n, 2 * n, f"rows x cols = {kwargs['rows']} x {kwargs['cols']} = {n} cells"
    return None


def _check_size(r: _Reader, name: str, kwargs: dict, key: str) -> None:
    """Refuse a builder size that would not fit in memory (build_network adds the file and key)."""
    from .. import memory

    size = builder_size(name, kwargs)
    if size is not None and size[0] >= 1:
        cells_, links, text = size
        memory.check_cells(cells_, f"builder {name!r} with {text}", n_links=links, fixes="fewer cells")


def _from_graph_file(r: _Reader, spec: dict, key: str, base_dir) -> nx.DiGraph:
    from .graph_json import load_graph

    r.keys(spec, {"graph", "battery"}, key)
    path = Path(r.value(spec["graph"], "str", _join(key, "graph")))
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    if not path.is_file():
        r.fail(_join(key, "graph"), f"graph file {str(path)!r} does not exist; expected a JSON file from chiralnet.save_graph")
    return load_graph(path)


def _from_explicit(r: _Reader, spec: dict, key: str) -> nx.DiGraph:
    r.keys(spec, {"cells", "coherent_links", "chiral_links", "reservoirs", "parametric_links", "drive_frequency",
                  "name", "battery"}, key)
    omega_L = r.value(spec.get("drive_frequency", 1.0), "real", _join(key, "drive_frequency"))
    G = network(omega_L, name=r.value(spec["name"], "str", _join(key, "name")) if "name" in spec else None)
    cell_list = r.list(spec["cells"], _join(key, "cells"), min_len=1)
    for i, cell in enumerate(cell_list):
        where = f"{key}.cells[{i}]"
        cell = r.table(cell, where)
        r.keys(cell, set(_CELL_KEYS) | {"pos"}, where, required={"name", "omega"})
        kw = {k: r.value(v, _CELL_KEYS[k], _join(where, k)) for k, v in cell.items() if k != "pos"}
        if "pos" in cell:
            kw["pos"] = r.list(cell["pos"], _join(where, "pos"), "real", min_len=2)
            if len(kw["pos"]) != 2:
                r.fail(_join(where, "pos"), f"expected a pair [x, y], got {len(kw['pos'])} numbers")
        name = kw.pop("name")
        _call(r, where, add_cell, G, name, **kw)
    _add_links(r, G, spec, key)
    return G


def _add_links(r: _Reader, G, spec: dict, key: str) -> None:
    """Add the coherent_links, reservoirs and chiral_links of ``spec`` (a [network] or [[phase]]) to G."""
    for i, link in enumerate(r.list(spec.get("coherent_links", []), _join(key, "coherent_links"))):
        where = f"{key}.coherent_links[{i}]"
        link = r.table(link, where)
        r.keys(link, {"cells", "J"}, where, required={"cells", "J"})
        pair = _cell_pair(r, link["cells"], _join(where, "cells"))
        _call(r, where, add_coherent_link, G, *pair, r.complex(link["J"], _join(where, "J")))
    for i, res in enumerate(r.list(spec.get("reservoirs", []), _join(key, "reservoirs"))):
        where = f"{key}.reservoirs[{i}]"
        res = r.table(res, where)
        r.keys(res, {"name", "gamma", "n_th", "m_th", "cells", "p"}, where, required={"gamma", "cells", "p"})
        names = r.list(res["cells"], _join(where, "cells"), "name", min_len=1)
        amps = r.list(res["p"], _join(where, "p"), "complex")
        if len(amps) != len(names):
            r.fail(_join(where, "p"), f"expected one amplitude per cell ({len(names)}), got {len(amps)}")
        if len(set(names)) != len(names):
            r.fail(_join(where, "cells"), "a cell appears twice; list each cell once with its total amplitude")
        kw = dict(gamma=r.value(res["gamma"], "nonneg", _join(where, "gamma")),
                  n_th=r.value(res.get("n_th", 0.0), "nonneg", _join(where, "n_th")))
        if "m_th" in res:
            kw["m_th"] = r.complex(res["m_th"], _join(where, "m_th"))
        if "name" in res:
            kw["name"] = r.value(res["name"], "name", _join(where, "name"))
        _call(r, where, add_reservoir, G, dict(zip(names, amps)), **kw)
    for i, link in enumerate(r.list(spec.get("chiral_links", []), _join(key, "chiral_links"))):
        where = f"{key}.chiral_links[{i}]"
        link = r.table(link, where)
        r.keys(link, {"from", "to", "gamma", "n_th", "m_th", "xi", "name"}, where, required={"from", "to", "gamma"})
        kw = dict(gamma=r.value(link["gamma"], "positive", _join(where, "gamma")),
                  n_th=r.value(link.get("n_th", 0.0), "nonneg", _join(where, "n_th")),
                  xi=r.value(link.get("xi", 1.0), "positive", _join(where, "xi")))
        if "m_th" in link:
            kw["m_th"] = r.complex(link["m_th"], _join(where, "m_th"))
        if "name" in link:
            kw["name"] = r.value(link["name"], "name", _join(where, "name"))
        u = r.value(link["from"], "name", _join(where, "from"))
        v = r.value(link["to"], "name", _join(where, "to"))
        _call(r, where, add_chiral_link, G, u, v, **kw)
    for i, link in enumerate(r.list(spec.get("parametric_links", []), _join(key, "parametric_links"))):
        where = f"{key}.parametric_links[{i}]"
        if isinstance(link, list):  # the short form [u, v, g]
            if len(link) != 3:
                r.fail(where, f"expected [u, v, g] (two cells and the coupling) or a table {{cells = [u, v], g = ...}}, "
                              f"got {len(link)} entries")
            pair, g = _cell_pair(r, link[:2], where), r.complex(link[2], f"{where}[2]")
        else:
            link = r.table(link, where)
            r.keys(link, {"cells", "g"}, where, required={"cells", "g"})
            pair, g = _cell_pair(r, link["cells"], _join(where, "cells")), r.complex(link["g"], _join(where, "g"))
        _call(r, where, add_parametric_link, G, *pair, g)


def _parse_phases(r: _Reader, phases, base) -> tuple:
    """[[phase]] tables -> ((G, duration, name), ...): each phase is the base network with its changes
    (cells: attributes set on existing cells; remove: [u, v] pairs whose coherent link and shared
    reservoirs go; coherent_links, chiral_links, reservoirs: added as in [network])."""
    out = []
    for k, ph in enumerate(r.list(phases, "phase", min_len=1)):
        where = f"phase[{k}]"
        ph = r.table(ph, where)
        r.keys(ph, _PHASE_KEYS, where, required={"duration"})
        duration = r.value(ph["duration"], "positive", _join(where, "duration"))
        name = r.value(ph["name"], "str", _join(where, "name")) if "name" in ph else f"phase {k}"
        G = base.copy()
        for i, cell in enumerate(r.list(ph.get("cells", []), _join(where, "cells"))):
            at = f"{where}.cells[{i}]"
            cell = r.table(cell, at)
            r.keys(cell, set(_CELL_KEYS) - {"label"}, at, required={"name"})
            c = r.value(cell["name"], "name", _join(at, "name"))
            if c not in G or G.nodes[c].get("kind", "cell") != "cell":
                r.fail(_join(at, "name"), f"cell {c!r} is not in [network]; cells are {_few(cells(G))} "
                                          "(every phase has the same cells: add it to [network], unlinked)")
            for key, v in cell.items():
                if key != "name":
                    G.nodes[c][key] = r.value(v, _CELL_KEYS[key], _join(at, key))
        for i, pair in enumerate(r.list(ph.get("remove", []), _join(where, "remove"))):
            at = f"{where}.remove[{i}]"
            u, v = _cell_pair(r, pair, at)
            gone = [e for e in ((u, v), (v, u)) if G.has_edge(*e)]
            G.remove_edges_from(gone)
            shared = [n for n in list(G.predecessors(u)) if G.nodes[n].get("kind") == "reservoir" and G.has_edge(n, v)] \
                if u in G else []
            G.remove_nodes_from(shared)
            if not gone and not shared:
                r.fail(at, f"cells {u!r} and {v!r} share no link or reservoir in [network]; nothing to remove")
        _add_links(r, G, ph, where)
        try:
            validate_network(G)
        except ChiralnetError as exc:
            r.fail(where, _one_line(exc))
        out.append((G, duration, name))
    return tuple(out)


def _cell_pair(r: _Reader, value, key):
    pair = r.list(value, key, "name", min_len=2)
    if len(pair) != 2:
        r.fail(key, f"expected two cells [u, v], got {len(pair)}")
    return pair


def _call(r: _Reader, where: str, func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except ChiralnetError as exc:
        r.fail(where, _one_line(exc))


def network_spec(G: nx.DiGraph) -> dict:
    """The explicit ``[network]`` table of a network (inverse of :func:`build_network`).

    Chiral links appear as their reservoir plus coherent link (the same physics). Complex values are
    written as ``[re, im]`` pairs. Node names must be strings or integers.

    Examples
    --------
    >>> import chiralnet as cn
    >>> from chiralnet.formats.scenario_toml import network_spec, dumps_toml
    >>> spec = network_spec(cn.two_cell())
    >>> [c["name"] for c in spec["cells"]], spec["coherent_links"]
    (['a', 'b'], [{'cells': ['a', 'b'], 'J': [0.0, -0.02]}])
    >>> print(dumps_toml({"network": {"coherent_links": spec["coherent_links"]}}).splitlines()[:3])
    ['[[network.coherent_links]]', 'cells = [', '    "a",']
    """
    from ..network import validate_network

    validate_network(G)

    def cplx(z):
        z = complex(z)
        return [z.real, z.imag] if z.imag else z.real

    def name(n):
        if isinstance(n, bool) or not isinstance(n, (str, int)):
            raise ScenarioError(f"network_spec: node {n!r} is not a string or integer; TOML cannot name it")
        return n

    spec = {"drive_frequency": float(G.graph.get("drive_frequency", 1.0))}
    if "name" in G.graph:
        spec["name"] = G.graph["name"]
    spec["cells"] = []
    for c in cells(G):
        a = G.nodes[c]
        entry = {"name": name(c), "omega": float(a["omega"])}
        for k in ("kappa", "n_th", "n0"):
            if a.get(k, 0.0):
                entry[k] = float(a[k])
        if drives.is_time_dependent(a.get("drive", 0.0)):
            entry["drive"] = _drive_spec(a["drive"], c)
        elif a.get("drive", 0.0):
            entry["drive"] = cplx(a["drive"])
        if a.get("alpha0", 0.0):
            entry["alpha0"] = cplx(a["alpha0"])
        for k in ("pump", "m_th", "xi0"):  # general Gaussian terms, written when nonzero
            if a.get(k, 0.0):
                entry[k] = cplx(a[k])
        entry["battery"] = bool(a.get("battery", False))
        if a.get("pos") is not None:
            entry["pos"] = [float(x) for x in a["pos"]]
        if a.get("label") is not None:
            entry["label"] = str(a["label"])
        spec["cells"].append(entry)
    spec["coherent_links"] = [{"cells": [name(u), name(v)], "J": cplx(J)}
                              for u, v, J in G.edges(data="J") if J is not None]
    spec["reservoirs"] = []
    for res in reservoirs(G):
        a = G.nodes[res]
        out = list(G.out_edges(res, data="p"))
        entry = {"name": name(res), "gamma": float(a["gamma"]), "n_th": float(a.get("n_th", 0.0))}
        if a.get("m_th", 0.0):
            entry["m_th"] = cplx(a["m_th"])
        entry.update({"cells": [name(v) for _, v, _ in out], "p": [cplx(p) for _, _, p in out]})
        spec["reservoirs"].append(entry)
    spec["parametric_links"] = [{"cells": [name(u), name(v)], "g": cplx(g)}
                                for u, v, g in G.edges(data="g") if g is not None]
    for k in ("coherent_links", "reservoirs", "parametric_links"):
        if not spec[k]:
            del spec[k]
    return spec


def _drive_spec(drive, cell):
    """A shaped drive as the TOML of a ``drive`` key: a shape table, or an array of them for a sum
    (the inverse of ``_Reader.drive``); a Python callable has no TOML form (ScenarioError)."""

    def amp(z):
        z = complex(z)
        return [z.real, z.imag] if z.imag else z.real

    out = []
    for term in drives.as_drive(drive).terms():
        fields = {"constant": ("amplitude",), "gaussian": ("amplitude", "t0", "width"),
                  "square": ("amplitude", "start", "stop"), "tone": ("amplitude", "frequency")}.get(term._kind)
        if fields is None:
            raise ScenarioError(f"network_spec: cell {cell!r} has a drive given by a Python callable, which a "
                                "scenario file cannot hold; use the drive shapes gaussian, square, tone, constant")
        table = {"shape": term._kind}
        for f in fields:
            v = getattr(term, f)
            table[f] = amp(v) if f == "amplitude" else float(v)
        out.append(table)
    return out[0] if len(out) == 1 else out


def dumps_toml(data: dict) -> str:
    """``data`` (nested tables, arrays of tables, numbers, strings, booleans, complex numbers as strings such
    as "0.1-0.02j"; NumPy scalars and arrays, tuples) as TOML text, written by tomli-w. Every chiralnet file writer goes through here.

    Raises
    ------
    ScenarioError
        A value TOML cannot hold (None, an object) or one the readers refuse (NaN, inf), naming its key.
    """
    import tomli_w

    def plain(v, key):
        if isinstance(v, dict):
            return {str(k): plain(x, _join(key, k)) for k, x in v.items()}
        if isinstance(v, np.ndarray):
            v = v.tolist()
        if isinstance(v, (list, tuple)):
            return [plain(x, f"{key}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if isinstance(v, Integral):
            return int(v)
        if isinstance(v, Real):
            v = float(v)
            if not math.isfinite(v):
                raise ScenarioError(f"dumps_toml: {key}: {v} cannot be written (chiralnet files hold finite numbers)")
            return v
        if isinstance(v, str):
            return v
        if isinstance(v, (complex, np.complexfloating)):  # Python notation, as the readers take it; a pair
            return str(complex(v)).strip("()")             # [re, im] inside a per-cell list would be ambiguous
        raise ScenarioError(f"dumps_toml: {key}: cannot write {v!r:.60} to TOML (numbers, strings, booleans, "
                            "arrays and tables only)")

    return tomli_w.dumps(plain(data, ""))


def write_toml(data: dict, path) -> None:
    """Write ``data`` as TOML (:func:`dumps_toml`) to ``path``, atomically."""
    from ..files import atomic_write_text

    atomic_write_text(path, dumps_toml(data))


# ---------------------------------------------------------------------------------------------
# Scenarios.


@dataclass(frozen=True, eq=False)
class Scenario:
    """A parsed scenario file.

    Attributes
    ----------
    source : str
        The file it came from (or ``"<dict>"``).
    title, description : str
    network : networkx.DiGraph
        The validated network.
    times : ndarray (T,) or None
        Output times in 1/omega; None when the file has no ``[times]`` section.
    method : str
        ``"auto"`` or a name in :data:`chiralnet.METHODS`.
    rtol, atol : float or None
    max_steps : int or None
    output : dict
        ``dir`` (str or None), ``figures`` (tuple of names in :data:`FIGURES`), ``csv``, ``summary``,
        ``graph`` (bools), ``dpi`` (int).
    data : dict
        The parsed TOML, as read.
    phases : tuple of (networkx.DiGraph, duration, name) or None
        The ``[[phase]]`` list (a protocol, see :func:`chiralnet.protocol`); None without one.
    """

    source: str
    title: str
    description: str
    network: nx.DiGraph
    times: np.ndarray | None
    method: str = "auto"
    rtol: float | None = None
    atol: float | None = None
    max_steps: int | None = None
    output: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    phases: tuple | None = None

    def solver_options(self) -> dict:
        """Keyword arguments of :func:`chiralnet.simulate` from ``[solver]``."""
        return dict(method=self.method, rtol=self.rtol, atol=self.atol, max_steps=self.max_steps)

    def require_times(self) -> np.ndarray:
        if self.times is None and self.phases:
            return np.linspace(0.0, sum(d for _, d, _ in self.phases), 301)
        if self.times is None:
            raise ScenarioError(f"{self.source}: times: missing section [times]; expected e.g. "
                                "[times] t_end = 3000.0, n_times = 301 (1/omega)")
        return self.times


def read_scenario(path) -> Scenario:
    r"""Read and check a TOML scenario file (``chiralnet.load_scenario`` is the same function).

    Parameters
    ----------
    path : str or os.PathLike
        A TOML scenario file (see the module docstring).

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        With one line naming the file, the key and what is expected; for another kind of file (a
        sweep, spectrum or optimisation file) it names the command that runs it.

    Examples
    --------
    >>> import tempfile, chiralnet as cn
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "chain.toml"
    >>> _ = path.write_text('[network]\nbuilder = "chain"\nn_cells = 6\n[times]\nt_end = 100.0\n')
    >>> sc = cn.load_scenario(path)
    >>> len(cn.cells(sc.network)), sc.times.shape, sc.method
    (6, (301,), 'auto')
    """
    from .kinds import check_kind

    path = Path(path)
    data = read_toml(path, "scenario", ScenarioError, "examples/*.toml")
    check_kind(data, "scenario", path, ScenarioError)
    return parse_scenario(data, source=str(path), base_dir=path.parent)


#: The name of :func:`read_scenario` in ``chiralnet`` (``chiralnet.load_scenario``).
load_scenario = read_scenario


def scenario_to_dict(scenario: Scenario) -> dict:
    """The TOML document of ``scenario`` (the inverse of :func:`parse_scenario`).

    The network is written as explicit cells and reservoirs (:func:`network_spec`), the times as their
    ``values``, and a protocol's ``[[phase]]`` list as it was read (phases are changes to the base
    network). Only the ``[output]`` keys given in the file, or differing from the defaults, are written.
    """
    sc = scenario
    out = {"title": sc.title}
    if sc.description:
        out["description"] = sc.description
    out["network"] = network_spec(sc.network)
    if sc.times is not None:
        out["times"] = {"values": [float(t) for t in sc.times]}
    solver = {"method": sc.method}
    solver.update({k: v for k, v in (("rtol", sc.rtol), ("atol", sc.atol), ("max_steps", sc.max_steps))
                   if v is not None})
    out["solver"] = solver
    if sc.output:
        o = {k: v for k, v in sc.output.items() if v is not None}
        o["figures"] = list(o.get("figures", ()))
        out["output"] = o
    if sc.phases:
        out["phase"] = sc.data["phase"]
    return out


def write_scenario(scenario: Scenario, path) -> None:
    """Write ``scenario`` as a TOML scenario file (atomically) that :func:`read_scenario` reads back to an
    equal scenario (the same network, times, solver and output options).

    Parameters
    ----------
    scenario : Scenario
        From :func:`read_scenario` or :func:`parse_scenario`.
    path : str or os.PathLike
        The file to write.

    Examples
    --------
    >>> import tempfile, chiralnet as cn
    >>> from pathlib import Path
    >>> from chiralnet.formats.scenario_toml import parse_scenario, read_scenario, write_scenario
    >>> sc = parse_scenario({"network": {"builder": "chain", "n_cells": 3}, "times": {"t_end": 10.0, "n_times": 5}})
    >>> path = Path(tempfile.mkdtemp()) / "copy.toml"
    >>> write_scenario(sc, path)
    >>> back = read_scenario(path)
    >>> back.times.tolist(), cn.cells(back.network)
    ([0.0, 2.5, 5.0, 7.5, 10.0], [0, 1, 2])
    """
    write_toml(scenario_to_dict(scenario), path)


def parse_scenario(data: dict, *, source: str = "<dict>", base_dir=None) -> Scenario:
    """Check a scenario given as a dict (parsed TOML) and build its network; see :func:`load_scenario`."""
    r = _Reader(source)
    r.keys(data, _TOP_KEYS, "", required={"network"})
    title = r.value(data.get("title", Path(source).stem), "str", "title")
    description = r.value(data.get("description", ""), "str", "description")
    G = build_network(data["network"], source=source, key="network", base_dir=base_dir)
    times = _parse_times(r, data["times"], len(cells(G))) if "times" in data else None
    solver = r.table(data.get("solver", {}), "solver")
    r.keys(solver, {"method", "rtol", "atol", "max_steps"}, "solver")
    method = r.value(solver.get("method", "auto"), "str", "solver.method")
    if method != "auto" and method not in METHODS:
        r.fail("solver.method", f"unknown method {method!r}; expected one of auto, {', '.join(METHODS)}")
    rtol = r.value(solver["rtol"], "positive", "solver.rtol") if "rtol" in solver else None
    atol = r.value(solver["atol"], "positive", "solver.atol") if "atol" in solver else None
    max_steps = r.value(solver["max_steps"], "int", "solver.max_steps") if "max_steps" in solver else None
    if max_steps is not None and max_steps < 1:
        r.fail("solver.max_steps", f"expected an integer >= 1, got {max_steps}")
    output = _parse_output(r, r.table(data.get("output", {}), "output"))
    phases = _parse_phases(r, data["phase"], G) if "phase" in data else None
    if phases and times is not None:
        end = sum(d for _, d, _ in phases)
        if times[-1] > end * (1 + 1e-12):
            r.fail("times", f"the last time {times[-1]:g} is past the end of the [[phase]] list at {end:g}")
    return Scenario(source=source, title=title, description=description, network=G, times=times, method=method,
                    rtol=rtol, atol=atol, max_steps=max_steps, output=output, data=data, phases=phases)


def _parse_times(r: _Reader, times, n_cells: int = 1) -> np.ndarray:
    times = r.table(times, "times")
    r.keys(times, {"t_start", "t_end", "n_times", "values"}, "times")
    if "values" in times:
        if set(times) - {"values"}:
            r.fail("times", "give either 'values' or 't_end' (with optional 'n_times', 't_start'), not both")
        t = np.array(r.list(times["values"], "times.values", "nonneg", min_len=1))
        bad = np.flatnonzero(np.diff(t) <= 0)
        if bad.size:
            r.fail(f"times.values[{bad[0] + 1}]", f"times must increase strictly; {t[bad[0] + 1]} follows {t[bad[0]]}")
        return t
    if "t_end" not in times:
        r.fail("times.t_end", "missing required key (1/omega), or give 'values' = [...]")
    t_end = r.value(times["t_end"], "positive", "times.t_end")
    t_start = r.value(times.get("t_start", 0.0), "nonneg", "times.t_start")
    n = r.value(times.get("n_times", 301), "int", "times.n_times")
    if n < 2:
        r.fail("times.n_times", f"expected an integer >= 2, got {n}")
    if not t_start < t_end:
        r.fail("times.t_start", f"expected t_start < t_end = {t_end}, got {t_start}")
    _check_times(r, n, n_cells)
    return np.linspace(t_start, t_end, n)


def _check_times(r: _Reader, n_times: int, n_cells: int) -> None:
    """Refuse before allocating ``n_times`` output times of ``n_cells`` cells that would not fit in memory."""
    from .. import memory
    from ..errors import MemoryLimitError

    items = {"times": n_times * 8, "energies (T x N)": n_times * n_cells * 8,
             "amplitudes (T x N complex)": n_times * n_cells * 16}
    try:
        memory.check(items, f"times.n_times = {n_times} ({n_cells} cells)", "fewer n_times")
    except MemoryLimitError as exc:
        raise MemoryLimitError(f"{r.source}: {exc}") from None


def _parse_output(r: _Reader, out: dict) -> dict:
    r.keys(out, {"dir", "figures", "csv", "summary", "graph", "dpi"}, "output")
    figures, dpi = r.figures_and_dpi(out, FIGURES)
    return dict(
        dir=r.value(out["dir"], "str", "output.dir") if "dir" in out else None,
        figures=figures,
        csv=r.value(out.get("csv", True), "bool", "output.csv"),
        summary=r.value(out.get("summary", True), "bool", "output.summary"),
        graph=r.value(out.get("graph", True), "bool", "output.graph"),
        dpi=dpi,
    )


