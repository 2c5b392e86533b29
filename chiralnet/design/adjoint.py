"""Exact gradients of steady-state quantities by the adjoint method.

The steady amplitudes solve ``M alpha = i E`` and the steady fluctuations ``A X + X A^H = -Q`` with
``A = conj(M)`` (so ``A^H = M^T``). For a parameter theta_k (real),

    dalpha_k = M^{-1} (i dE_k - dM_k alpha).

**Coherent part.** A quantity ``f_c = sum_i w_i |alpha_i|^2`` (w real) has ``df_c = 2 Re(g^H dalpha)`` with
``g = w * alpha``. With the adjoint amplitudes ``lambda`` from one solve with the conjugate transpose,

    M^H lambda = g,      df_c/dtheta_k = 2 Re[ lambda^H (i dE_k - dM_k alpha) ]
                                       = 2 Re[ i conj(lambda) . dE_k  -  conj(lambda)^T dM_k alpha ],

every k in one pass over the COO entries of dE and dM (:meth:`Derivative.bilinear`). For a cascaded
(chiral, feed-forward) network M is triangular in a topological order, so M^H is triangular in the
reversed order and the adjoint solve is a back substitution in O(nnz); otherwise a sparse (or dense) LU.

**Fluctuation part** (hot baths). A quantity ``f_N = tr(G X)`` with G Hermitian (``G = diag(w)`` for an
energy) needs one adjoint Lyapunov solve

    A^H Y + Y A = G,  i.e.  M^T Y + Y conj(M) = G,

after which (differentiate ``A X + X A^H = -Q`` and use ``tr(Y (A dX + dX A^H)) = tr(G dX)``)

    df_N/dtheta_k = - Re tr(Y dQ_k) - 2 Re sum_ab (dM_k)_ab (Y X)_ab .

Triangular recursion (:func:`~chiralnet.linalg.cascade.lyapunov_cascaded`) for cascaded networks,
Bartels-Stewart otherwise. The collective (Gaussian) ergotropy subtracts ``sum_k omega_(k) lambda_(k)``
of ``Nc[B, B]``; its derivative is ``tr(P dX)`` with ``P = sum_k omega_(k) v_k v_k^H`` (eigenvectors of the
block, paired as the ergotropy pairs them), so it takes ``G = diag(w) - P``: exact wherever the pairing
does not switch (distinct eigenvalues, or equal frequencies).

**Frequencies.** The energies use the lab-frame omega_i, so a parameter that moves omega adds
``sum_i domega_{k,i} (|alpha_i|^2 + Nc_ii)`` over the summed cells.

**Ratios** to the seed paper's two-cell reference (:mod:`chiralnet.observables.reference`):
``R = E_B / E_ref(rates)`` with the reference's rates (omega, E, kappa_a, kappa_b, Gamma, Gamma_a) read
from the same network, so ``dR = R (dE_B / E_B - d ln E_ref)``: the rates' derivatives are exact (they are
means of the builder's per-cell / per-link values; E = |drive|), ``d ln E_ref`` is the closed form's own
logarithmic derivative.

**General Gaussian networks** (pumps, squeezed baths and reservoirs, parametric links: a
:class:`~chiralnet.gaussian.GaussianModel`, :func:`_general_energy_like`). On the quadratures R = (x, p) the
steady state solves ``A R + v = 0`` and ``A sigma + sigma A^T + D = 0`` (:meth:`GaussianModel.quadratures`). A
quantity F(R, sigma) takes one adjoint solve ``A^T lambda = dF/dR`` (the LU of A, shared with the mean) and
one adjoint Lyapunov solve ``A^T Y + Y A = -dF/dsigma``; then

    dF/dtheta_k = -lambda^T (dA_k R + dv_k) + 2 <dA_k, Y sigma> + <dD_k, Y>     (<X, B> = sum_ab X_ab B_ab).

A, v, D are real-linear in the complex arrays (M, G), E and (M, Q, S), so each pairing is pulled back once to
complex cotangents (:func:`_quadrature_cotangents`) and every k is one pass over the COO entries of dM, dG,
dQ, dS, dE. dF/dsigma: diag(w, w)/2 for an energy; the local ergotropy omega (tr s/2 - sqrt(det s)) of each
cell's 2 x 2 block s; the collective one through d nu_k = nu_k r_k^H dsigma r_k (r_k = sigma^-1/2 e_k, e_k the
orthonormal eigenvectors of sigma^1/2 i Omega sigma^1/2; exact where the pairing with the frequencies does not
switch, as above). The complex parameters ``pump``, ``m_th``, ``m_th_link``, ``parametric`` are two entries of
theta each (real part, then the imaginary parts after every real entry); :meth:`Problem.unflatten` returns
d/dx + i d/dy. The general route runs when the model is general, or a general parameter is differentiated
(even at zero); a phase-insensitive network keeps the solves above.

**Where the model's derivatives come from.** For a builder of :data:`chiralnet.builders.BUILDERS`, dM,
dE, dQ and domega (and dG, dS) are exact (:func:`chiralnet.parametrized.affine_model`). For any other base (an importable
``"module:function"`` or a callable), the only way to learn how the model depends on a parameter is to
build it: dM, dE, dQ, domega (and the reference rates) are then central differences *of the model
arrays* with Richardson extrapolation (four builds per scalar entry; exact up to rounding when the model is
affine in the parameter, as chiralnet's own builders are; error O(h^4) otherwise). The solve is still
differentiated by the adjoint, never by differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .. import config
from .._jit import jit
from ..errors import ChiralnetError, SolverError
from ..linalg.cascade import cascade_order, lyapunov_cascaded
from ..linalg.csr import csr_parts
from ..gaussian import general_model, is_general_model
from ..model import Model, build_model
from ..parametrized import AFFINE_PARAMETERS, GENERAL_PARAMETERS, Derivative, affine_model
from ..solve.stationary import steady_arrays

__all__ = ["gradient", "GRADIENT_QUANTITIES", "value_and_gradient", "Problem", "problem"]

#: Steady-state quantities with an exact (adjoint) gradient: name -> what it sums.
GRADIENT_QUANTITIES = {
    "battery_energy": "sum over battery cells of omega_i (|alpha_i|^2 + Nc_ii)",
    "total_energy": "sum over all cells of omega_i (|alpha_i|^2 + Nc_ii)",
    "battery_ergotropy": "sum over battery cells of omega_i |alpha_i|^2",
    "battery_ergotropy_collective": "Gaussian ergotropy of the battery cells (Nc[B, B] eigenvalues)",
    "ratio_nonreciprocal": "battery_energy / the two-cell nonreciprocal limit with the same rates",
    "ratio_reciprocal": "battery_energy / the two-cell reciprocal limit with the same rates",
}

#: Reference rates, in the order of :data:`chiralnet.observables.reference.RATE_KEYS`.
_RATE_KEYS = ("omega", "E", "kappa_a", "kappa_b", "gamma", "gamma_a")


# ---------------------------------------------------------------------------------------------
# The problem: the model at a point and its exact derivatives.


@dataclass(eq=False)
class Problem:
    """A model at a point with the derivatives of its arrays with respect to theta.

    Attributes
    ----------
    names, slices, shapes, theta0
        As :class:`chiralnet.parametrized.AffineModel`.
    model : Model
    dM, dE, dQ, domega : Derivative
    rates : ndarray (6,) or None
        The two-cell reference rates at the point (None until asked).
    drates : ndarray (n_theta, 6) or None
        Their exact derivatives.
    route : str
        ``"affine"`` (a registered builder: exact derivatives) or ``"model-differences"``.
    imag_slices : dict
        name -> slice of theta with the imaginary parts of a complex general Gaussian parameter (after the real
        entries); :meth:`unflatten` returns d/dx + i d/dy for it.
    dG, dS : Derivative or None
        Derivatives of the pairing and the anomalous noise: set when ``model`` is a
        :class:`~chiralnet.gaussian.GaussianModel` (the general adjoint, :func:`_general_energy_like`).
    """

    names: tuple
    slices: dict
    shapes: dict
    theta0: np.ndarray
    model: Model
    dM: Derivative
    dE: Derivative
    dQ: Derivative
    domega: Derivative
    route: str
    rates_fn: object = None
    rates: np.ndarray | None = None
    drates: np.ndarray | None = None
    imag_slices: dict = field(default_factory=dict)
    dG: Derivative | None = None
    dS: Derivative | None = None

    @property
    def general(self) -> bool:
        return self.dG is not None

    def unflatten(self, g: np.ndarray) -> dict:
        out = {}
        for n in self.names:
            v = np.asarray(g[self.slices[n]]).copy()
            if n in self.imag_slices:
                v = v + 1j * g[self.imag_slices[n]]
            out[n] = v[0].item() if self.shapes[n] == () else v
        return out

    def reference(self):
        if self.rates is None:
            self.rates, self.drates = self.rates_fn()
        return self.rates, self.drates


def _check_point(point, where="gradient"):
    if not isinstance(point, dict) or not point:
        raise ChiralnetError(f"{where}: give the point as a non-empty dict parameter -> value, e.g. {{'gamma': 0.04}}")
    out = {}
    for k, v in point.items():
        if not isinstance(k, str):
            raise ChiralnetError(f"{where}: parameter names are strings, got {k!r}")
        try:
            arr = np.asarray(v)
        except (ValueError, TypeError, OverflowError):  # ragged rows
            arr = np.asarray(None)
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or arr.dtype == bool:
            text = repr(v) if len(repr(v)) <= 60 else repr(v)[:57] + "..."
            raise ChiralnetError(f"{where}: parameter {k!r} must be a number or a 1-D array of numbers that a float "
                                 f"holds, got {text}")
        if arr.ndim > 1 or arr.size == 0:
            raise ChiralnetError(f"{where}: parameter {k!r} must be a number or a non-empty 1-D array")
        if not np.all(np.isfinite(arr)):
            raise ChiralnetError(f"{where}: parameter {k!r} is not finite: {v!r}")
        out[k] = arr.astype(complex if np.iscomplexobj(arr) else float) if arr.ndim else arr.item()
    return out


def problem(base, point: dict, params: dict | None = None, *, where: str = "gradient") -> Problem:
    """The model at ``point`` and the derivatives of its arrays (see the module docstring)."""
    from ..builders import builder_parameters, resolve_builder

    point = _check_point(point, where)
    if params is not None and not isinstance(params, dict):
        raise ChiralnetError(f"{where}: params must be a dict of the base's fixed keyword arguments, got "
                             f"{type(params).__name__}")
    params = dict(params or {})
    refuse_time_dependent(params, where)
    name, fn = resolve_builder(base, f"{where}: base")
    known = builder_parameters(fn, name)
    for k in list(point) + list(params):
        if k not in known:
            raise ChiralnetError(f"{where}: the base {name!r} has no parameter {k!r}; its parameters are "
                                 f"{sorted(known)}")
    both = sorted(set(point) & set(params))
    if both:
        raise ChiralnetError(f"{where}: {both} given both in the point and in params; keep one")
    from ..builders import BUILDERS

    if name in BUILDERS and BUILDERS[name].function is fn:
        for k in point:
            if k not in AFFINE_PARAMETERS[name]:
                raise ChiralnetError(f"{where}: {k!r} is structural (an integer or a flag) in {name!r}, not a "
                                     f"continuous parameter; give it in params. Continuous: {list(AFFINE_PARAMETERS[name])}")
        preflight(name, {**params, **point}, where, general=any(k in point for k in GENERAL_PARAMETERS))
        optimal_kappa = (name == "two_cell" and params.get("optimal") and params.get("nonreciprocal", True)
                         and {"kappa_a", "kappa_b"} & set(point))
        if not optimal_kappa:
            return _affine_problem(name, point, params)
    return _difference_problem(name, fn, point, params)


def refuse_time_dependent(params: dict, where: str) -> None:
    """ChiralnetError naming the parameter when a fixed parameter is a time-dependent drive (a pulse, tone,
    square or callable of :mod:`chiralnet.drives`): the quantities differentiated here are steady-state
    ones, and a drive that changes in time has no steady state (its constant part alone would give a
    silently wrong gradient, e.g. 0 for a Gaussian pulse)."""
    from ..drives import is_time_dependent

    for k, v in params.items():
        values = v if isinstance(v, (list, tuple)) or (isinstance(v, np.ndarray) and v.dtype == object) else [v]
        for x in np.ravel(np.asarray(values, dtype=object)) if not isinstance(values, list) else values:
            if not isinstance(x, (str, bytes)) and is_time_dependent(x):
                raise ChiralnetError(f"{where}: parameter {k!r} is a time-dependent drive ({type(x).__name__}); "
                                     "gradients and optimisation are of steady-state quantities, which a drive that "
                                     "changes in time does not have: give a constant drive")


def _refuse_time_dependent_model(model: Model, where: str) -> None:
    """The same refusal for a network a callable base built: names the first cell with a shaped drive."""
    if not model.time_dependent:
        return
    d = model.drives
    cells = [x[0] for x in d.pulses + d.functions] + [int(np.flatnonzero(a)[0]) for *_, a in d.tones + d.squares]
    cell = model.cells[min(cells)] if cells else "?"
    raise ChiralnetError(f"{where}: cell {cell!r} of the base's network has a time-dependent drive (chiralnet.drives): "
                         "gradients and optimisation are of steady-state quantities, which it does not have (its "
                         "constant part alone would give a wrong gradient); give the base a constant drive")


def gradient_bytes(n_cells: int, n_links: int, thermal: bool, general: bool = False) -> dict:
    """Estimated bytes of an exact (affine) gradient of a network of ``n_cells`` cells and ``n_links`` links:
    the layout and model arrays, their derivatives (COO entries) and the adjoint vectors, plus the dense
    N x N fluctuation matrices (steady Nc, the adjoint Y and a product) with hot baths, or, for a general
    Gaussian network, the dense quadrature matrices (A, D, its LU, sigma, Y, products, cotangents and the
    Lyapunov solver's Schur forms: about 16 real (2N)^2 arrays). Exact integers."""
    from .. import memory

    model = int(sum(memory.model_bytes(n_cells, n_cells + 6 * n_links, n_links).values()))
    out = {"model and layout": model, "model derivatives (COO)": 2 * model, "adjoint vectors": 64 * n_cells}
    if general:
        out["quadrature matrices (16 x 2N x 2N real)"] = 16 * 8 * (2 * n_cells) ** 2
    elif thermal:
        out["fluctuation matrices (3 x N x N complex)"] = 48 * n_cells * n_cells
    return out


def preflight(name: str, kwargs: dict, where: str, general: bool = False) -> None:
    """Refuse the gradient of a registered builder too large for memory before building anything
    (MemoryLimitError with the estimate and the largest number of cells that fits). ``general``: a general
    Gaussian parameter is differentiated (the network is general even where its terms are zero)."""
    from .. import memory
    from ..builders import BUILDERS

    info = BUILDERS[name]
    merged = {**info.defaults, **kwargs}
    sizes = info.sizes(**{k: merged[k] for k in info.required})
    n, L = int(sizes["cell"]), int(sizes["link"])
    hot = any(np.any(np.asarray(merged.get(k) if merged.get(k) is not None else 0.0, dtype=object) != 0)
              for k in ("n_th", "n_th_link"))
    general = general or any(merged.get(k) is not None and np.any(np.asarray(merged[k], dtype=object) != 0)
                             for k in GENERAL_PARAMETERS)
    est = gradient_bytes(n, L, hot, general)
    if sum(est.values()) <= memory.limit_bytes():
        return
    ratio = L / n
    lo, hi = 1, n
    while hi - lo > 1:  # the largest size whose estimate fits (the estimate grows with n)
        mid = (lo + hi) // 2
        if sum(gradient_bytes(mid, int(ratio * mid), hot, general).values()) <= memory.limit_bytes():
            lo = mid
        else:
            hi = mid
    memory.check(est, f"{where} of {name} with {n:.3g} cells and {L:.3g} links",
                 f"at most about {lo} cells (the largest this memory limit fits{' with hot baths' if hot else ''})")


def _affine_problem(name, point, params) -> Problem:
    try:
        am = affine_model(name, point, params)
    except ChiralnetError:
        raise
    except (ValueError, TypeError, OverflowError) as exc:  # NumPy's own errors on malformed fixed parameters
        raise ChiralnetError(f"gradient: the builder {name!r} cannot take the fixed parameters "
                             f"{sorted(params)} ({type(exc).__name__}: {exc}); give numbers or 1-D arrays of numbers") from None

    def rates():
        return _layout_rates(name, point, params, am)

    return Problem(am.names, am.slices, am.shapes, am.theta0, am.model, am.dM, am.dE, am.dQ, am.domega,
                   "affine", rates, imag_slices=am.imag_slices, dG=am.dG, dS=am.dS)


def _layout_rates(name, point, params, am):
    """Reference rates of a builder's network and their exact derivatives (n_theta, 6), from its layout."""
    from ..parametrized import _coo_csr, _jacobian, _Prims, _structure

    lay, p_u, p_v, o = _structure(name, params, point)
    n, L = lay.n, lay.link_u.size
    prims = _Prims(n, L, am.general)
    P = _coo_csr(*_jacobian(name, am.names, am.shapes, lay, o, prims, am.imag_slices))
    off = prims.offset
    C = np.zeros((prims.size, 6))
    vals = np.full(6, np.nan)
    drive = np.abs(lay.drive)
    if not drive.any():
        return vals, P @ C
    i = int(np.argmax(drive))
    bat = np.asarray(am.model.battery, bool).copy()
    bat[i] = False
    if not bat.any():
        bat = np.ones(n, bool)
        bat[i] = False
    if not bat.any():
        return vals, P @ C
    b = np.flatnonzero(bat)
    vals[0] = lay.omega[b].mean()
    C[off["omega"] + b, 0] = 1.0 / b.size
    vals[1] = drive[i]
    C[off["E"] + i, 1] = lay.drive[i].real / drive[i]
    vals[2] = lay.kappa[i]
    C[off["kappa"] + i, 2] = 1.0
    vals[3] = lay.kappa[b].mean()
    C[off["kappa"] + b, 3] = 1.0 / b.size
    links = np.arange(L)
    if lay.nonreciprocal and L:
        geo = np.abs(p_u * p_v)             # geometric mean of |p|^2 over the two cells of a link
        vals[4] = float(np.mean(lay.gamma * geo))
        C[off["rate"] + links, 4] = geo / L
        on_u, on_v = lay.link_u == i, lay.link_v == i
        count = int(on_u.sum() + on_v.sum())
        if count:
            vals[5] = float((lay.gamma[on_u] * np.abs(p_u[on_u]) ** 2).sum()
                            + (lay.gamma[on_v] * np.abs(p_v[on_v]) ** 2).sum()) / count
            C[off["rate"] + links[on_u], 5] += np.abs(p_u[on_u]) ** 2 / count
            C[off["rate"] + links[on_v], 5] += np.abs(p_v[on_v]) ** 2 / count
        else:
            vals[5], C[:, 5] = vals[4], C[:, 4]
    elif L:
        absJ = np.abs(lay.J)
        vals[4] = 2 * float(absJ.mean())
        with np.errstate(divide="ignore", invalid="ignore"):
            C[off["J_re"] + links, 4] = np.where(absJ > 0, 2 * lay.J.real / absJ / L, 0.0)
            C[off["J_im"] + links, 4] = np.where(absJ > 0, 2 * lay.J.imag / absJ / L, 0.0)
        vals[5], C[:, 5] = vals[4], C[:, 4]
    return vals, np.asarray(P @ C)


def _model_arrays(fn, kwargs, where):
    from ..observables.reference import RATE_KEYS, reference_rates

    try:
        G = fn(**kwargs)
    except ChiralnetError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise ChiralnetError(f"{where}: the base cannot be called with {sorted(kwargs)}: {exc}") from None
    m = build_model(G, sparse=len(G) > config.DENSE_MAX_CELLS)
    _refuse_time_dependent_model(m, where)
    return m, G, np.array([reference_rates(G)[k] for k in RATE_KEYS])


def _difference_preflight(N: int, n_theta: int, where: str) -> None:
    """The model differences hold dense N x N arrays (M and Q) of four builds at once: refuse a network whose
    arrays would not fit, with the largest N that does, before the first of the 4 n_theta builds."""
    from .. import memory

    per = 4 * 2 * 16  # 4 builds x (M, Q) x complex
    est = {f"model differences (4 builds x M, Q dense, {N} x {N} complex)": per * N * N}
    largest = int(math.isqrt(int(memory.limit_bytes() // per)))
    memory.check(est, f"{where} ({N} cells, {n_theta} parameter entries, 4 builds each)",
                 f"a network of at most {largest} cells, or a registered builder (chiralnet.builders.BUILDERS: "
                 "exact sparse model derivatives)")


def _difference_problem(name, fn, point, params) -> Problem:
    """Derivatives of the model arrays by Richardson-extrapolated central differences (see the module doc)."""
    where = f"gradient of base {name!r}"
    names = tuple(point)
    shapes = {k: np.shape(point[k]) for k in names}
    slices, pos = {}, 0
    for k in names:
        size = int(np.prod(shapes[k], dtype=int))
        slices[k] = slice(pos, pos + size)
        pos += size
    theta0 = np.concatenate([np.atleast_1d(np.real(point[k])).astype(float) for k in names])
    model, G, rates0 = _model_arrays(fn, {**params, **point}, where)
    N = model.n_cells
    _difference_preflight(N, pos, where)

    def dense(x):
        return x.toarray() if sp.issparse(x) else np.asarray(x)

    def arrays(m):  # (M, E, Q, omega, G, S); G = S = 0 for a phase-insensitive build
        if is_general_model(m):
            return m.drift, m.drive, m.noise, m.omega, m.pairing, m.squeezing
        return dense(m.M), m.drive, dense(m.Q) if m.Q is not None else np.zeros((N, N), complex), m.omega, 0, 0

    def arrays_at(k, h):
        p = {n: (np.array(point[n], copy=True) if shapes[n] else point[n]) for n in names}
        for n in names:
            s = slices[n]
            if s.start <= k < s.stop:
                if shapes[n]:
                    p[n] = np.asarray(p[n]).astype(np.result_type(p[n], float))
                    p[n][k - s.start] = p[n][k - s.start] + h
                else:
                    p[n] = p[n] + h
        m, _, r = _model_arrays(fn, {**params, **p}, where)
        if m.cells != model.cells:
            raise ChiralnetError(f"{where}: the network's cells change with the parameters; gradients need one structure")
        return arrays(m) + (r,)

    def derivative(k):
        h = config.GRADIENT_DIFF_STEP * max(abs(theta0[k]), 1e-3)
        try:
            plus = [arrays_at(k, s * h) for s in (1.0, 0.5)]
            minus = [arrays_at(k, -s * h) for s in (1.0, 0.5)]
            d1 = [(a - b) / (2 * h) for a, b in zip(plus[0], minus[0])]
            d2 = [(a - b) / h for a, b in zip(plus[1], minus[1])]
        except ChiralnetError as exc:  # at a bound (e.g. kappa = 0): one-sided, second order
            if "cells change" in str(exc):
                raise
            X = [arrays_at(k, s * h) for s in (0.0, 0.5, 1.0)]
            d1 = [(-3 * a + 4 * b - c) / h for a, b, c in zip(*X)]
            return d1
        return [(4 * b - a) / 3 for a, b in zip(d1, d2)]

    parts = {"M": [], "E": [], "Q": [], "w": [], "G": [], "S": []}
    drates = np.zeros((pos, 6))
    for k in range(pos):
        dM, dE, dQ, dw, dG, dS, dr = derivative(k)
        for key, arr in (("M", dM), ("E", dE), ("Q", dQ), ("w", dw), ("G", dG), ("S", dS)):
            if np.ndim(arr) == 0:  # G, S of phase-insensitive builds
                continue
            nz = np.nonzero(arr)
            parts[key].append((np.full(nz[0].size, k), nz, arr[nz]))
        drates[k] = dr
    general = is_general_model(model) or any(p[0].size for key in ("G", "S") for p in parts[key])

    def deriv(key, shape, dtype):
        items = parts[key]
        ks = np.concatenate([i[0] for i in items]) if items else np.zeros(0, int)
        idx = tuple(np.concatenate([i[1][d] for i in items]) for d in range(len(shape)))
        val = np.concatenate([i[2] for i in items]).astype(dtype)
        return Derivative.from_coo(pos, shape, ks, idx, val)

    return Problem(names, slices, shapes, theta0, general_model(model) if general else model,
                   deriv("M", (N, N), complex), deriv("E", (N,), complex), deriv("Q", (N, N), complex),
                   deriv("w", (N,), float), "model-differences", lambda: (rates0, drates),
                   dG=deriv("G", (N, N), complex) if general else None,
                   dS=deriv("S", (N, N), complex) if general else None)


# ---------------------------------------------------------------------------------------------
# Adjoint solves.


@jit
def _adjoint_substitution(indptr, indices, data, order, rhs, x):
    """Solve M^H x = rhs for M (CSR) lower triangular in ``order``: back substitution in O(nnz).

    Cells are taken in reverse topological order; x_j = r_j / conj(M_jj), then r_i -= conj(M_ji) x_j for
    the entries M_ji (i before j) of row j."""
    r = rhs.copy()
    n = order.shape[0]
    for q in range(n - 1, -1, -1):
        j = order[q]
        d = 0j
        for p in range(indptr[j], indptr[j + 1]):
            if indices[p] == j:
                d += data[p]
        xj = r[j] / np.conj(d)
        x[j] = xj
        for p in range(indptr[j], indptr[j + 1]):
            i = indices[p]
            if i != j:
                r[i] -= np.conj(data[p]) * xj


class _Solver:
    """M's adjoint solves: triangular for cascaded networks, LU otherwise."""

    def __init__(self, model: Model):
        self.model = model
        self.M = model.M
        self.order = cascade_order(model.M)
        self._lu = None

    def adjoint(self, g: np.ndarray) -> np.ndarray:
        """lambda with M^H lambda = g."""
        g = np.asarray(g, complex)
        if self.order is not None:
            indptr, indices, data = csr_parts(self.M)
            x = np.empty_like(g)
            _adjoint_substitution(indptr, indices, data, self.order, g, x)
            return x
        if self.model.is_sparse:
            if self._lu is None:
                self._lu = spla.splu(sp.csc_matrix(self.M))
            return self._lu.solve(g, trans="H")
        return la.solve(np.asarray(self.M).conj().T, g)

    def adjoint_lyapunov(self, Gm: np.ndarray) -> np.ndarray:
        """Y with M^T Y + Y conj(M) = G (the adjoint of conj(M) X + X M^T = -Q)."""
        if self.order is not None:
            MT = sp.csr_array(self.M).T.tocsr() if sp.issparse(self.M) else np.ascontiguousarray(np.asarray(self.M).T)
            return lyapunov_cascaded(MT, np.asarray(Gm, complex), self.order[::-1].copy())
        return la.solve_continuous_lyapunov(self.model.dense_M().T, np.asarray(Gm, complex))


def _trace_with(d: Derivative, B: np.ndarray) -> np.ndarray:
    """sum over the entries (a, b) of dX_k of dX_k[a, b] B[a, b], for every k: shape (n_theta,)."""
    if d.nnz == 0:
        return np.zeros(d.n_theta, complex)
    r, c = d.index
    w = d.value * B[r, c]
    return np.bincount(d.k, w.real, d.n_theta) + 1j * np.bincount(d.k, w.imag, d.n_theta)


def _vector_dot(d: Derivative, v: np.ndarray) -> np.ndarray:
    """sum_i dX_k[i] v[i] for every k (a vector derivative): shape (n_theta,)."""
    if d.nnz == 0:
        return np.zeros(d.n_theta, complex)
    w = d.value * v[d.index[0]]
    return np.bincount(d.k, np.real(w), d.n_theta) + 1j * np.bincount(d.k, np.imag(w), d.n_theta)


def _energy_like(prob: Problem, quantity: str):
    """(value, gradient (n_theta,)) of an energy or ergotropy (see the module docstring)."""
    m = prob.model
    alpha, Nc, _, energies = steady_arrays(m)
    mask = np.ones(m.n_cells, bool) if quantity == "total_energy" else np.asarray(m.battery, bool)
    omega = np.asarray(m.omega, float)
    w = np.where(mask, omega, 0.0)
    solver = _Solver(m)
    coherent = quantity != "battery_ergotropy"
    collective = quantity == "battery_ergotropy_collective"
    a2 = alpha.real**2 + alpha.imag**2
    value = float((w * a2).sum())
    # coherent part: lambda from M^H lambda = w alpha
    lam = solver.adjoint(w * alpha)
    cl = np.conj(lam)
    grad = 2 * np.real(1j * _vector_dot(prob.dE, cl) - prob.dM.bilinear(cl, alpha))
    occ = a2.copy()
    if Nc is not None and coherent:
        Gm = np.diag(w).astype(complex)
        if collective:
            b = np.flatnonzero(mask)
            lam_e, vec = np.linalg.eigh(Nc[np.ix_(b, b)])
            lam_e, vec = lam_e[::-1], vec[:, ::-1]              # occupations descending
            w_sorted = np.sort(omega[b])                        # frequencies ascending
            P = (vec * w_sorted) @ vec.conj().T
            Gm[np.ix_(b, b)] -= P
            value = float(np.real(np.trace(Gm @ Nc))) + value
            # d passive / d omega_i: the eigenvalue paired with omega_i
            rank = np.empty(b.size, int)
            rank[np.argsort(omega[b], kind="stable")] = np.arange(b.size)
            dpass = np.zeros(m.n_cells)
            dpass[b] = lam_e[rank]
            occ = occ + Nc.diagonal().real
        else:
            value += float((w * Nc.diagonal().real).sum())
            occ = occ + Nc.diagonal().real
            dpass = 0.0
        Y = solver.adjoint_lyapunov(Gm)
        Y = 0.5 * (Y + Y.conj().T)
        grad = grad - np.real(_trace_with(prob.dQ, Y.T)) - 2 * np.real(_trace_with(prob.dM, Y @ Nc))
        grad = grad + np.real(_vector_dot(prob.domega, np.where(mask, occ - dpass, 0.0)))
    else:
        grad = grad + np.real(_vector_dot(prob.domega, np.where(mask, occ, 0.0)))
    return value, grad


def _quadrature_cotangents(B):
    """The cotangents (c11, c12, c21, c22), each (N, N) complex, of the map X -> Re(T^-1 X T^-dag) of
    :func:`chiralnet.gaussian._to_quadratures` paired with a real B (2N, 2N): for every block matrix X,
    sum(out * B) = Re sum_ij (X_ij * c_ij) (no conjugation)."""
    n = B.shape[0] // 2
    B1, B2, B3, B4 = B[:n, :n], B[:n, n:], B[n:, :n], B[n:, n:]
    return (0.5 * (B1 + B4 + 1j * (B2 - B3)), 0.5 * (B1 - B4 - 1j * (B2 + B3)),
            0.5 * (B1 - B4 + 1j * (B2 + B3)), 0.5 * (B1 + B4 - 1j * (B2 - B3)))


def _general_energy_like(prob: Problem, quantity: str):
    """(value, gradient (n_theta,)) of an energy or ergotropy of a general Gaussian model: the adjoint method
    on the quadrature form (module docstring, "General Gaussian networks")."""
    from ..linalg.lyapunov import solve_continuous_lyapunov
    from ..solve.general import check_stability_general

    m = prob.model
    n = m.n_cells
    check_stability_general(m)
    A, v, D = m.quadratures()
    lu = la.lu_factor(A)
    R = la.lu_solve(lu, -v)
    sigma = solve_continuous_lyapunov(A, -D)
    sigma = 0.5 * (sigma + sigma.T)
    mask = np.ones(n, bool) if quantity == "total_energy" else np.asarray(m.battery, bool)
    omega = np.asarray(m.omega, float)
    w = np.where(mask, omega, 0.0)
    x, p = R[:n], R[n:]
    sxx, spp, sxp = sigma.diagonal()[:n], sigma.diagonal()[n:], np.diagonal(sigma, n)
    coherent = 0.5 * (x * x + p * p)                      # |alpha_i|^2
    occ = coherent + 0.5 * (sxx + spp) - 0.5              # |alpha_i|^2 + Nc_ii
    gR = np.concatenate([w * x, w * p])                   # dF/dR of the coherent part (every quantity)
    W = np.diag(np.concatenate([w, w])) / 2               # dF/dsigma of the energy
    per_cell = occ                                        # dF/domega_i over the summed cells
    if quantity == "battery_ergotropy":                   # omega (|alpha|^2 + tr(s)/2 - sqrt(det s)) per cell
        nu = np.sqrt(np.maximum(sxx * spp - sxp * sxp, 0.25))
        per_cell = coherent + 0.5 * (sxx + spp) - nu
        idx = np.arange(n)
        W[idx, idx] -= w * spp / (2 * nu)
        W[n + idx, n + idx] -= w * sxx / (2 * nu)
        W[idx, n + idx] += w * sxp / (2 * nu)
        W[n + idx, idx] += w * sxp / (2 * nu)
    elif quantity == "battery_ergotropy_collective":      # E_B - sum_k omega_(k)up (nu_(k)down - 1/2)
        b = np.flatnonzero(mask)
        q = np.concatenate([b, n + b])
        sb = sigma[np.ix_(q, q)]
        ev, U = np.linalg.eigh(sb)
        root = (U * np.sqrt(ev)) @ U.T
        K = root @ (1j * _symplectic_form(b.size)) @ root          # Hermitian, eigenvalues +-nu_k
        lam, E = np.linalg.eigh(K)
        lam, E = lam[::-1][: b.size], E[:, ::-1][:, : b.size]      # nu descending, orthonormal e_k
        r = (U / np.sqrt(ev)) @ (U.T @ E)                          # sigma^-1/2 e_k: r^H sigma r = 1
        w_sorted = np.sort(omega[b])                               # paired with nu descending
        # d nu_k = nu_k r_k^H dsigma r_k (dsigma real symmetric)
        W[np.ix_(q, q)] -= np.real((r.conj() * (w_sorted * lam)) @ r.T)
        rank = np.empty(b.size, int)
        rank[np.argsort(omega[b], kind="stable")] = np.arange(b.size)
        per_cell = occ.copy()
        per_cell[b] -= lam[rank] - 0.5
    value = float((w * per_cell).sum())
    # Adjoints: A^T lambda = dF/dR, A^T Y + Y A = -dF/dsigma.
    lam_R = la.lu_solve(lu, gR, trans=1)
    Y = solve_continuous_lyapunov(A.T, -W)
    Y = 0.5 * (Y + Y.T)
    # dF = -lambda^T (dA R + dv) + 2 <dA, Y sigma> + <dD, Y>, pulled back to the complex model arrays.
    a11, a12, a21, a22 = _quadrature_cotangents(2 * Y @ sigma - np.outer(lam_R, R))
    d11, d12, d21, d22 = _quadrature_cotangents(Y)
    cM = a11 + np.conj(a22) - 0.5 * (d11 + d11.conj().T + np.conj(d22) + d22.T)   # A(M, G) and Dm = -(M + M^H)
    cG = -1j * (a12 + np.conj(a21))
    cQ = d11.T + d22
    cS = d12 + np.conj(d21)
    cE = np.sqrt(2.0) * (lam_R[n:] + 1j * lam_R[:n])                                # v = sqrt2 (Im E, -Re E)
    grad = np.real(_trace_with(prob.dM, cM) + _trace_with(prob.dG, cG) + _trace_with(prob.dQ, cQ)
                   + _trace_with(prob.dS, cS) + _vector_dot(prob.dE, cE))
    grad = grad + np.real(_vector_dot(prob.domega, np.where(mask, per_cell, 0.0)))
    if not (np.isfinite(value) and np.isfinite(grad).all()):
        raise SolverError(f"gradient: {quantity} or its gradient is not finite at this point (overflow near an "
                          "instability threshold?); move the point away from the threshold or rescale the network")
    return value, grad


def _symplectic_form(n):
    """Omega (2n, 2n) of R = (x, p): [[0, I], [-I, 0]]."""
    return np.block([[np.zeros((n, n)), np.eye(n)], [-np.eye(n), np.zeros((n, n))]])


def _reference_log_derivative(rates, kind):
    """(E_ref, d ln E_ref / d rates (6,)) of the two-cell limit (closed forms of chiralnet.analytic)."""
    omega, E, ka, kb, g, ga = rates
    if kind == "nonreciprocal":
        # E_ref = 16 omega g^2 E^2 / (La^2 Lb^2), La = ga + ka, Lb = g^2/ga + kb
        La, Lb = ga + ka, g * g / ga + kb
        value = 16 * omega * g**2 * E**2 / (La**2 * Lb**2)
        dlog = np.array([1 / omega, 2 / E, -2 / La, -2 / Lb, 2 / g - 2 / Lb * (2 * g / ga),
                         -2 / La + 2 / Lb * (g * g / ga**2)])
        return value, dlog
    # E_ref = 4 omega E^2 C / (ka kb (C+1)^2), C = g^2 / (ka kb)
    C = g * g / (ka * kb)
    value = 4 * omega * E**2 * C / (ka * kb * (C + 1) ** 2)
    dlnC = np.array([0, 0, -1 / ka, -1 / kb, 2 / g, 0])        # d ln C
    dlog = np.array([1 / omega, 2 / E, -1 / ka, -1 / kb, 0, 0]) + dlnC * (1 - 2 * C / (C + 1))
    return value, dlog


def value_and_gradient(prob: Problem, quantity: str):
    """(value, gradient (n_theta,) float) of a quantity of :data:`GRADIENT_QUANTITIES` at the problem's point."""
    if not isinstance(quantity, str):
        raise ChiralnetError(f"gradient: quantity must be a name, one of {sorted(GRADIENT_QUANTITIES)}, got {quantity!r}")
    if quantity not in GRADIENT_QUANTITIES:
        from ..observables import QUANTITIES

        if quantity in QUANTITIES:
            q = QUANTITIES[quantity]
            why = ("it is a function of time (optimize it derivative-free with chiralnet.optimize)"
                   if q.needs != "steady" else "it is not a scalar" if q.dim else "its adjoint is not implemented")
            raise ChiralnetError(f"gradient: quantity {quantity!r} has no exact gradient ({why}); gradients exist "
                                 f"for {sorted(GRADIENT_QUANTITIES)}")
        raise ChiralnetError(f"gradient: unknown quantity {quantity!r}; gradients exist for {sorted(GRADIENT_QUANTITIES)}")
    energy_like = _general_energy_like if prob.general else _energy_like
    if quantity.startswith("ratio_"):
        kind = quantity[len("ratio_"):]
        eb, geb = energy_like(prob, "battery_energy")
        rates, drates = prob.reference()
        if not np.all(np.isfinite(rates)) or (kind == "reciprocal" and rates[2] * rates[3] <= 0):
            raise ChiralnetError(f"gradient: {quantity!r} is undefined at this point (the two-cell reference "
                                 f"needs a drive, a battery cell, links{' and kappa_a kappa_b > 0' if kind == 'reciprocal' else ''})")
        ref, dlog = _reference_log_derivative(rates, kind)
        R = eb / ref
        return float(R), geb / ref - R * (drates @ dlog)
    return energy_like(prob, quantity)


def gradient(base, point: dict, quantity: str = "battery_energy", params: dict | None = None) -> dict:
    """Exact derivative of a steady-state quantity with respect to each parameter of ``point``.

    The adjoint method (see :mod:`chiralnet.design.adjoint`): one steady solve, one solve with M^H
    (back substitution for cascaded networks) and, with hot baths, one adjoint Lyapunov solve, whatever
    the number of parameters; then every derivative in one pass over the model's derivative entries. A
    general Gaussian network (pumps, squeezing, parametric links) takes the same two adjoint solves on the
    2N quadratures.

    Parameters
    ----------
    base : str or callable
        As in :func:`chiralnet.sweep`: a builder of :data:`chiralnet.builders.BUILDERS` (exact model
        derivatives from :func:`chiralnet.parametrized.affine_model`), an importable ``"module:function"``
        or a callable returning a network (model derivatives by differences of the model arrays, documented
        in the module).
    point : dict
        Parameter -> value at which to differentiate: a number, or an array for a parameter with one value
        per cell or per link (e.g. a chain's ``gamma``). ``drive`` and ``J`` (complex) are differentiated
        along their real part; the general Gaussian ``pump``, ``m_th``, ``m_th_link`` and ``parametric``
        (complex) in both parts: their entry is d/dx + i d/dy for the value x + i y.
    quantity : str
        One of :data:`GRADIENT_QUANTITIES`: ``battery_energy``, ``total_energy``, ``battery_ergotropy``,
        ``battery_ergotropy_collective``, ``ratio_nonreciprocal``, ``ratio_reciprocal``.
    params : dict, optional
        Fixed keyword arguments of the base (sizes, flags, parameters held constant).

    Returns
    -------
    dict
        name -> float (a number parameter) or ndarray of the parameter's shape: d quantity / d parameter
        (complex for ``pump``, ``m_th``, ``m_th_link``, ``parametric``).

    Raises
    ------
    ChiralnetError
        An unknown parameter or quantity, a quantity with no exact gradient (time_to_90, per-cell
        quantities), a point without a steady state (:class:`~chiralnet.errors.NoSteadyStateError`; a pump
        or parametric link above threshold names it), ``m_th_link`` on reciprocal links.

    Examples
    --------
    >>> import numpy as np
    >>> import chiralnet as cn
    >>> g = cn.gradient("two_cell", {"gamma": 0.04, "drive": 0.1})
    >>> round(g["drive"], 4)                  # E_B is quadratic in the drive: 2 E_B / E
    1497.6011
    >>> gl = cn.gradient("chain", {"gamma": np.full(4, 0.04)}, params={"n_cells": 5})
    >>> gl["gamma"].shape
    (4,)
    """
    prob = problem(base, point, params)
    _, g = value_and_gradient(prob, quantity)
    return prob.unflatten(g)
