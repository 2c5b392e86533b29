"""chiralnet.arrays: the array builders equal the graph builders."""

import numpy as np
import pytest

import chiralnet as cn
from chiralnet.arrays import chain_model, lattice_model

BUILDERS_AGREE = 1e-15   # array-level builder vs graph builder (same arithmetic)


def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def test_array_builders_equal_graph_builders():
    cases = [
        (chain_model, cn.chain, (2,), {}),
        (chain_model, cn.chain, (9,), dict(n_th=0.2, kappa=0.01, gamma=0.05, drive=0.2 + 0.1j)),
        (chain_model, cn.chain, (6,), dict(nonreciprocal=False, J=0.03)),
        (chain_model, cn.chain, (5,), dict(omega=1.3, drive_frequency=1.0)),
        (lattice_model, cn.lattice, (3, 4), dict(n_th=0.1)),
        (lattice_model, cn.lattice, (1, 5), dict(nonreciprocal=False)),
    ]
    for fast, graph, args, opts in cases:
        a = fast(*args, **opts)
        b = cn.build_model(graph(*args, **opts))
        assert a.cells == b.cells
        for key in ("omega", "drive", "battery"):
            assert np.array_equal(getattr(a, key), getattr(b, key)), key
        assert a.drive_frequency == b.drive_frequency
        assert rel(a.dense_M(), b.dense_M()) <= BUILDERS_AGREE
        assert (a.Q is None) == (b.Q is None)
        if a.Q is not None:
            assert rel(a.dense_Q(), b.dense_Q()) <= BUILDERS_AGREE
    with pytest.raises(TypeError, match="kapa"):
        chain_model(4, kapa=0.1)
    with pytest.raises(cn.NetworkError, match="drop J"):
        chain_model(4, J=0.1)
    # Same checks as the graph builders, which add_cell(G, 0, ...) would raise.
    for bad, key in ((dict(kappa=-0.1), "kappa"), (dict(omega=0.0), "omega"), (dict(drive="0.1"), "drive"),
                     (dict(gamma="0.04"), "gamma"), (dict(n_th=float("nan")), "n_th")):
        with pytest.raises(cn.NetworkError, match=key):
            lattice_model(2, 3, **bad)
        with pytest.raises(cn.NetworkError, match=key):
            cn.lattice(2, 3, **bad)


@pytest.mark.parametrize("nonreciprocal", [True, False])
def test_array_builders_with_per_cell_and_per_link_arrays(nonreciprocal):
    rng = np.random.default_rng(3)
    for fast, graph, args, n, L in ((chain_model, cn.chain, (7,), 7, 6), (lattice_model, cn.lattice, (3, 4), 12, 17)):
        opts = dict(omega=rng.uniform(0.9, 1.1, n), kappa=rng.uniform(0.001, 0.01, n), n_th=rng.uniform(0, 0.4, n),
                    drive=rng.normal(size=n) + 1j * rng.normal(size=n), gamma=rng.uniform(0.01, 0.08, L),
                    nonreciprocal=nonreciprocal)
        if nonreciprocal:
            opts["n_th_link"] = rng.uniform(0, 0.3, L)
        else:
            opts["J"] = rng.normal(size=L) + 1j * rng.normal(size=L)
        a = fast(*args, **opts)
        b = cn.build_model(graph(*args, **opts))
        assert a.cells == b.cells and a.drive_frequency == b.drive_frequency
        for key in ("omega", "drive", "battery"):
            assert np.array_equal(getattr(a, key), getattr(b, key)), key
        assert rel(a.dense_M(), b.dense_M()) <= BUILDERS_AGREE
        assert rel(a.dense_Q(), b.dense_Q()) <= BUILDERS_AGREE
    with pytest.raises(cn.NetworkError, match="'gamma' has one entry per link: expected 6, got 5"):
        chain_model(7, gamma=np.full(5, 0.04))
