"""Method "rk45": adaptive Dormand-Prince 5(4) with error control on rtol/atol.

For what the exact forms cannot do cheaply (very sparse output grids). It is the one adaptive
integrator, :func:`chiralnet.solve.dopri5.integrate`, on the network's constant system: dense M
(alpha and, with thermal noise, vec(Nc)) or CSR M (alpha only); outputs by dense output, so its cost
is set by accuracy, not by the output grid.

Options: ``rtol`` (default ``config.RTOL``), ``atol`` (default ``config.ATOL``), ``max_steps``
(default ``config.RK45_MAX_STEPS``).
"""

from __future__ import annotations

import numpy as np

from .. import config
from ..errors import SolverError
from ..model import Model, State
from .base import Method, Trace
from .dopri5 import OK, STATUS, System, integrate

__all__ = ["RK45"]

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
    thermal = model.thermal or state0.Nc is not None
    system = System(model.M, model.forcing, model.dense_Q() if thermal else None)
    y0 = np.array(state0.alpha, complex)
    idx = options.get("block", np.flatnonzero(model.battery)).astype(np.int64) if thermal else np.zeros(0, np.int64)
    keep = np.arange(n)
    if thermal:
        y0 = np.concatenate([y0, state0.dense_Nc().ravel()])
        keep = np.concatenate([keep, n + np.arange(n) * (n + 1), n + (idx[:, None] * n + idx[None, :]).ravel()])
    status, out, y, stats = integrate(system, y0, 0.0, times, keep=keep, rtol=rtol, atol=atol, max_steps=max_steps)
    if status != OK:
        raise SolverError(f"rk45 stopped at t = {stats['end_time']:.6g} after {stats['steps']} steps: {STATUS[status]}")
    alpha = out[:, :n]
    fluct = out[:, n:2 * n].real.copy() if thermal else np.zeros((times.size, n))
    block = out[:, 2 * n:].reshape(times.size, idx.size, idx.size) if thermal else None
    energies = model.omega * (alpha.real**2 + alpha.imag**2 + fluct)
    Nc = y[n:].reshape(n, n).copy() if thermal else None
    if Nc is not None:
        Nc = 0.5 * (Nc + Nc.conj().T)
    final = State(model.cells, y[:n].copy(), Nc)
    stats = {k: v for k, v in stats.items() if k not in ("end_time", "projected_steps")}
    return Trace(alpha, energies, fluct, final, stats, block)


#: Adaptive Dormand-Prince 5(4).
RK45 = Method("rk45", _run, frozenset({"rtol", "atol", "max_steps"}),
              "adaptive Dormand-Prince 5(4) with rtol/atol error control")

