"""General Gaussian networks: squeezing, two-photon pumps, parametric links, squeezed baths and starts.

The phase-insensitive class (:mod:`chiralnet.model`) keeps the anomalous moments
Mc_jk = <da_j da_k> at zero forever. The terms below couple alpha to conj(alpha) and Nc to Mc; the moment
equations stay linear and closed (docs/theory/gaussian.md). In the frame rotating at omega_L::

    d alpha/dt = M alpha - i G conj(alpha) - i E
    dNc/dt     = conj(M) Nc + Nc M^T + Q + i conj(G) Mc - i conj(Mc) G
    dMc/dt     = M Mc + Mc M^T - i (G Nc + Nc^T G + G) + S

M, Q, E as in :mod:`chiralnet.model`; G (N, N) complex symmetric holds the pumps (G_ii = P_i, the term
(P a^dag^2 + h.c.)/2) and the parametric links (G_uv = G_vu = g, the term g a_u^dag a_v^dag + h.c.);
S (N, N) complex symmetric is the anomalous noise of squeezed baths,
S = diag(kappa m_th) + sum_r Gamma_r m_r conj(p_r) conj(p_r)^T.

The solvers work on the real quadratures R = (x_1..x_N, p_1..p_N), x = (a + a^dag)/sqrt2,
p = (a - a^dag)/(i sqrt2), with the symmetrised covariance sigma = <{dR, dR^T}>/2 (vacuum: I/2)::

    d<R>/dt = A <R> + v,        d sigma/dt = A sigma + sigma A^T + D

(:meth:`GaussianModel.quadratures`). :func:`moments_to_sigma` and :func:`sigma_to_moments` convert.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import config
from .errors import ChiralnetError, NetworkError
from .model import is_general_model

__all__ = ["GaussianModel", "is_general_model", "gaussian_model", "general_model", "squeezed_thermal",
           "moments_to_sigma", "sigma_to_moments", "state_quadratures", "quadrature_state", "doubled_model",
           "doubled_state", "undoubled_moments", "Conjugate"]

SQRT2 = np.sqrt(2.0)


def squeezed_thermal(n0, xi0):
    """Moments of S(xi) rho_th(n0) S(xi)^dag, S(xi) = exp((conj(xi) a^2 - xi a^dag^2)/2), xi = r e^{i phi}.

    Parameters
    ----------
    n0 : float or ndarray (N,)
        Thermal occupation before squeezing.
    xi0 : complex or ndarray (N,) complex
        Squeezing parameter.

    Returns
    -------
    n, m : ndarray (N,) float, ndarray (N,) complex
        <da^dag da> = (2 n0 + 1) sinh^2 r + n0 and <da da> = -(2 n0 + 1) e^{i phi} sinh r cosh r.

    Examples
    --------
    >>> n, m = squeezed_thermal(0.0, 0.5)
    >>> round(float(n[0]), 10), round(complex(m[0]).real, 10)   # sinh^2 r, -sinh r cosh r
    (0.2715403174, -0.5876005968)
    """
    n0 = np.atleast_1d(np.asarray(n0, float))
    xi0 = np.atleast_1d(np.asarray(xi0, complex))
    r = np.abs(xi0)
    phase = np.exp(1j * np.angle(xi0))
    return (2 * n0 + 1) * np.sinh(r) ** 2 + n0, -(2 * n0 + 1) * phase * np.sinh(r) * np.cosh(r)


def _ladder():
    """T (2, 2) of b = (a, a^dag) = T R per mode, and its inverse."""
    T = np.array([[1, 1j], [1, -1j]]) / SQRT2
    return T, np.linalg.inv(T)


def moments_to_sigma(Nc, Mc) -> np.ndarray:
    """The quadrature covariance sigma (2N, 2N) real of fluctuations ``Nc`` and anomalous moments ``Mc``
    (each (N, N) complex, or (..., N, N)); R = (x_1..x_N, p_1..p_N), vacuum sigma = I/2.

    sigma_xx = Re(Nc + Mc) + I/2, sigma_pp = Re(Nc - Mc) + I/2, sigma_xp = Im(Mc) + Im(Nc) (Nc_jk = <da_j^dag
    da_k>), sigma_px = sigma_xp^T.
    """
    Nc = np.asarray(Nc, complex)
    Mc = np.asarray(Mc, complex)
    n = Nc.shape[-1]
    eye = 0.5 * np.eye(n)
    sxx = (Nc + Mc).real + eye
    spp = (Nc - Mc).real + eye
    sxp = Mc.imag + Nc.imag
    top = np.concatenate([sxx, sxp], axis=-1)
    bottom = np.concatenate([np.swapaxes(sxp, -1, -2), spp], axis=-1)
    return np.concatenate([top, bottom], axis=-2)


def sigma_to_moments(sigma):
    """Inverse of :func:`moments_to_sigma`: (Nc, Mc), each (..., N, N) complex, of sigma (..., 2N, 2N)."""
    sigma = np.asarray(sigma, float)
    n = sigma.shape[-1] // 2
    sxx, spp = sigma[..., :n, :n], sigma[..., n:, n:]
    sxp, spx = sigma[..., :n, n:], sigma[..., n:, :n]
    eye = 0.5 * np.eye(n)
    Nc = (sxx + spp) / 2 - eye + 0.5j * (sxp - spx)
    Mc = (sxx - spp) / 2 + 0.5j * (sxp + spx)
    return Nc, Mc


def state_quadratures(state):
    """(<R> (2N,) real, sigma (2N, 2N) real) of a :class:`~chiralnet.model.State`."""
    a = np.asarray(state.alpha, complex)
    return SQRT2 * np.concatenate([a.real, a.imag]), moments_to_sigma(state.dense_Nc(), state.dense_Mc())


def quadrature_state(cells, R, sigma, time=0.0, frame=None):
    """The :class:`~chiralnet.model.State` of means ``R`` (2N,) and covariance ``sigma`` (2N, 2N)."""
    from .model import State

    n = len(cells)
    Nc, Mc = sigma_to_moments(0.5 * (sigma + sigma.T))
    Nc = 0.5 * (Nc + Nc.conj().T)
    Mc = 0.5 * (Mc + Mc.T)
    return State(tuple(cells), (R[:n] + 1j * R[n:]) / SQRT2, Nc, time, frame, Mc)


@dataclass(frozen=True, eq=False)
class GaussianModel:
    """The generator of a general Gaussian network of N cells (see the module docstring).

    Attributes
    ----------
    cells : tuple, length N
    omega : ndarray (N,) float
        Lab-frame cell frequencies; E_i = omega_i (|alpha_i|^2 + Nc_ii).
    drive_frequency : float
        omega_L: the pumps and parametric links are written in the frame rotating at it.
    drift : ndarray (N, N) complex
        M of the phase-insensitive part (as ``Model.M``).
    pairing : ndarray (N, N) complex symmetric
        G: pumps P_i on the diagonal, parametric links g_uv off it.
    drive : ndarray (N,) complex
        Drive amplitudes E_i.
    noise : ndarray (N, N) complex Hermitian
        Q (as ``Model.Q``; zeros at zero temperature).
    squeezing : ndarray (N, N) complex symmetric
        S: the anomalous noise of squeezed baths and reservoirs.
    battery : ndarray (N,) bool
    kappa : ndarray (N,) float or None
    initial : State or None
        The network's start (``alpha0``, ``n0``, ``xi0``); None: the vacuum.
    terms : tuple
        The anomalous Hamiltonian terms, for messages: ``("pump", cell, P)`` and
        ``("parametric", u, v, g)``.
    base : Model or None
        The phase-insensitive part (M, Q, E) as a :class:`~chiralnet.model.Model` (constant drives): without
        pairing (G = 0) alpha and Nc obey its equations exactly, and the steady state reuses its (sparse,
        cascaded) solvers.
    drives : DriveSchedule or None
        The time-dependent part of the drive (:mod:`chiralnet.drives`); ``drive`` is the constant part. The
        covariance does not see it; the means get its share from the doubled model
        (:func:`chiralnet.solve.run.run_general_model`).
    """

    cells: tuple
    omega: np.ndarray
    drive_frequency: float
    drift: np.ndarray
    pairing: np.ndarray
    drive: np.ndarray
    noise: np.ndarray
    squeezing: np.ndarray
    battery: np.ndarray
    kappa: np.ndarray | None = None
    initial: object = None
    terms: tuple = ()
    base: object = None
    drives: object = None
    _cache: dict = field(default_factory=dict, repr=False)

    _GENERAL_GAUSSIAN = True

    @property
    def time_dependent(self) -> bool:
        """True when some cell's drive is not a constant (see :mod:`chiralnet.drives`)."""
        return self.drives is not None

    @property
    def n_cells(self) -> int:
        return len(self.cells)

    @property
    def thermal(self) -> bool:
        return True

    def drive_at(self, times) -> np.ndarray:
        """The drive amplitudes E(t): (N,) constant, or (T, N) at simulation ``times`` with shaped drives."""
        if self.drives is None:
            return self.drive
        return self.drive + self.drives.at(times, self.n_cells)

    def index(self, cell) -> int:
        try:
            return self.cells.index(cell)
        except ValueError:
            raise NetworkError(f"cell {cell!r} is not in this model; cells are {list(self.cells)[:10]}") from None

    def _refuse(self, what):
        raise ChiralnetError(
            f"this network has squeezing or parametric terms (a general Gaussian model), whose generator is not "
            f"one matrix M ({what}); chiralnet.simulate, protocols, steady_state, check_stability, scattering, sweeps, "
            "the charging observables, ergotropy, energy_variance, log_negativity, gradient and optimize take it; "
            "doubled_model(model) is the same network as a phase-insensitive Model of 2N modes")

    @property
    def M(self):
        self._refuse("model.M; see GaussianModel.drift and .pairing, or .quadratures()")

    @property
    def Q(self):
        self._refuse("model.Q; see GaussianModel.noise and .squeezing")

    def __getattr__(self, name):
        """The rest of :class:`~chiralnet.model.Model`'s interface (is_sparse, dense_M, forcing, ...) is refused
        with the same message: a tool written for one matrix M stops instead of dropping the new terms."""
        from .model import Model

        if not name.startswith("_") and hasattr(Model, name):
            self._refuse(f"model.{name}")
        raise AttributeError(name)

    def quadratures(self):
        """(A (2N, 2N) real, v (2N,) real, D (2N, 2N) real symmetric): d<R>/dt = A <R> + v and
        d sigma/dt = A sigma + sigma A^T + D, R = (x_1..x_N, p_1..p_N) (cached)."""
        if "quad" not in self._cache:
            self._cache["quad"] = _quadratures(self.drift, self.pairing, self.drive, self.noise, self.squeezing)
        return self._cache["quad"]


@dataclass(frozen=True)
class Conjugate:
    """The label of cell ``cell``'s conjugate mode a^dag in a :func:`doubled_model`."""

    cell: object

    def __repr__(self):
        return f"conj({self.cell!r})"


def doubled_model(model: GaussianModel):
    """The general model as a phase-insensitive :class:`~chiralnet.model.Model` of 2N modes b = (a, a^dag).

    With X = <db^dag db^T> = [[Nc, conj(Mc)], [Mc, Nc^T + I]] (2N, 2N) Hermitian and <b> = (alpha, conj alpha),
    the general moment equations are exactly the phase-insensitive ones of a model with

        M2 = [[M, -iG], [i conj G, conj M]],   E2 = (E, -conj E),
        Q2 = [[Q, conj S], [S, Q^T + Dm]],     Dm = -(M + M^H) (the damping),

    d<b>/dt = M2 <b> - i E2 and dX/dt = conj(M2) X + X M2^T + Q2 (docs/theory/gaussian.md), so every
    phase-insensitive solver (sparse Taylor stepping, cascaded steady states, the adaptive integrator) runs a
    general network. M2 is CSR when the phase-insensitive part ``model.base`` is or the network has
    ``config.GAUSSIAN_SPARSE_MIN_CELLS`` cells or more (the sparse routes' size); the conjugate modes have
    omega = 0 (the energies sum over the first N modes only) and are never battery cells. Cells: the N cells,
    then ``Conjugate(c)`` for each (cached).
    """
    import scipy.sparse as sp

    from .model import Model

    if "doubled" in model._cache:
        return model._cache["doubled"]
    base = model.base
    n = model.n_cells
    sparse = (base is not None and base.is_sparse) or n >= config.GAUSSIAN_SPARSE_MIN_CELLS
    M = base.M if base is not None else model.drift
    G, S = model.pairing, model.squeezing
    Q = base.Q if base is not None else (model.noise if model.noise.any() else None)
    if sparse:  # both block matrices from COO parts: one CSR construction each
        Gs, Ss = model._cache.get("pairing_csr"), model._cache.get("squeezing_csr")   # (gaussian_model's)
        M, Gs, Ss = (sp.coo_array(x) for x in (M, G if Gs is None else Gs, S if Ss is None else Ss))
        Qs = sp.coo_array((n, n), dtype=complex) if Q is None else sp.coo_array(Q)
        M2 = _blocks_csr(n, [(0, 0, M, 1), (0, n, Gs, -1j), (n, 0, Gs.conj(), 1j), (n, n, M.conj(), 1)])
        Q2 = _blocks_csr(n, [(0, 0, Qs, 1), (0, n, Ss.conj(), 1), (n, 0, Ss, 1), (n, n, Qs.T, 1),
                             (n, n, M, -1), (n, n, M.conj().T, -1)])          # Q^T + Dm, Dm = -(M + M^H)
        Q2.eliminate_zeros()
        if Q2.nnz == 0:
            Q2 = None
    else:
        M = np.asarray(M, complex)
        Dm = -(M + M.conj().T)
        Qd = np.zeros((n, n), complex) if Q is None else np.asarray(Q, complex)
        M2 = np.block([[M, -1j * G], [1j * np.conj(G), np.conj(M)]])
        Q2 = np.block([[Qd, np.conj(S)], [S, Qd.T + Dm]])
        Q2 = None if not Q2.any() else Q2
    E = np.asarray(model.drive, complex)
    cells = tuple(model.cells) + tuple(Conjugate(c) for c in model.cells)
    kappa = None if model.kappa is None else np.concatenate([model.kappa, model.kappa])
    doubled = Model(cells=cells, omega=np.concatenate([model.omega, np.zeros(n)]),
                    drive_frequency=model.drive_frequency, M=M2, drive=np.concatenate([E, -np.conj(E)]), Q=Q2,
                    battery=np.concatenate([model.battery, np.zeros(n, bool)]), kappa=kappa)
    model._cache["doubled"] = doubled
    return doubled


def _blocks_csr(n, parts):
    """The (2N, 2N) CSR sum of COO blocks ``parts``: (row offset, column offset, COO (N, N), factor)."""
    import scipy.sparse as sp

    rows = np.concatenate([r + x.row for r, _, x, _ in parts])
    cols = np.concatenate([c + x.col for _, c, x, _ in parts])
    vals = np.concatenate([f * x.data.astype(complex) for *_, x, f in parts])
    out = sp.csr_array((vals, (rows, cols)), shape=(2 * n, 2 * n))
    out.sum_duplicates()
    return out


def doubled_state(state, doubled):
    """The :class:`~chiralnet.model.State` of ``doubled`` (a :func:`doubled_model`) that holds ``state``:
    alpha2 = (alpha, conj alpha), Nc2 = X = [[Nc, conj Mc], [Mc, Nc^T + I]] (not checked again: X is positive
    semidefinite exactly when ``state`` obeys the uncertainty principle, which the runs check)."""
    from .model import State

    Nc, Mc = state.dense_Nc(), state.dense_Mc()
    n = Nc.shape[0]
    X = np.block([[Nc, np.conj(Mc)], [Mc, Nc.T + np.eye(n)]])
    a = np.asarray(state.alpha, complex)
    return State._checked(doubled.cells, np.concatenate([a, np.conj(a)]), X, float(state.time), state.frame)


def undoubled_moments(alpha2, X):
    """(alpha (N,), Nc (N, N), Mc (N, N)) of a doubled model's amplitudes (2N,) and fluctuations X (2N, 2N),
    symmetrised (Nc Hermitian, Mc symmetric) from both copies each holds."""
    n = alpha2.shape[0] // 2
    alpha = 0.5 * (alpha2[:n] + np.conj(alpha2[n:]))
    Nc = 0.5 * (X[:n, :n] + (X[n:, n:] - np.eye(n)).T)
    Nc = 0.5 * (Nc + Nc.conj().T)
    Mc = 0.5 * (X[n:, :n] + np.conj(X[:n, n:]))
    return alpha, Nc, 0.5 * (Mc + Mc.T)


def _quadratures(M, G, E, Q, S):
    """The quadrature drift, drive and diffusion of the complex moment equations (module docstring).

    With b = (a, a^dag) = T R: d<b>/dt = Z <b> + f, Z = [[M, -iG], [i conj G, conj M]], f = (-iE, i conj E),
    and Cb = <{db, db^dag}>/2 = T sigma T^dag obeys dCb/dt = Z Cb + Cb Z^dag + Db with
    Db = [[Q^T + Dm/2, S], [conj S, Q + conj(Dm)/2]], Dm = -(M + M^H) the damping. Then A = T^-1 Z T,
    v = T^-1 f, D = T^-1 Db T^-dag (all real), written out block by block (O(N^2), no dense 2N x 2N
    complex product): with T^-1 = T^dag = [[I, I], [-iI, iI]]/sqrt2, T^-1 X T^-dag =
    [[X11 + X12 + X21 + X22, i(X11 - X12 + X21 - X22)], [-i(X11 + X12 - X21 - X22), X11 - X12 - X21 + X22]]/2.
    """
    M = np.asarray(M, complex)
    G = np.asarray(G, complex)
    Dm = -(M + M.conj().T)
    A = _to_quadratures(M, -1j * G, 1j * np.conj(G), np.conj(M))
    v = np.concatenate([SQRT2 * np.asarray(E, complex).imag, -SQRT2 * np.asarray(E, complex).real])
    D = _to_quadratures(Q.T + Dm / 2, S, np.conj(S), Q + np.conj(Dm) / 2)
    D = 0.5 * (D + D.T)
    return np.ascontiguousarray(A), np.ascontiguousarray(v), np.ascontiguousarray(D)


def _to_quadratures(X11, X12, X21, X22):
    """Re(T^-1 X T^-dag) (2N, 2N) of the block matrix X = [[X11, X12], [X21, X22]] on b = (a, a^dag), whose
    image is real (X maps the ladder operators as a real operator on the quadratures does)."""
    top = np.concatenate([(X11 + X12 + X21 + X22).real, (1j * (X11 - X12 + X21 - X22)).real], axis=1)
    bottom = np.concatenate([(-1j * (X11 + X12 - X21 - X22)).real, (X11 - X12 - X21 + X22).real], axis=1)
    return 0.5 * np.concatenate([top, bottom], axis=0)


def _quadratures_reference(M, G, E, Q, S):
    """The dense form of :func:`_quadratures` (T^-1 Z T as 2N x 2N complex products), for the tests."""
    n = M.shape[0]
    eye = np.eye(n)
    T = np.block([[eye, 1j * eye], [eye, -1j * eye]]) / SQRT2
    Ti = np.block([[eye, eye], [-1j * eye, 1j * eye]]) / SQRT2
    Z = np.block([[M, -1j * G], [1j * np.conj(G), np.conj(M)]])
    f = np.concatenate([-1j * E, 1j * np.conj(E)])
    Dm = -(M + M.conj().T)
    Db = np.block([[Q.T + Dm / 2, S], [np.conj(S), Q + np.conj(Dm) / 2]])
    D = Ti @ Db @ Ti.conj().T
    D = 0.5 * (D + D.conj().T)
    return (Ti @ Z @ T).real, (Ti @ f).real, D.real


def general_model(model) -> GaussianModel:
    """A phase-insensitive :class:`~chiralnet.model.Model` as a :class:`GaussianModel` (no pairing, no
    squeezed noise): what a run from a squeezed ``state0`` on such a network uses."""
    if is_general_model(model):
        return model
    _check_size(model.n_cells)
    n = model.n_cells
    initial = model.initial
    return GaussianModel(cells=model.cells, omega=model.omega, drive_frequency=model.drive_frequency,
                         drift=np.array(model.dense_M(), complex), pairing=np.zeros((n, n), complex),
                         drive=np.asarray(model.drive, complex), noise=np.array(model.dense_Q(), complex),
                         squeezing=np.zeros((n, n), complex), battery=model.battery, kappa=model.kappa,
                         initial=initial, base=_constant_part(model), drives=model.drives)


def _constant_part(model):
    """``model`` without its shaped drives (what ``GaussianModel.base`` holds)."""
    import dataclasses

    return model if model.drives is None else dataclasses.replace(model, drives=None)


def _check_size(n):
    if n > config.GAUSSIAN_MAX_CELLS:
        raise ChiralnetError(f"the general Gaussian path keeps dense N x N model arrays and takes at most "
                             f"config.GAUSSIAN_MAX_CELLS = {config.GAUSSIAN_MAX_CELLS} cells, this network has {n}; "
                             "raise that limit if the memory allows (16 N^2 bytes per array, four arrays; a run's "
                             "own memory is estimated and refused up front)")


def gaussian_model(G, model) -> GaussianModel:
    """The :class:`GaussianModel` of graph ``G`` (validated), whose phase-insensitive part ``model`` was
    assembled by :func:`~chiralnet.model.build_model`: the anomalous terms are read here."""
    from .model import State

    cells = model.cells
    _check_size(len(cells))
    index = {c: i for i, c in enumerate(cells)}
    nodes = G.nodes
    n = len(cells)
    terms = []
    kappa = np.asarray(model.kappa, float)
    node = G._node                                       # (NetworkX's node dict: a lookup per cell costs less)
    pumps = np.array([complex(node[c].get("pump", 0j)) for c in cells])
    baths = np.array([complex(node[c].get("m_th", 0j)) for c in cells])
    cell_idx = np.flatnonzero(pumps)
    terms += [("pump", cells[i], complex(pumps[i])) for i in cell_idx]
    # (rows, cols, values) of the pairing G and the squeezing S: summed into the dense arrays and the CSR copies
    entries = {"pairing": [(cell_idx, cell_idx, pumps[cell_idx])], "squeezing": []}
    bath_idx = np.flatnonzero(baths)
    entries["squeezing"].append((bath_idx, bath_idx, kappa[bath_idx] * baths[bath_idx]))
    for u, v, g in G.edges(data="g"):
        if g is None or g == 0:
            continue
        g = complex(g)
        iu, iv = index[u], index[v]
        entries["pairing"].append((np.array([iu, iv]), np.array([iv, iu]), np.array([g, g])))
        terms.append(("parametric", u, v, g))
    for r, attrs in nodes(data=True):
        if attrs.get("kind", "cell") != "reservoir" or complex(attrs.get("m_th", 0j)) == 0:
            continue
        idx = np.array([index[c] for _, c in G.out_edges(r)], np.int64)
        p = np.array([complex(p) for *_, p in G.out_edges(r, data="p")])
        rows, cols = np.meshgrid(idx, idx, indexing="ij")
        weight = float(attrs["gamma"]) * complex(attrs["m_th"])
        entries["squeezing"].append((rows.ravel(), cols.ravel(), weight * np.outer(p.conj(), p.conj()).ravel()))
    coo = {}
    for name, parts in entries.items():
        rows, cols, values = (np.concatenate([np.asarray(z[k]).ravel() for z in parts]) if parts else np.zeros(0)
                              for k in range(3))
        coo[name] = (rows.astype(np.int64), cols.astype(np.int64), values.astype(complex))
    pairing = np.zeros((n, n), complex)
    squeezing = np.zeros((n, n), complex)
    np.add.at(pairing, coo["pairing"][:2], coo["pairing"][2])
    np.add.at(squeezing, coo["squeezing"][:2], coo["squeezing"][2])
    base = model.initial
    xi0 = np.array([complex(node[c].get("xi0", 0j)) for c in cells])
    Nc, Mc = base.Nc, None
    if (xi0 != 0).any():
        n0 = np.array([float(node[c].get("n0", 0.0)) for c in cells])
        occ, anom = squeezed_thermal(n0, xi0)
        Nc, Mc = np.diag(occ).astype(complex), np.diag(anom)
    initial = State(cells, base.alpha, Nc, 0.0, None, Mc)
    # drift and noise share the dense arrays of ``model`` (built here, held only as ``base``): no N x N copies
    gm = GaussianModel(cells=cells, omega=model.omega, drive_frequency=model.drive_frequency,
                       drift=np.asarray(model.dense_M(), complex), pairing=pairing,
                       drive=np.asarray(model.drive, complex), noise=np.asarray(model.dense_Q(), complex),
                       squeezing=squeezing, battery=model.battery,
                       kappa=model.kappa, initial=initial, terms=tuple(terms), base=_constant_part(model),
                       drives=model.drives)
    import scipy.sparse as sp

    for name, (rows, cols, values) in coo.items():  # the same sums as the dense arrays, without a scan of them
        csr = sp.csr_array((values, (rows, cols)), shape=(n, n))
        csr.sum_duplicates()
        csr.eliminate_zeros()
        gm._cache[name + "_csr"] = csr
    return gm
