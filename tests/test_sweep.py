"""Sweeps: batched kernels against the core solvers, the chunk store, resume, the CLI, bad input."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chiralnet as cn
from chiralnet import cli
from chiralnet.sweeps import (SweepError, load_sweep, make_plan, make_spec, open_sweep, parse_sweep, run_sweep,
                              sweep)
from chiralnet.sweeps.plan import assemble

RTOL_STEADY = 1e-12     # batched LU vs scipy LU on 2..10-cell systems
RTOL_PROPAGATION = 1e-9  # Taylor scaling-and-squaring vs scipy expm, relative to the steady value
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

GAMMAS = np.geomspace(0.005, 0.2, 7)
KAPPAS = np.geomspace(0.001, 0.02, 5)


def _loop_two_cell(quantity, **fixed):
    out = np.empty((GAMMAS.size, KAPPAS.size))
    for i, g in enumerate(GAMMAS):
        for j, k in enumerate(KAPPAS):
            ss = cn.steady_state(cn.two_cell(gamma=float(g), kappa_b=float(k), **fixed))
            out[i, j] = getattr(ss, quantity)
    return out


@pytest.mark.parametrize("nonreciprocal", [True, False])
def test_batched_steady_state_equals_core(nonreciprocal):
    res = sweep("two_cell", {"gamma": GAMMAS, "kappa_b": KAPPAS}, ["battery_energy", "total_energy"],
                params={"nonreciprocal": nonreciprocal})
    assert res.attrs["batched_groups"] == 1
    np.testing.assert_allclose(res["battery_energy"], _loop_two_cell("battery_energy", nonreciprocal=nonreciprocal),
                               rtol=RTOL_STEADY)
    np.testing.assert_allclose(res["total_energy"], _loop_two_cell("total_energy", nonreciprocal=nonreciprocal),
                               rtol=RTOL_STEADY)
    assert not res.status.any()


def test_additive_assembly_equals_build_model_everywhere():
    spec = make_spec("chain", {"gamma": np.geomspace(0.01, 0.1, 6), "kappa": [0.001, 0.003], "drive": [0.05, 0.2]},
                     params={"n_cells": 5})
    plan = make_plan(spec)
    (g,) = plan.groups.values()
    assert g.batched, g.reason
    ci = np.stack(np.unravel_index(np.arange(spec.n_points), spec.shape), axis=1)
    M, b, w, a0 = assemble(g, ci)
    for p, idx in enumerate(ci):
        m = cn.build_model(cn.chain(5, gamma=spec.axes[0][1][idx[0]], kappa=spec.axes[1][1][idx[1]],
                                    drive=spec.axes[2][1][idx[2]]))
        np.testing.assert_allclose(M[p], m.M, rtol=0, atol=1e-15)
        np.testing.assert_allclose(b[p], m.forcing, rtol=0, atol=1e-15)
        np.testing.assert_array_equal(w[p], m.omega)


def test_non_additive_structure_falls_back_and_stays_exact():
    # optimal couplings: p = sqrt(kappa_a/kappa_b) mixes the two swept axes, so M is not additive.
    grid = {"kappa_a": [0.01, 0.1], "kappa_b": [0.001, 0.003, 0.01]}
    spec = make_spec("two_cell", grid, params={"optimal": True})
    plan = make_plan(spec)
    (g,) = plan.groups.values()
    assert not g.batched and "not additive" in g.reason
    res = run_sweep(spec)
    ref = [[cn.steady_state(cn.two_cell(kappa_a=ka, kappa_b=kb, optimal=True)).battery_energy for kb in grid["kappa_b"]]
           for ka in grid["kappa_a"]]
    np.testing.assert_allclose(res["battery_energy"], ref, rtol=RTOL_STEADY)


def test_batched_equals_pointwise_and_pool():
    grid = {"gamma": [0.01, 0.03, 0.08], "nonreciprocal": [True, False]}
    q = ["battery_energy", "cell_energy", "ratio_reciprocal"]
    a = sweep("two_cell", grid, q)
    b = sweep("two_cell", grid, q, batched=False, processes=1, chunk_size=2)
    c = sweep("two_cell", grid, q, batched=False, processes=2, chunk_size=2)
    assert (a.attrs["engine"], b.attrs["engine"], c.attrs["engine"]) == ("in-process", "in-process", "local-pool")
    for name in q:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-13)
        np.testing.assert_array_equal(c[name], b[name])


def test_time_quantities_match_exact_propagation():
    times = [0.0, 50.0, 400.0, 2500.0]
    grid = {"gamma": [0.01, 0.04], "nonreciprocal": [True, False]}
    res = sweep("two_cell", grid, ["battery_energy", "battery_energy_at", "time_to_90"], times=times)
    for i, g in enumerate(grid["gamma"]):
        for j, nr in enumerate(grid["nonreciprocal"]):
            G = cn.two_cell(gamma=g, nonreciprocal=nr)
            ess = res["battery_energy"][i, j]
            ref = cn.simulate(G, times, method="exact").battery_energy
            np.testing.assert_allclose(res["battery_energy_at"][i, j], ref, rtol=0, atol=RTOL_PROPAGATION * ess)
            t90 = res["time_to_90"][i, j]
            at = cn.simulate(G, [t90], method="exact").battery_energy[0]
            assert abs(at / (0.9 * ess) - 1) < 1e-8
            before = cn.simulate(G, np.linspace(t90 / 2000, t90 * (1 - 1e-6), 2000), method="exact").battery_energy
            assert before.max() < 0.9 * ess  # first crossing, not a later one


def test_nonreciprocal_two_cell_closed_form_and_ratios():
    res = sweep("two_cell", {"gamma": GAMMAS, "kappa_a": KAPPAS}, ["ratio_nonreciprocal"], params={"optimal": True})
    np.testing.assert_allclose(res["ratio_nonreciprocal"], 1.0, rtol=RTOL_STEADY)
    rec = sweep("two_cell", {"gamma": GAMMAS}, ["ratio_reciprocal"], params={"nonreciprocal": False})
    np.testing.assert_allclose(rec["ratio_reciprocal"], 1.0, rtol=RTOL_STEADY)


def test_chain_length_axis_and_large_networks():
    sizes = [2, 3, 10, 70]  # 70 > BATCH_MAX_CELLS goes through steady_state
    res = sweep("chain", {"n_cells": sizes, "gamma": [0.02, 0.04]}, ["battery_energy"])
    ref = [[cn.steady_state(cn.chain(n, gamma=g)).battery_energy for g in (0.02, 0.04)] for n in sizes]
    np.testing.assert_allclose(res["battery_energy"], ref, rtol=RTOL_STEADY)
    with pytest.raises(SweepError, match="cell_energy needs the same cells"):
        sweep("chain", {"n_cells": [3, 4]}, ["cell_energy"])


def test_topology_axis_and_cell_energy():
    res = sweep(None, {"builder": ["chain", "ring"], "gamma": [0.02, 0.04]}, ["cell_energy"], params={"n_cells": 4})
    assert res.coords["cell"] == [0, 1, 2, 3]
    np.testing.assert_allclose(res["cell_energy"][1, 1], cn.steady_state(cn.ring(4, gamma=0.04)).energies,
                               rtol=RTOL_STEADY)
    np.testing.assert_allclose(res["cell_energy"][0, 0], cn.steady_state(cn.chain(4, gamma=0.02)).energies,
                               rtol=RTOL_STEADY)


def test_thermal_networks_go_through_the_core_solvers():
    times = [0.0, 200.0, 1500.0]
    res = sweep("two_cell", {"gamma": [0.01, 0.04]}, ["battery_energy", "battery_energy_at"], params={"n_th": 0.5},
                times=times)
    for i, g in enumerate([0.01, 0.04]):
        G = cn.two_cell(gamma=g, n_th=0.5)
        assert res["battery_energy"][i] == pytest.approx(cn.steady_state(G).battery_energy, rel=RTOL_STEADY)
        np.testing.assert_allclose(res["battery_energy_at"][i], cn.simulate(G, times).battery_energy, rtol=RTOL_STEADY)
    # time_to_90 of a hot network: the exact one of chiralnet.observables (Nc propagated too); at t90
    # the battery energy is 90% of the steady one to rounding.
    t90 = sweep("two_cell", {"gamma": [0.01]}, ["time_to_90"], params={"n_th": 0.5})["time_to_90"][0]
    G = cn.two_cell(gamma=0.01, n_th=0.5)
    assert t90 == cn.observables.time_to_fraction(G)
    at = cn.simulate(G, [0.0, t90], method="exact").battery_energy[-1]
    assert at == pytest.approx(0.9 * cn.steady_state(G).battery_energy, rel=1e-12)


def test_local_callable_base_runs_in_process():
    def pair(gamma):
        return cn.two_cell(gamma=gamma, nonreciprocal=False)

    with pytest.warns(RuntimeWarning, match="cannot be pickled"):
        res = sweep(pair, {"gamma": [0.01, 0.02, 0.03]}, batched=False, processes=2, chunk_size=1)
    assert res["battery_energy"][1] == pytest.approx(cn.steady_state(pair(0.02)).battery_energy, rel=RTOL_STEADY)


def test_unstable_points_are_flagged_not_silent():
    with pytest.warns(RuntimeWarning, match="1 of 2 points have no steady state"):
        res = sweep("two_cell", {"kappa_a": [0.0, 0.003]}, ["battery_energy"],
                    params={"kappa_b": 0.0, "nonreciprocal": False})
    assert res.status.tolist() == [1, 0]
    assert np.isnan(res["battery_energy"][0]) and np.isfinite(res["battery_energy"][1])


@pytest.mark.parametrize("grid, quantities, match", [
    ({"kapa": [0.1]}, None, "builder 'two_cell' has no parameter 'kapa'"),
    ({"gamma": []}, None, "empty list"),
    ({"gamma": [0.01, float("nan")]}, None, "non-finite"),
    ({"gamma": {"start": 0.1, "stop": 0.1, "num": 5}}, None, "empty range"),
    ({"gamma": {"start": 0.0, "stop": 0.1, "num": 0}}, None, "num must be an integer >= 1"),
    ({"gamma": {"start": 0.0, "stop": float("inf"), "num": 3}}, None, "finite"),
    ({"gamma": {"start": -1.0, "stop": 0.1, "num": 3, "scale": "log"}}, None, "log range"),
    ({"gamma": [0.1]}, ["battery_energy", "energy"], "unknown quantity 'energy'"),
    ({"gamma": [0.1]}, ["battery_energy_at"], "needs times"),
    ({"gamma": [-0.1]}, None, "gamma"),  # the builder rejects it, naming the point
])
def test_bad_input_raises_before_work(grid, quantities, match):
    with pytest.raises(SweepError, match=match):
        sweep("two_cell", grid, quantities or ["battery_energy"])


def test_point_error_names_file_and_leaves_no_output(tmp_path):
    f = tmp_path / "bad.sweep.toml"
    f.write_text('[base]\nbuilder = "chain"\n[grid]\nn_cells = [3, 0]\n')
    out = tmp_path / "out"
    with pytest.raises(SweepError, match=r"bad\.sweep\.toml: at n_cells=0: n_cells must be"):
        run_sweep(load_sweep(f), out=str(out))
    assert not out.exists()  # no sweep.json left behind that a rerun would refuse


def test_sweep_file_errors_name_file_and_key(tmp_path):
    f = tmp_path / "bad.sweep.toml"
    f.write_text('[base]\nbuilder = "two_cell"\n[grid]\ngamma = [0.01]\n'
                 '[quantities]\nnames = ["battery_energy"]\nfoo = 1\n')
    with pytest.raises(SweepError, match=r"bad\.sweep\.toml \[quantities\]: unknown key 'foo'"):
        load_sweep(f)
    f.write_text('[base]\nbuilder = "two_cell"\n[grids]\ngamma = [0.01]\n')
    with pytest.raises(SweepError, match=r"bad\.sweep\.toml: unknown section \[grids\]"):
        load_sweep(f)
    f.write_text('[base]\nbuilder = "two_cell"\nkapa_b = 0.1\n[grid]\ngamma = [0.01]\n')
    with pytest.raises(SweepError, match=r"bad\.sweep\.toml \[base\] key 'kapa_b'"):
        load_sweep(f)
    with pytest.raises(SweepError, match="both fixed"):
        parse_sweep({"base": {"builder": "two_cell", "gamma": 0.1}, "grid": {"gamma": [0.2]}})
    # A wrong type fails when the file is read, before any output folder exists.
    f.write_text('[base]\nbuilder = "two_cell"\n[grid]\ngamma = ["a"]\n')
    with pytest.raises(SweepError, match=r"bad\.sweep\.toml \[grid\] key 'gamma': builder 'two_cell' expects a number"):
        load_sweep(f)
    f.write_text('[base]\nbuilder = "chain"\nn_cells = 3.0\n[grid]\ngamma = [0.01]\n')
    with pytest.raises(SweepError, match=r"\[base\] key 'n_cells': builder 'chain' expects an integer"):
        load_sweep(f)


def test_example_sweep_files_parse():
    names = [n for n in os.listdir(os.path.join(ROOT, "examples")) if n.endswith(".sweep.toml")]
    assert len(names) >= 3
    for n in names:
        spec = load_sweep(os.path.join(ROOT, "examples", n))
        make_plan(spec)  # every parameter exists, every group assembles


def test_output_folder_files_and_resume_rules(tmp_path):
    xr = pytest.importorskip("xarray")
    out = tmp_path / "run"
    grid = {"gamma": [0.01, 0.02, 0.04], "kappa_b": [0.001, 0.003]}
    q = ["battery_energy", "cell_energy", "battery_energy_at"]
    res = sweep("two_cell", grid, q, times=[10.0, 100.0], out=out, chunk_size=2)
    assert sorted(os.listdir(out)) == ["chunks", "figure.png", "result.csv", "result.nc", "sweep.json"]
    assert open_sweep(out)["done_chunks"] == [0, 1, 2]
    assert not [n for n in os.listdir(out / "chunks") if n.startswith(".")]  # no temp file left
    assert (out / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ds = xr.open_dataset(out / "result.nc")
    np.testing.assert_array_equal(ds["battery_energy"].values, res["battery_energy"])
    np.testing.assert_array_equal(ds["cell_energy"].sel(cell="b").values, res["cell_energy"][..., 1])
    np.testing.assert_array_equal(ds["gamma"].values, grid["gamma"])
    ds.close()
    lines = (out / "result.csv").read_text().splitlines()
    assert lines[0] == ("gamma,kappa_b,battery_energy,cell_energy[a],cell_energy[b],"
                        "battery_energy_at[t=10.0],battery_energy_at[t=100.0],status")
    assert len(lines) == 7
    assert float(lines[1].split(",")[2]) == res["battery_energy"][0, 0]
    with pytest.raises(SweepError, match="already holds a sweep"):
        sweep("two_cell", grid, q, times=[10.0, 100.0], out=out, chunk_size=2)
    with pytest.raises(SweepError, match="different sweep"):
        sweep("two_cell", grid, ["battery_energy"], out=out, chunk_size=2, resume=True)
    again = sweep("two_cell", grid, q, times=[10.0, 100.0], out=out, chunk_size=2, resume=True)
    assert again.attrs["computed_chunks"] == 0 and again.attrs["reused_chunks"] == 3
    np.testing.assert_array_equal(again["cell_energy"], res["cell_energy"])


def test_one_parameter_figure_and_csv_without_xarray_names():
    res = sweep("two_cell", {"gamma": [0.01, 0.02]}, ["battery_energy"])
    fig = res.plot()
    assert fig.axes[0].get_xlabel() == "gamma (omega)"
    assert fig.axes[0].get_ylabel() == "battery_energy (omega)"
    assert res.csv_text().splitlines()[0] == "gamma,battery_energy,status"


def _write_sweep(path, n_gamma, chunk_size):
    path.write_text(
        '[base]\nbuilder = "chain"\nn_cells = 3\n'
        f'[grid]\ngamma = {{start = 0.01, stop = 0.1, num = {n_gamma}}}\n'
        '[quantities]\nnames = ["battery_energy", "cell_energy"]\n'
        f'[run]\nbatched = false\nchunk_size = {chunk_size}\n'
        '[output]\nfigure = false\nnetcdf = false\n'
    )


def test_killed_sweep_resumes_to_the_uninterrupted_result(tmp_path):
    # 60 chunks of 10 points (about 2 s of work after the command starts): enough to be killed after 3, and
    # the resumed and the uninterrupted runs here cost half of what 1200 points did
    f = tmp_path / "slow.sweep.toml"
    _write_sweep(f, 600, 10)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "chiralnet", "sweep", str(f), "--out", str(out),
                             "--processes", "1", "--no-progress"], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            d = out / "chunks"
            if d.is_dir() and sum(n.startswith("c") and n.endswith(".npz") for n in os.listdir(d)) >= 3:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the sweep finished before it could be interrupted: " + proc.stderr.read().decode()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()
    done = open_sweep(out)["done_chunks"]
    assert 3 <= len(done) < 60
    assert not (out / "result.csv").exists()
    # a temp file of the chunk being written when the process died may remain; it is never read
    spec = load_sweep(f)
    resumed = run_sweep(spec, out=out, resume=True)
    assert resumed.attrs["reused_chunks"] == len(done) and resumed.attrs["computed_chunks"] == 60 - len(done)
    full = run_sweep(spec)
    np.testing.assert_array_equal(resumed["cell_energy"], full["cell_energy"])
    np.testing.assert_array_equal(resumed["battery_energy"], full["battery_energy"])


def _children(pid):
    """Pids of the live processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(name))
    return out


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_pool_workers_exit_when_the_sweep_is_killed(tmp_path):
    f = tmp_path / "slow.sweep.toml"
    _write_sweep(f, 4000, 10)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "chiralnet", "sweep", str(f), "--out", str(out),
                             "--processes", "2", "--no-progress"], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            d = out / "chunks"
            if d.is_dir() and any(n.endswith(".npz") for n in os.listdir(d)):
                workers = _children(proc.pid)
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the sweep finished before it could be killed: " + proc.stderr.read().decode()
        assert len(workers) >= 2, workers  # the pool's workers (and its resource tracker)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.05)
    left = [w for w in workers if _alive(w)]
    for w in left:  # do not leave them behind even when the test fails
        os.kill(w, signal.SIGKILL)
    assert not left, "pool workers outlived the killed sweep"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_stops_a_pool_sweep_cleanly(tmp_path):
    # Ctrl-C in a terminal reaches the whole process group: the command and its pool workers.
    # 1000 points: the pool needs about 3 s after its first chunk (ample to interrupt it), and the resume
    # below computes what is left in this process (4000 points made that up to 13 s).
    f = tmp_path / "slow.sweep.toml"
    _write_sweep(f, 1000, 10)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "chiralnet", "sweep", str(f), "--out", str(out),
                             "--processes", "2", "--no-progress"], env=env, cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            d = out / "chunks"
            if d.is_dir() and any(n.endswith(".npz") for n in os.listdir(d)):
                break
            time.sleep(0.01)
        workers = _children(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        err = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert err.splitlines() == [f"chiralnet: interrupted; finished chunks are kept in {out}, rerun with --resume "
                                "to compute only the rest"]
    assert not [n for n in os.listdir(out / "chunks") if n.endswith(".tmp")]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers)
    done = open_sweep(out)["done_chunks"]
    resumed = run_sweep(load_sweep(f), out=out, resume=True)
    assert resumed.attrs["reused_chunks"] == len(done) > 0


def test_cli_main(tmp_path, capsys):
    f = tmp_path / "s.sweep.toml"
    _write_sweep(f, 6, 4)
    assert cli.main(["sweep", str(f), "--out", str(tmp_path / "o")]) == 0
    assert "6 points over gamma (6)" in capsys.readouterr().out
    assert (tmp_path / "o" / "result.csv").exists()
    assert cli.main(["sweep", str(f), "--out", str(tmp_path / "o")]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert cli.main(["sweep", str(f), "--out", str(tmp_path / "o"), "--resume"]) == 0
    assert "0 chunks computed, 2 reused" in capsys.readouterr().out
    (tmp_path / "bad.toml").write_text('[base]\nbuilder = "ring"\n[grid]\nn_cell = [3]\n')
    assert cli.main(["sweep", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "bad.toml [grid] key 'n_cell'" in err and "'n_cells'" in err
    with pytest.raises(SystemExit):
        cli.main(["sweep", str(f), "--out", "x", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])


def test_pool_workers_do_not_oversubscribe():
    import numba

    from chiralnet.sweeps import engine

    before = numba.get_num_threads()
    try:
        engine._pool_init(None)  # what every pool worker runs first
        assert numba.get_num_threads() == 1
    finally:
        numba.set_num_threads(before)
        engine._WORKER_PLAN = None
    saved = os.environ.get("OMP_NUM_THREADS")
    with engine._single_threaded_children():  # the environment pool children are spawned with
        assert all(os.environ[k] == v for k, v in engine.WORKER_ENV.items())
    assert os.environ.get("OMP_NUM_THREADS") == saved


def three_cells(j=0.01, g=0.02, k=0.003, phase=0.0, p1=1.0, p2=-0.5, detuning=0.0):
    """A driven cell 0, a complex coherent link 0-1, and one reservoir shared by all three cells."""
    G = cn.network(1.0)
    cn.add_cell(G, 0, omega=1.0, kappa=k, drive=0.1)
    cn.add_cell(G, 1, omega=1.0 + detuning, kappa=k, battery=True)
    cn.add_cell(G, 2, omega=1.0, kappa=2 * k, battery=True)
    cn.add_coherent_link(G, 0, 1, j * np.exp(1j * phase))
    cn.add_reservoir(G, {0: 1.0, 1: p1, 2: p2 * np.exp(1j * phase)}, gamma=g)
    return G


@settings(max_examples=12, deadline=None)
@given(phase=st.floats(0, 2 * np.pi), p1=st.floats(-2, 2), p2=st.floats(-2, 2), detuning=st.floats(-0.05, 0.05))
def test_random_networks_batched_equal_steady_state(phase, p1, p2, detuning):
    grid = {"j": [0.0, 0.01, 0.03], "g": np.geomspace(0.005, 0.1, 5), "k": [0.001, 0.01]}
    params = {"phase": phase, "p1": p1, "p2": p2, "detuning": detuning}
    res = sweep(three_cells, grid, ["battery_energy", "cell_energy"], params=params)
    for i, j in enumerate(grid["j"]):
        for m, g in enumerate(grid["g"]):
            for n, k in enumerate(grid["k"]):
                ss = cn.steady_state(three_cells(j, float(g), k, **params))
                # relative to the largest cell energy (small cells may sit near a node); measured worst 3e-14
                np.testing.assert_allclose(res["cell_energy"][i, m, n], ss.energies, rtol=0,
                                           atol=1e-11 * ss.energies.max())


# ---------------------------------------------------------------------------------------------
# Sweep files are data (issue 14): no code unless --allow-code, one-line errors, preflight.

BIG = "9" * 400


@pytest.mark.parametrize("text", ['[base]\nbuilder = "os:system"\n[grid]\ncommand = ["echo pwned"]\n',
                                  '[grid]\nbuilder = ["two_cell", "os:system"]\n'])
def test_sweep_files_do_not_import_code_by_default(tmp_path, capsys, text):
    f = tmp_path / "evil.sweep.toml"
    f.write_text(text)
    with pytest.raises(SweepError, match="'os:system' names Python code to import and run.*--allow-code"):
        load_sweep(f)
    assert cli.main(["sweep", str(f), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--allow-code" in err and "pwned" not in capsys.readouterr().out
    assert not (tmp_path / "o").exists()


def test_allow_code_runs_an_importable_builder(tmp_path, capsys):
    f = tmp_path / "own.sweep.toml"
    f.write_text('[base]\nbuilder = "chiralnet.builders:two_cell"\n[grid]\ngamma = [0.01, 0.02]\n'
                 '[output]\nfigure = false\nnetcdf = false\n')
    with pytest.raises(SweepError, match="--allow-code"):
        load_sweep(f)
    assert load_sweep(f, allow_code=True).n_points == 2
    assert cli.main(["sweep", str(f), "--out", str(tmp_path / "o"), "--allow-code"]) == 0
    want = sweep("chiralnet.builders:two_cell", {"gamma": [0.01, 0.02]})  # from Python: allowed
    assert (tmp_path / "o" / "result.csv").read_text() == want.csv_text()


@pytest.mark.parametrize("text, match", [
    (f'[base]\nbuilder = "two_cell"\nomega = {BIG}\n[grid]\ngamma = [0.01]\n', "'omega': integer with 400 digits"),
    (f'[base]\nbuilder = "two_cell"\n[grid]\ngamma = [0.01, {BIG}]\n', "'gamma': integer with 400 digits"),
    (f'[base]\nbuilder = "two_cell"\n[grid]\ngamma = {{start = 0, stop = {BIG}, num = 3}}\n', "stop must be a finite"),
    ('[base]\nbuilder = "two_cell"\n[grid]\ngamma = [0.01]\n[quantities]\nnames = ["battery_energy_at"]\n'
     'times = [[1, 2], 3]\n', "times must be a non-empty, strictly increasing list"),
    ('[base]\nbuilder = "two_cell"\n[grid]\ngamma = [0.01]\n[quantities]\nnames = ["battery_energy_at"]\n'
     'times = ["a", 3]\n', "times must be a non-empty, strictly increasing list"),
    (f'[base]\nbuilder = "two_cell"\n[grid]\ngamma = [0.01]\n[quantities]\nnames = ["time_to_90"]\nt90_max = {BIG}\n',
     "t90_max must be a finite time"),
    ('[base]\nbuilder = "two_cell"\n[grid]\ngamma = [0.01]\n[quantities]\nnames = [{a = 1}]\n', "unknown quantity"),
    ('[base]\nbuilder = "two_cell"\n[grid]\ngamma = [0.01]\n[quantities]\nnames = ["time_to_90"]\n'
     't90_steps = 1000000000000\n', "t90_steps = 1000000000000 is more than the limit of 1e\\+06"),
    ('[base]\nbuilder = "two_cell"\n[grid]\ngamma = {start = 0.01, stop = 0.1, num = 100000}\n'
     'kappa_b = {start = 0.01, stop = 0.1, num = 100000}\n', "a sweep of 10000000000 points would need about"),
    ('[base]\nbuilder = "two_cell"\n[grid]\ngamma = {start = 0.01, stop = 0.1, num = 1000000000000}\n',
     "a sweep of 1000000000000 points would need about"),
    ('[base]\nbuilder = "chain"\n[grid]\nn_cells = [3, 1000000000]\n', "n_cells = 1000000000 .* would need about"),
    ('[base]\nbuilder = "lattice"\nrows = 100000\n[grid]\ncols = [100000]\n', "10000000000 cells\\) would need"),
    ("a = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
])
def test_bad_sweep_files_are_one_line_errors(tmp_path, capsys, text, match):
    f = tmp_path / "bad.sweep.toml"
    f.write_text(text)
    with pytest.raises(SweepError, match=match):
        load_sweep(f)
    assert cli.main(["sweep", str(f), "--out", str(tmp_path / "o")]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_unreadable_sweep_files_are_bad_input(tmp_path, capsys):
    (tmp_path / "dir.sweep.toml").mkdir()
    (tmp_path / "bin.sweep.toml").write_bytes(b"\xff\xfe\x00")
    for name, match in (("dir.sweep.toml", "cannot be read"), ("bin.sweep.toml", "not UTF-8 text at byte 0")):
        assert cli.main(["sweep", str(tmp_path / name), "--out", str(tmp_path / "o")]) == 2  # was 1 for a folder
        err = capsys.readouterr().err
        assert match in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("damage", [b"[1, 2]", b"\xff\xfe", b"{", b"[" * 100_000, b'{"format": "other"}'])
def test_damaged_manifest_on_resume_is_one_line(tmp_path, capsys, damage):
    f = tmp_path / "s.sweep.toml"
    _write_sweep(f, 6, 4)
    out = tmp_path / "o"
    assert cli.main(["sweep", str(f), "--out", str(out)]) == 0
    (out / "sweep.json").write_bytes(damage)
    capsys.readouterr()
    assert cli.main(["sweep", str(f), "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "sweep.json" in err and "damaged" in err and len(err.splitlines()) == 1
    with pytest.raises(SweepError, match="damaged"):
        open_sweep(out)


def test_damaged_chunk_is_computed_again_on_resume(tmp_path):
    f = tmp_path / "s.sweep.toml"
    _write_sweep(f, 6, 2)
    out = tmp_path / "o"
    first = run_sweep(load_sweep(f), out=out)
    (out / "chunks" / "c00000001.npz").write_bytes(b"PK\x03\x04 truncated")
    again = run_sweep(load_sweep(f), out=out, resume=True)
    assert again.attrs["computed_chunks"] == 1 and again.attrs["reused_chunks"] == 2
    np.testing.assert_array_equal(again["cell_energy"], first["cell_energy"])


def test_api_numbers_beyond_float_range_are_sweep_errors():
    with pytest.raises(SweepError, match="integer with 401 digits"):
        sweep("two_cell", {"gamma": [0.01, 10**400]})
    with pytest.raises(SweepError, match="integer with 401 digits"):
        sweep("two_cell", {"gamma": [0.01]}, params={"omega": 10**400})
    with pytest.raises(SweepError, match="times must be"):
        sweep("two_cell", {"gamma": [0.01]}, ["battery_energy_at"], times=[1.0, 10**400])


def test_a_quantity_without_a_batched_kernel_is_computed_not_nan(monkeypatch):
    """A registry quantity with only ``compute`` (no batched kernel, reduce or cold rule): small cold
    networks must go through compute, not come back as NaN with status 0; registered after import too."""
    from chiralnet.observables import registry

    q = registry.Quantity(name="charger_amplitude_abs", description="|alpha| of the charger", units="1",
                          direction="max", needs="steady",
                          compute=lambda inputs: float(abs(inputs.steady_state().amplitudes[0])))
    monkeypatch.setitem(registry.QUANTITIES, q.name, q)
    grid = {"gamma": [0.02, 0.04], "kappa_a": [0.003, 0.01]}
    res = sweep("two_cell", grid, ["battery_energy", q.name])
    assert np.all(res.status == 0)
    for i, g in enumerate(grid["gamma"]):
        for j, k in enumerate(grid["kappa_a"]):
            want = abs(cn.steady_state(cn.two_cell(gamma=g, kappa_a=k)).amplitudes[0])
            np.testing.assert_allclose(res[q.name][i, j], want, rtol=RTOL_STEADY)


def test_a_time_dependent_drive_is_refused_not_swept_as_zero():
    """Sweeps assume a constant drive; a pulsed network used to come back as an empty battery."""
    from chiralnet import drives

    def pulsed(gamma=0.04):
        G = cn.two_cell(gamma=gamma)
        G.nodes["a"]["drive"] = drives.gaussian(0.1, 300.0, 50.0)
        return G

    for quantities, kw in ((["battery_energy"], {}), (["battery_energy_at"], {"times": [0.0, 500.0]})):
        with pytest.raises(SweepError, match="cell 'a' has a time-dependent drive"):
            sweep(pulsed, {"gamma": [0.02, 0.04]}, quantities, **kw)
