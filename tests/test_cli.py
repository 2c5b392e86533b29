"""The chiralnet command: subprocess runs on temporary folders, help, errors, registration."""

import csv
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from chiralnet import analytic, cli
from chiralnet.errors import ChiralnetError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Steady values printed/written by the CLI against closed forms (exact steady state).
STEADY_REL = 1e-10


def chiralnet(*args, cwd):
    """Run ``python -m chiralnet ARGS`` in a subprocess, as a user would."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "chiralnet", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_run_two_cell_subprocess(tmp_path):
    proc = chiralnet("run", EXAMPLES / "two_cell.toml", "--out", tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # nothing on stderr but, on a cold Numba cache (a fresh clone), the one compile notice
    from chiralnet._jit import COMPILING_NOTICE

    assert proc.stderr in ("", COMPILING_NOTICE + "\n"), proc.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "energies.csv", "energy.png", "network.json", "network.png", "summary.json"]
    for png in ("energy.png", "network.png"):
        data = (out / png).read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 5000
    rows = list(csv.reader((out / "energies.csv").read_text().splitlines()))
    assert rows[0] == ["time", "a", "b", "battery_total", "total"] and len(rows) == 602
    table = np.array(rows[1:], float)
    np.testing.assert_allclose(table[:, 2], table[:, 3], rtol=0, atol=0)  # battery = cell b only
    summary = json.loads((out / "summary.json").read_text())
    want = analytic.steady_battery_energy_nonreciprocal(omega=1.0, E=0.1, gamma=0.04, Lambda_a=0.043,
                                                        Lambda_b=0.043)
    assert summary["steady"]["battery_energy"] == pytest.approx(want, rel=STEADY_REL)
    assert summary["ratio_to_two_cell"]["nonreciprocal"] == pytest.approx(1.0, rel=STEADY_REL)
    assert "battery total, steady state:    74.8801 omega" in proc.stdout
    assert "time to 90% of steady battery" in proc.stdout


def test_console_help_subprocess(tmp_path):
    proc = chiralnet("--help", cwd=tmp_path)
    assert proc.returncode == 0
    for command in ("run", "steady", "paper"):
        assert command in proc.stdout


def test_every_help_example_is_a_valid_command_line():
    """Each command's help shows examples; each example must parse (a renamed option would break it)."""
    import shlex

    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert {"run", "steady", "paper", "sweep", "study", "spectrum"} <= set(commands)
    for name, sub in commands.items():
        lines = [ln.strip() for ln in sub.epilog.splitlines()[1:] if ln.strip().startswith("chiralnet ")]
        assert lines, name
        for line in lines:
            args = parser.parse_args(shlex.split(line.split("#")[0])[1:])
            assert args.command == name, line


BAD = [
    ("[network]\nbuilder = 'chain'\nn_cells = 4\nkapa = 0.1\n[times]\nt_end = 10.0\n", "network.kapa"),
    ("[network]\nbuilder = 'chain'\nn_cells = 4.5\n[times]\nt_end = 10.0\n", "network.n_cells"),
    ("[network]\nbuilder = 'chain'\nn_cells = 4\n[times]\nt_end = -3.0\n", "times.t_end"),
    ("[network]\n[[network.cells]]\nname = 'a'\nomega = 1.0\n[[network.chiral_links]]\nfrom = 'a'\nto = 'b'\n"
     "gamma = 0.1\n[times]\nt_end = 10.0\n", "network.chiral_links[0]"),
    ("[network]\nbuilder = 'chain'\nn_cells = 4\n", "times"),
    ("[network]\nbuilder = 'chain'\nn_cells = 4\n[times]\nt_end = 1000.0\n[solver]\nmethod = 'rk45'\n"
     "max_steps = 3\n", "solver"),
]


@pytest.mark.parametrize("text, key", BAD[:2], ids=[b[1] for b in BAD[:2]])
def test_bad_input_subprocess(tmp_path, text, key):
    """Exit status 2, one line naming the file and the key, no traceback, no output written."""
    path = tmp_path / "bad.toml"
    path.write_text(text)
    proc = chiralnet("run", path, "--out", tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"chiralnet: error: {path}: {key}")
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


@pytest.mark.parametrize("text, key", BAD, ids=[b[1] for b in BAD])
def test_bad_input_in_process(tmp_path, capsys, text, key):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert cli.main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"chiralnet: error: {path}: {key}")
    assert not (tmp_path / "out").exists()


def test_debug_shows_traceback(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BAD[0][0])
    proc = chiralnet("run", path, "--debug", cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "ScenarioError" in proc.stderr


def test_missing_file_and_usage_errors(tmp_path, capsys):
    assert cli.main(["steady", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml: file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli.main(["run"])
    assert info.value.code == 2


def test_steady_and_no_steady_state(tmp_path, capsys):
    assert cli.main(["steady", str(EXAMPLES / "ring.toml"), "--out", str(tmp_path / "ring")]) == 0
    out = capsys.readouterr().out
    assert "battery total, steady state:" in out and "time to 90%" not in out
    assert sorted(p.name for p in (tmp_path / "ring").iterdir()) == [
        "network.json", "network.png", "profile.png", "steady.json"]
    path = tmp_path / "undamped.toml"
    path.write_text("[network]\nbuilder = 'two_cell'\nnonreciprocal = false\nkappa_a = 0.0\nkappa_b = 0.0\n")
    assert cli.main(["steady", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no steady state" in err and "undamped.toml" in err


def test_output_dir_from_scenario(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text("[network]\nbuilder = 'chain'\nn_cells = 3\n[times]\nt_end = 50.0\nn_times = 11\n"
                    "[output]\ndir = 'results'\nfigures = ['heatmap']\ngraph = false\ndpi = 50\n")
    assert cli.main(["run", str(path)]) == 0
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["energies.csv", "heatmap.png",
                                                                        "summary.json"]


def test_paper(tmp_path, capsys):
    assert cli.main(["paper", "--out", str(tmp_path), "--n-times", "41", "--dpi", "40"]) == 0
    out = capsys.readouterr().out
    assert "eta_AB(inf)" in out and "fourfold limit" in out
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["fig2a.png", "fig2b.png", "fig3a.png", "fig3b.png", "fig4a.png", "fig4b.png", "fig4c.png",
                     "paper.json"]
    data = json.loads((tmp_path / "paper.json").read_text())
    for r in data["ratios"]:
        assert r["simulated"] == pytest.approx(r["closed_form"], rel=STEADY_REL), r["name"]
    eta_ab = data["ratios"][0]
    assert eta_ab["closed_form"] == pytest.approx(4 * 0.04**2 / 0.043**2, rel=1e-14)  # C_d
    assert data["ratios"][-1]["simulated"] == pytest.approx(4.0, abs=2e-3)  # the fourfold limit
    # Simulated curves against the corrected closed forms; the printed Eq. (6) is visibly off.
    for name, dev in data["deviations"].items():
        if "as printed" in name:
            assert dev > 0.1, name
        else:
            assert dev < 1e-12, name


def test_one_line_registration_and_shared_errors(monkeypatch, capsys):
    """A module listed in COMMANDS adds commands with add_command and gets the shared error handling."""
    def boom(args):
        raise ChiralnetError(f"sweep.toml: sweep.values: expected an array, got {args.values}")

    def register(subparsers):
        p = cli.add_command(subparsers, "boom", boom, help="a test command", description="test",
                            example="chiralnet boom 3")
        p.add_argument("values")

    module = types.ModuleType("chiralnet_test_sweep_cli")
    module.register = register
    monkeypatch.setattr(cli, "COMMANDS", (*cli.COMMANDS, module))
    assert cli.main(["boom", "3"]) == 2
    err = capsys.readouterr().err
    assert err == "chiralnet: error: sweep.toml: sweep.values: expected an array, got 3\n"
    with pytest.raises(ChiralnetError):
        cli.main(["boom", "3", "--debug"])
    with pytest.raises(ChiralnetError):
        cli.main(["--debug", "boom", "3"])


# ---------------------------------------------------------------------------------------------
# Refusals and bad input are one line with exit 2, leaving no files (issue 14).


@pytest.mark.parametrize("args, scenario, match", [
    (["paper", "--n-times", "100000000000"], None, "n_times = 100000000000 would need about"),
    (["run"], '[network]\nbuilder = "chain"\nn_cells = 1000000000\n[times]\nt_end = 1.0\n',
     "n_cells = 1000000000 would need about"),
    (["run"], '[network]\nbuilder = "lattice"\nrows = 100000\ncols = 100000\n[times]\nt_end = 1.0\n',
     "10000000000 cells would need about"),
    (["run"], '[network]\nbuilder = "two_cell"\n[times]\nt_end = 1.0\nn_times = 1000000000000\n',
     "n_times = 1000000000000 .* would need about"),
    (["steady"], f'[network]\nbuilder = "two_cell"\nomega = {"9" * 400}\n', "network.omega: expected a finite"),
    (["run"], '[network]\ngraph = "/etc/passwd"\n[times]\nt_end = 1.0\n', "not valid JSON"),
])
def test_refused_requests_are_one_line(tmp_path, capsys, args, scenario, match):
    out = tmp_path / "out"
    if scenario is not None:
        (tmp_path / "s.toml").write_text(scenario)
        args = args + [str(tmp_path / "s.toml")]
    assert cli.main(args + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("chiralnet: error: ")
    assert __import__("re").search(match, err), err
    assert "root:" not in err  # never quotes a file named in a scenario
    assert not out.exists()


def test_out_of_memory_is_one_line(capsys, monkeypatch):
    def handler(args):
        raise MemoryError("Unable to allocate 3.07 EiB")

    parser = cli.build_parser()
    args = parser.parse_args(["steady", "x.toml"])
    monkeypatch.setattr(cli, "build_parser", lambda: types.SimpleNamespace(parse_args=lambda argv: args))
    args.handler = handler
    assert cli.main(["steady", "x.toml"]) == cli.EXIT_IO
    assert capsys.readouterr().err == "chiralnet: error: out of memory; ask for fewer cells, times or points\n"


KIND_EXAMPLES = {"scenario": ("two_cell.toml", "chiralnet run"), "sweep": ("two_cell_map.sweep.toml", "chiralnet sweep"),
                 "optimize": ("chain_budget.optimize.toml", "chiralnet optimize"),
                 "spectrum": ("isolator.spectrum.toml", "chiralnet spectrum")}
COMMAND_KIND = {"run": "scenario", "steady": "scenario", "sweep": "sweep", "optimize": "optimize",
                "spectrum": "spectrum"}


@pytest.mark.parametrize("kind", sorted(KIND_EXAMPLES))
@pytest.mark.parametrize("command", sorted(COMMAND_KIND))
def test_every_command_names_the_command_of_another_kind_of_file(tmp_path, capsys, command, kind):
    """`chiralnet run x.sweep.toml` says it is a sweep file and to use `chiralnet sweep`; the kind comes from
    the tables (the copy is named plain.toml), for every command and every kind."""
    if COMMAND_KIND[command] == kind:
        return
    example, right = KIND_EXAMPLES[kind]
    path = tmp_path / "plain.toml"
    path.write_text((ROOT / "examples" / example).read_text())
    argv = [command, str(path)] + (["--out", str(tmp_path / "o")] if command != "steady" else [])
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"chiralnet: error: {path}: this is ") and f"use `{right} {path}" in err, err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_compiling_notice_once_on_a_cold_cache_only(tmp_path):
    """A first run compiles kernels silently for about 50 s: on a cold Numba cache (an empty NUMBA_CACHE_DIR)
    the command says so once on stderr; the next run loads the cache and says nothing."""
    from chiralnet._jit import COMPILING_NOTICE

    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg", NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    runs = [subprocess.run([sys.executable, "-m", "chiralnet", "steady", str(EXAMPLES / "two_cell.toml")], env=env,
                           capture_output=True, text=True, timeout=300) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert runs[0].stderr == COMPILING_NOTICE + "\n"  # once, though several kernels compile
    assert runs[1].stderr == ""
    assert runs[0].stdout == runs[1].stdout


def test_run_general_scenario_reports_charging_times_and_powers(tmp_path):
    """A squeezed, pumped pair (examples/squeezed_pair.toml): the report and summary.json carry the charging
    times, efficiency, max power and the injected power (drives and pumps), equal to the library's."""
    import chiralnet as cn
    from chiralnet.formats.scenario_toml import read_scenario

    proc = chiralnet("run", EXAMPLES / "squeezed_pair.toml", "--out", tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "power injected (drives, pumps):" in proc.stdout and "charging efficiency:" in proc.stdout
    assert "max average charging power:" in proc.stdout and "not computed" not in proc.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    G = read_scenario(EXAMPLES / "squeezed_pair.toml").network
    sim = summary["simulation"]
    assert sim["time_to_90_percent"] == pytest.approx(cn.observables.time_to_fraction(G), rel=1e-12)
    assert sim["efficiency"] == pytest.approx(cn.observables.efficiency(G), rel=1e-12)
    assert summary["steady"]["injected_power"] == pytest.approx(
        cn.observables.injected_power(cn.steady_state(G), G), rel=1e-12)
    assert "not_computed" not in summary
