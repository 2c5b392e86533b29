"""The Dask engine on a real LocalCluster: same numbers as the embedded engine, lost workers, bad schedulers."""

import os

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from chiralnet import cli  # noqa: E402
from chiralnet.sweeps import SweepError, make_spec, run_sweep, sweep  # noqa: E402

GRID = {"gamma": np.geomspace(0.005, 0.2, 9), "kappa_b": [0.001, 0.003, 0.01], "nonreciprocal": [True, False]}
QUANTITIES = ["battery_energy", "cell_energy", "time_to_90", "ratio_reciprocal"]


@pytest.fixture(scope="module")
def fault_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fault")


@pytest.fixture(scope="module")
def client(fault_dir):
    # The workers inherit this variable: chunk 0 kills its worker once, when the test arms it.
    os.environ["CHIRALNET_SWEEP_TEST_KILL_ONCE"] = str(fault_dir)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()
    os.environ.pop("CHIRALNET_SWEEP_TEST_KILL_ONCE", None)


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


def test_worker_killed_mid_task_is_retried(client, fault_dir, tmp_path):
    spec = make_spec("two_cell", {"gamma": [0.01, 0.02, 0.03, 0.04]}, ["battery_energy"], run={"chunk_size": 1})
    (fault_dir / "arm").touch()
    try:
        on_dask = run_sweep(spec, client=client, out=tmp_path / "k")
    finally:
        (fault_dir / "arm").unlink()
    assert (fault_dir / "fired").exists(), "the fault hook did not kill a worker"
    np.testing.assert_array_equal(on_dask["battery_energy"], run_sweep(spec)["battery_energy"])
    client.wait_for_workers(2, timeout=30)


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
    from chiralnet.sweeps import engine

    monkeypatch.setattr(engine, "SCHEDULER_TIMEOUT", 0.5)  # default 3 s
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
