"""MkDocs hooks: pages generated at build time, so that no number or listing is pasted by hand.

- ``performance.md``: the markers ``<!-- benchmarks:machine -->``, ``<!-- benchmarks:tables -->`` and
  ``<!-- benchmarks:exponents -->`` are replaced by what ``benchmarks/results.json`` holds (written by
  ``python3 benchmarks/run.py``), and ``benchmarks/time_vs_n.png`` is copied into the site.
- ``gallery.md``: one section per file of ``examples/`` (scenario, sweep, optimisation and spectrum files,
  grouped by the kind their tables say, each with its own command; scripts) with its own description (leading comment or module docstring), the command that runs it, its source, and the
  figures of ``docs/figures/`` named after it (``<stem>_*.png``). The examples are shown, not run:
  ``tests/test_examples.py`` runs every one of them, and running them here would slow the build.

The rendering functions take paths and return Markdown, and import nothing from MkDocs, so
``tests/test_docs.py`` checks them without MkDocs installed.
"""

from __future__ import annotations

import ast
import json
import logging
import math
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results.json"
PLOT = ROOT / "benchmarks" / "time_vs_n.png"
EXAMPLES = ROOT / "examples"
FIGURES = ROOT / "docs" / "figures"
PLOT_URI = "figures/benchmarks_time_vs_n.png"

log = logging.getLogger("mkdocs.hooks.chiralnet")

#: Section keys of benchmarks/run.py, in the order they are shown, with a heading each.
SECTIONS = {
    "solve_ivp": "Time traces against scipy.integrate.solve_ivp (RK45, same rtol/atol)",
    "steady": "Steady state against scipy.sparse.linalg.spsolve",
    "qutip": "Against a QuTiP master-equation run (mesolve, truncated Fock space)",
    "cost": "Cost per output time against the number of cells",
    "large": "A large 2D lattice",
    "thermal": "Thermal noise (the N x N fluctuation matrix)",
    "threads": "Threaded (prange) kernels against serial ones (ratio = serial / threaded)",
    "cold": "Cold start: first calls in a new process",
    "fresh": "Fresh process (a new user's first call) and warm: large outputs and thermal traces",
    "sweep": "Time-resolved sweeps against a loop of simulate (per point)",
    "propagator": "Sparse propagator of a repeated step against the Taylor series (ratio = series / propagator)",
    "small": "Small networks (2 to 10 cells) against hand-written NumPy/SciPy, single-threaded BLAS",
    "general": "The general Gaussian path against the phase-insensitive one on the same network (target: at most 3x)",
}
#: Extra per-row fields, shown in the notes column.
NOTES = {
    "terms_per_output": "{:.1f} Taylor terms per output time",
    "matrix_terms": "{:.0f} terms on the fluctuation matrix",
    "entries_per_row": "P: {:.1f} entries a row",
    "matrix_propagator_products": "{:.0f} propagator products per column of the fluctuation matrix",
    "build_s": "model built in {}",
    "import_s": "import {}",
    "warm_calls_s": "warm calls {}",
    "slowdown": "{:.3g}x the baseline's time",
}


def fmt_time(seconds) -> str:
    """A wall time with a readable unit: 69.3 us, 0.18 ms, 27 ms, 0.59 s, 18.2 s."""
    if seconds is None or (isinstance(seconds, float) and not math.isfinite(seconds)):
        return ""
    s = float(seconds)
    if s < 1e-4:
        return f"{s * 1e6:.3g} us"
    if s < 1.0:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def _fmt_err(x) -> str:
    return "0" if x == 0 else f"{x:.1e}"


def _errors(row: dict) -> str:
    if "agreement" in row:
        return f"agree to {_fmt_err(row['agreement'])}"
    own = row.get("err_chiralnet")
    base = next((v for k, v in row.items() if k.startswith("err_") and k != "err_chiralnet"), None)
    parts = [_fmt_err(own) if own is not None else "", _fmt_err(base) if base is not None else ""]
    return " / ".join(parts).strip(" /") if any(parts) else ""


def _notes(row: dict) -> str:
    out = []
    for key, template in NOTES.items():
        if row.get(key) is not None:
            value = row[key]
            out.append(template.format(fmt_time(value) if key.endswith("_s") else value))
    return "; ".join(out)


def _ratio(row: dict) -> str:
    r, target = row.get("ratio"), row.get("target")
    if not r:
        return ""
    text = f"{r:.2g}x" if r < 1 else f"{r:,.1f}x" if r < 1000 else f"{r:,.0f}x"
    if target:
        met = r >= target
        goal = f"{target:.3g}" if target < 1 else f"{target:g}"  # a slowdown target (1/3) reads 0.333x
        text = (f"**{text}**" if met else text) + f" (target {goal}x{'' if met else ', missed'})"
    return text


def _baseline(row: dict) -> str:
    name = row.get("baseline") or ""
    name = "" if name == "-" else name
    return f"{name} {fmt_time(row.get('baseline_s'))}".strip()


def machine_markdown(results: dict) -> str:
    """One paragraph: the machine, the library versions and the run's total time."""
    m = results.get("machine", {})
    load = m.get("load_average")
    parts = [
        f"{m.get('cpu', 'unknown CPU')}, {m.get('cores', '?')} cores, {m.get('memory_gb', '?')} GB",
        f"Python {m.get('python', '?')}, NumPy {m.get('numpy', '?')}, SciPy {m.get('scipy', '?')}, "
        f"Numba {m.get('numba', '?')} (threading layer: {m.get('threading_layer', '?')})",
    ]
    if load:
        parts.append("load average " + " / ".join(f"{x:.2f}" for x in load) + " (1, 5, 15 min) at the start")
    kind = "the quick run (`--quick`, smaller sizes)" if results.get("quick") else "the full run"
    total = results.get("total_s")
    tail = f"; {kind} took {total:.0f} s in all" if total else f"; {kind}"
    return "Machine of the recorded run: " + "; ".join(parts) + tail + "."


def tables_markdown(results: dict) -> str:
    """One table per benchmark section, in the order of :data:`SECTIONS` (unknown sections last)."""
    rows = results.get("rows", [])
    order = list(SECTIONS) + sorted({r["section"] for r in rows} - set(SECTIONS))
    blocks = []
    for section in order:
        sel = [r for r in rows if r["section"] == section]
        if not sel:
            continue
        columns = {
            "case": [r["case"].replace("|", "/") for r in sel],
            "chiralnet": [fmt_time(r.get("chiralnet_s")) for r in sel],
            "baseline": [_baseline(r) for r in sel],
            "ratio": [_ratio(r) for r in sel],
            "errors (chiralnet / baseline)": [_errors(r) for r in sel],
            "notes": [_notes(r) for r in sel],
        }
        columns = {k: v for k, v in columns.items() if any(v)}  # no empty column
        lines = [f"### {SECTIONS.get(section, section)}", "", "| " + " | ".join(columns) + " |",
                 "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(row) + " |" for row in zip(*columns.values())]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def exponents_markdown(results: dict) -> str:
    """The fitted cost exponents p (time ~ N^p) as a small table."""
    exps = results.get("exponents") or {}
    if not exps:
        return "*No fitted exponents in this run.*"
    lines = ["| quantity | p over N >= 10^4 | p over all N | target |", "|---|---|---|---|"]
    for name, (p_big, p_all) in exps.items():
        lines.append(f"| {name} | **{p_big:.2f}** | {p_all:.2f} | <= 1.1 |")
    return "\n".join(lines)


def render_performance(markdown: str, results_path: Path = RESULTS) -> str:
    """Replace the ``<!-- benchmarks:... -->`` markers of ``markdown`` by tables from ``results_path``."""
    results = json.loads(Path(results_path).read_text())
    for marker, fn in (
        ("machine", machine_markdown),
        ("tables", tables_markdown),
        ("exponents", exponents_markdown),
    ):
        tag = f"<!-- benchmarks:{marker} -->"
        if tag not in markdown:
            raise ValueError(f"performance page: marker {tag} is missing")
        markdown = markdown.replace(tag, fn(results))
    return markdown


# ---------------------------------------------------------------------------------------------
# Example gallery


def _leading_comment(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        body = line[1:].strip()
        if body.startswith("Run:"):
            continue
        lines.append(body)
    return " ".join(lines)


def _docstring(text: str) -> tuple[str, str]:
    """The first line and the rest of a script's module docstring, without its 'Run:' line."""
    doc = ast.get_docstring(ast.parse(text)) or ""
    first, _, rest = doc.partition("\n")
    rest = "\n".join(line for line in rest.splitlines() if not line.startswith("Run:")).strip()
    return first.strip(), rest


def _title(text: str, fallback: str) -> str:
    for line in text.splitlines():
        if line.startswith("title"):
            return line.split("=", 1)[1].split("#")[0].strip().strip('"')
    return fallback


def _figures(stem: str, figures_dir: Path) -> list[Path]:
    return sorted(figures_dir.glob(f"{stem}_*.png"))


#: TOML kinds of chiralnet.formats.kinds.KINDS in gallery order: heading, introduction, command, the ending
#: removed from a file name to get its output folder and figure prefix.
TOML_GROUPS = {
    "scenario": ("Scenario files", "Each runs in seconds with `chiralnet run` (see [Scenario files](guide/scenarios.md)).",
                 "chiralnet run", ".toml"),
    "sweep": ("Sweep files", "Each runs in 4 to 25 s on 2 busy cores with `chiralnet sweep` "
              "(see [Sweeps](guide/sweeps.md)).", "chiralnet sweep", ".sweep.toml"),
    "optimize": ("Optimisation files", "Each runs with `chiralnet optimize` (see [Inverse design](guide/design.md)).",
                 "chiralnet optimize", ".optimize.toml"),
    "spectrum": ("Spectrum files", "Each runs with `chiralnet spectrum` (see [Scattering](guide/scattering.md)).",
                 "chiralnet spectrum", ".spectrum.toml"),
}


def toml_kind(path: Path) -> str:
    """The kind of a TOML example, decided by its tables as the commands decide it
    (:func:`chiralnet.formats.kinds.file_kind`), so the gallery names the command that runs it."""
    import tomllib

    from chiralnet.formats.kinds import file_kind

    return file_kind(tomllib.loads(path.read_text()), path) or "scenario"


def _section(path: Path, figures_dir: Path, kind: str | None = None) -> str:
    text = path.read_text()
    name = path.name
    if kind is not None:
        _, _, command, ending = TOML_GROUPS[kind]
        stem = name.removesuffix(ending) if name.endswith(ending) else path.stem
        title = f"`{name}`" if kind == "sweep" else f"`{name}`: {_title(text, stem)}"
        about = _leading_comment(text)
        command = f"{command} examples/{name} --out out/{stem}"
        lang = "toml"
    else:
        first, rest = _docstring(text)
        title = f"`{name}`"
        about = first + ("\n\n" + rest if rest else "")
        command = f"python3 examples/{name}" + (" out" if "OUT_DIR" in text else "")
        lang, stem = "python", path.stem
    parts = [f"### {title}", "", about, "", "```bash", command, "```", ""]
    for fig in _figures(stem, figures_dir):
        parts += [f"![{fig.stem}](figures/{fig.name})", ""]
    source = "\n".join("    " + line if line else "" for line in text.rstrip("\n").splitlines())
    parts += [f'??? example "Source of `examples/{name}`"', "", f"    ```{lang}", source, "    ```", ""]
    return "\n".join(parts)


def render_gallery(examples_dir: Path = EXAMPLES, figures_dir: Path = FIGURES) -> str:
    """The gallery page: one group per kind of TOML file (each with its own command), then the scripts."""
    files = sorted(p for p in examples_dir.iterdir() if p.suffix in (".toml", ".py") and not p.name.startswith("_"))
    kinds = {p: toml_kind(p) for p in files if p.suffix == ".toml"}
    out = [
        "# Example gallery",
        "",
        "Every file of `examples/`, generated from the files themselves when the site is built. They are "
        "shown here, not run during the build; the test suite (`tests/test_examples.py`) runs each of them. "
        "Run them from the repository root.",
        "",
    ]
    for kind, (heading, intro, _, _) in TOML_GROUPS.items():
        paths = [p for p in files if kinds.get(p) == kind]
        if paths:
            out += [f"## {heading}", "", intro, ""] + [_section(p, figures_dir, kind) for p in paths]
    scripts = [p for p in files if p.suffix == ".py"]
    if scripts:
        out += ["## Scripts", "", "Python scripts that use the library directly.", ""]
        out += [_section(p, figures_dir) for p in scripts]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# MkDocs entry points


def on_files(files, config):
    from mkdocs.structure.files import File

    files.append(File.generated(config, "gallery.md", content=render_gallery()))
    if PLOT.exists():
        files.append(File.generated(config, PLOT_URI, abs_src_path=str(PLOT)))
    else:
        log.warning("benchmarks/time_vs_n.png is missing: run python3 benchmarks/run.py")
    return files


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == "performance.md":
        return render_performance(markdown)
    return markdown


_ROLE = re.compile(r":(?:func|class|data|mod|meth|attr|exc|obj):(<code>([\w.]+)</code>)")


def link_roles(html: str) -> str:
    """Sphinx roles left in docstrings (``:func:`build_model```) become links within the page.

    Markdown renders them as ``:func:<code>build_model</code>``; the role prefix is dropped, and the name
    links to the object's heading on the same page when there is one (``chiralnet.build_model``, or a
    unique heading ending in ``.build_model``); otherwise it stays plain code.
    """
    ids = set(re.findall(r'id="(chiralnet[\w.]*)"', html))

    def target(name):
        for candidate in (name, f"chiralnet.{name}"):
            if candidate in ids:
                return candidate
        tails = [i for i in ids if i.endswith("." + name)]
        return tails[0] if len(tails) == 1 else None

    def sub(m):
        anchor = target(m.group(2))
        return f'<a href="#{anchor}">{m.group(1)}</a>' if anchor else m.group(1)

    return _ROLE.sub(sub, html)


def on_page_content(html, page, config, files):
    if page.file.src_uri == "reference.md":
        return link_roles(html)
    return html
