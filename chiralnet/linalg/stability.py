"""Stability of the generator M: a steady state exists iff every eigenvalue has a negative real part.

M is split into strongly connected blocks (its block-triangular form), so cascaded (chiral)
networks are checked exactly from the diagonal and are never eigendecomposed (a uniform chiral
chain is a Jordan-like, defective matrix). Errors name the cell on which the failing mode lives.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spla

from .. import config
from .._jit import jit
from ..errors import NoSteadyStateError
from .csr import diagonal, pruned_csr

__all__ = ["check_stability_arrays", "check_diagonal", "strong_blocks", "decay_rate_bound", "jump_steps"]


def check_stability_arrays(M, cells, order) -> None:
    """Raise NoSteadyStateError unless M (N, N) is stable; ``cells`` (N,) names the cells and
    ``order`` is the cascade order of M (None when M has feedback loops)."""
    if order is not None:  # triangular after permutation: the eigenvalues are the diagonal
        diag = diagonal(M)
        check_diagonal(M, cells, float(diag.real.max(initial=-np.inf)), float(np.abs(diag).max(initial=0.0)))
        return
    if type(M) is np.ndarray and M.shape[0] <= config.SMALL_MAX_CELLS and _stable_small(M):
        return
    M = sp.csr_array(M)
    scale = max(1.0, float(np.abs(M.data).max(initial=0.0)))
    tol = 1e-13 * scale
    # Sparsity pattern of the off-diagonal part (real ones: csgraph casts to float, and a purely
    # imaginary coupling -iJ must not vanish in that cast).
    coo = M.tocoo()
    keep = (coo.row != coo.col) & (coo.data != 0)
    off = sp.csr_array((np.ones(int(keep.sum())), (coo.row[keep], coo.col[keep])), shape=M.shape)
    n_blocks, label = csgraph.connected_components(off, directed=True, connection="strong")
    diag = M.diagonal()
    sizes = np.bincount(label, minlength=n_blocks)
    single = sizes[label] == 1
    bad = np.flatnonzero(single & (diag.real >= -tol))
    if bad.size:
        i = bad[0]
        _raise_unstable(cells, i, diag[i])
    # Every block at once: the Gershgorin test of each block's Hermitian part needs only the entries
    # inside blocks (one O(nnz) pass, not a Python loop per block); only failing blocks are cut out.
    inside = (label[coo.row] == label[coo.col]) & ~single[coo.row]
    within = sp.csr_array((coo.data[inside], (coo.row[inside], coo.col[inside])), shape=M.shape)
    doubtful = np.unique(label[~single & ~_hermitian_part_negative_rows(within, tol)])
    members = np.argsort(label, kind="stable")  # cells of block k: members[start[k]:start[k + 1]], ascending
    start = np.r_[0, np.cumsum(sizes)]
    for blk in doubtful:
        idx = members[start[blk]:start[blk + 1]]
        sub = M[idx][:, idx]
        if idx.size <= config.EXACT_MAX_CELLS:
            w, v = la.eig(sub.toarray())
            j = int(np.argmax(w.real))
            lam, vec = w[j], v[:, j]
        else:
            w, v = spla.eigs(sub.tocsc(), k=1, which="LR")
            lam, vec = w[0], v[:, 0]
        if lam.real >= -tol:
            _raise_unstable(cells, idx[int(np.argmax(abs(vec)))], lam)


def _stable_small(M) -> bool:
    """True when a small dense M (N <= ``config.SMALL_MAX_CELLS``) passes the test of
    :func:`check_stability_arrays` (strongly connected blocks, Gershgorin discs of each block's Hermitian
    part, a dense eigendecomposition of the blocks the discs leave in doubt), decided in one kernel and
    without scipy.sparse objects (~2 us instead of ~300). False: the general route decides and names the
    failing cell, so the message is that route's in every case.
    """
    M = np.ascontiguousarray(M, dtype=complex)
    tol = 1e-13 * max(1.0, float(np.abs(M).max(initial=0.0)))
    label, bad_single, doubtful = _small_blocks(M, tol)
    if bad_single >= 0:
        return False
    for rep in np.flatnonzero(doubtful):
        idx = np.flatnonzero(label == rep)
        if la.eig(M[np.ix_(idx, idx)])[0].real.max() >= -tol:  # the general route's call: the same decision
            return False
    return True


@jit
def _small_blocks(M, tol):
    """Strongly connected blocks of the off-diagonal pattern of a small dense M (N, N) complex, and which
    of them :func:`_hermitian_part_negative_rows` cannot prove stable.

    Returns (label (N,) int64: the first cell of each cell's block; bad_single: the first cell that is a
    block of its own with Re M_ii >= -tol, else -1; doubtful (N,) bool: at a block's first cell, True when
    the block has several cells and some row's Gershgorin disc of its Hermitian part reaches -tol).
    Blocks come from the transitive closure of the pattern (Warshall, O(N^3): small N only).
    """
    n = M.shape[0]
    reach = np.zeros((n, n), np.bool_)
    for i in range(n):
        reach[i, i] = True
        for j in range(n):
            if i != j and M[i, j] != 0:
                reach[i, j] = True
    for k in range(n):
        for i in range(n):
            if reach[i, k]:
                for j in range(n):
                    if reach[k, j]:
                        reach[i, j] = True
    label = np.empty(n, np.int64)
    size = np.zeros(n, np.int64)
    for i in range(n):
        for j in range(n):
            if reach[i, j] and reach[j, i]:
                label[i] = j
                break
        size[label[i]] += 1
    bad_single = -1
    for i in range(n):
        if size[label[i]] == 1 and M[i, i].real >= -tol:
            bad_single = i
            break
    doubtful = np.zeros(n, np.bool_)
    if bad_single >= 0:
        return label, bad_single, doubtful
    for i in range(n):
        if size[label[i]] == 1:
            continue
        d = 0.0
        total = 0.0
        total_d = 0.0
        for j in range(n):
            if label[j] == label[i]:
                h = (M[i, j] + np.conj(M[j, i])) * 0.5
                total += abs(h)
                if j == i:
                    d = h.real
                    total_d = abs(h)
        radius = total - total_d
        if not d + radius < -tol:
            doubtful[label[i]] = True
    return label, bad_single, doubtful


def check_diagonal(M, cells, max_real: float, max_abs: float) -> None:
    """Stability of a triangular (cascaded) M from its diagonal's largest real part and modulus:
    every Re M_ii must be < -1e-13 max(1, max|M_ii|). The failing cell is looked up only on failure."""
    tol = 1e-13 * max(1.0, max_abs)
    if max_real >= -tol:  # unstable, or the fast scale overflowed (|M_ii|^2 > 1e308): decide from the diagonal
        diag = diagonal(M)
        tol = 1e-13 * max(1.0, float(np.abs(diag).max(initial=0.0)))
        bad = np.flatnonzero(diag.real >= -tol)
        if bad.size:
            _raise_unstable(cells, int(bad[0]), diag[bad[0]])


def _hermitian_part_negative_rows(S, tol) -> np.ndarray:
    """Sufficient for stability, O(nnz): per row (N,) bool, whether its Gershgorin disc of (S + S^H)/2
    lies left of -tol; a block whose rows all do is stable.

    The real part of every eigenvalue of S lies in the numerical range of its Hermitian part, here
    -D/2 (damping and reservoirs), so a damped network (every cell with kappa > 0, or strong enough
    reservoirs) is proven stable without an eigendecomposition. S holds only entries inside blocks,
    so each row's disc is that of its block.
    """
    S = sp.csr_array(S)
    H = (S + S.conj().T) * 0.5
    d = H.diagonal()
    radius = np.asarray(abs(H).sum(axis=1)).ravel() - np.abs(d)
    return d.real + radius < -tol


def _raise_unstable(cells, i, lam):
    raise NoSteadyStateError(
        f"no steady state: a mode of M has eigenvalue {complex(lam):.6g} (real part >= 0) and lives mostly on "
        f"cell {cells[i]!r}; give it local damping (kappa > 0) or couple it to a reservoir"
    )



def strong_blocks(pattern):
    """Strongly connected blocks of a boolean (N, N) sparsity pattern, for the batched kernels:
    (blk_ptr (B + 1,), blk_idx (N,)) int64, the cells of block b being blk_idx[blk_ptr[b]:blk_ptr[b + 1]]."""
    off = np.array(pattern, bool)
    np.fill_diagonal(off, False)
    nb, label = csgraph.connected_components(sp.csr_array(off.astype(float)), directed=True, connection="strong")
    order = np.argsort(label, kind="stable").astype(np.int64)
    ptr = np.r_[0, np.cumsum(np.bincount(label, minlength=nb))].astype(np.int64)
    return ptr, order


def decay_rate_bound(M) -> float:
    """A lower bound d on the decay rate: ||e^{M t}||_2 <= e^{-d t / 2} for t >= 0 (0 when none is proven).

    M = -iH - D/2 has Hermitian part -D/2, so ||e^{Mt}||_2 <= e^{-lambda_min(D) t / 2}; Gershgorin's
    discs of D = -(M + M^H) bound lambda_min(D) from below in O(nnz).
    """
    A = pruned_csr(M)
    D = -(A + A.conj().T)
    d = D.diagonal().real
    radius = np.asarray(abs(D).sum(axis=1)).ravel() - np.abs(D.diagonal())
    return max(0.0, float((d - radius).min(initial=np.inf)))


def jump_steps(M, steps) -> np.ndarray:
    """(K,) bool: steps after which e^{M h} (and e^{conj(M) h} . e^{M^T h}) is below 2^-60 in norm, proven
    by :func:`decay_rate_bound`, so the state there is the steady state to machine precision."""
    d = decay_rate_bound(M)
    return (d * np.asarray(steps, float) / 2 >= 60 * np.log(2.0)) if d > 0 else np.zeros(len(steps), bool)
