"""simulate_to_file: the streamed file equals one in-memory simulate, memory per block is bounded, and an
error leaves no file at the target."""

import os
import tracemalloc

import numpy as np
import pytest

import chiralnet as cn
from chiralnet.arrays import chain_model
from chiralnet.errors import ChiralnetError, MemoryLimitError, SolverError
from chiralnet.solve import stream

xr = pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")

#: A block continued from the previous block's final state equals one long run to rounding: the step
#: lengths t[k] - t[k-1] are recomputed from a new origin (an ulp), then propagated for a few hundred steps.
RTOL = 1e-12
ATOL = 1e-12

NETWORKS = {
    "zero-T chain, exact": lambda: (cn.chain(6), np.linspace(0, 400, 37)),
    "thermal chain, exact": lambda: (cn.chain(5, n_th=0.3), np.linspace(0, 300, 29)),
    "zero-T chain, exact-sparse": lambda: (chain_model(300), np.linspace(0, 200, 41)),
    "thermal chain, exact-sparse": lambda: (chain_model(40, n_th=0.2), np.linspace(0, 150, 23)),
    "ring, uneven times": lambda: (cn.ring(5, nonreciprocal=False), np.r_[0.5, np.geomspace(1, 500, 30)]),
}


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL * max(1.0, float(np.abs(b).max())))


@pytest.mark.parametrize("chunk", [1, 4, 7, 1000])
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_file_equals_one_in_memory_run(name, chunk, tmp_path):
    G, t = NETWORKS[name]()
    ref = cn.simulate(G, t)
    out = cn.simulate_to_file(G, t, tmp_path / "trace.nc", chunk_times=chunk, store_amplitudes=True)
    assert out.method == ref.method and out.n_times == t.size and out.cells == ref.cells
    assert out.stats["blocks"] == -(-t.size // min(chunk, t.size))
    with out.open() as ds:
        assert ds.attrs["method"] == ref.method
        np.testing.assert_array_equal(ds.time.values, t)
        assert list(ds.cell.values) == [str(c) for c in ref.cells]
        np.testing.assert_array_equal(ds.battery.values, ref.battery)
        _close(ds.energy.values, ref.energies)
        _close(ds.amplitude.values, ref.amplitudes)
        _close(ds.total_energy.values, ref.total_energy)
        _close(ds.battery_energy.values, ref.battery_energy)
        thermal = ref.battery_fluctuations is not None
        assert ("fluctuation" in ds) == thermal
        if thermal:
            _close(ds.fluctuation.values, ref.fluctuations)
    _close(out.final_state.alpha, ref.final_state.alpha)
    if ref.final_state.Nc is None:
        assert out.final_state.Nc is None
    else:
        _close(out.final_state.Nc, ref.final_state.Nc)


def test_cells_subset_state0_and_energies_only(tmp_path):
    """cells= keeps the chosen columns in their order with whole-network totals; a run continued from a state."""
    G = chain_model(200, n_th=0.1)
    start = cn.simulate(G, [0.0, 50.0]).final_state
    t = np.linspace(50, 250, 31)
    keep = [150, 3, 199]
    ref = cn.simulate(G, t, state0=start, cells=keep, store_amplitudes=False)
    out = cn.simulate_to_file(G, t, tmp_path / "sub.nc", state0=start, cells=keep, chunk_times=6)
    with xr.open_dataset(out.path) as ds:
        assert "amplitude" not in ds and ds.energy.shape == (31, 3)
        assert list(ds.cell.values) == ["150", "3", "199"]
        _close(ds.energy.values, ref.energies)
        _close(ds.total_energy.values, ref.total_energy)
        _close(ds.battery_energy.values, ref.battery_energy)
    _close(out.final_state.Nc, ref.final_state.Nc)
    assert out.final_state.n_cells == 200


def test_graph_initial_state_is_used(tmp_path):
    """A network's own alpha0 starts the first block at t = 0, as in simulate."""
    G = cn.chain(3)
    G.nodes[0]["alpha0"] = 2.0 + 1.0j
    t = np.linspace(10, 60, 11)
    ref = cn.simulate(G, t)
    out = cn.simulate_to_file(G, t, tmp_path / "a.nc", chunk_times=3)
    with out.open() as ds:
        _close(ds.energy.values, ref.energies)


def test_block_size_from_budget(tmp_path):
    """The block is the most output times whose estimate fits the budget; a smaller budget, smaller blocks,
    the same numbers; a budget below the fixed memory raises at once."""
    G, t = chain_model(500, sparse=True), np.linspace(0, 100, 200)
    ref = cn.simulate(G, t, store_amplitudes=False)
    budget = 400_000
    out = cn.simulate_to_file(G, t, tmp_path / "b.nc", max_bytes=budget)
    assert out.stats["block_bytes"] <= budget
    assert 1 < out.stats["block_times"] < t.size and out.stats["blocks"] > 1
    with out.open() as ds:
        _close(ds.energy.values, ref.energies)
    # one more chunk of output times per block would not fit (blocks are whole chunks of the file)
    more = out.stats["block_times"] + stream._CHUNK_ROWS
    bigger = stream._block_times(G, t.size, "exact-sparse", False, False, 500, more, None)
    assert bigger[1] > budget
    with pytest.raises(MemoryLimitError, match="max_bytes"):
        cn.simulate_to_file(G, t, tmp_path / "c.nc", max_bytes=1000)
    assert not (tmp_path / "c.nc").exists()


def test_memory_stays_bounded(tmp_path, monkeypatch):
    """Peak traced memory of a streamed run is far below what the in-memory run keeps."""
    monkeypatch.setattr(cn.memory, "MAPPED_MIN_BYTES", 1 << 62)  # NumPy's allocator, which tracemalloc sees
    G, t = chain_model(400, sparse=True), np.linspace(0, 200, 2001)
    cn.simulate_to_file(G, t[:5], tmp_path / "warm.nc")  # compile kernels outside the measurement
    tracemalloc.start()
    try:
        cn.simulate_to_file(G, t, tmp_path / "m.nc", max_bytes=300_000)
        _, streamed = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        ref = cn.simulate(G, t)
        _ = ref.energies
        _, in_memory = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert in_memory > 400 * 2001 * 16  # the amplitudes alone (12.8 MB)
    assert streamed < 2_000_000, streamed


def test_error_leaves_no_file(tmp_path, monkeypatch):
    """A block that fails (here the third one's result raises) leaves no file, and an older file intact."""
    G, t = cn.chain(4), np.linspace(0, 100, 30)
    target = tmp_path / "t.nc"
    target.write_text("older")
    real, calls = stream.simulation_result, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise SolverError("energy of cell 2 is not finite")
        return real(*args, **kwargs)

    monkeypatch.setattr(stream, "simulation_result", failing)
    with pytest.raises(SolverError, match="not finite"):
        cn.simulate_to_file(G, t, target, chunk_times=5)
    assert target.read_text() == "older"
    assert os.listdir(tmp_path) == ["t.nc"]  # no temporary file left either

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(stream, "simulation_result", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cn.simulate_to_file(G, t, tmp_path / "new.nc", chunk_times=5)
    assert os.listdir(tmp_path) == ["t.nc"]


def test_non_finite_state_leaves_no_file(tmp_path):
    """A real non-finite trace (a state whose energy overflows the float range) raises and writes nothing."""
    G = cn.two_cell()
    huge = cn.State(("a", "b"), np.array([0.0, 1e160 + 0j]))  # finite amplitude, energy 1e320 = inf
    with pytest.raises(SolverError, match="not finite"):
        cn.simulate_to_file(G, np.linspace(0, 400, 9), tmp_path / "u.nc", state0=huge, chunk_times=2)
    assert os.listdir(tmp_path) == []


def test_bad_input(tmp_path, monkeypatch):
    G, t = cn.chain(3), [0.0, 1.0]
    with pytest.raises(ChiralnetError, match="does not exist"):
        cn.simulate_to_file(G, t, tmp_path / "missing" / "t.nc")
    with pytest.raises(ChiralnetError, match="is a folder"):
        cn.simulate_to_file(G, t, tmp_path)
    with pytest.raises(ChiralnetError, match="chunk_times"):
        cn.simulate_to_file(G, t, tmp_path / "t.nc", chunk_times=0)
    with pytest.raises(ChiralnetError, match="max_bytes"):
        cn.simulate_to_file(G, t, tmp_path / "t.nc", max_bytes=float("nan"))
    with pytest.raises(ChiralnetError, match="unknown method"):
        cn.simulate_to_file(G, t, tmp_path / "t.nc", method="euler")
    with pytest.raises(ChiralnetError, match="protocol"):
        cn.simulate_to_file(cn.protocol([(G, 5.0)]), t, tmp_path / "t.nc")
    with pytest.raises(SolverError, match="increase strictly"):
        cn.simulate_to_file(G, [1.0, 0.5], tmp_path / "t.nc")
    monkeypatch.setitem(__import__("sys").modules, "h5netcdf", None)  # not installed
    with pytest.raises(ChiralnetError, match=r"chiralnet\[sweep\]"):
        cn.simulate_to_file(G, t, tmp_path / "t.nc")
    assert os.listdir(tmp_path) == []


def test_progress_bar(tmp_path, capsys):
    pytest.importorskip("tqdm")
    cn.simulate_to_file(cn.chain(3), np.linspace(0, 10, 12), tmp_path / "p.nc", chunk_times=4, progress=True)
    assert "12/12" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# File handling: what is at the target, odd names, signals (Ctrl-C, SIGTERM) in subprocesses.

import signal  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_fifo_at_the_target_is_never_replaced(tmp_path, monkeypatch):
    fifo = tmp_path / "pipe.nc"
    os.mkfifo(fifo)
    with pytest.raises(ChiralnetError, match=r"pipe.nc exists and is a FIFO \(named pipe\); .* refuses"):
        cn.simulate_to_file(cn.chain(3), [0.0, 1.0], fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and os.listdir(tmp_path) == ["pipe.nc"]
    # one made at the target while the file is written is not replaced either (checked again before the rename)
    real = stream.simulation_result

    def make_fifo(*args, **kwargs):
        if not (tmp_path / "late.nc").exists():
            os.mkfifo(tmp_path / "late.nc")
        return real(*args, **kwargs)

    monkeypatch.setattr(stream, "simulation_result", make_fifo)
    with pytest.raises(ChiralnetError, match="late.nc exists and is a FIFO"):
        cn.simulate_to_file(cn.chain(3), np.linspace(0, 10, 9), tmp_path / "late.nc", chunk_times=3)
    assert stat.S_ISFIFO(os.stat(tmp_path / "late.nc").st_mode)
    assert sorted(os.listdir(tmp_path)) == ["late.nc", "pipe.nc"]  # no temporary file


def test_nul_byte_in_the_path_is_refused(tmp_path):
    for bad in (str(tmp_path / "a\0b.nc"), os.fsencode(tmp_path / "a\0b.nc")):
        with pytest.raises(ChiralnetError, match="contains a NUL byte, which no file name can hold"):
            cn.simulate_to_file(cn.chain(3), [0.0, 1.0], bad)
    assert os.listdir(tmp_path) == []


def test_swallowed_interrupt_still_stops_after_the_block(tmp_path, monkeypatch):
    """A Ctrl-C whose KeyboardInterrupt is swallowed (as inside an h5py callback) stops the run at the end of
    the block: no further block runs and no file is left."""
    real, calls = stream.simulation_result, []

    def swallowing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.5)  # the handler runs here and raises; this "callback" swallows it
            except KeyboardInterrupt:
                pass
        return real(*args, **kwargs)

    monkeypatch.setattr(stream, "simulation_result", swallowing)
    with pytest.raises(KeyboardInterrupt):
        cn.simulate_to_file(cn.chain(3), np.linspace(0, 100, 30), tmp_path / "s.nc", chunk_times=3)
    assert len(calls) == 2 and os.listdir(tmp_path) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


LONG_RUN = """
import sys, numpy as np, chiralnet as cn
cn.simulate_to_file(cn.chain(4), np.linspace(0, 1e5, 400_000), sys.argv[1], chunk_times=64)
print("finished")
"""


def _start_long_run(tmp_path):
    """A long streamed run in a subprocess, once its temporary file exists (the write has started)."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.Popen([sys.executable, "-c", LONG_RUN, str(tmp_path / "trace.nc")], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]:
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline, "the write never started"
        time.sleep(0.05)
    time.sleep(0.3)  # some blocks in
    return p


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, -signal.SIGINT), (signal.SIGTERM, 128 + signal.SIGTERM)])
def test_signals_stop_the_run_and_leave_no_temporary_file(tmp_path, sig, code):
    """Ctrl-C ends the process (as an uncaught KeyboardInterrupt does) and SIGTERM with status 143, and neither
    leaves the temporary file or a target (SIGTERM used to kill it with the partial file left). Three trials
    each: a swallowed Ctrl-C let the file grow in 2 of 10 trials."""
    for trial in range(3):
        p = _start_long_run(tmp_path)
        p.send_signal(sig)
        try:
            out, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            pytest.fail(f"trial {trial}: {sig!r} did not stop the run within 60 s")
        assert p.returncode == code, (trial, p.returncode, err[-2000:])
        assert "finished" not in out
        assert os.listdir(tmp_path) == [], (trial, os.listdir(tmp_path))


# ---------------------------------------------------------------------------------------------------------
# The general Gaussian path (docs/theory/gaussian.md): squeezed baths, pumps, parametric links, squeezed starts.

def squeezed_network():
    G = cn.network(drive_frequency=1.0)
    cn.add_cell(G, "a", omega=1.0, kappa=0.5, n_th=0.2, m_th=0.15 * np.exp(0.3j), pump=0.1, drive=0.05,
                xi0=0.3 * np.exp(0.5j), alpha0=0.2)
    cn.add_cell(G, "b", omega=1.03, kappa=0.4, battery=True)
    cn.add_cell(G, "c", omega=0.98, kappa=0.3, n_th=0.1, battery=True)
    cn.add_chiral_link(G, "a", "b", gamma=0.2, m_th=0.05j, n_th=0.05)
    cn.add_parametric_link(G, "b", "c", 0.05 * np.exp(-0.4j))
    cn.add_coherent_link(G, "a", "c", 0.03)
    return G


@pytest.mark.parametrize("chunk, keep", [(1, None), (5, None), (1000, None), (4, ["c", "a"])])
def test_general_gaussian_file_equals_one_in_memory_run(chunk, keep, tmp_path):
    """It refused squeezed runs; now the streamed file holds energies, amplitudes, fluctuations and the
    anomalous moments Mc_ii of one in-memory simulate (RTOL: blocks continue from the final state)."""
    G = squeezed_network()
    t = np.r_[0.0, np.linspace(0.5, 60, 23), 75.0]
    ref = cn.simulate(G, t, cells=keep)
    assert ref.method == "exact-gaussian" and np.abs(ref.anomalous).max() > 0.01
    out = cn.simulate_to_file(G, t, tmp_path / "sq.nc", chunk_times=chunk, store_amplitudes=True, cells=keep)
    assert out.method == "exact-gaussian" and out.cells == ref.cells
    with out.open() as ds:
        assert ds.attrs["method"] == "exact-gaussian"
        _close(ds.energy.values, ref.energies)
        _close(ds.amplitude.values, ref.amplitudes)
        _close(ds.fluctuation.values, ref.fluctuations)
        _close(ds.anomalous.values, ref.anomalous)
        _close(ds.total_energy.values, ref.total_energy)
        _close(ds.battery_energy.values, ref.battery_energy)
        assert set(ds.data_vars) == set(ref.to_xarray().data_vars) | {"total_energy", "battery_energy"}
    _close(out.final_state.alpha, ref.final_state.alpha)
    _close(out.final_state.Nc, ref.final_state.Nc)
    _close(out.final_state.Mc, ref.final_state.Mc)


def test_general_gaussian_stream_from_squeezed_state_and_budget(tmp_path):
    """A phase-insensitive network run from a state with Mc streams on the general path too; a continued file
    equals the continued in-memory run; max_bytes too small for the propagators is refused with the method."""
    G = cn.chain(3, n_th=0.1)
    first = cn.simulate(squeezed_network(), [0.0, 10.0])
    s0 = cn.State(cn.cells(G), first.final_state.alpha, first.final_state.Nc, 10.0, None, first.final_state.Mc)
    t = np.linspace(10.0, 50.0, 9)
    ref = cn.simulate(G, t, state0=s0)
    out = cn.simulate_to_file(G, t, tmp_path / "s0.nc", state0=s0, max_bytes=5_000)
    assert out.method == ref.method == "exact-gaussian" and out.stats["blocks"] > 1
    with out.open() as ds:
        _close(ds.energy.values, ref.energies)
        _close(ds.anomalous.values, ref.anomalous)
    # continued blocks reuse the steady covariance and, on the same steps, the propagators: fewer than one
    # expm per block (each block has the steps {0, h}, h equal to the ulp or not)
    assert out.stats["propagators"] < 2 * out.stats["blocks"], out.stats
    with pytest.raises(MemoryLimitError, match="'exact-gaussian'"):
        cn.simulate_to_file(G, t, tmp_path / "tiny.nc", state0=s0, max_bytes=500)
    with pytest.raises(SolverError, match="rtol does not apply"):
        cn.simulate_to_file(squeezed_network(), t, tmp_path / "r.nc", rtol=1e-6)
