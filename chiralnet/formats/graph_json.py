"""Save and load networks as JSON.

A network is stored as NetworkX node-link data (``nx.node_link_data(G, edges="edges")``) with
two changes, because JSON knows neither complex numbers nor tuples:

* a complex value of ``drive``, ``alpha0``, ``J`` or ``p`` is stored as the pair ``[re, im]``
  (a real value stays a plain number, so its type survives the round trip too);
* node names that are tuples (lattice coordinates, say) become JSON arrays and are turned back
  into tuples on load; ``pos`` comes back as a tuple as well.

The file also carries ``"chiralnet_format": 1``. Loading validates the graph against the schema of
:mod:`chiralnet.network`, so a hand-edited file with a typo fails with a message naming the key.
Files are written atomically (:mod:`chiralnet.files`).
"""

from __future__ import annotations

import json
import os
from numbers import Integral, Number, Real

import networkx as nx

from ..files import atomic_write_text
from ..errors import ChiralnetError, NetworkError
from ..network import COMPLEX_KEYS, validate_network

__all__ = [
    "graph_to_data",
    "graph_from_data",
    "save_graph",
    "load_graph",
]

FORMAT_VERSION = 1


# ---------------------------------------------------------------------------------------------
# Graph <-> JSON-ready data.


def _encode_name(node, where):
    if isinstance(node, tuple):
        return [_encode_name(x, where) for x in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, Integral):
        return int(node)
    if isinstance(node, Real):
        return float(node)
    if isinstance(node, str):
        return node
    raise NetworkError(
        f"{where}: node name {node!r} of type {type(node).__name__} cannot be stored in JSON; "
        "use str, int, float or tuples of them"
    )


def _decode_name(value):
    if isinstance(value, list):
        return tuple(_decode_name(x) for x in value)
    return value


def _encode_value(key, value, where):
    if key in COMPLEX_KEYS and isinstance(value, Number) and not isinstance(value, Real):
        value = complex(value)
        return [value.real, value.imag]
    if key == "pos" and value is not None:
        return [float(x) for x in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return float(value)
    if isinstance(value, Number):
        raise NetworkError(f"{where}: attribute {key!r} = {value!r} is complex, which the schema does not allow here")
    raise NetworkError(f"{where}: attribute {key!r} = {value!r} cannot be stored in JSON")


def _decode_value(key, value, where):
    if key in COMPLEX_KEYS and isinstance(value, list):
        if len(value) != 2 or not all(isinstance(x, Real) and not isinstance(x, bool) for x in value):
            raise NetworkError(f"{where}: attribute {key!r} must be a number or a pair [re, im], got {_brief(value)}")
        try:
            return complex(value[0], value[1])
        except OverflowError:
            raise NetworkError(f"{where}: attribute {key!r} must be finite, got a number too large for a float") from None
    if key == "pos" and isinstance(value, list):
        return tuple(value)
    return value


def graph_to_data(G: nx.DiGraph) -> dict:
    """Return JSON-ready node-link data of a network (complex values as ``[re, im]`` pairs).

    Parameters
    ----------
    G : networkx.DiGraph
        A network following the chiralnet schema; it is validated first.

    Returns
    -------
    dict
        ``nx.node_link_data(G, edges="edges")`` with complex values and tuple names encoded,
        plus ``"chiralnet_format"``.
    """
    validate_network(G)
    data = nx.node_link_data(G, edges="edges")
    for node in data["nodes"]:
        where = f"node {node['id']!r}"
        for key in list(node):
            node[key] = _encode_name(node[key], where) if key == "id" else _encode_value(key, node[key], where)
    for edge in data["edges"]:
        where = f"link ({edge['source']!r}, {edge['target']!r})"
        for key in list(edge):
            if key in ("source", "target"):
                edge[key] = _encode_name(edge[key], where)
            else:
                edge[key] = _encode_value(key, edge[key], where)
    data["graph"] = {k: _encode_value(k, v, "graph") for k, v in data["graph"].items()}
    return {"chiralnet_format": FORMAT_VERSION, **data}


def graph_from_data(data: dict, *, source: str = "<data>") -> nx.DiGraph:
    """Rebuild a network from :func:`graph_to_data` output and validate it.

    Parameters
    ----------
    data : dict
        Node-link data with ``"edges"``; complex values as numbers or ``[re, im]`` pairs.
    source : str
        Name used in error messages (the file name, usually).
    """
    try:
        return _graph_from_data(data, source)
    except RecursionError:
        raise NetworkError(f"{source}: not a chiralnet graph (nested too deeply)") from None


def _brief(value) -> str:
    """A short description of a value read from a file: its type and at most 40 characters of it."""
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


_NAME_TYPES = (str, Integral, Real)


def _check_id(value, where):
    """A node name as JSON stores it: a string, a number, or an array of them (a tuple); never null."""
    if isinstance(value, list):
        for x in value:
            _check_id(x, where)
    elif value is None or not isinstance(value, _NAME_TYPES):
        raise NetworkError(f"{where}: a node name must be a string, a number or an array of them, got {_brief(value)}")


def _graph_from_data(data, source):
    if not isinstance(data, dict) or "nodes" not in data or "edges" not in data:
        raise NetworkError(f"{source}: not a chiralnet graph (expected a JSON object with 'nodes' and 'edges')")
    version = data.get("chiralnet_format", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise NetworkError(f"{source}: chiralnet_format {_brief(version)} is not supported; expected {FORMAT_VERSION}")
    if data.get("directed", True) is not True or data.get("multigraph", False) is not False:
        raise NetworkError(f"{source}: a chiralnet graph is directed and not a multigraph ('directed': true)")
    for key in ("nodes", "edges"):
        if not isinstance(data[key], list):
            raise NetworkError(f"{source}: '{key}' must be an array, got {type(data[key]).__name__}")
    if not isinstance(data.get("graph", {}), dict):
        raise NetworkError(f"{source}: 'graph' must be an object of graph attributes, got {type(data['graph']).__name__}")
    data = {k: v for k, v in data.items() if k != "chiralnet_format"}
    nodes = []
    for i, node in enumerate(data["nodes"]):
        if not isinstance(node, dict) or "id" not in node:
            raise NetworkError(f"{source}: node {i}: every node needs an 'id', got {_brief(node)}")
        _check_id(node["id"], f"{source}: node {i}")
        name = _decode_name(node["id"])
        nodes.append({k: (name if k == "id" else _decode_value(k, v, f"{source}: node {name!r}"))
                      for k, v in node.items()})
    edges = []
    for i, edge in enumerate(data["edges"]):
        if not isinstance(edge, dict) or "source" not in edge or "target" not in edge:
            raise NetworkError(f"{source}: edge {i}: every edge needs 'source' and 'target', got {_brief(edge)}")
        _check_id(edge["source"], f"{source}: edge {i} 'source'")
        _check_id(edge["target"], f"{source}: edge {i} 'target'")
        u, v = _decode_name(edge["source"]), _decode_name(edge["target"])
        edges.append({k: (_decode_name(x) if k in ("source", "target")
                          else _decode_value(k, x, f"{source}: link ({u!r}, {v!r})"))
                      for k, x in edge.items()})
    data = {**data, "nodes": nodes, "edges": edges, "directed": True, "multigraph": False}
    try:
        G = nx.node_link_graph(data, directed=True, multigraph=False, edges="edges")
    except (KeyError, TypeError, ValueError, nx.NetworkXError) as exc:
        raise NetworkError(f"{source}: malformed node-link data ({type(exc).__name__})") from None
    try:
        validate_network(G)
    except NetworkError as exc:
        raise NetworkError(f"{source}: {exc}") from None
    return G


def save_graph(G: nx.DiGraph, path) -> None:
    """Write a network to a JSON file (atomically); :func:`load_graph` reads it back unchanged.

    Examples
    --------
    >>> import os, tempfile, chiralnet as cn
    >>> from chiralnet import save_graph, load_graph
    >>> path = os.path.join(tempfile.mkdtemp(), "pair.json")
    >>> G = cn.two_cell()
    >>> save_graph(G, path)
    >>> H = load_graph(path)
    >>> H.edges["a", "b"]["J"], H.is_directed()
    (-0.02j, True)
    """
    text = json.dumps(graph_to_data(G), indent=1, allow_nan=False)
    atomic_write_text(path, text + "\n")


def load_graph(path) -> nx.DiGraph:
    """Read a network written by :func:`save_graph` (or any node-link JSON following the schema).

    Every problem with the file (unreadable, not UTF-8, not JSON, not a graph) raises a
    :class:`~chiralnet.errors.ChiralnetError` naming the file; the message never quotes the file's text.
    """
    from .. import memory

    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            # text, parsed JSON and the graph take about 20 bytes per byte of file: refuse before reading
            memory.check({"graph file (text, JSON and graph)": 20 * size}, f"{path}: graph file of {size} bytes",
                         "a smaller graph file")
            raw = fh.read()
    except OSError as exc:
        raise ChiralnetError(f"{path}: cannot read graph file ({exc.strerror or type(exc).__name__})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NetworkError(f"{path}: not a JSON graph file (not UTF-8 text at byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NetworkError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise NetworkError(f"{path}: not a chiralnet graph (JSON nested too deeply)") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise NetworkError(f"{path}: not a chiralnet graph ({type(exc).__name__} while reading numbers)") from None
    return graph_from_data(data, source=str(path))
