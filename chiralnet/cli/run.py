"""``chiralnet run``, ``steady`` and ``paper``: simulate a scenario file, its steady state, the seed paper.

No physics here: every number comes from a library function (:mod:`chiralnet.scenario`,
:mod:`chiralnet.paper`); this module parses arguments, prints tables and writes files.
"""

from __future__ import annotations

import csv
import io as _stdio
import json
from pathlib import Path

import numpy as np

from .. import config
from ..errors import ChiralnetError, NoSteadyStateError
from ..observables import ergotropy as cn_ergotropy
from ..observables import injected_power as cn_injected_power

__all__ = ["register"]


# ---------------------------------------------------------------------------------------------
# Formatting and writing (no physics).


def _fmt(x, spec=".6g", none="n/a") -> str:
    return none if x is None else format(x, spec)


def _cell_table(run, max_rows: int = 30) -> list[str]:
    names = [str(c) for c in (run.steady.cells if run.steady is not None else run.result.cells)]
    battery = run.steady.battery if run.steady is not None else run.result.battery
    width = max(4, *(len(n) for n in names))
    head = f"  {'cell':>{width}}  battery  {'E_ss (omega)':>14}"
    if run.result is not None:
        head += f"  {'E(t_end) (omega)':>16}"
    lines = [head]
    for i, name in enumerate(names[:max_rows]):
        row = f"  {name:>{width}}  {'yes' if battery[i] else 'no':>7}  "
        row += f"{_fmt(run.steady.energies[i] if run.steady is not None else None, '14.6g'):>14}"
        if run.result is not None:
            row += f"  {run.result.energies[-1, i]:16.6g}"
        lines.append(row)
    if len(names) > max_rows:
        lines.append(f"  ... {len(names) - max_rows} more cells (all in summary.json)")
    return lines


def _report_lines(run) -> list[str]:
    sc = run.scenario
    n_cells = len(run.steady.cells if run.steady is not None else run.result.cells)
    head = f"{sc.title}  [{sc.source}]"
    info = f"{n_cells} cells"
    if run.result is not None:
        res = run.result
        info += f"; simulated with method {res.method!r} at {res.times.size} times, t = {res.times[0]:g}..{res.times[-1]:g} (1/omega)"
    lines = [head, info, ""] + _cell_table(run) + [""] + _phase_table(run)
    if run.steady is not None:
        lines.append(f"battery total, steady state:    {run.steady.battery_energy:.6g} omega")
        lines.append(f"total, steady state:            {run.steady.total_energy:.6g} omega")
        lines.append(f"battery ergotropy, steady:      {cn_ergotropy(run.steady):.6g} omega local, "
                     f"{cn_ergotropy(run.steady, collective=True):.6g} omega collective (extractable work)")
        label = "power injected (drives, pumps):" if run.steady.state.Mc is not None else "power injected by the drive:"
        lines.append(f"{label:<32}{cn_injected_power(run.steady, run.scenario.network):.6g} omega^2 (steady)")
    else:
        lines.append(run.steady_error)
    if run.result is not None:
        lines.append(f"battery total at t_end:         {run.result.battery_energy[-1]:.6g} omega")
        if run.steady is not None and run.result.phase is None:
            if run.t90 is None:
                lines.append("time to 90% of steady battery:  not reached within the simulated times")
            else:
                stay = "not within the simulated times" if run.t90_stay is None else f"{run.t90_stay:.6g}"
                lines.append(f"time to 90% of steady battery:  {run.t90:.6g} (1/omega) first reached, "
                             f"stays above from {stay}")
                lines.append(f"charging efficiency:            {run.efficiency:.6g} (battery ergotropy at t90 over "
                             "the work injected up to t90)")
            if run.power_peak is not None:
                lines.append(f"max average charging power:     {run.power_peak.power:.6g} omega^2 at "
                             f"t = {run.power_peak.time:.6g} (1/omega)")
    ref, ratio = run.reference, run.ratios()
    if ref.get("gamma") is not None:
        lines.append("")
        lines.append(
            f"two-cell limits with the same rates (E = {ref['E']:.4g}, kappa_a = {ref['kappa_a']:.4g}, "
            f"kappa_b = {ref['kappa_b']:.4g}, Gamma = {ref['gamma']:.4g}, xi = {ref['xi']:.4g}, omega = {ref['omega']:.4g}):"
        )
        for key, label in (("nonreciprocal", "nonreciprocal"), ("reciprocal", "reciprocal (J = Gamma/2)")):
            lines.append(f"  {label:<26} E_B = {_fmt(ref[key], '.6g'):>10} omega   "
                         f"battery / limit = {_fmt(ratio[key], '.4f')}")
    return lines


def _phase_table(run) -> list[str]:
    """One row per protocol phase: its span and the energies at its end (empty without phases)."""
    res = run.result
    if res is None or res.phase is None:
        return []
    starts = [0.0, *res.phase_ends[:-1].tolist()]
    width = max(5, *(len(n) for n in res.phase_names))
    lines = [f"  {'phase':<{width}}  {'from':>9}  {'to':>9}  {'battery at end':>15}  {'total at end':>13}"]
    for k, name in enumerate(res.phase_names):
        reached = res.phase_states[k] is not None
        bat = _fmt(float(res.phase_battery_energy[k]) if reached else None, ".6g", "not reached")
        tot = _fmt(float(res.phase_energies[k].sum()) if reached else None, ".6g", "not reached")
        lines.append(f"  {name:<{width}}  {starts[k]:>9.6g}  {res.phase_ends[k]:>9.6g}  {bat:>15}  {tot:>13}")
    return lines + ["  (energies in omega, times in 1/omega)", ""]


def _energies_csv(result) -> str:
    buf = _stdio.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["time", *[str(c) for c in result.cells], "battery_total", "total"])
    data = np.column_stack([result.times, result.energies, result.battery_energy, result.total_energy])
    for row in data:
        writer.writerow([repr(float(x)) for x in row])
    return buf.getvalue()


def _json_text(data) -> str:
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def _out_dir(args_out, scenario) -> Path:
    if args_out is not None:
        return Path(args_out)
    if scenario.output.get("dir"):
        path = Path(scenario.output["dir"])
        return path if path.is_absolute() else Path(scenario.source).parent / path
    return Path("chiralnet-out") / Path(scenario.source).stem


def _figures(run) -> dict:
    """Name -> Figure for the figures the scenario asks for (those that apply to its size)."""
    from .. import plotting

    sc, res, ss = run.scenario, run.result, run.steady
    want = sc.output.get("figures", ())
    n = len(res.cells) if res is not None else len(ss.cells)
    figs = {}
    if "energy" in want and res is not None:
        figs["energy"] = plotting.plot_energies(res, title=sc.title)
    if "heatmap" in want and res is not None and n >= 3:
        figs["heatmap"] = plotting.plot_heatmap(res, title=sc.title)
    if "profile" in want and ss is not None and n >= 3:
        figs["profile"] = plotting.plot_profile(ss, result=res, title=sc.title)
    if "network" in want and n <= config.NETWORK_FIGURE_MAX_CELLS:
        energies = ss.energies if ss is not None else (res.energies[-1] if res is not None else None)
        figs["network"] = plotting.plot_network(sc.network, energies, title=sc.title)
    return figs


def _write_outputs(run, out: Path, *, with_series: bool) -> list[Path]:
    """Render everything in memory first, then write each file atomically; return the paths written."""
    from ..files import atomic_write_text
    from ..formats.graph_json import graph_to_data
    from ..plotting import save_figure

    sc = run.scenario
    texts = {}
    if with_series and sc.output.get("csv", True) and run.result is not None:
        texts["energies.csv"] = _energies_csv(run.result)
    if sc.output.get("summary", True):
        texts["summary.json" if with_series else "steady.json"] = _json_text(run.summary())
    if sc.output.get("graph", True):
        texts["network.json"] = _json_text(graph_to_data(sc.network))
    figs = _figures(run)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in texts.items():
        atomic_write_text(out / name, text)
        written.append(out / name)
    for name, fig in figs.items():
        save_figure(fig, out / f"{name}.png", dpi=sc.output.get("dpi", 150))
        written.append(out / f"{name}.png")
    return written


# ---------------------------------------------------------------------------------------------
# Commands.


def _cmd_run(args) -> int:
    from ..formats.scenario_toml import load_scenario
    from ..scenario import run_scenario

    scenario = load_scenario(args.scenario)
    scenario.require_times()
    run = run_scenario(scenario)
    print("\n".join(_report_lines(run)))
    if not args.no_files:
        out = _out_dir(args.out, scenario)
        written = _write_outputs(run, out, with_series=True)
        print(f"\nwrote {len(written)} files to {out}/: {', '.join(p.name for p in written)}")
    return 0


def _cmd_steady(args) -> int:
    from ..formats.scenario_toml import load_scenario
    from ..scenario import run_scenario

    scenario = load_scenario(args.scenario)
    run = run_scenario(scenario, simulate_times=False)
    if run.steady is None:
        raise NoSteadyStateError(f"{scenario.source}: {run.steady_error}")
    print("\n".join(_report_lines(run)))
    if args.out is not None:
        written = _write_outputs(run, Path(args.out), with_series=False)
        print(f"\nwrote {len(written)} files to {args.out}/: {', '.join(p.name for p in written)}")
    return 0


def _cmd_paper(args) -> int:
    from ..files import atomic_write_text
    from ..paper import reproduce
    from ..plotting import save_figure

    if args.n_times < 11:
        raise ChiralnetError(f"--n-times: expected an integer >= 11, got {args.n_times}")
    if not 20 <= args.dpi <= 1200:
        raise ChiralnetError(f"--dpi: expected an integer between 20 and 1200, got {args.dpi}")
    rep = reproduce(n_times=args.n_times)
    print("Seed paper (PRL 132, 210402): steady-state ratios, simulated vs closed form")
    width = max(len(r["name"]) for r in rep.ratios)
    print(f"  {'quantity':<{width}}  {'simulated':>12}  {'closed form':>12}  equation")
    for r in rep.ratios:
        print(f"  {r['name']:<{width}}  {r['simulated']:12.6f}  {r['closed_form']:12.6f}  {r['equation']}")
    print("\nmax |simulated - closed form| / max |closed form| over time:")
    width = max(len(k) for k in rep.deviations)
    for k, v in rep.deviations.items():
        print(f"  {k:<{width}}  {v:.2e}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fig in rep.figures.items():
        save_figure(fig, out / f"{name}.{args.format}", dpi=args.dpi)
        written.append(f"{name}.{args.format}")
    atomic_write_text(out / "paper.json", _json_text({"ratios": rep.ratios, "deviations": rep.deviations}))
    written.append("paper.json")
    print(f"\nwrote {len(written)} files to {out}/: {', '.join(written)}")
    return 0


def register(subparsers) -> None:
    from . import add_command

    """Add ``run``, ``steady`` and ``paper``."""
    p = add_command(
        subparsers, "run", _cmd_run,
        help="simulate a scenario file: table, energies.csv, summary.json, figures",
        description="Simulate the network of a TOML scenario over its [times], solve its steady state, "
                    "print per-cell steady energies, the battery total, the time to reach 90% of the steady "
                    "battery energy and the ratios to the two-cell nonreciprocal and reciprocal limits with "
                    "the same rates; write energies.csv, summary.json, network.json and PNG figures.",
        example="chiralnet run examples/two_cell.toml --out out\nchiralnet run examples/chain10.toml --no-files",
    )
    p.add_argument("scenario", help="TOML scenario file (see examples/*.toml)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output folder (default: [output] dir of the scenario, else chiralnet-out/NAME)")
    p.add_argument("--no-files", action="store_true", help="print the table only; write nothing")

    p = add_command(
        subparsers, "steady", _cmd_steady,
        help="steady state of a scenario file only",
        description="Solve the steady state of a scenario's network ([times] not needed) and print the "
                    "per-cell energies, the battery total and the ratios to the two-cell limits. Exits "
                    "with status 2 when the network has no steady state.",
        example="chiralnet steady examples/ring.toml\nchiralnet steady examples/lattice.toml --out out/lattice",
    )
    p.add_argument("scenario", help="TOML scenario file")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="also write steady.json, network.json and figures into DIR")

    p = add_command(
        subparsers, "paper", _cmd_paper,
        help="reproduce Figs. 2-4 of the seed paper and print its steady-state ratios",
        description="Simulate the seed paper's two-cell battery (PRL 132, 210402) and draw Figs. 2(a,b), "
                    "3(a,b), 4(a,b,c) with the corrected closed forms overlaid; print eta_AB(inf) = C_d, "
                    "eta_BB(inf) of Eqs. (10)-(12), the fourfold limit, and the largest deviation of each "
                    "simulated curve from its closed form.",
        example="chiralnet paper --out paper\nchiralnet paper --out paper --format pdf",
    )
    p.add_argument("--out", metavar="DIR", default="chiralnet-paper", help="output folder (default: %(default)s)")
    p.add_argument("--format", choices=("png", "pdf", "svg"), default="png", help="figure format (default: png)")
    p.add_argument("--dpi", type=int, default=150, help="resolution of PNG figures (default: 150)")
    p.add_argument("--n-times", type=int, default=601, help="points per time grid (default: 601)")

