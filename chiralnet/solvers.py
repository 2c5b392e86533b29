"""simulate and steady_state: validate, prepare arrays, call the kernels, wrap the result.

Methods live in :data:`METHODS` (name -> function(model, times, options) -> dict); an unknown
name raises and lists the valid ones. ``method="auto"`` picks one by size and grid.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spla

from . import config, kernels
from .errors import ChiralnetError, NoSteadyStateError, SolverError
from .model import Model, build_model
from .results import SimulationResult, SteadyState

__all__ = ["simulate", "steady_state", "METHODS", "check_stability"]


def _as_model(G_or_model) -> Model:
    return G_or_model if isinstance(G_or_model, Model) else build_model(G_or_model)


def _check_times(times) -> np.ndarray:
    if np.iscomplexobj(times):
        raise SolverError(f"times must be real numbers (1/omega), got complex values {times!r}")
    try:
        t = np.asarray(times, dtype=float)
    except (TypeError, ValueError):
        raise SolverError(f"times must be a 1-D array of numbers, got {times!r}") from None
    if t.ndim != 1 or t.size == 0:
        raise SolverError(f"times must be a non-empty 1-D array (1/omega), got shape {t.shape}")
    bad = np.flatnonzero(~np.isfinite(t))
    if bad.size:
        raise SolverError(f"times[{bad[0]}] = {t[bad[0]]} is not finite")
    if t[0] < 0:
        raise SolverError(f"times[0] = {t[0]} is negative; the simulation starts at t = 0")
    steps = np.diff(t)
    bad = np.flatnonzero(steps <= 0)
    if bad.size:
        raise SolverError(
            f"times must increase strictly: times[{bad[0] + 1}] = {t[bad[0] + 1]} <= times[{bad[0]}] = {t[bad[0]]}"
        )
    return t


# ---------------------------------------------------------------------------------------------
# Exact propagation: e^{M dt} via the augmented matrix exponential (no steady state needed).


def _distinct_steps(times):
    steps = np.diff(np.r_[0.0, times])
    unique, kind = np.unique(steps, return_inverse=True)
    return unique, kind.astype(np.int64)


def _affine_propagators(M, b, dts):
    """P_k = e^{M dt_k} and c_k = int_0^dt_k e^{M s} b ds, shapes (K, N, N), (K, N)."""
    n = M.shape[0]
    aug = np.zeros((dts.size, n + 1, n + 1), complex)
    aug[:, :n, :n] = M[None] * dts[:, None, None]
    aug[:, :n, n] = b[None] * dts[:, None]
    E = la.expm(aug)
    return np.ascontiguousarray(E[:, :n, :n]), np.ascontiguousarray(E[:, :n, n])


def _noise_propagators(P, M, Q, dts):
    """Van Loan: W_k = int_0^dt e^{A s} Q e^{A^H s} ds with A = conj(M); Phi_k = conj(P_k).

    The Van Loan block e^{-A h} grows like e^{mu h}, mu = lambda_max(D)/2 (the log-norm of -A),
    so it overflows for mu dt > ~709 (seen as a non-finite state). It is therefore evaluated at
    h = dt / 2^s with mu h <= 1, and W is doubled back up:
    W(2h) = W(h) + Phi(h) W(h) Phi(h)^H, Phi(2h) = Phi(h)^2.
    """
    n = M.shape[0]
    A = np.conj(M)
    mu = max(0.0, float(np.linalg.eigvalsh(-(A + np.conj(A).T) / 2).max()))
    levels = np.zeros(dts.size, np.int64)
    if mu > 0:
        levels = np.maximum(0, np.ceil(np.log2(np.maximum(mu * dts, 1e-300)))).astype(np.int64)
    h = dts / 2.0**levels
    C = np.zeros((dts.size, 2 * n, 2 * n), complex)
    C[:, :n, :n] = -A[None] * h[:, None, None]
    C[:, :n, n:] = Q[None] * h[:, None, None]
    C[:, n:, n:] = np.conj(A).T[None] * h[:, None, None]
    F = la.expm(C)
    Phi_h = np.conj(F[:, n:, n:]).swapaxes(1, 2)   # e^{A h} = (e^{A^H h})^H
    W = Phi_h @ F[:, :n, n:]
    for level in range(int(levels.max(initial=0))):
        k = levels > level
        W[k] = W[k] + Phi_h[k] @ W[k] @ np.conj(Phi_h[k]).swapaxes(1, 2)
        Phi_h[k] = Phi_h[k] @ Phi_h[k]
    Phi = np.conj(P)
    W = 0.5 * (W + np.conj(np.swapaxes(W, 1, 2)))  # Hermitian by construction; remove rounding
    return np.ascontiguousarray(Phi), np.ascontiguousarray(W)


def _exact_fits(model: Model, times) -> bool:
    n = model.n_cells
    if n > config.EXACT_MAX_CELLS:
        return False
    k = _distinct_steps(times)[0].size
    per = (2 * n) ** 2 if model.thermal else (n + 1) ** 2
    return k * per <= config.EXACT_MAX_PROPAGATOR_ENTRIES


def _run_exact(model: Model, times, options):
    if not _exact_fits(model, times):
        raise SolverError(
            f"method 'exact' would need too many dense propagators ({model.n_cells} cells, "
            f"{_distinct_steps(times)[0].size} distinct time steps); use a uniform time grid or method='rk45'"
        )
    M = model.dense_M()
    dts, kind = _distinct_steps(times)
    P, c = _affine_propagators(M, model.forcing, dts)
    T, n = times.size, model.n_cells
    alpha = np.empty((T, n), complex)
    energies = np.empty((T, n))
    kernels.propagate_affine(P, c, kind, model.alpha0, model.omega, alpha, energies)
    fluct = np.zeros((T, n))
    cov = None
    if model.thermal:
        Phi, W = _noise_propagators(P, M, model.dense_Q(), dts)
        cov = kernels.propagate_fluctuations(Phi, W, kind, np.diag(model.n0).astype(complex), fluct)
        energies += model.omega * fluct
    return dict(amplitudes=alpha, energies=energies, fluctuations=fluct, covariance=cov,
                stats={"propagators": int(dts.size)})


# ---------------------------------------------------------------------------------------------
# Adaptive Dormand-Prince 5(4).

_STATUS = {
    kernels.MAX_STEPS: "reached max_steps before the last output time; raise max_steps or loosen rtol/atol",
    kernels.STEP_UNDERFLOW: "step size underflow; the equations are too stiff for rk45 at this tolerance",
    kernels.NOT_FINITE: "the state became non-finite (inf or NaN); is the network unstable?",
}


def _run_rk45(model: Model, times, options):
    rtol = config.RTOL if options.get("rtol") is None else options["rtol"]
    atol = config.ATOL if options.get("atol") is None else options["atol"]
    max_steps = 10_000_000 if options.get("max_steps") is None else options["max_steps"]
    if not (rtol > 0 and atol > 0):
        raise SolverError(f"rtol and atol must be > 0, got rtol={rtol}, atol={atol}")
    if not max_steps >= 1:
        raise SolverError(f"max_steps must be >= 1, got {max_steps}")
    max_steps = int(max_steps)
    n = model.n_cells
    b = model.forcing
    A, B, E = kernels.dopri5_tableau()
    empty_c = np.zeros((0, 0), complex)
    thermal = model.thermal
    if model.is_sparse and not thermal:
        M = model.M
        args = (True, empty_c, empty_c, M.indptr.astype(np.int64), M.indices.astype(np.int64),
                M.data.astype(complex), b, empty_c, False, model.alpha0.copy())
    else:
        M = np.ascontiguousarray(model.dense_M())
        y0 = model.alpha0.copy()
        Q = np.ascontiguousarray(model.dense_Q())
        if thermal:
            y0 = np.concatenate([y0, np.diag(model.n0).astype(complex).ravel()])
        empty_i = np.zeros(0, np.int64)
        args = (False, M, np.ascontiguousarray(np.conj(M)), empty_i, empty_i, np.zeros(0, complex), b, Q,
                thermal, y0)
    out = np.zeros((times.size, n, 2), complex)
    stats = np.zeros(3, np.int64)
    status, y = kernels.dopri5(*args, times, float(rtol), float(atol), max_steps, A, B, E, out, stats)
    if status != kernels.OK:
        raise SolverError(f"rk45 failed: {_STATUS[status]}")
    alpha = out[:, :, 0]
    fluct = out[:, :, 1].real.copy()
    energies = model.omega * (alpha.real**2 + alpha.imag**2 + fluct)
    cov = y[n:].reshape(n, n) if thermal else None
    return dict(amplitudes=alpha, energies=energies, fluctuations=fluct, covariance=cov,
                stats={"steps": int(stats[0]), "rejected": int(stats[1]), "rhs_evaluations": int(stats[2])})


#: name -> function(model, times, options) -> dict of arrays. Add a method by adding an entry.
METHODS = {"exact": _run_exact, "rk45": _run_rk45}

_OPTIONS = {"rtol", "atol", "max_steps"}


def _choose_method(model: Model, times) -> str:
    return "exact" if _exact_fits(model, times) else "rk45"


def simulate(G_or_model, times, *, method: str = "auto", rtol: float | None = None, atol: float | None = None,
             max_steps: int | None = None) -> SimulationResult:
    """Integrate the moment equations from the initial state at t = 0.

    Parameters
    ----------
    G_or_model : networkx.DiGraph or Model
        The network, or a model from :func:`build_model` (skips re-assembly).
    times : array_like (T,)
        Output times in 1/omega, finite, >= 0, strictly increasing.
    method : {"auto", "exact", "rk45"}
        ``"exact"`` steps with e^{M dt} (machine precision, best on uniform grids);
        ``"rk45"`` is adaptive Dormand-Prince 5(4) with error control on rtol/atol.
    rtol, atol : float, optional
        Tolerances of ``"rk45"`` (default ``config.RTOL``, ``config.ATOL``).
    max_steps : int, optional
        Step limit of ``"rk45"``.

    Returns
    -------
    SimulationResult
        ``energies`` (T, N), ``amplitudes`` (T, N), ``total_energy`` (T,), ...

    Examples
    --------
    >>> import numpy as np, chiralnet as cn
    >>> res = cn.simulate(cn.two_cell(), np.linspace(0, 2000, 5))
    >>> res.energies.shape
    (5, 2)
    """
    model = _as_model(G_or_model)
    t = _check_times(times)
    if method == "auto":
        method = _choose_method(model, t)
    if method not in METHODS:
        raise ChiralnetError(f"unknown method {method!r}; valid: {['auto', *METHODS]}")
    raw = METHODS[method](model, t, {"rtol": rtol, "atol": atol, "max_steps": max_steps})
    bad = ~np.isfinite(raw["energies"])
    if bad.any():
        k, i = np.argwhere(bad)[0]
        raise SolverError(
            f"energy of cell {model.cells[i]!r} is not finite at t = {t[k]}; the network is unstable "
            "(see chiralnet.check_stability)"
        )
    return SimulationResult(times=t, cells=model.cells, battery=model.battery, method=method, **raw)


# ---------------------------------------------------------------------------------------------
# Steady state.


def check_stability(G_or_model) -> None:
    """Raise :class:`NoSteadyStateError` unless every eigenvalue of M has a negative real part.

    M is split into strongly connected blocks (its block-triangular form), so cascaded
    (chiral) networks are checked exactly from the diagonal and are never eigendecomposed.
    The message names the cell on which the failing mode lives.
    """
    model = _as_model(G_or_model)
    M = sp.csr_array(model.M) if not model.is_sparse else model.M
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
        _raise_unstable(model, i, diag[i])
    for blk in np.flatnonzero(sizes > 1):
        idx = np.flatnonzero(label == blk)
        sub = M[idx][:, idx]
        if idx.size <= config.EXACT_MAX_CELLS:
            w, v = la.eig(sub.toarray())
            j = int(np.argmax(w.real))
            lam, vec = w[j], v[:, j]
        else:
            w, v = spla.eigs(sub.tocsc(), k=1, which="LR")
            lam, vec = w[0], v[:, 0]
        if lam.real >= -tol:
            _raise_unstable(model, idx[int(np.argmax(abs(vec)))], lam)


def _raise_unstable(model, i, lam):
    raise NoSteadyStateError(
        f"no steady state: a mode of M has eigenvalue {complex(lam):.6g} (real part >= 0) and lives mostly on "
        f"cell {model.cells[i]!r}; give it local damping (kappa > 0) or couple it to a reservoir"
    )


def steady_state(G_or_model) -> SteadyState:
    """Steady state of the network: alpha_ss = i M^{-1} E and Nc_ss from conj(M) X + X M^T = -Q.

    Returns
    -------
    SteadyState
        ``energies`` (N,), ``amplitudes`` (N,), ``total_energy``, ``battery_energy``.

    Raises
    ------
    NoSteadyStateError
        If an eigenvalue of M has real part >= 0, naming the cell it lives on.
    """
    model = _as_model(G_or_model)
    check_stability(model)
    b = model.forcing
    if model.is_sparse:
        alpha = spla.spsolve(model.M.tocsc(), -b)
        method = "sparse-lu"
    else:
        alpha = la.solve(model.M, -b)
        method = "dense-lu"
    n = model.n_cells
    cov = None
    fluct = np.zeros(n)
    if model.Q is not None:
        A = np.conj(model.dense_M())
        cov = la.solve_continuous_lyapunov(A, -model.dense_Q())
        cov = 0.5 * (cov + np.conj(cov).T)
        fluct = cov.diagonal().real.copy()
    energies = model.omega * (alpha.real**2 + alpha.imag**2 + fluct)
    return SteadyState(cells=model.cells, energies=energies, amplitudes=alpha, fluctuations=fluct,
                       battery=model.battery, method=method, covariance=cov)
