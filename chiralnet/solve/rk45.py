"""Method "rk45": adaptive Dormand-Prince 5(4) with error control on rtol/atol.

For what the exact forms cannot do cheaply (very sparse output grids, and later time-dependent
drives). FSAL; the step is only shortened to land on an output time, never forced small; its cost
is set by accuracy. Dense M (alpha and, with thermal noise, vec(Nc)) or CSR M (alpha only).

Options: ``rtol`` (default ``config.RTOL``), ``atol`` (default ``config.ATOL``), ``max_steps``
(default ``config.RK45_MAX_STEPS``).
"""

from __future__ import annotations

import numpy as np

from .. import config
from .._jit import jit
from ..errors import SolverError
from ..model import Model, State
from .base import Method, Trace

__all__ = ["RK45", "dopri5_tableau"]

# Status codes returned by the adaptive kernel.
OK = 0
MAX_STEPS = 1
STEP_UNDERFLOW = 2
NOT_FINITE = 3

_C = np.array([0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0])


_A = np.array([
    [0, 0, 0, 0, 0, 0],
    [1 / 5, 0, 0, 0, 0, 0],
    [3 / 40, 9 / 40, 0, 0, 0, 0],
    [44 / 45, -56 / 15, 32 / 9, 0, 0, 0],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729, 0, 0],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656, 0],
    [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
])


_B = np.array([35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0])


_E = np.array([71 / 57600, 0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40])  # b5 - b4


def dopri5_tableau():
    """(A (7, 6), B (7,), E (7,)) of Dormand-Prince 5(4), passed to the kernels as arrays."""
    return _A.copy(), _B.copy(), _E.copy()


@jit
def _rhs_dense(M, Mc, b, Q, n, thermal, y, out):
    """out = f(y) for y = [alpha (n), vec(Nc) (n*n) if thermal]."""
    a = y[:n]
    da = M @ a
    for i in range(n):
        out[i] = da[i] + b[i]
    if thermal:
        Nc = y[n:].reshape((n, n))
        X = Mc @ Nc
        d = X + np.conj(X).T + Q
        out[n:] = d.ravel()


@jit
def _rhs_csr(indptr, indices, data, b, n, y, out):
    """out = M y + b for M in CSR form (alpha only, zero temperature)."""
    for i in range(n):
        acc = b[i]
        for p in range(indptr[i], indptr[i + 1]):
            acc += data[p] * y[indices[p]]
        out[i] = acc


@jit
def _error_norm(err, y, y_new, rtol, atol):
    s = 0.0
    for i in range(y.shape[0]):
        scale = atol + rtol * max(abs(y[i]), abs(y_new[i]))
        e = abs(err[i]) / scale
        s += e * e
    return np.sqrt(s / y.shape[0])


@jit
def dopri5(sparse, M, Mc, indptr, indices, data, b, Q, thermal, y0, times, rtol, atol,
           max_steps, A, B, E, out_y_diag, block_idx, out_block, stats):
    """Integrate from t = 0 to each of ``times`` with adaptive Dormand-Prince 5(4).

    Dense (``sparse`` False): y = [alpha, vec(Nc)] with M, Mc = conj(M), Q (n, n).
    Sparse: y = alpha, M in CSR (indptr, indices, data). Steps are chosen by the error
    estimate against rtol/atol and shortened only to land exactly on output times.
    Writes out_y_diag (T, n, 2): alpha and diag(Nc) at each output time, and (thermal) out_block
    (T, B, B) = Nc[block_idx, block_idx];
    stats[0..2] = accepted steps, rejected steps, rhs evaluations. Returns (status, y).
    """
    n = b.shape[0]
    dim = y0.shape[0]
    y = y0.copy()
    k = np.empty((7, dim), dtype=np.complex128)
    ytmp = np.empty(dim, dtype=np.complex128)
    y_new = np.empty(dim, dtype=np.complex128)
    err = np.empty(dim, dtype=np.complex128)

    def f(yy, out):
        if sparse:
            _rhs_csr(indptr, indices, data, b, n, yy, out)
        else:
            _rhs_dense(M, Mc, b, Q, n, thermal, yy, out)

    f(y, k[0])
    stats[2] += 1
    # Initial step (Hairer, Norsett & Wanner II.4).
    d0 = _error_norm(y, y, y, rtol, atol) / max(rtol, 1e-300)
    d1 = _error_norm(k[0], y, y, rtol, atol) / max(rtol, 1e-300)
    h = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    t_end = times[times.shape[0] - 1] if times.shape[0] > 0 else 0.0
    if t_end > 0:
        h = min(h, t_end)
    t = 0.0
    steps = 0
    for out_i in range(times.shape[0]):
        target = times[out_i]
        while t < target:
            if steps >= max_steps:
                return MAX_STEPS, y
            h_try = min(h, target - t)
            last = h_try >= target - t
            while True:
                for s in range(1, 7):
                    for i in range(dim):
                        acc = y[i]
                        for r in range(s):
                            if A[s, r] != 0.0:
                                acc += h_try * A[s, r] * k[r, i]
                        ytmp[i] = acc
                    f(ytmp, k[s])
                stats[2] += 6
                for i in range(dim):
                    acc = y[i]
                    e = 0j
                    for r in range(7):
                        acc += h_try * B[r] * k[r, i]
                        e += h_try * E[r] * k[r, i]
                    y_new[i] = acc
                    err[i] = e
                # k[6] = f(y_new) already (FSAL: row 6 of A equals B).
                en = _error_norm(err, y, y_new, rtol, atol)
                if not np.isfinite(en):
                    return NOT_FINITE, y
                if en <= 1.0:
                    factor = 10.0 if en == 0.0 else min(10.0, 0.9 * en ** -0.2)
                    break
                stats[1] += 1
                h_try *= max(0.2, 0.9 * en ** -0.2)
                last = False
                if h_try < 1e-14 * max(1.0, abs(t)):
                    return STEP_UNDERFLOW, y
            t = target if last else t + h_try
            y[:] = y_new
            k[0, :] = k[6, :]
            steps += 1
            stats[0] += 1
            h_new = h_try * factor
            # A step shortened to hit an output time must not shrink the next proposal.
            h = max(h_new, h) if last else h_new
        for i in range(n):
            out_y_diag[out_i, i, 0] = y[i]
            out_y_diag[out_i, i, 1] = y[n + i * n + i].real if thermal else 0.0
        if thermal:
            for u in range(block_idx.shape[0]):
                for v in range(block_idx.shape[0]):
                    out_block[out_i, u, v] = y[n + block_idx[u] * n + block_idx[v]]
    return OK, y



_STATUS = {
    MAX_STEPS: "reached max_steps before the last output time; raise max_steps or loosen rtol/atol",
    STEP_UNDERFLOW: "step size underflow; the equations are too stiff for rk45 at this tolerance",
    NOT_FINITE: "the state became non-finite (inf or NaN); is the network unstable?",
}


def _run(model: Model, state0: State, times, options) -> Trace:
    rtol = config.RTOL if options.get("rtol") is None else options["rtol"]
    atol = config.ATOL if options.get("atol") is None else options["atol"]
    max_steps = config.RK45_MAX_STEPS if options.get("max_steps") is None else options["max_steps"]
    if not (0 < rtol < 1 and 0 < atol < np.inf):
        raise SolverError(f"rtol must be in (0, 1) and atol a finite number > 0, got rtol={rtol}, atol={atol}")
    if not 1 <= max_steps < 2**62:
        raise SolverError(f"max_steps must be a finite number >= 1, got {max_steps}")
    max_steps = int(max_steps)
    n = model.n_cells
    b = model.forcing
    A, B, E = dopri5_tableau()
    empty_c = np.zeros((0, 0), complex)
    thermal = model.thermal or state0.Nc is not None
    if model.is_sparse and not thermal:
        M = model.M
        args = (True, empty_c, empty_c, M.indptr.astype(np.int64), M.indices.astype(np.int64),
                M.data.astype(complex), b, empty_c, False, np.array(state0.alpha, complex))
    else:
        M = np.ascontiguousarray(model.dense_M())
        y0 = np.array(state0.alpha, complex)
        Q = np.ascontiguousarray(model.dense_Q())
        if thermal:
            y0 = np.concatenate([y0, state0.dense_Nc().ravel()])
        empty_i = np.zeros(0, np.int64)
        args = (False, M, np.ascontiguousarray(np.conj(M)), empty_i, empty_i, np.zeros(0, complex), b, Q,
                thermal, y0)
    out = np.zeros((times.size, n, 2), complex)
    stats = np.zeros(3, np.int64)
    idx = options.get("block", np.flatnonzero(model.battery)).astype(np.int64) if thermal else np.zeros(0, np.int64)
    block = np.empty((times.size, idx.size, idx.size), complex)
    status, y = dopri5(*args, times, float(rtol), float(atol), max_steps, A, B, E, out, idx, block, stats)
    if status != OK:
        raise SolverError(f"rk45 failed: {_STATUS[status]}")
    alpha = out[:, :, 0]
    fluct = out[:, :, 1].real.copy()
    energies = model.omega * (alpha.real**2 + alpha.imag**2 + fluct)
    Nc = y[n:].reshape(n, n).copy() if thermal else None
    if Nc is not None:
        Nc = 0.5 * (Nc + Nc.conj().T)
    final = State(model.cells, y[:n].copy(), Nc)
    return Trace(alpha, energies, fluct, final,
                 {"steps": int(stats[0]), "rejected": int(stats[1]), "rhs_evaluations": int(stats[2])},
                 block if thermal else None)


#: Adaptive Dormand-Prince 5(4).
RK45 = Method("rk45", _run, frozenset({"rtol", "atol", "max_steps"}),
              "adaptive Dormand-Prince 5(4) with rtol/atol error control")

