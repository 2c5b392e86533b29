"""The affine model: the generator as a function of builder parameters theta.

For the builders of :data:`chiralnet.builders.BUILDERS`, the model arrays are affine in the
continuous builder parameters, one at a time and (for M and E) jointly::

    M(theta) = M0 + sum_k theta_k dM_k,   E(theta) = E0 + sum_k theta_k dE_k,
    Q(theta) = Q0 + sum_k theta_k dQ_k,   omega(theta) = omega0 + sum_k theta_k domega_k

where theta lists the scalar parameters and every entry of the array parameters (a per-link ``gamma``
of a 10^4-cell chain is 9,999 entries theta_k). Which parameters enter how:

- ``omega`` (per cell) enters M linearly through -i (omega_i - omega_L) on the diagonal, and the
  lab-frame omega of the energies; with ``drive_frequency`` unset, omega_L = omega of cell 0 moves too.
  ``drive_frequency`` enters M through +i omega_L on the diagonal.
- ``kappa`` (per cell; ``kappa_a``, ``kappa_b`` of two_cell) enters M as -kappa_i/2 on the diagonal and
  Q as kappa_i n_th_i. two_cell with ``optimal=True`` is *not* affine in its kappas (xi = sqrt(kappa_a/kappa_b)
  sets the couplings) and raises.
- ``gamma`` of a one-way link u -> v enters both the dissipator D (rate Gamma of the reservoir, so
  M[u,u] -= xi gamma/2, M[v,v] -= gamma/(2 xi), M[u,v] += gamma/2, M[v,u] += gamma/2) and the balancing
  J = -i gamma/2 (M[u,v] -= gamma/2, M[v,u] += gamma/2), all linearly: net M[v,u] = gamma, M[u,v] = 0. It
  enters Q as gamma n_r p p^H. Of a coherent link with J unset, gamma enters M through J = gamma/2.
- ``J`` (coherent links) enters M as -i J at (u, v) and -i conj(J) at (v, u). A complex parameter
  (``J``, ``drive``) is a real theta: its direction is the real axis (the derivative with respect to the
  imaginary part of ``drive`` is i dE; of ``J``, rotate as the formula above says).
- ``drive`` enters E linearly (a number: cell 0; an array: each cell).
- ``n_th`` enters Q as kappa_i n_th_i (and gamma n_th of each link when it also sets the links), and
  ``n_th_link`` as gamma_l n_th_l p p^H.

Q is bilinear in (kappa, n_th) and (gamma, n_th or n_th_link): with both factors of a product among the
parameters, ``dQ`` are still the exact partial derivatives at the point, but Q(theta) is not affine there
(:attr:`AffineModel.q_affine` is False and :meth:`AffineModel.Q` raises).

The general Gaussian parameters (:data:`GENERAL_PARAMETERS`, complex) enter the pairing G and the anomalous
noise S of :class:`~chiralnet.gaussian.GaussianModel` (:func:`chiralnet.arrays.general_from_layout`):
``pump`` P_i at G[i, i]; ``parametric`` g_l at G[u, v] and G[v, u]; ``m_th`` as kappa_i m_i at S[i, i];
``m_th_link`` as gamma_l m_l conj(p p^T) on the block of (u, v) (p = (1, -1)). Each complex value is two real
entries of theta, the real part x and the imaginary part y (dG/dy = i dG/dx). S is bilinear in (kappa, m_th)
and (gamma, m_th_link): both factors among the parameters make :attr:`AffineModel.s_affine` False (the
partial derivatives dS are exact at the point all the same).

Derivatives are held as COO triplets with a parameter index (:class:`Derivative`), O(N + L) memory in
all: a per-link ``gamma`` array of 9,999 entries is 9,999 sparse matrices of four entries each.
:func:`affine_model` builds them from a builder and a point and is tested against
:func:`~chiralnet.model.build_model` at random points (tests/test_parametrized.py).

:class:`TabulatedModel` is the sweep form for any builder (also user callables): each swept axis adds a
tabulated difference X(axis value) - X(origin), verified against ``build_model``; the sweep planner
batches a group of points with it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from . import config
from .builders import BUILDERS, _layout, _links, _two_cell_xi
from .errors import ChiralnetError
from .model import Model, build_model

__all__ = ["AffineModel", "Derivative", "affine_model", "TabulatedModel", "AFFINE_PARAMETERS"]

#: Continuous parameters of each builder that :func:`affine_model` differentiates (the rest are
#: structural: sizes, flags and the choice of battery cells).
AFFINE_PARAMETERS = {
    name: tuple(k for k, p in info.parameters.items() if p.kind not in ("int", "bool", "battery"))
    for name, info in BUILDERS.items()
}
#: The builders' general Gaussian parameters (two-photon pumps, squeezed baths and link reservoirs, parametric
#: links). Complex: each value is two entries of theta, its real part (in the parameter's slice) and its
#: imaginary part (in :attr:`AffineModel.imag_slices`, after every real entry); any of them in a point makes
#: :func:`affine_model` build the :class:`~chiralnet.gaussian.GaussianModel` and the derivatives dG, dS.
GENERAL_PARAMETERS = ("pump", "m_th", "m_th_link", "parametric")


@dataclass(frozen=True, eq=False)
class Derivative:
    """Derivatives of one model array with respect to every theta_k, as COO triplets sorted by k.

    Attributes
    ----------
    n_theta : int
        Number of parameters (entries of theta).
    shape : tuple
        Shape of the array: (N, N) for M and Q, (N,) for E and omega.
    k : ndarray (nnz,) int64
        Parameter index of each entry, sorted.
    index : tuple of ndarray (nnz,) int64
        (row, col) for a matrix, (cell,) for a vector.
    value : ndarray (nnz,)
        d X[index] / d theta_k (complex for M, Q, E; float for omega).
    ptr : ndarray (n_theta + 1,) int64
        Entries of parameter k are ``ptr[k]:ptr[k+1]``.
    """

    n_theta: int
    shape: tuple
    k: np.ndarray
    index: tuple
    value: np.ndarray
    ptr: np.ndarray

    @classmethod
    def from_coo(cls, n_theta, shape, k, index, value):
        keep = value != 0
        k, value = k[keep], value[keep]
        index = tuple(i[keep] for i in index)
        order = np.argsort(k, kind="stable")
        k, value = k[order].astype(np.int64), value[order]
        index = tuple(i[order].astype(np.int64) for i in index)
        ptr = np.searchsorted(k, np.arange(n_theta + 1)).astype(np.int64)
        return cls(n_theta, tuple(shape), k, index, value, ptr)

    @property
    def nnz(self) -> int:
        return int(self.k.size)

    def of(self, k: int):
        """dX/dtheta_k: a CSR array for a matrix, a dense vector for a vector."""
        s = slice(self.ptr[k], self.ptr[k + 1])
        if len(self.shape) == 2:
            return sp.csr_array((self.value[s], (self.index[0][s], self.index[1][s])), shape=self.shape)
        out = np.zeros(self.shape, self.value.dtype)
        np.add.at(out, self.index[0][s], self.value[s])
        return out

    def contract(self, delta: np.ndarray):
        """sum_k delta_k dX_k: a CSR array for a matrix, a dense vector for a vector."""
        w = self.value * np.asarray(delta)[self.k]
        if len(self.shape) == 2:
            out = sp.csr_array((w, self.index), shape=self.shape)
            out.sum_duplicates()
            return out
        out = np.zeros(self.shape, self.value.dtype)
        np.add.at(out, self.index[0], w)
        return out

    def bilinear(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """For a matrix: g_k = left^T dX_k right (no conjugation) for every k, shape (n_theta,), in O(nnz).

        The adjoint gradient of a steady state is Re(lambda^H dM_k alpha): ``bilinear(conj(lambda), alpha)``.
        """
        r, c = self.index
        w = self.value * left[r] * right[c]
        return (np.bincount(self.k, w.real, self.n_theta) + 1j * np.bincount(self.k, w.imag, self.n_theta)
                if np.iscomplexobj(w) else np.bincount(self.k, w, self.n_theta))


@dataclass(frozen=True, eq=False)
class AffineModel:
    """M, E, Q and omega as affine functions of the parameters theta, around a point.

    Attributes
    ----------
    builder : str
        Builder name (:data:`chiralnet.builders.BUILDERS`).
    params : dict
        The fixed (structural) keyword arguments.
    names : tuple of str
        The parameters, in the order of theta.
    slices : dict
        name -> slice of theta (one entry for a number, one per cell / link for an array).
    shapes : dict
        name -> () for a number, (n,) for an array.
    theta0 : ndarray (n_theta,) float
        theta at the point (the real part of a complex parameter; the imaginary part too, in
        ``imag_slices``, for a general Gaussian one).
    model : Model
        The model at theta0: ``build_model(builder(**params, **point))`` (for chain, ring, star and lattice
        built from arrays as :mod:`chiralnet.arrays` does, without a graph).
    dM, dQ, dE, domega : Derivative
        Derivatives of M, Q, the drive E and the lab-frame omega.
    q_affine : bool
        False when two factors of a product in Q (kappa and n_th, gamma and n_th or n_th_link) are both
        parameters: ``dQ`` are then partial derivatives at theta0 and :meth:`Q` raises.
    imag_slices : dict
        name -> slice of theta holding the imaginary parts of a general Gaussian parameter (after every real
        entry); empty without one.
    dG, dS : Derivative or None
        Derivatives of the pairing G and the anomalous noise S (a general model only; then ``model`` is a
        :class:`~chiralnet.gaussian.GaussianModel` and ``dM``, ``dQ`` are of its ``drift`` and ``noise``).
    s_affine : bool
        False when kappa and m_th, or gamma and m_th_link, are both parameters (S is bilinear in them).
    """

    builder: str
    params: dict
    names: tuple
    slices: dict
    shapes: dict
    theta0: np.ndarray
    model: Model
    dM: Derivative
    dQ: Derivative
    dE: Derivative
    domega: Derivative
    q_affine: bool = True
    imag_slices: dict = field(default_factory=dict)
    dG: Derivative | None = None
    dS: Derivative | None = None
    s_affine: bool = True

    @property
    def n_theta(self) -> int:
        return int(self.theta0.size)

    @property
    def general(self) -> bool:
        """True when the model is a :class:`~chiralnet.gaussian.GaussianModel` (dG and dS are set)."""
        return self.dG is not None

    def theta(self, point: dict) -> np.ndarray:
        """Flatten ``point`` (name -> number or array, every parameter) into theta (n_theta,)."""
        missing = set(self.names) - set(point)
        extra = set(point) - set(self.names)
        if missing or extra:
            raise ChiralnetError(f"a point of this affine model gives {list(self.names)}; "
                                 f"missing {sorted(missing)}, unknown {sorted(extra)}")
        out = np.empty(self.n_theta)
        for name in self.names:
            value = np.asarray(point[name], complex)
            if value.shape != self.shapes[name]:
                raise ChiralnetError(f"parameter {name!r} has shape {self.shapes[name]}, got {value.shape}")
            out[self.slices[name]] = value.real.ravel()
            if name in self.imag_slices:
                out[self.imag_slices[name]] = value.imag.ravel()
        return out

    def point(self, theta: np.ndarray) -> dict:
        """theta (n_theta,) -> name -> float or array (the inverse of :meth:`theta`)."""
        theta = self._check(theta)
        out = {}
        for n in self.names:
            value = theta[self.slices[n]].copy()
            if n in self.imag_slices:
                value = value + 1j * theta[self.imag_slices[n]]
            out[n] = value[0].item() if self.shapes[n] == () else value
        return out

    def _check(self, theta) -> np.ndarray:
        theta = np.asarray(theta, float)
        if theta.shape != (self.n_theta,) or not np.isfinite(theta).all():
            raise ChiralnetError(f"theta must be {self.n_theta} finite real numbers, got shape {theta.shape}")
        return theta

    def _at(self, base, d: Derivative, theta):
        delta = self._check(theta) - self.theta0
        change = d.contract(delta)
        if sp.issparse(base):
            out = (base + change).tocsr()
            out.sum_duplicates()
            return out
        return base + (change.toarray() if sp.issparse(change) else change)

    def M(self, theta):
        """M(theta), dense or CSR as the model's M; O(nnz) beyond a copy of M."""
        return self._at(self.model.M, self.dM, theta)

    def drive(self, theta) -> np.ndarray:
        """E(theta), shape (N,) complex."""
        return self._at(self.model.drive, self.dE, theta)

    def omega(self, theta) -> np.ndarray:
        """Lab-frame omega(theta), shape (N,)."""
        return self._at(self.model.omega, self.domega, theta)

    def Q(self, theta):
        """Q(theta) (None at zero temperature); raises when Q is not affine in these parameters."""
        if not self.q_affine:
            raise ChiralnetError(f"Q is not affine in {list(self.names)} (a product kappa*n_th or gamma*n_th has "
                                 "both factors among the parameters); build the model at this point instead")
        if self.model.Q is None and self.dQ.nnz == 0:
            return None
        base = self.model.Q
        if base is None:
            base = sp.csr_array(self.model.M.shape, dtype=complex) if self.model.is_sparse else np.zeros(self.model.M.shape, complex)
        return self._at(base, self.dQ, theta)

    @property
    def M0(self):
        """The constant term of M(theta) = M0 + sum theta_k dM_k."""
        return self.M(np.zeros(self.n_theta))

    def model_at(self, theta) -> Model:
        """The :class:`Model` at theta (its cells, battery and drive frequency are those of the point;
        omega_L moves with theta only through M). Not for a general model: build it at the point."""
        if self.general:
            raise ChiralnetError("model_at builds phase-insensitive models only; this affine model is a general "
                                 "Gaussian one: build the network at the point (chiralnet.build_model)")
        m = self.model
        Q = self.Q(theta)
        if Q is not None and not sp.issparse(Q) and not np.any(Q):
            Q = None
        elif Q is not None and sp.issparse(Q) and not Q.count_nonzero():
            Q = None
        return Model(cells=m.cells, omega=self.omega(theta), drive_frequency=m.drive_frequency, M=self.M(theta),
                     drive=self.drive(theta), Q=Q, battery=m.battery)


# ---------------------------------------------------------------------------------------------
# affine_model: exact derivatives from the builders' per-cell / per-link layout.

# Primitive coordinates (all real): omega_i, omega_L, kappa_i, n_th_i, Re J_l, Im J_l, rate_l, occupation_l, Re E_i,
# and the general Gaussian terms' real and imaginary parts: pump P_i, m_th_i, m_th_link_l, parametric g_l.
_PRIMS = ("omega", "omega_L", "kappa", "n_th", "J_re", "J_im", "rate", "occ", "E", "P_re", "P_im", "m_re", "m_im",
          "ml_re", "ml_im", "g_re", "g_im")
#: General parameter -> (its primitive's prefix, "cell" or "link").
_GENERAL_PRIMS = {"pump": ("P", "cell"), "m_th": ("m", "cell"), "m_th_link": ("ml", "link"), "parametric": ("g", "link")}


class _Prims:
    """Offsets of the primitives; the general Gaussian ones are empty unless ``general`` (the phase-insensitive
    maps stay their old size and speed)."""

    def __init__(self, n, L, general=False):
        g_n, g_L = (n, L) if general else (0, 0)
        sizes = dict(omega=n, omega_L=1, kappa=n, n_th=n, J_re=L, J_im=L, rate=L, occ=L, E=n, P_re=g_n, P_im=g_n,
                     m_re=g_n, m_im=g_n, ml_re=g_L, ml_im=g_L, g_re=g_L, g_im=g_L)
        self.offset, pos = {}, 0
        for p in _PRIMS:
            self.offset[p] = pos
            pos += sizes[p]
        self.size = pos


def _structure(name, params, point):
    """Per-cell/per-link values at the point and the couplings: (layout, p_u (L,), p_v (L,), options)."""
    kw = {**params, **point}
    if name == "two_cell":
        info = BUILDERS["two_cell"]
        o = {k: p.default for k, p in info.parameters.items()}
        o.update(kw)
        xi = _two_cell_xi(o["kappa_a"], o["kappa_b"], o["optimal"]) if o["nonreciprocal"] else 1.0
        lay = _layout("two_cell", 2, (np.array([0]), np.array([1])), omega=o["omega"], kappa=[o["kappa_a"], o["kappa_b"]],
                      gamma=o["gamma"], drive=o["drive"], n_th=o["n_th"], nonreciprocal=o["nonreciprocal"], J=o["J"],
                      drive_frequency=o["drive_frequency"])
        s = np.sqrt(xi)
        return lay, np.array([s]), np.array([-1.0 / s]), o
    info = BUILDERS[name]
    o = {k: p.default for k, p in info.parameters.items()}
    o.update(kw)
    sizes = info.sizes(**{k: o[k] for k in info.required})
    shape = tuple(o[k] for k in info.required)
    links = _links(name, sizes["cell"]) if name in ("chain", "ring", "star") else _links(name, *shape)
    options = {k: o[k] for k in info.parameters if k not in info.required}
    lay = _layout(name, sizes["cell"], links, **options)
    L = lay.link_u.size
    return lay, np.ones(L), -np.ones(L), o


def _jacobian(name, names, shapes, lay, o, prims, imag_slices=None) -> tuple:
    """P (n_theta, n_prims): d primitive / d theta_k, as COO triplets (rows, cols, values, shape) with duplicates
    to be summed (:func:`_coo_csr` for a CSR array); the rows of ``imag_slices`` come after the real ones."""
    n, L = lay.n, lay.link_u.size
    imag_slices = imag_slices or {}
    rows, cols, vals = [], [], []
    k0 = 0

    def put(k, prim, idx, val):
        k, idx = np.broadcast_arrays(np.asarray(k, np.int64), np.asarray(idx, np.int64))
        rows.append(k.ravel())
        cols.append(prims.offset[prim] + idx.ravel())
        vals.append(np.full(k.size, float(val)))

    cells, links = np.arange(n), np.arange(L)
    resonant = o.get("drive_frequency") is None
    for pname in names:
        size = int(np.prod(shapes[pname], dtype=int))
        ks = k0 + np.arange(size)
        array = shapes[pname] != ()
        per_cell = ks if array else np.full(n, k0)
        per_link = ks if array else np.full(L, k0)
        if pname == "omega":
            put(per_cell, "omega", cells, 1.0)
            if resonant:
                put(k0, "omega_L", 0, 1.0)          # omega_L = omega of cell 0
        elif pname == "drive_frequency":
            put(k0, "omega_L", 0, 1.0)
        elif pname in ("kappa", "kappa_a", "kappa_b"):
            if name == "two_cell":
                if o["optimal"] and o["nonreciprocal"]:
                    raise ChiralnetError(f"two_cell with optimal=True is not affine in {pname!r}: "
                                         "xi = sqrt(kappa_a/kappa_b) sets the couplings; fix it or use optimal=False")
                put(k0, "kappa", 0 if pname == "kappa_a" else 1, 1.0)
            else:
                put(per_cell, "kappa", cells, 1.0)
        elif pname == "n_th":
            put(per_cell, "n_th", cells, 1.0)
            if not array and lay.nonreciprocal and o.get("n_th_link") is None:
                put(np.full(L, k0), "occ", links, 1.0)
        elif pname == "n_th_link":
            put(per_link, "occ", links, 1.0)
        elif pname == "gamma":
            if lay.nonreciprocal:
                put(per_link, "rate", links, 1.0)
                put(per_link, "J_im", links, -0.5)   # J = -i gamma/2
            elif o.get("J") is None:
                put(per_link, "J_re", links, 0.5)    # J = gamma/2
        elif pname == "J":
            put(per_link, "J_re", links, 1.0)
        elif pname == "drive":
            put(ks if array else k0, "E", cells if array else 0, 1.0)
        elif pname in _GENERAL_PRIMS:
            prefix, per = _GENERAL_PRIMS[pname]
            idx = cells if per == "cell" else links
            s = imag_slices[pname]
            put(ks if array else np.full(idx.size, k0), f"{prefix}_re", idx, 1.0)
            put(np.arange(s.start, s.stop) if array else np.full(idx.size, s.start), f"{prefix}_im", idx, 1.0)
        else:  # pragma: no cover - names are checked before
            raise ChiralnetError(f"{name}: parameter {pname!r} is not continuous")
        k0 += size
    r = np.concatenate(rows) if rows else np.zeros(0, int)
    c = np.concatenate(cols) if cols else np.zeros(0, int)
    v = np.concatenate(vals) if vals else np.zeros(0)
    n_theta = max([k0] + [s.stop for s in imag_slices.values()])
    return r, c, v, (n_theta, prims.size)


def _coo_csr(rows, cols, values, shape) -> sp.csr_array:
    """The CSR array of COO triplets (duplicates summed)."""
    return sp.csr_array((values, (rows, cols)), shape=shape)


def _prim_maps(lay, p_u, p_v, prims):
    """Maps primitive -> flattened M, Q (n_prims, N*N) and -> E, omega (n_prims, N), each as COO triplets
    (rows, cols, values, shape) with duplicates to be summed."""
    n, L = lay.n, lay.link_u.size
    u, v = lay.link_u, lay.link_v
    cells, links = np.arange(n), np.arange(L)
    off = prims.offset
    rate = lay.gamma if lay.nonreciprocal else np.zeros(L)
    occ = lay.n_th_link if lay.nonreciprocal else np.zeros(L)
    pairs = [(u, u, p_u, p_u), (u, v, p_u, p_v), (v, u, p_v, p_u), (v, v, p_v, p_v)]
    mr, mc, mv = [], [], []

    def m(prim_idx, i, j, val):  # prim_idx, i, j: (k,) int; val: a number or (k,)
        mr.append(prim_idx)
        mc.append(i * n + j)
        mv.append(np.full(i.shape, val, complex) if np.ndim(val) == 0 else np.asarray(val, complex))

    m(off["omega"] + cells, cells, cells, -1j)
    m(np.full(n, off["omega_L"]), cells, cells, 1j)
    m(off["kappa"] + cells, cells, cells, -0.5)
    m(off["J_re"] + links, u, v, -1j)
    m(off["J_re"] + links, v, u, -1j)
    m(off["J_im"] + links, u, v, 1.0)
    m(off["J_im"] + links, v, u, -1.0)
    if lay.nonreciprocal:
        for i, j, pi, pj in pairs:
            m(off["rate"] + links, i, j, -0.5 * np.conj(pi) * pj)
    A_M = (np.concatenate(mr), np.concatenate(mc), np.concatenate(mv), (prims.size, n * n))
    mr, mc, mv = [], [], []
    m(off["kappa"] + cells, cells, cells, lay.n_th)
    m(off["n_th"] + cells, cells, cells, lay.kappa)
    if lay.nonreciprocal:
        for i, j, pi, pj in pairs:
            m(off["rate"] + links, i, j, occ * pi * np.conj(pj))
            m(off["occ"] + links, i, j, rate * pi * np.conj(pj))
    A_Q = (np.concatenate(mr), np.concatenate(mc), np.concatenate(mv), (prims.size, n * n))
    A_E = (off["E"] + cells, cells, np.ones(n, complex), (prims.size, n))
    A_w = (off["omega"] + cells, cells, np.ones(n), (prims.size, n))
    return A_M, A_Q, A_E, A_w


def _general_maps(lay, p_u, p_v, prims):
    """Maps primitive -> flattened pairing G and anomalous noise S (n_prims, N*N), as COO triplets (rows, cols,
    values, shape) with duplicates to be summed, as
    :func:`chiralnet.arrays.general_from_layout` assembles them (the imaginary part's column is i times the
    real part's)."""
    n, L = lay.n, lay.link_u.size
    u, v = lay.link_u, lay.link_v
    cells, links = np.arange(n), np.arange(L)
    off = prims.offset
    out = []
    for entries in (
        [("P", cells, cells * n + cells, 1.0), ("g", links, u * n + v, 1.0), ("g", links, v * n + u, 1.0)],
        [("m", cells, cells * n + cells, lay.kappa)]
        + ([("ml", links, i * n + j, lay.gamma * np.conj(pi * pj)) for i, j, pi, pj in
            ((u, u, p_u, p_u), (u, v, p_u, p_v), (v, u, p_v, p_u), (v, v, p_v, p_v))] if lay.nonreciprocal else []),
    ):
        rows, cols, vals = [], [], []
        for prefix, idx, flat, val in entries:
            val = np.broadcast_to(np.asarray(val, complex), idx.shape)
            rows += [off[f"{prefix}_re"] + idx, off[f"{prefix}_im"] + idx]
            cols += [flat, flat]
            vals += [val, 1j * val]
        out.append([rows, cols, vals])
    # S is bilinear: kappa_i m_i and gamma_l m_l conj(p p^T) move with kappa and gamma too
    rows, cols, vals = out[1]
    rows.append(off["kappa"] + cells)
    cols.append(cells * n + cells)
    vals.append(lay.m_th.astype(complex))
    if lay.nonreciprocal:
        for i, j, pi, pj in ((u, u, p_u, p_u), (u, v, p_u, p_v), (v, u, p_v, p_u), (v, v, p_v, p_v)):
            rows.append(off["rate"] + links)
            cols.append(i * n + j)
            vals.append(lay.m_th_link * np.conj(pi * pj))
    return tuple((np.concatenate(r), np.concatenate(c), np.concatenate(vl), (prims.size, n * n)) for r, c, vl in out)


#: Largest n_prims x (entries of the array) for which :func:`_derivative` forms the product of the primitive maps
#: densely (a few cells: scipy.sparse's fixed cost, ~1 ms a gradient, is then most of it).
DERIVATIVE_DENSE_MAX_ENTRIES = 1 << 16


def _dense(rows, cols, values, shape) -> np.ndarray:
    """The dense array of COO triplets, duplicates summed in their order (np.add.at's sums, by bincount)."""
    flat = rows * shape[1] + cols
    size = shape[0] * shape[1]
    if values.dtype.kind == "c":
        out = np.bincount(flat, values.real, size) + 1j * np.bincount(flat, values.imag, size)
    else:
        out = np.bincount(flat, values, size)
    return out.reshape(shape)


def _derivative(P, A, n_theta, shape) -> Derivative:
    """The derivative of one model array, the product P @ A of COO triplets (P: theta -> primitives, A:
    primitives -> flattened array), duplicates summed.

    Dense for a small product (``DERIVATIVE_DENSE_MAX_ENTRIES``: the same sums, to rounding), else a join on
    the primitive index: scipy's sparse product allocates a mask of A's N*N columns."""
    if A[3][0] * A[3][1] <= DERIVATIVE_DENSE_MAX_ENTRIES:
        D = _dense(*P) @ _dense(*A)  # (n_theta, entries)
        k, flat = np.nonzero(D)  # row-major: sorted by k, then by entry, as the join's lexsort orders them
        index = np.divmod(flat, shape[1]) if len(shape) == 2 else (flat,)
        return Derivative.from_coo(n_theta, shape, k, index, D[k, flat])
    P, A = _coo_csr(*P), _coo_csr(*A)
    P = P.tocoo()
    A.sum_duplicates()
    counts = A.indptr[P.col + 1] - A.indptr[P.col]
    k = np.repeat(P.row.astype(np.int64), counts)
    start = np.repeat(A.indptr[P.col].astype(np.int64), counts)
    within = np.arange(counts.sum(), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    pos = start + within
    flat = A.indices[pos].astype(np.int64)
    value = np.repeat(P.data, counts) * A.data[pos]
    if k.size:  # sum duplicates (k, flat)
        order = np.lexsort((flat, k))
        k, flat, value = k[order], flat[order], value[order]
        first = np.r_[True, (k[1:] != k[:-1]) | (flat[1:] != flat[:-1])]
        starts = np.flatnonzero(first)
        value = np.add.reduceat(value, starts)
        k, flat = k[starts], flat[starts]
    index = np.divmod(flat, shape[1]) if len(shape) == 2 else (flat,)
    return Derivative.from_coo(n_theta, shape, k, index, value)


def affine_model(builder, point: dict, params: dict | None = None, *, sparse: bool | None = None) -> AffineModel:
    """The affine model of a builder around a point, with exact derivatives.

    Parameters
    ----------
    builder : str
        A builder name of :data:`chiralnet.builders.BUILDERS`.
    point : dict
        The parameters theta: name -> number, or array for a parameter that takes one value per cell or
        per link (:class:`chiralnet.builders.Parameter` ``per``). Continuous parameters only
        (:data:`AFFINE_PARAMETERS`); a general Gaussian one (:data:`GENERAL_PARAMETERS`: ``pump``, ``m_th``,
        ``m_th_link``, ``parametric``) makes the model a :class:`~chiralnet.gaussian.GaussianModel` with
        derivatives ``dG``, ``dS`` and puts its imaginary parts in theta too (``imag_slices``).
    params : dict, optional
        Fixed keyword arguments of the builder (sizes, flags, and parameters held constant).
    sparse : bool, optional
        As in :func:`chiralnet.build_model`.

    Returns
    -------
    AffineModel

    Examples
    --------
    >>> import numpy as np
    >>> from chiralnet.parametrized import affine_model
    >>> am = affine_model("chain", {"gamma": np.full(3, 0.04), "drive": 0.1}, {"n_cells": 4})
    >>> am.names, am.n_theta
    (('gamma', 'drive'), 4)
    >>> am.dM.of(1).toarray().real                    # d M / d gamma of link 1 -> 2
    array([[ 0. ,  0. ,  0. ,  0. ],
           [ 0. , -0.5,  0. ,  0. ],
           [ 0. ,  1. , -0.5,  0. ],
           [ 0. ,  0. ,  0. ,  0. ]])
    >>> theta = am.theta({"gamma": [0.04, 0.05, 0.03], "drive": 0.2})
    >>> float(am.M(theta)[2, 1].real), complex(am.drive(theta)[0])
    (0.05, (0.2+0j))
    """
    params = dict(params or {})
    if not isinstance(builder, str) or builder not in BUILDERS:
        raise ChiralnetError(f"affine_model: unknown builder {builder!r}; valid: {sorted(BUILDERS)}")
    info = BUILDERS[builder]
    if not isinstance(point, dict) or not point:
        raise ChiralnetError("affine_model: give the point as a non-empty dict parameter -> value")
    for key in list(point) + list(params):
        if key not in info.parameters:
            raise ChiralnetError(f"affine_model: builder {builder!r} has no parameter {key!r}; "
                                 f"its parameters are {sorted(info.parameters)}")
    both = set(point) & set(params)
    if both:
        raise ChiralnetError(f"affine_model: {sorted(both)} given both in point and in params; keep one")
    for key, value in point.items():
        if key not in AFFINE_PARAMETERS[builder]:
            raise ChiralnetError(f"affine_model: {key!r} is structural (an integer or a flag), not a continuous "
                                 f"parameter; give it in params. Continuous: {list(AFFINE_PARAMETERS[builder])}")
        if value is None:
            raise ChiralnetError(f"affine_model: parameter {key!r} is None; give a number")
    missing = [k for k in info.required if k not in params]
    if missing:
        raise ChiralnetError(f"affine_model: builder {builder!r} needs {missing} in params")
    lay, p_u, p_v, o = _structure(builder, params, point)   # checks every value as the builder does
    general = builder != "two_cell" and (lay.general or any(k in point for k in GENERAL_PARAMETERS))
    if "m_th_link" in point and not lay.nonreciprocal:
        raise ChiralnetError("affine_model: 'm_th_link' applies to nonreciprocal=True only (coherent links have no "
                             "reservoir to squeeze); drop it from the point, or differentiate 'm_th'")
    if builder == "two_cell":
        model = build_model(info.function(**params, **point), sparse=sparse)
    elif general:  # the dense GaussianModel, even where the point's general terms are zero (their derivatives)
        from .arrays import general_from_layout

        model = general_from_layout(lay)
    else:  # the array route: equal to build_model(builder(...)) (tests/test_arrays.py), O(N) without NetworkX
        from .arrays import model_from_layout

        model = model_from_layout(lay, sparse=sparse)
    names = tuple(point)
    shapes, slices, pos = {}, {}, 0
    for name in names:
        shape = np.shape(point[name])
        if len(shape) > 1:
            raise ChiralnetError(f"affine_model: parameter {name!r} must be a number or a 1-D array")
        shapes[name] = shape
        size = int(np.prod(shape, dtype=int))
        slices[name] = slice(pos, pos + size)
        pos += size
    imag_slices = {}
    for name in names:  # the imaginary parts of the general parameters, after every real entry
        if name in GENERAL_PARAMETERS:
            size = slices[name].stop - slices[name].start
            imag_slices[name] = slice(pos, pos + size)
            pos += size
    theta0 = np.empty(pos)
    for name in names:
        theta0[slices[name]] = np.real(np.asarray(point[name])).ravel()
        if name in imag_slices:
            theta0[imag_slices[name]] = np.imag(np.asarray(point[name])).ravel()
    prims = _Prims(lay.n, lay.link_u.size, general)
    P = _jacobian(builder, names, shapes, lay, o, prims, imag_slices)
    A_M, A_Q, A_E, A_w = _prim_maps(lay, p_u, p_v, prims)
    N = lay.n
    dG = dS = None
    if general:
        A_G, A_S = _general_maps(lay, p_u, p_v, prims)
        dG, dS = _derivative(P, A_G, pos, (N, N)), _derivative(P, A_S, pos, (N, N))
    # Q is bilinear: kappa_i n_th_i, and gamma_l n_l of each link reservoir (n_l = n_th_link, or n_th when
    # a number n_th also sets the links).
    products = [{"kappa", "n_th"}, {"kappa_a", "n_th"}, {"kappa_b", "n_th"}]
    if lay.nonreciprocal:
        products.append({"gamma", "n_th_link"})
        if o.get("n_th_link") is None and np.ndim(o.get("n_th", 0.0)) == 0:
            products.append({"gamma", "n_th"})
    q_affine = not any(pair <= set(names) for pair in products)
    s_affine = not any(pair <= set(names) for pair in ({"kappa", "m_th"}, {"gamma", "m_th_link"}))
    return AffineModel(
        builder=builder, params=params, names=names, slices=slices, shapes=shapes, theta0=theta0, model=model,
        dM=_derivative(P, A_M, pos, (N, N)), dQ=_derivative(P, A_Q, pos, (N, N)),
        dE=_derivative(P, A_E, pos, (N,)), domega=_derivative(P, A_w, pos, (N,)), q_affine=q_affine,
        imag_slices=imag_slices, dG=dG, dS=dS, s_affine=s_affine,
    )


# ---------------------------------------------------------------------------------------------
# TabulatedModel: the sweep form, for any builder.


@dataclass(eq=False)
class TabulatedModel:
    """Model arrays of a grid of points that share one structure, as tabulated axis differences::

        X(point) = X(origin) + sum_k [X(origin with axis k at its value) - X(origin)]

    for X in M (dense, small networks), the forcing -i E, omega and alpha0 (from :func:`build_model` and the
    network's initial state). Exact when every model entry depends on at most one axis additively (true for
    rates, couplings, drives and frequencies of the builders); :meth:`build` verifies it against
    ``build_model`` at corners and random points. An axis along which the model is affine (checked at two
    interior values) is interpolated from its last value; otherwise every value's model is built.
    """

    cells: tuple = ()
    battery: np.ndarray | None = None
    M0: np.ndarray | None = None
    b0: np.ndarray | None = None
    omega0: np.ndarray | None = None
    alpha00: np.ndarray | None = None
    rows: np.ndarray | None = None
    cols: np.ndarray | None = None
    deltas: list = field(default_factory=list)   # per axis: (dM (n, V), db (n, N), domega (n, N), dalpha0 (n, N))
    pattern: np.ndarray | None = None            # (N, N) bool: entries of M that are nonzero at some point

    @classmethod
    def build(cls, model_at, values, names, describe, *, seed=12345):
        """Tabulate and verify; returns ``(TabulatedModel, "")`` or ``(None, reason)``.

        Parameters
        ----------
        model_at : callable
            ``model_at(idx)`` for a tuple of per-axis value indices -> an object with ``M`` (dense),
            ``forcing``, ``omega``, ``alpha0``, ``cells``, ``battery`` and ``thermal`` (the model and initial
            state at that point). ``model_at((0,) * n_axes)`` is the origin.
        values : list of ndarray
            The values of each axis.
        names : list of str
            Axis names (messages).
        describe : callable
            ``describe(idx)`` -> a text naming the point (messages).
        """
        n_axes = len(values)
        origin = (0,) * n_axes
        m0 = model_at(origin)
        raw = []
        for ax in range(n_axes):
            deltas, reason = _axis_deltas(model_at, m0, ax, np.asarray(values[ax], float), names[ax], n_axes)
            if deltas is None:
                return None, reason
            raw.append(deltas)
        varying = np.any([np.any(d[0] != 0, axis=0) for d in raw], axis=0)
        t = cls()
        t.pattern = (m0.M != 0) | varying
        rows, cols = np.nonzero(varying)
        t.cells, t.battery = m0.cells, m0.battery.copy()
        t.M0, t.b0, t.omega0, t.alpha00 = m0.M, m0.forcing, m0.omega, m0.alpha0
        t.rows, t.cols = rows, cols
        t.deltas = [(d[0][:, rows, cols], d[1], d[2], d[3]) for d in raw]
        # Verify the additive assembly against build_model at corners and random points.
        rng = np.random.default_rng(seed)
        lens = [len(v) for v in values]
        corners = list(itertools.product(*[sorted({0, n - 1}) for n in lens]))
        if len(corners) > 16:
            corners = [corners[i] for i in rng.choice(len(corners), 16, replace=False)]
        randoms = [tuple(int(rng.integers(n)) for n in lens) for _ in range(config.VERIFY_RANDOM_POINTS)]
        for ci in corners + randoms:
            m = model_at(ci)
            M, b, w, a = t.assemble(np.array([ci]))
            if m.cells != t.cells or m.thermal or not np.array_equal(m.battery, t.battery):
                return None, f"structure changes at {describe(ci)}"
            for name, x, y in (("M", M[0], m.M), ("drive", b[0], m.forcing), ("omega", w[0], m.omega),
                               ("alpha0", a[0], m.alpha0)):
                scale = float(np.abs(y).max(initial=0.0))  # relative to the array's own size
                if x.shape != y.shape or np.abs(x - y).max(initial=0.0) > config.ASSEMBLY_RTOL * scale:
                    return None, f"{name} is not additive over the swept axes (checked at {describe(ci)})"
        return t, ""

    def assemble(self, ci):
        """Model arrays at axis indices ci (P, n_axes): M (P, N, N), forcing, omega, alpha0 (P, N)."""
        P = ci.shape[0]
        M = np.repeat(self.M0[None], P, axis=0)
        b = np.repeat(self.b0[None], P, axis=0)
        w = np.repeat(self.omega0[None], P, axis=0)
        a = np.repeat(self.alpha00[None], P, axis=0)
        if self.rows.size:
            var = np.zeros((P, self.rows.size), complex)
            for k, (dM, _, _, _) in enumerate(self.deltas):
                var += dM[ci[:, k]]
            M[:, self.rows, self.cols] += var
        for k, (_, db, dw, da) in enumerate(self.deltas):
            b += db[ci[:, k]]
            w += dw[ci[:, k]]
            a += da[ci[:, k]]
        return M, b, w, a


def _axis_deltas(model_at, m0, ax, vals, name, n_axes):
    """Model differences X(axis value) - X(origin) along one axis: ((dM, db, domega, dalpha0), "") or (None, reason).

    When the model is affine in the parameter (checked at two interior values against build_model) the
    differences are interpolated from the last value; otherwise every value's model is built.
    """
    n = vals.size
    reason = []

    def at(i):
        if i == 0:
            return m0
        idx = [0] * n_axes
        idx[ax] = i
        m = model_at(tuple(idx))
        if m.cells != m0.cells or m.thermal or not np.array_equal(m.battery, m0.battery):
            reason.append(f"structure changes along {name!r}")
            return None
        return m

    def diff(m):
        return m.M - m0.M, m.forcing - m0.forcing, m.omega - m0.omega, m.alpha0 - m0.alpha0

    if n > 4 and vals[-1] != vals[0]:
        last = at(n - 1)
        if last is None:
            return None, reason[0]
        d_last = diff(last)
        affine = True
        for i in (n // 3, (2 * n) // 3):
            m = at(i)
            if m is None:
                return None, reason[0]
            f = (vals[i] - vals[0]) / (vals[-1] - vals[0])
            for x, y in zip(diff(m), d_last):
                scale = max(float(np.abs(x).max(initial=0.0)), float(np.abs(y).max(initial=0.0)))
                if np.abs(x - f * y).max(initial=0.0) > config.ASSEMBLY_RTOL * scale:
                    affine = False
        if affine:
            f = (vals - vals[0]) / (vals[-1] - vals[0])
            return tuple(np.multiply.outer(f, y) for y in d_last), ""
    out = [np.zeros((n,) + x.shape, x.dtype) for x in (m0.M, m0.forcing, m0.omega, m0.alpha0)]
    for i in range(n):
        m = at(i)
        if m is None:
            return None, reason[0]
        for buf, x in zip(out, diff(m)):
            buf[i] = x
    return tuple(out), ""
