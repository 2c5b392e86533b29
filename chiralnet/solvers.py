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

from . import config, kernels, memory
from . import sparse as sparse_path
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
    if not np.isfinite(t).all():
        bad = np.flatnonzero(~np.isfinite(t))
        raise SolverError(f"times[{bad[0]}] = {t[bad[0]]} is not finite")
    if t[0] < 0:
        raise SolverError(f"times[0] = {t[0]} is negative; the simulation starts at t = 0")
    if not (t[1:] > t[:-1]).all():
        bad = np.flatnonzero(t[1:] <= t[:-1])
        raise SolverError(
            f"times must increase strictly: times[{bad[0] + 1}] = {t[bad[0] + 1]} <= times[{bad[0]}] = {t[bad[0]]}"
        )
    return t


# ---------------------------------------------------------------------------------------------
# Exact propagation: e^{M dt} via the augmented matrix exponential (no steady state needed).


def _distinct_steps(times):
    """Distinct step lengths (K,) and, per output time, which one leads to it (T,) int64.

    Steps that differ only by the rounding of the times themselves (a few ulp of max(times),
    as np.linspace leaves) count as one, their mean: a uniform grid gives K <= 2.
    """
    steps = np.empty_like(times)
    steps[0] = times[0]
    np.subtract(times[1:], times[:-1], out=steps[1:])
    tol = 8 * np.finfo(float).eps * float(times[-1])
    if steps.size > 1 and steps[1:].max() - steps[1:].min() <= tol:  # uniform after the first step: common
        rest = float(steps[1:].mean())
        if abs(steps[0] - rest) <= tol:
            return np.array([rest]), np.zeros(steps.size, np.int64)
        kind = np.ones(steps.size, np.int64)
        kind[0] = 0
        return np.array([steps[0], rest]), kind
    order = np.argsort(steps, kind="stable")
    s = steps[order]
    label = np.cumsum(np.r_[True, np.diff(s) > tol]) - 1
    first = np.r_[0, np.flatnonzero(np.diff(label)) + 1]
    last = np.r_[first[1:] - 1, s.size - 1]
    if np.any(s[last] - s[first] > 2 * tol):  # a slowly varying grid chained into one group: no snapping
        unique, label = np.unique(s, return_inverse=True)
    else:
        unique = np.where(s[first] == 0.0, 0.0, np.bincount(label, weights=s) / np.bincount(label))
    kind = np.empty(steps.size, np.int64)
    kind[order] = label
    return unique, kind


def _affine_propagators(M, b, dts):
    """P_k = e^{M dt_k} and c_k = int_0^dt_k e^{M s} b ds, shapes (K, N, N), (K, N)."""
    n = M.shape[0]
    aug = np.zeros((dts.size, n + 1, n + 1), complex)
    aug[:, :n, :n] = M[None] * dts[:, None, None]
    aug[:, :n, n] = b[None] * dts[:, None]
    if n < config.AUTO_DENSE_MAX_CELLS:  # scipy's expm routes tiny products through threaded BLAS (slow)
        E = np.empty_like(aug)
        kernels.expm_small(aug, E)
    else:
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


def _exact_fits(model: Model, times, grid=None) -> bool:
    n = model.n_cells
    if n > config.EXACT_MAX_CELLS:
        return False
    k = (grid or _distinct_steps(times))[0].size
    per = (2 * n) ** 2 if model.thermal else (n + 1) ** 2
    return k * per <= config.EXACT_MAX_PROPAGATOR_ENTRIES


def _run_exact(model: Model, times, options):
    grid = options.get("grid") or _distinct_steps(times)
    if not _exact_fits(model, times, grid):
        raise SolverError(
            f"method 'exact' would need too many dense propagators ({model.n_cells} cells, "
            f"{grid[0].size} distinct time steps); use a uniform time grid or method='rk45'"
        )
    M = model.dense_M()
    dts, kind = grid
    P, c = _affine_propagators(M, model.forcing, dts)
    T, n = times.size, model.n_cells
    alpha = np.empty((T, n), complex)
    energies = np.empty((T, n))
    kernels.propagate_affine(P, c, kind, model.alpha0, model.omega, alpha, energies)
    fluct = np.zeros((T, n))
    cov = None
    if model.thermal:
        try:
            order = sparse_path.cascade_order(model.M)
            _check_stability(model, order)
        except NoSteadyStateError:
            Phi, W = _noise_propagators(P, M, model.dense_Q(), dts)
        else:
            # W = Nc_ss - Phi Nc_ss Phi^H: exact, and free of the cancellation Van Loan's e^{-A dt}
            # suffers on long steps (|error| ~ 1e-10 at Gamma dt ~ 10).
            Phi = np.ascontiguousarray(np.conj(P))
            X = _steady_covariance(model, order)[0]
            W = X[None] - Phi @ X[None] @ np.conj(np.swapaxes(Phi, 1, 2))
            W = np.ascontiguousarray(0.5 * (W + np.conj(np.swapaxes(W, 1, 2))))
        cov = kernels.propagate_fluctuations(Phi, W, kind, np.diag(model.n0).astype(complex), fluct)
        energies += model.omega * fluct
    return dict(amplitudes=alpha, energies=energies, fluctuations=fluct, covariance=cov,
                stats={"propagators": int(dts.size)})


# ---------------------------------------------------------------------------------------------
# Exact stepping on CSR (chiralnet.sparse): O(nnz) per Taylor term, no propagator matrix.


def _run_exact_sparse(model: Model, times, options):
    dts, kind = options.get("grid") or _distinct_steps(times)
    T, n = times.size, model.n_cells
    store = options.get("store_amplitudes", True)
    alpha = np.empty((T, n) if store else (0, n), complex)
    energies = np.empty((T, n))
    stats = sparse_path.propagate_vector(model.M, model.forcing, model.alpha0, model.omega, dts, kind,
                                         out_x=alpha, out_energy=energies)
    cov = None
    if model.thermal:
        fluct = np.empty((T, n))
        cov, more = sparse_path.propagate_matrix(model.M, model.dense_Q(), np.diag(model.n0).astype(complex),
                                                 dts, kind, out_diag=fluct)
        energies += model.omega * fluct
        stats.update(more)
    else:
        fluct = np.broadcast_to(np.zeros(1), (T, n))  # coherent state: no fluctuations, no memory
    return dict(amplitudes=alpha if store else None, energies=energies, fluctuations=fluct, covariance=cov,
                stats={**stats, "format": "csr"})


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
    if not 1 <= max_steps < 2**62:
        raise SolverError(f"max_steps must be a finite number >= 1, got {max_steps}")
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
METHODS = {"exact": _run_exact, "exact-sparse": _run_exact_sparse, "rk45": _run_rk45}

#: Options that only some methods use; asking another method for them is an error, not a no-op.
_METHOD_OPTIONS = {"rtol": {"rk45"}, "atol": {"rk45"}, "max_steps": {"rk45"}}


def _nnz(model: Model) -> int:
    return int(model.M.nnz) if model.is_sparse else int(np.count_nonzero(model.M))


def _choose_method(model: Model, times, grid) -> str:
    """Dense exact propagators for small N; exact CSR stepping for large sparse M; rk45 for long
    output intervals (zero temperature) or dense large M that does not fit the exact method."""
    n = model.n_cells
    if n <= config.AUTO_DENSE_MAX_CELLS and _exact_fits(model, times, grid):
        return "exact"
    if _nnz(model) <= config.SPARSE_MAX_DENSITY * n * n or not _exact_fits(model, times, grid):
        if model.thermal:  # rk45 would integrate Nc with dense N^3 products: exact-sparse is cheaper
            return "exact-sparse"
        dts, kind = grid
        substeps = sparse_path._substeps(sparse_path.one_norm(model.M), dts)[kind].sum()
        return "exact-sparse" if substeps <= config.AUTO_MAX_SUBSTEPS_PER_OUTPUT * times.size else "rk45"
    return "exact"


def _check_simulation_memory(model: Model, times, grid, method: str, store: bool) -> None:
    items = memory.simulation_bytes(model.n_cells, times.size, method=method, thermal=model.thermal,
                                    store_amplitudes=store, nnz=_nnz(model) if model.is_sparse else None,
                                    n_steps=grid[0].size if method == "exact" else 1)
    fixes = "fewer output times or fewer cells"
    if store and method == "exact-sparse":  # the other methods compute the amplitudes either way
        fixes += ", or store_amplitudes=False (energies only)"
    if model.thermal:
        fixes += ", or zero-temperature baths and initial state (no N x N fluctuation matrix)"
    memory.check(items, f"simulate ({model.n_cells} cells, {times.size} output times, method {method!r})", fixes)


def simulate(G_or_model, times, *, method: str = "auto", rtol: float | None = None, atol: float | None = None,
             max_steps: int | None = None, store_amplitudes: bool = True) -> SimulationResult:
    """Integrate the moment equations from the initial state at t = 0.

    Parameters
    ----------
    G_or_model : networkx.DiGraph or Model
        The network, or a model from :func:`build_model` (skips re-assembly).
    times : array_like (T,)
        Output times in 1/omega, finite, >= 0, strictly increasing.
    method : {"auto", "exact", "exact-sparse", "rk45"}
        ``"exact"`` steps with dense propagators e^{M dt} (machine precision, best on uniform grids,
        N up to ``config.EXACT_MAX_CELLS``); ``"exact-sparse"`` applies e^{M dt} to the state through a
        Taylor series on CSR (machine precision, O(nnz) per term, any grid, 10^5+ cells);
        ``"rk45"`` is adaptive Dormand-Prince 5(4) with error control on rtol/atol.
        ``"auto"`` picks by size and structure (see ``config.AUTO_*``); ``result.method`` says which ran.
    rtol, atol : float, optional
        Tolerances of ``"rk45"`` (default ``config.RTOL``, ``config.ATOL``). Passing them with an exact
        method raises; with ``"auto"`` they apply if rk45 is picked.
    max_steps : int, optional
        Step limit of ``"rk45"`` (same rule).
    store_amplitudes : bool
        Keep the (T, N) complex amplitudes (16 bytes per entry); False keeps energies only
        (``result.amplitudes`` is None), for the largest runs. Only ``"exact-sparse"`` saves the memory:
        ``"exact"`` and ``"rk45"`` compute the amplitudes either way and drop them at the end.

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
    if not isinstance(method, str) or (method != "auto" and method not in METHODS):
        raise ChiralnetError(f"unknown method {method!r}; valid: {['auto', *METHODS]}")
    given = {"rtol": rtol, "atol": atol, "max_steps": max_steps}
    for name, value in given.items():
        if value is not None and method != "auto" and method not in _METHOD_OPTIONS[name]:
            raise SolverError(f"{name} applies to method {sorted(_METHOD_OPTIONS[name])} only, not {method!r} "
                              "(exact methods are accurate to machine precision); drop it or use method='rk45'")
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))):
            raise SolverError(f"{name} must be a number, got {value!r}")
    model = _as_model(G_or_model)
    t = _check_times(times)
    grid = _distinct_steps(t)
    if method == "auto":
        method = _choose_method(model, t, grid)
    if not isinstance(store_amplitudes, (bool, np.bool_)):  # bool("no") would silently mean True
        raise SolverError(f"store_amplitudes must be True or False, got {store_amplitudes!r}")
    store = bool(store_amplitudes)
    _check_simulation_memory(model, t, grid, method, store)
    raw = METHODS[method](model, t, {**given,
                                     "store_amplitudes": store, "grid": grid})
    if not store:
        raw["amplitudes"] = None
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
    _check_stability(model, sparse_path.cascade_order(model.M))


def _check_stability(model: Model, order) -> None:
    """check_stability given the cascade order (None when M has feedback loops)."""
    if order is not None:  # triangular after permutation: the eigenvalues are the diagonal
        diag = sparse_path.diagonal(model.M)
        _check_diagonal(model, float(diag.real.max(initial=-np.inf)), float(np.abs(diag).max(initial=0.0)))
        return
    M = sp.csr_array(model.M)
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
            _raise_unstable(model, idx[int(np.argmax(abs(vec)))], lam)


def _check_diagonal(model: Model, max_real: float, max_abs: float) -> None:
    """Stability of a triangular (cascaded) M from its diagonal's largest real part and modulus:
    every Re M_ii must be < -1e-13 max(1, max|M_ii|). The failing cell is looked up only on failure."""
    tol = 1e-13 * max(1.0, max_abs)
    if max_real >= -tol:
        diag = sparse_path.diagonal(model.M)
        i = int(np.flatnonzero(diag.real >= -tol)[0])
        _raise_unstable(model, i, diag[i])


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


def _raise_unstable(model, i, lam):
    raise NoSteadyStateError(
        f"no steady state: a mode of M has eigenvalue {complex(lam):.6g} (real part >= 0) and lives mostly on "
        f"cell {model.cells[i]!r}; give it local damping (kappa > 0) or couple it to a reservoir"
    )


def _steady_covariance(model: Model, order):
    """Nc_ss from conj(M) X + X M^T = -Q (M stable), and the name of the solver used.

    Triangular recursion in O(N nnz) when ``order`` (the cascade order) is given, else Bartels-Stewart.
    """
    if model.Q is None:
        return np.zeros((model.n_cells,) * 2, complex), "zero-noise"
    if order is not None:
        cov = sparse_path.lyapunov_cascaded(np.conj(model.M), -model.dense_Q(), order)
        how = "triangular-lyapunov"
    else:
        cov = la.solve_continuous_lyapunov(np.conj(model.dense_M()), -model.dense_Q())
        how = "bartels-stewart"
    return 0.5 * (cov + np.conj(cov).T), how


def steady_state(G_or_model) -> SteadyState:
    """Steady state of the network: alpha_ss = i M^{-1} E and Nc_ss from conj(M) X + X M^T = -Q.

    Cascaded networks (M triangular after a topological ordering of the cells, found in
    O(N + nnz)) are solved by forward substitution in O(nnz) (cells already in cascade order, as
    in a chain or lattice, take a single pass that also checks stability and forms the energies),
    and their fluctuation matrix by a triangular Lyapunov recursion in O(N nnz); otherwise sparse
    or dense LU and Bartels-Stewart.

    Returns
    -------
    SteadyState
        ``energies`` (N,), ``amplitudes`` (N,), ``total_energy``, ``battery_energy``;
        ``method`` names the solve ("forward-substitution", "sparse-lu" or "dense-lu", plus the
        Lyapunov solver when there is thermal noise).

    Raises
    ------
    NoSteadyStateError
        If an eigenvalue of M has real part >= 0, naming the cell it lives on.
    """
    model = _as_model(G_or_model)
    n = model.n_cells
    thermal = model.Q is not None

    def check_memory(cascaded):
        memory.check(memory.steady_state_bytes(n, nnz=_nnz(model), thermal=thermal, cascaded=cascaded,
                                               sparse=model.is_sparse),
                     f"steady_state ({n} cells)",
                     "fewer cells, or zero-temperature baths (no N x N fluctuation matrix)")

    check_memory(cascaded=True)  # the smallest estimate; the others are checked when they apply
    # M alpha = i E. One pass: cells already in cascade order (a chain, a lattice), substitution, energies.
    sub = sparse_path.forward_substitution(model.M, model.drive, model.omega, scale=1j)
    order = None if sub is not None else sparse_path.cascade_order(model.M)
    if order is not None:
        sub = sparse_path.forward_substitution(model.M, model.drive, model.omega, order, scale=1j)
    if sub is not None:
        _check_diagonal(model, sub.diag_max_real, sub.diag_max_abs)
        alpha = sub.x
        method = "forward-substitution"
    else:
        check_memory(cascaded=False)
        _check_stability(model, None)
        if model.is_sparse:
            alpha = spla.spsolve(model.M.tocsc(), 1j * model.drive)
            method = "sparse-lu"
        else:
            alpha = la.solve(model.M, 1j * model.drive)
            method = "dense-lu"
    energies = sub.energy if sub is not None else model.omega * (alpha.real**2 + alpha.imag**2)
    cov = None
    fluct = np.zeros(n)
    if thermal:
        cov, how = _steady_covariance(model, np.arange(n) if sub is not None and order is None else order)
        method += "+" + how
        fluct = cov.diagonal().real.copy()
        energies = energies + model.omega * fluct
    return SteadyState(cells=model.cells, energies=energies, amplitudes=alpha, fluctuations=fluct,
                       battery=model.battery, method=method, covariance=cov)
