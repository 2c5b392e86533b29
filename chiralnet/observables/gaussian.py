"""Observables of general Gaussian states (squeezing): ergotropy, energy variance, log-negativity.

All of them read the quadrature covariance sigma = <{dR, dR^T}>/2 of the cells concerned,
R = (x_1..x_n, p_1..p_n), built from the fluctuations Nc and the anomalous moments Mc
(:func:`chiralnet.gaussian.moments_to_sigma`); a phase-insensitive state is the case Mc = 0.

* Local ergotropy of a cell: W = omega (|alpha|^2 + n + 1/2 - sqrt((n + 1/2)^2 - |m|^2)), n = Nc_ii,
  m = Mc_ii (the passive state of a one-mode Gaussian state is the thermal state of its symplectic
  eigenvalue nu = sqrt((n + 1/2)^2 - |m|^2)).
* Collective Gaussian ergotropy of cells B: W_G = E_B - sum_k omega_(k)up (nu_(k)down - 1/2), nu the
  symplectic eigenvalues of sigma restricted to B (largest on the lowest frequency).
* Energy variance of H_B = sum_{i in B} omega_i a_i^dag a_i = R^T W R / 2 - const, W = diag(omega_B, omega_B):
  Var(H_B) = Tr(W sigma W sigma)/2 + Tr(W Omega W Omega)/8 + mu^T W sigma W mu (mu = <R>).
* Log-negativity between groups of cells A and B: E_N = sum_k max(0, -log2(2 nu~_k)), nu~ the symplectic
  eigenvalues of the partially transposed sigma (p -> -p on B). Two-mode squeezed vacuum r: 2 r log2(e).

docs/theory/gaussian.md derives them; tests/test_gaussian.py checks them against QuTiP.
"""

from __future__ import annotations

import numpy as np

from ..errors import ChiralnetError
from ..gaussian import moments_to_sigma

__all__ = ["symplectic_eigenvalues", "local_ergotropy", "gaussian_ergotropy_squeezed", "energy_variance",
           "log_negativity", "covariance"]


def _omega(n):
    return np.block([[np.zeros((n, n)), np.eye(n)], [-np.eye(n), np.zeros((n, n))]])


def symplectic_eigenvalues(sigma) -> np.ndarray:
    """Symplectic eigenvalues nu (..., n) ascending of covariance matrices sigma (..., 2n, 2n) (vacuum: 1/2)."""
    sigma = np.asarray(sigma, float)
    n = sigma.shape[-1] // 2
    ev = np.abs(np.linalg.eigvals(1j * _omega(n) @ sigma))
    return np.sort(ev, axis=-1)[..., ::2]


def local_ergotropy(omega, alpha, n, m):
    """omega (|alpha|^2 + n + 1/2 - sqrt((n + 1/2)^2 - |m|^2)) elementwise (arrays broadcast)."""
    alpha = np.asarray(alpha, complex)
    n = np.asarray(n, float)
    m = np.asarray(m, complex)
    nu2 = np.maximum((n + 0.5) ** 2 - (m.real**2 + m.imag**2), 0.25)
    return np.asarray(omega, float) * (alpha.real**2 + alpha.imag**2 + n + 0.5 - np.sqrt(nu2))


def gaussian_ergotropy_squeezed(omega, alpha, Nc, Mc):
    """Collective Gaussian ergotropy of modes with frequencies ``omega`` (B,), amplitudes ``alpha`` (..., B),
    fluctuations ``Nc`` and anomalous moments ``Mc`` (..., B, B): float or (...,) array.

    Examples
    --------
    >>> import numpy as np
    >>> from chiralnet.gaussian import squeezed_thermal
    >>> n, m = squeezed_thermal(0.0, 0.5)        # squeezed vacuum: pure, all of its energy is work
    >>> W = gaussian_ergotropy_squeezed(np.ones(1), np.zeros(1), np.diag(n), np.diag(m))
    >>> round(float(W), 10) == round(float(n[0]), 10)
    True
    """
    omega = np.asarray(omega, float)
    alpha = np.asarray(alpha, complex)
    Nc = np.asarray(Nc, complex)
    occ = alpha.real**2 + alpha.imag**2 + np.diagonal(Nc, axis1=-2, axis2=-1).real
    nu = symplectic_eigenvalues(moments_to_sigma(Nc, Mc))[..., ::-1]   # descending
    passive = ((nu - 0.5) * np.sort(omega)).sum(axis=-1)              # frequencies ascending
    return (omega * occ).sum(axis=-1) - passive


def _variance(omega, mu, sigma):
    """Var(sum omega_i a_i^dag a_i) of Gaussian states: omega (B,), mu (..., 2B), sigma (..., 2B, 2B)."""
    w = np.concatenate([omega, omega])
    Ws = w[:, None] * sigma                                 # W sigma
    tr = np.einsum("...ij,...ji->...", Ws, Ws)              # Tr(W sigma W sigma)
    Om = _omega(omega.size)
    WO = w[:, None] * Om
    corr = np.trace(WO @ WO)                                # Tr(W Omega W Omega) = -2 sum omega^2
    mean = np.einsum("...i,...ij,...j->...", w * mu, sigma, w * mu)
    return tr / 2 + corr / 8 + mean


def covariance(state, cells=None, what="energy_variance"):
    """(omega (B,) or None, alpha (..., B), sigma (..., 2B, 2B), kind) of ``cells`` (default the battery) of a
    SteadyState, SimulationResult or State (a State has no frequencies: omega None). A simulation keeps
    sigma for the battery cells only (``battery_fluctuations`` and ``battery_anomalous``)."""
    from ..model import State
    from ..results import SimulationResult, SteadyState

    if isinstance(state, State):
        full = state
        omega, kind, battery = None, "state", None
    elif isinstance(state, SteadyState):
        full = state.state
        omega, kind, battery = np.asarray(state.omega, float), "steady", state.battery
    elif isinstance(state, SimulationResult):
        full, omega, kind, battery = None, np.asarray(state.omega, float), "result", state.battery
    else:
        raise ChiralnetError(f"{what} takes a SteadyState, a SimulationResult or a State, got {type(state).__name__}")
    names = state.cells
    pos = {c: i for i, c in enumerate(names)}
    if cells is None:
        if battery is None:
            idx = np.arange(len(names))
        else:
            idx = np.flatnonzero(battery)
    else:
        if isinstance(cells, (str, bytes)) or not hasattr(cells, "__iter__"):
            cells = [cells]
        cells = list(cells)
        missing = [c for c in cells if c not in pos]
        if missing or not cells or len(set(cells)) != len(cells):
            raise ChiralnetError(f"{what}: cells must be distinct cells of the network; {missing[:5] or cells[:5]} "
                                 f"are not (cells are {list(names)[:10]})")
        idx = np.array([pos[c] for c in cells], np.int64)
    if kind != "result":
        Nc = full.dense_Nc()[np.ix_(idx, idx)]
        Mc = full.dense_Mc()[np.ix_(idx, idx)]
        alpha = np.asarray(full.alpha)[idx]
        return (None if omega is None else omega[idx]), alpha, moments_to_sigma(Nc, Mc), kind
    if state.amplitudes is None:
        raise ChiralnetError(f"{what} needs the amplitudes of the run; simulate with store_amplitudes=True (the default)")
    bat = np.flatnonzero(state.battery)
    where = {c: k for k, c in enumerate(bat)}
    T = state.times.size
    cold = state.final_state is not None and state.final_state.Nc is None and state.final_state.Mc is None
    if cold:  # a coherent state at every time: sigma = I/2
        sigma = np.broadcast_to(0.5 * np.eye(2 * idx.size), (T, 2 * idx.size, 2 * idx.size))
        return omega[idx], state.amplitudes[:, idx], sigma, kind
    if state.battery_fluctuations is None:
        raise ChiralnetError(f"{what} needs the battery block of the covariance at each time, which this result "
                             "lacks: pass simulate(..., battery_fluctuations=True)")
    if not set(idx.tolist()) <= set(where):
        other = [names[i] for i in idx if i not in where]
        raise ChiralnetError(f"{what} of cells {other[:5]}: a simulation keeps the covariance of the battery cells "
                             "only; mark those cells battery=True, or use steady_state / result.final_state")
    sub = np.array([where[i] for i in idx], np.int64)
    Nc = state.battery_fluctuations[:, sub[:, None], sub[None, :]]
    Mc = (np.zeros_like(Nc) if state.battery_anomalous is None
          else state.battery_anomalous[:, sub[:, None], sub[None, :]])
    return omega[idx], state.amplitudes[:, idx], moments_to_sigma(Nc, Mc), kind


def energy_variance(state, cells=None):
    """Variance of the battery's energy, Var(H_B), H_B = sum_{i in cells} omega_i a_i^dag a_i (units of
    omega^2): the charging precision (its square root is the energy's standard deviation).

    Parameters
    ----------
    state : SteadyState or SimulationResult
        A float for a steady state, a (T,) array for a simulation (which keeps the covariance of the
        battery cells: ``cells`` must be battery cells there).
    cells : sequence, optional
        Cell names; default the battery cells. Cross terms between the cells are included.

    Examples
    --------
    >>> import chiralnet as cn
    >>> G = cn.network(drive_frequency=0.0)
    >>> cn.add_cell(G, "a", omega=1.0, alpha0=0.7 + 0.2j, n0=0.3, xi0=0.4 * np.exp(0.6j))
    >>> round(float(cn.energy_variance(cn.simulate(G, [0.0]))[0]), 10)
    1.7813174017
    """
    omega, alpha, sigma, kind = covariance(state, cells, "energy_variance")
    mu = np.sqrt(2.0) * np.concatenate([alpha.real, alpha.imag], axis=-1)
    var = _variance(omega, mu, sigma)
    return float(var) if kind == "steady" else var


def log_negativity(state, part_a, part_b):
    """Logarithmic negativity E_N (base 2, ebits) between two groups of cells: entanglement that the
    partial transpose detects (zero for every phase-insensitive state, which is separable).

    Parameters
    ----------
    state : SteadyState, SimulationResult or State
        A float for a steady state or a State, a (T,) array for a simulation (cells among the battery).
    part_a, part_b : cell name or sequence of cell names
        Two disjoint groups.

    Examples
    --------
    >>> import numpy as np, chiralnet as cn
    >>> r = 0.5                                   # two-mode squeezed vacuum: E_N = 2 r log2(e)
    >>> s = cn.State(("a", "b"), np.zeros(2), np.diag([np.sinh(r) ** 2] * 2),
    ...              Mc=np.array([[0, np.sinh(r) * np.cosh(r)], [np.sinh(r) * np.cosh(r), 0]]))
    >>> round(cn.log_negativity(s, "a", "b"), 10)
    1.4426950409
    """
    a = [part_a] if isinstance(part_a, (str, bytes)) or not hasattr(part_a, "__iter__") else list(part_a)
    b = [part_b] if isinstance(part_b, (str, bytes)) or not hasattr(part_b, "__iter__") else list(part_b)
    if not a or not b or set(a) & set(b):
        raise ChiralnetError(f"log_negativity needs two non-empty, disjoint groups of cells, got {a[:5]} and {b[:5]}")
    _, _, sigma, kind = covariance(state, a + b, "log_negativity")
    k = len(a) + len(b)
    flip = np.ones(2 * k)
    flip[k + len(a):] = -1.0                                  # p -> -p on part b
    pt = sigma * flip[:, None] * flip[None, :]
    nu = symplectic_eigenvalues(pt)
    en = np.maximum(0.0, -np.log2(2 * nu)).sum(axis=-1)
    return float(en) if kind != "result" else en
