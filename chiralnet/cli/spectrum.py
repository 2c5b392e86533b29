"""The ``chiralnet spectrum`` subcommand: scattering spectra of a network from a TOML file.

The file format, its reader and its writer are in :mod:`chiralnet.formats.spectrum_toml`; this module
runs a parsed file.

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
from pathlib import Path

import numpy as np

from ..formats.spectrum_toml import FIGURES, SpectrumSpec, parse_spectrum, read_spectrum

__all__ = ["register", "run_spectrum_command", "read_spectrum", "parse_spectrum", "SpectrumSpec", "FIGURES"]


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

    spec = read_spectrum(args.spectrum_file)
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
