"""Every example scenario runs through the command, and every example script runs as written."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import chiralnet as cn
from chiralnet import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SCENARIOS = sorted(p for p in EXAMPLES.glob("*.toml") if not p.name.endswith((".sweep.toml", ".spectrum.toml", ".optimize.toml")))
SWEEPS = sorted(EXAMPLES.glob("*.sweep.toml"))
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Steady state against the chain's forward-substitution closed form.
STEADY_REL = 1e-12


def test_examples_exist():
    names = {p.stem for p in SCENARIOS}
    assert {"two_cell", "two_cell_reciprocal", "two_cell_overdamped", "chain10", "ring", "star", "lattice"} <= names
    assert "two_cell" in {p.stem for p in SCRIPTS}


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_example_runs(tmp_path, capsys, path):
    out = tmp_path / "out"
    assert cli.main(["sweep", str(path), "--out", str(out), "--no-progress"]) == 0
    assert "points over" in capsys.readouterr().out
    header, *rows = (out / "result.csv").read_text().splitlines()
    columns = header.split(",")
    assert len(rows) > 100
    table = [dict(zip(columns, row.split(","))) for row in rows]
    assert all(r["status"] == "0" for r in table)  # every point solved
    column = "battery_energy" if "battery_energy" in columns else "battery_energy[mean]"  # a [disorder] ensemble
    battery = np.array([float(r[column]) for r in table])
    assert np.isfinite(battery).all() and (battery > 0).all()
    assert (out / "figure.png").read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_runs(tmp_path, capsys, path):
    out = tmp_path / "out"
    assert cli.main(["run", str(path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    if "phases" in summary:  # a protocol ([[phase]]): it ends discharged or pulsed; each phase is reported
        assert all(p["name"] in text for p in summary["phases"])
        assert max(np.loadtxt(out / "energies.csv", delimiter=",", skiprows=1)[:, 1:].sum(axis=1)) > 1
    else:
        assert "battery total, steady state:" in text
        assert summary["steady"]["battery_energy"] > 0
    energies = np.loadtxt(out / "energies.csv", delimiter=",", skiprows=1)
    assert np.isfinite(energies).all() and (energies[:, 1:] >= 0).all()
    pngs = sorted(out.glob("*.png"))
    assert pngs and all(p.read_bytes()[:8] == PNG_SIGNATURE and p.stat().st_size > 5000 for p in pngs)
    assert not list(out.glob(".*"))  # no temporary files left


def test_chain10_matches_forward_substitution():
    """docs/theory/model.md, "The chiral chain": alpha_0 = -2iE/Lambda_0,
    alpha_n = (2 Gamma / Lambda_n) alpha_{n-1}."""
    G = cn.load_scenario(EXAMPLES / "chain10.toml").network
    g, k, E, n = 0.04, 0.003, 0.1, 10
    lam = np.full(n, k + 2 * g)
    lam[0] = lam[-1] = k + g
    alpha = np.empty(n, complex)
    alpha[0] = -2j * E / lam[0]
    for i in range(1, n):
        alpha[i] = 2 * g / lam[i] * alpha[i - 1]
    np.testing.assert_allclose(cn.steady_state(G).energies, np.abs(alpha) ** 2, rtol=STEADY_REL)


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_script_runs(tmp_path, path):
    """Each script runs end to end as written; one that takes ``--quick`` (smaller sizes, the same steps) gets
    it, so the suite stays within minutes (the 20,000-cell discharge runs at 2,000 cells here)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    quick = ["--quick"] if '"--quick" in sys.argv' in path.read_text() else []
    proc = subprocess.run([sys.executable, str(path), str(tmp_path), *quick], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


def test_quick_scripts():
    """The scripts that dominated the suite's time take --quick (see test_script_runs)."""
    quick = {p.stem for p in SCRIPTS if '"--quick" in sys.argv' in p.read_text()}
    assert {"long_chain_discharge", "optimize_chain"} <= quick
