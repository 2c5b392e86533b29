"""The ``chiralnet spectrum`` subcommand: scattering spectra of a network from a TOML file.

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

It writes ``spectrum.csv`` (detuning, then |S|^2 and arg S in radians for every ordered port pair),
``summary.json`` and the figures. The bandwidth is searched over the file's detuning range
(:func:`chiralnet.isolation_bandwidth` with span = the largest distance from ``center`` to its ends).
Every bad key raises :class:`~chiralnet.errors.ScenarioError` naming the file and key (exit status 2).
No physics here.
"""

from __future__ import annotations

import csv
import io as _stdio
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..formats.scenario_toml import _Reader, _few, build_network
from ..files import read_toml
from ..errors import ScenarioError

try:  # Python >= 3.11
    pass
except ModuleNotFoundError:  # pragma: no cover
    pass

__all__ = ["register", "run_spectrum_command", "load_spectrum", "parse_spectrum", "SpectrumSpec", "FIGURES"]

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


def register(subparsers) -> None:
    """Add ``spectrum`` to the ``chiralnet`` command's subparsers."""
    from . import add_command

    p = add_command(
        subparsers, "spectrum", run_spectrum_command,
        help="scattering spectra |S|^2, isolation and its bandwidth from a TOML file",
        description="Compute the scattering matrix S(delta) = I + K^1/2 (M + i delta)^-1 K^1/2 between the "
                    "ports (local damping channels) of the network in FILE.toml over the detunings of its "
                    "[spectrum] table. Writes DIR/spectrum.csv, DIR/summary.json and figures.",
        example="chiralnet spectrum examples/isolator.spectrum.toml --out isolator")
    p.add_argument("spectrum_file", metavar="FILE.toml")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")


# ---------------------------------------------------------------------------------------------
# Parsing.


def load_spectrum(path) -> SpectrumSpec:
    """Read and check a spectrum file; every error names the file and the key."""
    path = Path(path)
    data = read_toml(path, "spectrum", ScenarioError, "examples/isolator.spectrum.toml")
    return parse_spectrum(data, source=str(path), base_dir=path.parent)


def parse_spectrum(data: dict, *, source: str = "<dict>", base_dir=None) -> SpectrumSpec:
    """Check a spectrum file given as a dict (parsed TOML); see :func:`load_spectrum`."""
    from ..solve.response import METHODS

    r = _Reader(source)
    r.keys(data, _TOP_KEYS, "", required={"network", "spectrum"})
    title = r.value(data.get("title", Path(source).stem), "str", "title")
    description = r.value(data.get("description", ""), "str", "description")
    G = build_network(data["network"], source=source, key="network", base_dir=base_dir)
    spec = r.table(data["spectrum"], "spectrum")
    r.keys(spec, _SPECTRUM_KEYS, "spectrum", required={"detunings"})
    detunings = _parse_detunings(r, spec["detunings"])
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
    pairs = _parse_pairs(r, spec["pairs"], "spectrum.pairs", port_set) if "pairs" in spec else None
    isolation = _parse_pairs(r, spec.get("isolation", []), "spectrum.isolation", port_set, distinct=True)
    level_db = r.value(spec.get("level_db", 20.0), "real", "spectrum.level_db")
    center = r.value(spec.get("center", 0.0), "real", "spectrum.center")
    method = r.value(spec.get("method", "auto"), "str", "spectrum.method")
    if method != "auto" and method not in METHODS:
        r.fail("spectrum.method", f"unknown method {method!r}; expected one of auto, {', '.join(METHODS)}")
    out = r.table(data.get("output", {}), "output")
    r.keys(out, _OUTPUT_KEYS, "output")
    figures, dpi = r.figures_and_dpi(out, FIGURES)
    output = dict(figures=figures, csv=r.value(out.get("csv", True), "bool", "output.csv"),
                  summary=r.value(out.get("summary", True), "bool", "output.summary"), dpi=dpi)
    return SpectrumSpec(source=source, title=title, description=description, network=G, detunings=detunings,
                        ports=ports, pairs=pairs, isolation=isolation, level_db=level_db, center=center,
                        method=method, output=output)


def _parse_detunings(r: _Reader, value) -> np.ndarray:
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
    return np.linspace(start, stop, n)


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
# Running and writing.


def _num(x):
    """A float for JSON: finite as is, else the string "inf", "-inf" or "nan"."""
    x = float(x)
    return x if math.isfinite(x) else ("nan" if math.isnan(x) else ("inf" if x > 0 else "-inf"))


def _csv(res) -> str:
    buf = _stdio.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    pairs = [(u, v) for u in res.ports for v in res.ports]
    w.writerow(["detuning"] + [f"power({u}->{v})" for u, v in pairs] + [f"phase({u}->{v})" for u, v in pairs])
    cols = [res.detunings] + [res.transmission(u, v, db=False) for u, v in pairs] + [res.phase(u, v) for u, v in pairs]
    for row in np.column_stack(cols):
        w.writerow([repr(float(x)) for x in row])
    return buf.getvalue()


def spectrum_summary(spec: SpectrumSpec, res, bands: dict) -> dict:
    """JSON-ready summary: ports, grid, peak transmission per pair, isolation and bandwidth per link."""
    pairs = spec.pairs if spec.pairs is not None else [(u, v) for u in res.ports for v in res.ports]
    f0 = int(np.argmin(np.abs(res.detunings - spec.center)))
    out = {
        "title": spec.title, "source": spec.source, "method": res.method,
        "ports": [str(p) for p in res.ports], "kappa": [float(k) for k in res.kappa],
        "detunings": {"start": float(res.detunings[0]), "stop": float(res.detunings[-1]), "n": int(res.detunings.size)},
        "note": "dB values; 'inf' / '-inf' mark exact zeros (one-way), 'nan' no transmission either way",
        "transmission": [],
        "isolation": [],
    }
    for u, v in pairs:
        db = res.transmission(u, v)
        k = int(np.argmax(db))
        out["transmission"].append({"from": str(u), "to": str(v), "max_db": _num(db[k]),
                                    "at_detuning": float(res.detunings[k]), "at_center_db": _num(db[f0])})
    for u, v in spec.isolation:
        iso = res.isolation(u, v)
        b = bands[(u, v)]
        known = iso[~np.isnan(iso)]
        out["isolation"].append({
            "from": str(u), "to": str(v), "min_db": _num(known.min()) if known.size else "nan",
            "at_center_db": _num(iso[f0] if b is None else b.isolation_center),
            "bandwidth": None if b is None else {
                "level_db": b.level_db, "center": b.center, "low": b.low, "high": b.high,
                "low_found": b.low_found, "high_found": b.high_found, "width": b.width},
        })
    return out


def run_spectrum_command(args) -> int:
    from ..plotting import scattering as ps
    from ..files import atomic_write_text
    from ..solve.response import isolation_bandwidth, scattering

    spec = load_spectrum(args.spectrum_file)
    res = scattering(spec.network, spec.detunings, spec.ports, method=spec.method)
    span = float(max(abs(spec.detunings[0] - spec.center), abs(spec.detunings[-1] - spec.center)))
    bands = {}
    for u, v in spec.isolation:  # no band to search when the detunings are the single point `center`
        bands[(u, v)] = None if span == 0 else isolation_bandwidth(spec.network, u, v, spec.level_db, span=span,
                                                                   center=spec.center, method=spec.method)
    texts = {}
    if spec.output["csv"]:
        texts["spectrum.csv"] = _csv(res)
    summary = spectrum_summary(spec, res, bands)
    if spec.output["summary"]:
        texts["summary.json"] = json.dumps(summary, indent=2, allow_nan=False) + "\n"
    figs = {}
    want = spec.output["figures"]
    if "transmission" in want:
        figs["transmission.png"] = ps.plot_transmission(res, spec.pairs, title=spec.title)
    if "isolation" in want and spec.isolation:
        figs["isolation.png"] = ps.plot_isolation(res, spec.isolation, level_db=spec.level_db, title=spec.title)
    if "isolation_map" in want and len(res.ports) >= 2:
        figs["isolation_map.png"] = ps.plot_isolation_map(res, detuning=spec.center)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        atomic_write_text(out / name, text)
    for name, fig in figs.items():
        ps.save_figure(fig, out / name, dpi=spec.output["dpi"])
    print(f"{spec.title}  [{spec.source}]")
    print(f"{len(res.ports)} ports ({', '.join(map(str, res.ports[:8]))}{', ...' if len(res.ports) > 8 else ''}); "
          f"{res.detunings.size} detunings {res.detunings[0]:g}..{res.detunings[-1]:g} (omega); method {res.method!r}")
    for item in summary["isolation"]:
        bw = item["bandwidth"]
        if bw is None:
            width = "n/a (one detuning)"
        else:
            width = f"{bw['width']:.6g}" + ("" if bw["low_found"] and bw["high_found"] else
                                            " (at least: the level holds to the end of the detuning range)")
        at = item["at_center_db"]
        at = f"{at:.4g}" if isinstance(at, float) else at
        print(f"isolation {item['from']} -> {item['to']}: {at} dB at detuning {spec.center:g}; "
              f"bandwidth at {spec.level_db:g} dB: {width}")
    print(f"wrote {out}/: {', '.join(list(texts) + list(figs))}")
    return 0
