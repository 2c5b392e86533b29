"""cn.optimize and `chiralnet optimize`: impedance matching, the paper's optimal xi, budgets, bad input, the CLI."""

import json

import numpy as np
import pytest

import chiralnet as cn
from chiralnet.cli import main

#: The optimum's location (rates), relative.
X_RTOL = 1e-4
#: The optimum's value, relative.
F_RTOL = 1e-8


def pair(gamma_a=0.04, gamma_b=0.04, kappa_a=0.003, kappa_b=0.003, drive=0.1):
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.0, kappa=kappa_a, drive=drive)
    cn.add_cell(G, "b", omega=1.0, kappa=kappa_b, battery=True)
    cn.add_chiral_link(G, "a", "b", gamma=np.sqrt(gamma_a * gamma_b), xi=np.sqrt(gamma_a / gamma_b))
    return G


def pair_xi(xi=1.0, gamma=0.01, kappa_a=0.1, kappa_b=0.003, drive=0.1):
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.0, kappa=kappa_a, drive=drive)
    cn.add_cell(G, "b", omega=1.0, kappa=kappa_b, battery=True)
    cn.add_chiral_link(G, "a", "b", gamma=gamma, xi=xi)
    return G


def single(kappa=0.003):
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.0, kappa=kappa, drive=0.1, battery=True)
    return G


def test_impedance_matching_from_a_poor_start():
    """Gamma_a = kappa_a, Gamma_b = kappa_b maximise E_B, at omega E^2 / (kappa_a kappa_b)."""
    ka, kb, E = 0.004, 0.002, 0.1
    r = cn.optimize(pair, {"gamma_a": (1e-4, 0.5), "gamma_b": (1e-4, 0.5)}, params={"kappa_a": ka, "kappa_b": kb},
                    x0={"gamma_a": 0.3, "gamma_b": 2e-4})
    assert r.success and r.maximize and r.jac_source == "adjoint"
    assert r.x["gamma_a"] == pytest.approx(ka, rel=X_RTOL) and r.x["gamma_b"] == pytest.approx(kb, rel=X_RTOL)
    assert r.fun == pytest.approx(E**2 / (ka * kb), rel=F_RTOL)
    assert r.fun0 < 0.05 * r.fun and r.history[0]["fun"] == r.fun0 and r.history[-1]["fun"] == r.fun
    assert cn.steady_state(r.graph).battery_energy == pytest.approx(r.fun, rel=1e-12)


def test_two_cell_builder_matches_at_gamma_equal_kappa():
    r = cn.optimize("two_cell", {"gamma": (1e-4, 0.2)}, params={"kappa_a": 0.003, "kappa_b": 0.003}, x0={"gamma": 0.15})
    assert r.jac_source == "adjoint" and r.method == "L-BFGS-B"
    assert r.x["gamma"] == pytest.approx(0.003, rel=X_RTOL)
    assert r.fun == pytest.approx(0.1**2 / 0.003**2, rel=F_RTOL)


def test_paper_optimal_xi():
    """Eq. (12): at fixed Gamma the best asymmetry is xi = sqrt(kappa_a / kappa_b)."""
    r = cn.optimize(pair_xi, {"xi": (0.1, 50.0)}, x0={"xi": 1.0}, method="multistart", n_starts=3)
    assert r.x["xi"] == pytest.approx(np.sqrt(0.1 / 0.003), rel=X_RTOL)
    ref = cn.steady_state(cn.two_cell(gamma=0.01, kappa_a=0.1, kappa_b=0.003, optimal=True)).battery_energy
    assert r.fun == pytest.approx(ref, rel=F_RTOL) and len(r.starts) == 3


@pytest.mark.parametrize("method", ["SLSQP", "SPG", "trust-constr"])
def test_budget_is_kept_and_beats_uniform(method):
    n, total = 6, 0.2
    r = cn.optimize("chain", {"gamma": (0.002, 0.15)}, params={"n_cells": n}, budget={"gamma": total}, method=method)
    g = r.x["gamma"]
    assert g.shape == (n - 1,) and g.sum() == pytest.approx(total, rel=1e-9)
    assert np.all(g >= 0.002 - 1e-12) and np.all(g <= 0.15 + 1e-12)
    uniform = cn.steady_state(cn.chain(n, gamma=np.full(n - 1, total / (n - 1)))).battery_energy
    assert r.fun0 == pytest.approx(uniform, rel=1e-12) and r.fun > 2 * uniform


def test_methods_agree_on_a_budget():
    kw = dict(params={"n_cells": 5}, budget={"gamma": 0.12})
    a = cn.optimize("chain", {"gamma": (0.004, 0.1)}, method="SLSQP", **kw)
    b = cn.optimize("chain", {"gamma": (0.004, 0.1)}, method="SPG", **kw)
    assert b.fun == pytest.approx(a.fun, rel=1e-6)


def test_time_to_90_and_callable_objectives():
    r = cn.optimize("two_cell", {"gamma": (0.005, 0.1)}, "time_to_90")
    assert not r.maximize and r.jac is None and r.jac_source == "none" and r.method == "Powell"
    assert r.fun <= r.fun0 and r.x["gamma"] == pytest.approx(0.1, rel=1e-3)
    c = cn.optimize("two_cell", {"gamma": (1e-4, 0.2)}, lambda ss: ss.energies[1], x0={"gamma": 0.1})
    assert c.jac_source == "finite-differences" and c.x["gamma"] == pytest.approx(0.003, rel=1e-3)


def test_ratio_objective():
    r = cn.optimize("two_cell", {"gamma": (0.001, 0.1)}, "ratio_nonreciprocal", params={"kappa_a": 0.01})
    assert r.fun == pytest.approx(1.0, rel=1e-12)   # the pair is its own reference at every gamma


def test_no_steady_state_is_reported_with_the_point():
    with pytest.raises(cn.NoSteadyStateError, match=r"no steady state at kappa=0"):
        cn.optimize(single, {"kappa": (0.0, 0.01)}, x0={"kappa": 0.005})


def test_bad_input():
    err = cn.ChiralnetError
    with pytest.raises(err, match="does not take"):
        cn.optimize("chain", {"gama": (0.01, 0.1)}, params={"n_cells": 4})
    with pytest.raises(err, match="low < high"):
        cn.optimize("two_cell", {"gamma": (0.1, 0.01)})
    with pytest.raises(err, match="finite"):
        cn.optimize("two_cell", {"gamma": (0.01, float("inf"))})
    with pytest.raises(err, match="budget on 'kappa', which is not optimised"):
        cn.optimize("chain", {"gamma": (0.01, 0.1)}, params={"n_cells": 4}, budget={"kappa": 0.1})
    with pytest.raises(err, match="outside the bounds' reach"):
        cn.optimize("chain", {"gamma": (0.01, 0.1)}, params={"n_cells": 4}, budget={"gamma": 1.0})
    with pytest.raises(err, match="not a scalar steady-state quantity"):
        cn.optimize("two_cell", {"gamma": (0.01, 0.1)}, "battery_energy_at")
    with pytest.raises(err, match="unknown objective"):
        cn.optimize("two_cell", {"gamma": (0.01, 0.1)}, "energy")
    with pytest.raises(err, match="structural"):
        cn.optimize("chain", {"n_cells": (2, 5)})
    with pytest.raises(err, match="unknown method"):
        cn.optimize("two_cell", {"gamma": (0.01, 0.1)}, method="BFGS")
    with pytest.raises(err, match="cannot keep a budget"):
        cn.optimize("chain", {"gamma": (0.01, 0.1)}, params={"n_cells": 4}, budget={"gamma": 0.1}, method="L-BFGS-B")


# ---------------------------------------------------------------------------------------------
# The command.

GOOD = """
title = "t"
[base]
builder = "chain"
n_cells = 5
gamma = [0.04, 0.04, 0.04, 0.04]
[bounds]
gamma = [0.004, 0.1]
[objective]
name = "battery_energy"
[budget]
gamma = 0.16
"""


def test_cli_writes_the_files(tmp_path, capsys):
    f = tmp_path / "opt.toml"
    f.write_text(GOOD)
    assert main(["optimize", str(f), "--out", str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    for name in ("network.json", "network.toml", "history.csv", "summary.json", "objective.png"):
        assert (out / name).is_file(), name
    s = json.loads((out / "summary.json").read_text())
    assert sum(s["x"]["gamma"]) == pytest.approx(0.16, rel=1e-9) and s["fun"] > s["fun0"]
    G = cn.load_graph(out / "network.json")
    assert cn.steady_state(G).battery_energy == pytest.approx(s["fun"], rel=1e-12)
    scen = cn.load_scenario(out / "network.toml")
    assert cn.steady_state(scen.network).battery_energy == pytest.approx(s["fun"], rel=1e-12)
    assert "battery_energy (max)" in capsys.readouterr().out


@pytest.mark.parametrize("edit, key", [
    (("gamma = [0.004, 0.1]", "gama = [0.004, 0.1]"), "bounds.gama"),
    (("gamma = [0.004, 0.1]", "gamma = [0.1, 0.004]"), "bounds.gamma"),
    (("gamma = 0.16", "gamma = 5.0"), "budget.gamma"),
    (("[budget]\ngamma = 0.16", "[budget]\nkappa = 0.01"), "budget.kappa"),
    (('name = "battery_energy"', 'name = "energies"'), "objective.name"),
    (('builder = "chain"', 'builder = "os:system"'), "base.builder"),
    (("n_cells = 5", "n_cells = 5\nfoo = 1"), "base.foo"),
])
def test_cli_bad_key_exits_2_with_one_line(tmp_path, capsys, edit, key):
    f = tmp_path / "bad.toml"
    assert edit[0] in GOOD
    f.write_text(GOOD.replace(*edit))
    assert main(["optimize", str(f), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(f) in err and key in err, err


def test_example_file_runs(tmp_path):
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "chain_budget.optimize.toml"
    assert main(["optimize", str(path), "--out", str(tmp_path / "o")]) == 0
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["success"] and s["gain"] > 4 and sum(s["x"]["gamma"]) == pytest.approx(0.28, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# Issue 18: refusals before any work, real bools.


def test_unbounded_starts_are_refused_before_any_evaluation(monkeypatch):
    from chiralnet import config
    from chiralnet.design import optimizer

    def no_work(*args, **kwargs):
        raise AssertionError("the objective was evaluated before the refusal")

    monkeypatch.setattr(optimizer._Objective, "value_grad", no_work)
    largest = config.OPTIMIZE_MAX_ITERATIONS // config.OPTIMIZE_MAXITER
    for n in (10**6, 1e6):
        with pytest.raises(cn.ChiralnetError, match=rf"n_starts = 1e\+06 .*1e\+06 starts x {config.OPTIMIZE_MAXITER} "
                                                    rf"iterations.*largest that fits is n_starts = {largest}"):
            cn.optimize("two_cell", {"gamma": (0.001, 0.1)}, method="multistart", n_starts=n)
    with pytest.raises(cn.ChiralnetError, match="largest that fits is n_starts = 10 "):
        cn.optimize("two_cell", {"gamma": (0.001, 0.1)}, method="multistart", n_starts=11,
                    maxiter=config.OPTIMIZE_MAX_ITERATIONS // 10)
    with pytest.raises(cn.ChiralnetError, match="maxiter = 1e\\+09 .*largest that fits is maxiter"):
        cn.optimize("two_cell", {"gamma": (0.001, 0.1)}, maxiter=10**9)
    for bad in (0, 2.5, True, float("nan"), "8"):
        with pytest.raises(cn.ChiralnetError, match="n_starts must be an integer >= 1"):
            cn.optimize("two_cell", {"gamma": (0.001, 0.1)}, method="multistart", n_starts=bad)


def test_flags_and_numbers_of_optimize_are_checked():
    for kwargs, text in (({"maximize": "no"}, "maximize must be True or False"),
                         ({"progress": "yes"}, "progress must be True or False"),
                         ({"tol": float("nan")}, "tol must be finite"),
                         ({"tol": -1.0}, "tol must be > 0"),
                         ({"seed": 1.5}, "seed must be an integer"),
                         ({"x0": {"gamma": [0.01, [0.02]]}}, "the start of 'gamma' must be a rectangular array"),
                         ({"params": ["kappa_a"]}, "params must be a dict"),
                         ({"bounds": {"gamma": (0.001, 10**400)}}, "bounds of 'gamma' must be finite numbers")):
        bounds = kwargs.pop("bounds", {"gamma": (0.001, 0.1)})
        with pytest.raises(cn.ChiralnetError, match=text):
            cn.optimize("two_cell", bounds, **kwargs)
    # a real bool still works, numpy's too: minimising the energy drives gamma to a bound
    r = cn.optimize("two_cell", {"gamma": (0.001, 0.1)}, params={"kappa_a": 0.003, "kappa_b": 0.003},
                    maximize=np.bool_(False))
    assert r.x["gamma"] in (pytest.approx(0.001), pytest.approx(0.1))
