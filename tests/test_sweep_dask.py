"""The Dask engine on a real LocalCluster: same numbers as the embedded engine, lost workers, bad schedulers,
and a first run on a cold Numba cache."""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from chiralnet import cli  # noqa: E402
from chiralnet.sweeps import SweepError, make_spec, run_sweep, sweep  # noqa: E402

GRID = {"gamma": np.geomspace(0.005, 0.2, 9), "kappa_b": [0.001, 0.003, 0.01], "nonreciprocal": [True, False]}
QUANTITIES = ["battery_energy", "cell_energy", "time_to_90", "ratio_reciprocal"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: A script that runs the command as the installed ``chiralnet`` console script does: the spawn start
#: method re-imports it (and so chiralnet and Numba) in every worker before Dask applies the worker env.
ENTRY = "import sys\nfrom chiralnet.cli import main\nif __name__ == '__main__':\n    sys.exit(main())\n"


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_dask_equals_embedded_point_for_point(client, tmp_path):
    spec = make_spec("two_cell", GRID, QUANTITIES, run={"chunk_size": 8})
    embedded = run_sweep(spec)
    on_dask = run_sweep(spec, client=client, out=tmp_path / "d")
    assert on_dask.attrs["engine"] == "dask" and on_dask.attrs["chunks"] == 7
    for q in QUANTITIES:
        np.testing.assert_array_equal(on_dask[q], embedded[q])
    np.testing.assert_array_equal(on_dask.status, embedded.status)


def test_dask_pointwise_points_equal_embedded(client):
    # batched = false: the workers build every point's network themselves
    spec = make_spec("chain", {"n_cells": [3, 5], "gamma": [0.02, 0.05]}, ["battery_energy", "total_energy"],
                     run={"batched": False, "chunk_size": 1})
    embedded = run_sweep(spec)
    on_dask = run_sweep(spec, client=client)
    for q in ("battery_energy", "total_energy"):
        np.testing.assert_array_equal(on_dask[q], embedded[q])


SLOW_BUILDER = """
import time
import chiralnet

def slow_two_cell(gamma, delay):
    time.sleep(delay)
    return chiralnet.two_cell(gamma=gamma)
"""


def test_worker_killed_by_sigkill_mid_task_is_retried(client, tmp_path):
    # A builder that takes a while, importable on the workers, so a task is surely running when its worker dies.
    (tmp_path / "slowb.py").write_text(SLOW_BUILDER)
    sys.path.insert(0, str(tmp_path))
    client.run(exec, f"import sys; sys.path.insert(0, {str(tmp_path)!r})")
    try:
        gammas = [0.01, 0.02, 0.03, 0.04]
        spec = make_spec("slowb:slow_two_cell", {"gamma": gammas}, ["battery_energy"], params={"delay": 0.5},
                         run={"chunk_size": 1, "batched": False})
        box = {}
        t = threading.Thread(target=lambda: box.setdefault("res", run_sweep(spec, client=client, out=tmp_path / "k")))
        t.start()
        victim = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline:
            busy = [w for w, keys in client.processing().items() if keys]
            if busy:
                victim = busy[0]
            time.sleep(0.05)
        assert victim is not None, "no task started"
        time.sleep(0.2)  # inside the builder's 0.5 s sleep (a second 0.5 s task follows on the same worker)
        pid = client.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)
        t.join(120)
        assert not t.is_alive()
    finally:
        sys.path.remove(str(tmp_path))
        client.run(exec, f"import sys; sys.path.remove({str(tmp_path)!r})")
    np.testing.assert_array_equal(box["res"]["battery_energy"],
                                  sweep("two_cell", {"gamma": gammas})["battery_energy"])
    client.wait_for_workers(2, timeout=30)  # the nanny restarted the killed worker


def test_scheduler_address_and_cli(client, tmp_path, capsys):
    f = tmp_path / "s.sweep.toml"
    f.write_text('[base]\nbuilder = "two_cell"\n[grid]\ngamma = {start = 0.01, stop = 0.1, num = 5}\n'
                 '[output]\nfigure = false\n')
    addr = client.scheduler.address
    assert cli.main(["sweep", str(f), "--out", str(tmp_path / "o"), "--scheduler", addr, "--no-progress"]) == 0
    assert "engine dask" in capsys.readouterr().out
    embedded = sweep("two_cell", {"gamma": np.linspace(0.01, 0.1, 5)})
    via_address = sweep("two_cell", {"gamma": np.linspace(0.01, 0.1, 5)}, scheduler=addr)
    np.testing.assert_array_equal(via_address["battery_energy"], embedded["battery_energy"])


def test_unreachable_scheduler_fails_at_once(tmp_path, monkeypatch):
    from chiralnet import config

    monkeypatch.setattr(config, "SCHEDULER_TIMEOUT", 0.5)  # default 3 s
    with pytest.raises(SweepError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9' within 0.5 s"):
        sweep("two_cell", {"gamma": [0.01]}, scheduler="tcp://127.0.0.1:9", out=tmp_path / "never")
    assert not (tmp_path / "never").exists()  # nothing scheduled, nothing written
    with pytest.raises(SweepError, match="either workers"):
        sweep("two_cell", {"gamma": [0.01]}, scheduler="tcp://127.0.0.1:9", workers=2)


def test_workers_start_a_local_cluster(tmp_path, capsys):
    f = tmp_path / "w.sweep.toml"
    f.write_text('[base]\nbuilder = "chain"\nn_cells = 4\n[grid]\ngamma = [0.02, 0.04]\n'
                 '[quantities]\nnames = ["cell_energy"]\n[output]\nfigure = false\nnetcdf = false\n')
    assert cli.main(["sweep", str(f), "--out", str(tmp_path / "o"), "--workers", "1", "--no-progress"]) == 0
    assert "engine dask" in capsys.readouterr().out
    text = (tmp_path / "o" / "result.csv").read_text()
    embedded = sweep("chain", {"gamma": [0.02, 0.04]}, ["cell_energy"], params={"n_cells": 4})
    assert text == embedded.csv_text()


def _command(args, env_extra=None, cwd=None, timeout=240):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env_extra or {}))
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_bad_scheduler_prints_one_line_and_no_destructor_noise(tmp_path):
    f = tmp_path / "s.sweep.toml"
    f.write_text('[base]\nbuilder = "two_cell"\n[grid]\ngamma = [0.01]\n')
    # inproc:// fails inside Client.__init__ at once; its destructor used to report a timeout seconds later
    p = _command(["-m", "chiralnet", "sweep", str(f), "--out", str(tmp_path / "o"), "--scheduler", "inproc://x"])
    assert p.returncode == 2
    assert p.stderr.startswith("chiralnet: error: cannot reach the Dask scheduler at 'inproc://x'")
    assert len(p.stderr.splitlines()) == 1, p.stderr
    assert not (tmp_path / "o").exists()


def test_first_dask_sweep_on_a_cold_numba_cache(tmp_path):
    """A new user's first ``--workers`` sweep: nothing compiled yet, in the default cache location.

    The package is copied so its default Numba cache (``__pycache__`` inside the package) starts empty, and
    the command runs as a script (like the console script), which makes every worker import Numba before
    Dask sets NUMBA_NUM_THREADS=1 in it. NUMBA_NUM_THREADS=2 in the parent makes the change happen on any
    machine (the default is the number of cores). It used to fail at the first compilation in a worker.
    """
    src = tmp_path / "src"
    shutil.copytree(os.path.join(ROOT, "chiralnet"), src / "chiralnet",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "entry.py").write_text(ENTRY)
    f = tmp_path / "s.sweep.toml"
    f.write_text(textwrap.dedent("""\
        [base]
        builder = "two_cell"
        [grid]
        gamma = [0.01, 0.02]
        [output]
        csv = true
        netcdf = false
        figure = false
        """))
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(PYTHONPATH=str(src), NUMBA_NUM_THREADS="2")
    p = subprocess.run([sys.executable, "entry.py", "sweep", str(f), "--out", "o", "--workers", "1", "--no-progress"],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "engine dask" in p.stdout and "Traceback" not in p.stderr
    assert (tmp_path / "o" / "result.csv").exists()
    cache = src / "chiralnet" / "solve" / "__pycache__"  # the batched kernels compiled in the cold cache
    assert any(n.startswith("batched.") and n.endswith(".nbi") for n in os.listdir(cache))


def test_ctrl_c_of_a_dask_sweep_prints_one_line(tmp_path):
    """Ctrl-C in a terminal reaches the whole process group: the command, its LocalCluster's workers. It used
    to print about 60 lines of cancelled-task warnings and worker KeyboardInterrupt tracebacks before
    chiralnet's line; now that line is all of stderr."""
    (tmp_path / "slowb.py").write_text(SLOW_BUILDER)
    f = tmp_path / "slow.sweep.toml"
    f.write_text('[base]\nbuilder = "slowb:slow_two_cell"\ndelay = 1.5\n[grid]\ngamma = [0.01, 0.02, 0.03, 0.04, 0.05, '
                 '0.06, 0.07, 0.08, 0.09, 0.1]\n[run]\nchunk_size = 1\nbatched = false\n[output]\nfigure = false\n')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    p = subprocess.Popen([sys.executable, "-m", "chiralnet", "sweep", str(f), "--out", "o", "--workers", "2",
                          "--allow-code", "--no-progress"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        chunks = tmp_path / "o" / "chunks"
        # a finished chunk (c*.npz; a chunk being written is a dot-file until its atomic rename)
        while not (chunks.is_dir() and any(n.startswith("c") and n.endswith(".npz") for n in os.listdir(chunks))):
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "no chunk finished"
            time.sleep(0.1)
        os.killpg(p.pid, signal.SIGINT)  # as a terminal's Ctrl-C does
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130
    assert err.splitlines() == ["chiralnet: interrupted; finished chunks are kept in o, rerun with --resume to "
                                "compute only the rest"], err[-3000:]
    assert "Traceback" not in err
