"""Memory estimates refuse oversized requests at once, before allocating them."""

import tracemalloc

import numpy as np
import pytest

import chiralnet as cn
from chiralnet import config, memory
from chiralnet import arrays as S

SMALL_PEAK = 100e6  # bytes: a refused request allocates no more than this (time-grid bookkeeping)


def refused_without_allocating(fn, match):
    tracemalloc.start()
    try:
        with pytest.raises(cn.MemoryLimitError, match=match) as err:
            fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < SMALL_PEAK, peak
    return str(err.value)


def test_oversized_simulation_is_refused_with_estimate_and_fixes():
    model = S.chain_model(100_000)
    times = np.linspace(0.0, 1.0, 500_000)  # 5e10 output entries: about a terabyte
    msg = refused_without_allocating(lambda: cn.simulate(model, times), r"GB")
    assert "would need about" in msg and "store_amplitudes=False" in msg and "fewer output times" in msg
    assert "100000 cells" in msg
    # the estimate is honest: energies alone are 8 bytes per entry
    assert memory.simulation_bytes(100_000, 500_000, method="exact-sparse", thermal=False,
                                   store_amplitudes=False)["energies (T x N)"] == 8 * 100_000 * 500_000


def test_memory_limit_from_config(monkeypatch):
    monkeypatch.setattr(config, "MEMORY_LIMIT_GB", 0.001)
    msg = refused_without_allocating(lambda: cn.simulate(S.chain_model(2000), np.linspace(0, 10, 200)),
                                     "MEMORY_LIMIT_GB")
    assert "0.001 GB" in msg
    monkeypatch.setattr(config, "MEMORY_LIMIT_GB", None)
    assert memory.limit_bytes() == pytest.approx(config.MEMORY_FRACTION * memory.physical_bytes())


def test_thermal_fluctuation_matrix_is_refused_when_too_large():
    model = S.chain_model(300_000, n_th=0.1)  # N x N complex = 1.4 TB
    msg = refused_without_allocating(lambda: cn.simulate(model, [0.0, 1.0]), "zero-temperature")
    assert "fluctuation" in msg
    refused_without_allocating(lambda: cn.steady_state(model), "steady_state")


def test_oversized_array_builder_is_refused():
    msg = refused_without_allocating(lambda: S.chain_model(10**11), "fewer cells")
    assert "chain" in msg


def test_check_passes_small_requests():
    assert memory.check({"a": 10.0, "b": 20.0}, "x", "y") == 30.0
    assert memory.check(5.0, "x", "y") == 5.0


def test_store_amplitudes_false_saves_memory_only_with_exact_sparse():
    # "exact" and rk45 compute the (T, N) amplitudes either way, so the estimate keeps them
    # and the refusal does not suggest store_amplitudes=False as a fix.
    for method in ("exact", "rk45"):
        items = memory.simulation_bytes(10, 100, method=method, thermal=False, store_amplitudes=False)
        assert items["amplitudes (T x N complex)"] == 16 * 10 * 100
    assert "amplitudes (T x N complex)" not in memory.simulation_bytes(10, 100, method="exact-sparse",
                                                                       thermal=False, store_amplitudes=False)
    model = S.chain_model(100_000)  # built first: only the refused simulate is measured
    msg = refused_without_allocating(lambda: cn.simulate(model, np.linspace(0.0, 1.0, 500_000), method="rk45"), "GB")
    assert "store_amplitudes=False" not in msg and "fewer output times" in msg


def test_check_cells_counts_exactly_at_any_size(monkeypatch):
    monkeypatch.setattr(config, "MEMORY_LIMIT_GB", 1.0)
    assert memory.check_cells(1000, "chain(1000)") < 1e7
    with pytest.raises(cn.MemoryLimitError, match=r"chain\(10\*\*9\) would need about 2.4e\+03 GB .* limit of 1 GB"):
        memory.check_cells(10**9, "chain(10**9)")
    with pytest.raises(cn.MemoryLimitError, match="more than 1e300 GB"):
        memory.check_cells(10**400, "chain(10**400)")  # no OverflowError on the way
    assert memory.format_bytes(2.5e9) == "2.5 GB"


def test_check_disk_names_the_folder(tmp_path):
    memory.check_disk(1, tmp_path / "new" / "out", "a sweep", "fewer points")
    with pytest.raises(cn.MemoryLimitError, match="would write about .* to .*out, which has .* free"):
        memory.check_disk(10**30, tmp_path / "out", "a sweep", "fewer points")


def test_simulation_bytes_stay_below_the_bound_the_small_run_skips_with():
    """simulate skips the itemised estimate when SIMULATION_BYTES_BOUND T (N + 1)^2 fits the limit: that
    product must bound every estimate, for every method and option (nnz <= N^2, distinct steps <= T)."""
    from chiralnet.solve.run import SIMULATION_BYTES_BOUND

    rng = np.random.default_rng(21)
    for _ in range(3000):
        n, t = int(rng.integers(1, 5000)), int(rng.integers(1, 5000))
        method = ("exact", "exact-sparse", "rk45")[int(rng.integers(3))]
        items = memory.simulation_bytes(n, t, method=method, thermal=bool(rng.integers(2)),
                                        store_amplitudes=bool(rng.integers(2)), nnz=int(rng.integers(0, n * n + 1)),
                                        n_steps=int(rng.integers(1, t + 1)), n_kept=int(rng.integers(1, n + 1)))
        assert sum(items.values()) <= SIMULATION_BYTES_BOUND * t * (n + 1) ** 2


def test_steady_state_bytes_stay_below_the_bound_the_small_solve_skips_with():
    from chiralnet.solve.stationary import STEADY_BYTES_BOUND

    rng = np.random.default_rng(22)
    for _ in range(3000):
        n = int(rng.integers(1, 5000))
        items = memory.steady_state_bytes(n, nnz=int(rng.integers(0, n * n + 1)), thermal=bool(rng.integers(2)),
                                          cascaded=bool(rng.integers(2)), sparse=bool(rng.integers(2)))
        assert sum(items.values()) <= STEADY_BYTES_BOUND * (n + 1) ** 2
