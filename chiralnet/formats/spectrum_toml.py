"""Spectrum files (TOML): the reader and the writer. ``chiralnet spectrum`` runs them (:mod:`chiralnet.cli.spectrum`).

A spectrum file has the ``[network]`` table of a scenario file (:func:`chiralnet.build_network`),
optional ``title`` / ``description``, a ``[spectrum]`` table and an optional ``[output]`` table::

    [spectrum]
    detunings = { start = -0.05, stop = 0.05, n = 801 }   # or { values = [...] } (units of omega)
    ports = ["a", "b"]              # optional: default every cell with kappa > 0
    pairs = [["a", "b"], ["b", "a"], ["a", "a"]]   # optional: |S|^2 curves, [from, to]
    isolation = [["a", "b"]]        # optional: links whose isolation and bandwidth are reported
    level_db = 20.0                 # optional: isolation level of the bandwidth (dB)
    center = 0.0                    # optional: detuning the band must contain
    method = "auto"                 # optional: auto, cascaded, dense or sparse

    [output]
    figures = ["transmission", "isolation", "isolation_map"]   # optional, default all that apply
    csv = true
    summary = true
    dpi = 150

``chiralnet spectrum`` writes ``spectrum.csv``, ``summary.json`` and the figures (see
:mod:`chiralnet.cli.spectrum`). Every bad key raises :class:`~chiralnet.errors.ScenarioError` naming the
file and key. :func:`read_spectrum` reads a file, :func:`write_spectrum` writes one that reads back to an
equal :class:`SpectrumSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ScenarioError
from ..files import read_toml
from .scenario_toml import _Reader, _few, build_network

__all__ = ["SpectrumSpec", "FIGURES", "read_spectrum", "write_spectrum", "parse_spectrum", "spectrum_to_dict",
           "load_spectrum"]

FIGURES = ("transmission", "isolation", "isolation_map")
_TOP_KEYS = {"title", "description", "network", "spectrum", "output"}
_SPECTRUM_KEYS = {"detunings", "ports", "pairs", "isolation", "level_db", "center", "method"}
_OUTPUT_KEYS = {"figures", "csv", "summary", "dpi"}


@dataclass(frozen=True, eq=False)
class SpectrumSpec:
    """A parsed spectrum file (see the module docstring)."""

    source: str
    title: str
    description: str
    network: object
    detunings: np.ndarray
    ports: list | None
    pairs: list | None
    isolation: list
    level_db: float
    center: float
    method: str
    output: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Parsing.


def read_spectrum(path) -> SpectrumSpec:
    r"""Read and check a spectrum file; every error names the file and the key.

    Parameters
    ----------
    path : str or os.PathLike
        A TOML spectrum file (see the module docstring).

    Returns
    -------
    SpectrumSpec
        ``detunings`` is an array (D,) in units of omega.

    Raises
    ------
    ScenarioError
        A missing, unreadable or malformed file, or another kind of file (a scenario, sweep or
        optimisation file: the message names the command that runs it).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from chiralnet.formats.spectrum_toml import read_spectrum
    >>> path = Path(tempfile.mkdtemp()) / "iso.spectrum.toml"
    >>> _ = path.write_text('[network]\nbuilder = "two_cell"\n[spectrum]\n'
    ...                     'detunings = { start = -0.05, stop = 0.05, n = 11 }\n')
    >>> spec = read_spectrum(path)
    >>> spec.detunings.shape, spec.center
    ((11,), 0.0)
    """
    from .kinds import check_kind

    path = Path(path)
    data = read_toml(path, "spectrum", ScenarioError, "examples/isolator.spectrum.toml")
    check_kind(data, "spectrum", path, ScenarioError)
    return parse_spectrum(data, source=str(path), base_dir=path.parent)


#: The former name of :func:`read_spectrum`.
load_spectrum = read_spectrum


def parse_spectrum(data: dict, *, source: str = "<dict>", base_dir=None) -> SpectrumSpec:
    """Check a spectrum file given as a dict (parsed TOML); see :func:`load_spectrum`."""
    from ..solve.response import SCATTERING_METHODS

    r = _Reader(source)
    r.keys(data, _TOP_KEYS, "", required={"network", "spectrum"})
    title = r.value(data.get("title", Path(source).stem), "str", "title")
    description = r.value(data.get("description", ""), "str", "description")
    G = build_network(data["network"], source=source, key="network", base_dir=base_dir)
    spec = r.table(data["spectrum"], "spectrum")
    r.keys(spec, _SPECTRUM_KEYS, "spectrum", required={"detunings"})
    grid = _parse_detunings(r, spec["detunings"])
    cell_list = [c for c, k in G.nodes(data="kind", default="cell") if k == "cell"]
    ports = None
    if "ports" in spec:
        ports = r.list(spec["ports"], "spectrum.ports", "name", min_len=1)
        for i, c in enumerate(ports):
            _check_port(r, G, cell_list, c, f"spectrum.ports[{i}]")
            if c in ports[:i]:
                r.fail(f"spectrum.ports[{i}]", f"port {c!r} is listed twice")
    port_set = ports if ports is not None else [c for c in cell_list if G.nodes[c].get("kappa", 0.0) > 0]
    if not port_set:
        r.fail("spectrum.ports", "no cell has kappa > 0, so the network has no ports; give cells kappa > 0")
    _check_size(r, grid, len(port_set))
    detunings = grid if isinstance(grid, np.ndarray) else np.linspace(*grid)
    pairs = _parse_pairs(r, spec["pairs"], "spectrum.pairs", port_set) if "pairs" in spec else None
    isolation = _parse_pairs(r, spec.get("isolation", []), "spectrum.isolation", port_set, distinct=True)
    level_db = r.value(spec.get("level_db", 20.0), "real", "spectrum.level_db")
    center = r.value(spec.get("center", 0.0), "real", "spectrum.center")
    lo, hi = float(detunings.min()), float(detunings.max())
    if not lo <= center <= hi:  # the value "at center" would be the one at the nearest detuning
        where = "explicit" if "center" in spec else "default"
        r.fail("spectrum.center", f"the {where} center {center:g} is outside the detunings [{lo:g}, {hi:g}]; "
                                  "give a center inside that range or widen the detunings")
    method = r.value(spec.get("method", "auto"), "str", "spectrum.method")
    if method != "auto" and method not in SCATTERING_METHODS:
        r.fail("spectrum.method", f"unknown method {method!r}; expected one of auto, {', '.join(SCATTERING_METHODS)}")
    out = r.table(data.get("output", {}), "output")
    r.keys(out, _OUTPUT_KEYS, "output")
    figures, dpi = r.figures_and_dpi(out, FIGURES)
    output = dict(figures=figures, csv=r.value(out.get("csv", True), "bool", "output.csv"),
                  summary=r.value(out.get("summary", True), "bool", "output.summary"), dpi=dpi)
    return SpectrumSpec(source=source, title=title, description=description, network=G, detunings=detunings,
                        ports=ports, pairs=pairs, isolation=isolation, level_db=level_db, center=center,
                        method=method, output=output)


def _parse_detunings(r: _Reader, value):
    """The explicit detunings (an array), or (start, stop, n) of an evenly spaced grid not made yet."""
    key = "spectrum.detunings"
    if isinstance(value, list):
        r.fail(key, "expected a table: { start = ..., stop = ..., n = ... } or { values = [...] }")
    table = r.table(value, key)
    r.keys(table, {"start", "stop", "n", "values"}, key)
    if "values" in table:
        if set(table) - {"values"}:
            r.fail(key, "give either 'values' or 'start', 'stop' (and 'n'), not both")
        return np.array(r.list(table["values"], f"{key}.values", "real", min_len=1), float)
    for k in ("start", "stop"):
        if k not in table:
            r.fail(f"{key}.{k}", "missing required key (units of omega), or give 'values' = [...]")
    start = r.value(table["start"], "real", f"{key}.start")
    stop = r.value(table["stop"], "real", f"{key}.stop")
    n = r.value(table.get("n", 401), "int", f"{key}.n")
    if n < 2:
        r.fail(f"{key}.n", f"expected an integer >= 2, got {n}")
    if not start < stop:
        r.fail(f"{key}.start", f"expected start < stop = {stop}, got {start}")
    return start, stop, n


def _check_size(r: _Reader, grid, n_ports: int) -> None:
    """Refuse, before any work, a spectrum with more than ``config.SPECTRUM_MAX_POINTS`` detunings or one
    whose scattering matrices (D x P x P complex) and CSV text would not fit in memory."""
    from .. import config, memory
    from ..errors import MemoryLimitError

    n = grid.size if isinstance(grid, np.ndarray) else grid[2]
    key = "spectrum.detunings" + (".values" if isinstance(grid, np.ndarray) else ".n")
    per_point = 16 * n_ports**2 + 8 + 2 * n_ports**2 * 25  # S, the detuning, the CSV row (~25 characters a value)
    fits = min(config.SPECTRUM_MAX_POINTS, int(memory.limit_bytes() // per_point))
    if n > fits:
        raise MemoryLimitError(
            f"{r.source}: {key}: {n} detunings x {n_ports} ports would need about "
            f"{memory.format_bytes(n * per_point)}; at most {fits} "
            f"detunings fit (config.SPECTRUM_MAX_POINTS = {config.SPECTRUM_MAX_POINTS}, memory limit "
            f"{memory.format_bytes(memory.limit_bytes())}); give a smaller n or fewer ports")


def _check_port(r: _Reader, G, cell_list, c, key):
    if c not in G.nodes or G.nodes[c].get("kind", "cell") != "cell":
        r.fail(key, f"cell {c!r} does not exist; cells are {_few(cell_list)}")
    if not G.nodes[c].get("kappa", 0.0) > 0:
        r.fail(key, f"cell {c!r} has kappa = 0: no local damping channel, so it cannot be a port")


def _parse_pairs(r: _Reader, value, key, ports, distinct=False) -> list:
    pairs = []
    for i, pair in enumerate(r.list(value, key)):
        k = f"{key}[{i}]"
        if not isinstance(pair, list) or len(pair) != 2:
            r.fail(k, f"expected a pair [from, to] of port names, got {pair!r}")
        u, v = (r.value(x, "name", f"{k}[{j}]") for j, x in enumerate(pair))
        for j, c in enumerate((u, v)):
            if c not in ports:
                r.fail(f"{k}[{j}]", f"{c!r} is not a port; ports are {_few(ports)}")
        if distinct and u == v:
            r.fail(k, f"a link needs two different ports, got {u!r} twice")
        pairs.append((u, v))
    return pairs




# ---------------------------------------------------------------------------------------------
# Writing.


def spectrum_to_dict(spec: SpectrumSpec) -> dict:
    """The TOML document of ``spec`` (the inverse of :func:`parse_spectrum`): its network as explicit
    cells and reservoirs (:func:`~chiralnet.formats.scenario_toml.network_spec`), its detunings as
    ``start, stop, n`` when evenly spaced (to rounding), else as ``values``."""
    from .scenario_toml import network_spec

    d = np.asarray(spec.detunings, float)
    if d.size >= 2 and np.array_equal(d, np.linspace(d[0], d[-1], d.size)):
        detunings = {"start": float(d[0]), "stop": float(d[-1]), "n": int(d.size)}
    else:
        detunings = {"values": [float(x) for x in d]}
    table = {"detunings": detunings}
    if spec.ports is not None:
        table["ports"] = list(spec.ports)
    if spec.pairs is not None:
        table["pairs"] = [list(p) for p in spec.pairs]
    if spec.isolation:
        table["isolation"] = [list(p) for p in spec.isolation]
    table.update(level_db=float(spec.level_db), center=float(spec.center), method=spec.method)
    out = {"title": spec.title}
    if spec.description:
        out["description"] = spec.description
    out["network"] = network_spec(spec.network)
    out["spectrum"] = table
    if spec.output:
        out["output"] = {"figures": list(spec.output["figures"]), "csv": bool(spec.output["csv"]),
                         "summary": bool(spec.output["summary"]), "dpi": int(spec.output["dpi"])}
    return out


def write_spectrum(spec: SpectrumSpec, path) -> None:
    """Write ``spec`` as a spectrum file (atomically) that :func:`read_spectrum` reads back to an equal spec.

    Parameters
    ----------
    spec : SpectrumSpec
    path : str or os.PathLike
        The file to write (conventionally ``NAME.spectrum.toml``).
    """
    from ..files import atomic_write_text
    from .scenario_toml import dumps_toml

    atomic_write_text(path, dumps_toml(spectrum_to_dict(spec)))
