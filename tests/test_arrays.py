"""chiralnet.arrays: the array builders equal the graph builders."""

import numpy as np
import pytest
import scipy.linalg as la
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import chiralnet as cn
from chiralnet import config
from chiralnet import arrays, linalg  # noqa: F401
from chiralnet.arrays import chain_model, lattice_model
from chiralnet.linalg.cascade import cascade_order, forward_substitution, lyapunov_cascaded, solve_cascaded
from chiralnet.solve.exact_sparse import propagate_matrix

PATHS_AGREE = 1e-10      # sparse vs dense path, relative to the largest value
SOLVES_AGREE = 1e-12     # cascaded (triangular) vs general solve, relative
BUILDERS_AGREE = 1e-15   # array-level builder vs graph builder (same arithmetic)

TIMES = np.linspace(0.0, 600.0, 41)
UNEVEN = np.r_[0.0, np.geomspace(0.5, 800.0, 15)]

NETWORKS = {
    "two_cell": lambda: cn.two_cell(),
    "two_cell_reciprocal": lambda: cn.two_cell(nonreciprocal=False),
    "two_cell_optimal": lambda: cn.two_cell(kappa_a=0.1, kappa_b=0.003, gamma=0.01, optimal=True),
    "chain": lambda: cn.chain(12),
    "chain_reciprocal": lambda: cn.chain(12, nonreciprocal=False),
    "ring": lambda: cn.ring(7),
    "ring_reciprocal": lambda: cn.ring(7, nonreciprocal=False),
    "star": lambda: cn.star(6),
    "star_reciprocal": lambda: cn.star(6, nonreciprocal=False),
    "lattice": lambda: cn.lattice(3, 4),
    "lattice_reciprocal": lambda: cn.lattice(3, 4, nonreciprocal=False),
    "chain_thermal": lambda: cn.chain(8, n_th=0.3),
    "ring_thermal": lambda: cn.ring(5, n_th=0.2, nonreciprocal=False),
    "lattice_thermal": lambda: cn.lattice(2, 3, n_th=0.5),
}



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
