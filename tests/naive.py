"""Plain NumPy/SciPy reference implementations that the core is compared with.

Everything here is written straight from the formulas of docs/theory/model.md (model, moment
equations, exact propagation), by looping over the graph's nodes and edges one at a time, with no
vectorisation tricks and no code shared with ``chiralnet`` (only the graph is read). Slow and obvious
on purpose.

Conventions (docs/theory/model.md, "Moment equations"), N cells in graph order, frame rotating at omega_L::

    H = diag(omega - omega_L) + Jmat,   Jmat[u, v] = J, Jmat[v, u] = conj(J)
    D = diag(kappa) + sum_r Gamma_r conj(p_r) p_r^T
    M = -i H - D/2
    Q = diag(kappa n_th) + sum_r Gamma_r n_r p_r p_r^H
    d alpha/dt = M alpha - i E,   dNc/dt = conj(M) Nc + Nc M^T + Q
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as la


def cell_order(G):
    """Cell nodes in graph order (nodes whose ``kind`` is absent or ``"cell"``)."""
    return [n for n, d in G.nodes(data=True) if d.get("kind", "cell") == "cell"]


def naive_arrays(G):
    """Return dict with cells, omega (N,), H, D, M, Q (N, N), E, alpha0 (N,), n0 (N,).

    Built by looping over the graph, one node or edge at a time.
    """
    order = cell_order(G)
    n = len(order)
    pos = {c: i for i, c in enumerate(order)}
    omega_L = G.graph.get("drive_frequency", 1.0)
    omega = np.zeros(n)
    H = np.zeros((n, n), complex)
    D = np.zeros((n, n), complex)
    Q = np.zeros((n, n), complex)
    E = np.zeros(n, complex)
    alpha0 = np.zeros(n, complex)
    n0 = np.zeros(n)
    for c in order:
        i = pos[c]
        d = G.nodes[c]
        omega[i] = d["omega"]
        H[i, i] += d["omega"] - omega_L
        D[i, i] += d.get("kappa", 0.0)
        Q[i, i] += d.get("kappa", 0.0) * d.get("n_th", 0.0)
        E[i] = d.get("drive", 0.0)
        alpha0[i] = d.get("alpha0", 0.0)
        n0[i] = d.get("n0", 0.0)
    for u, v, d in G.edges(data=True):
        if G.nodes[u].get("kind", "cell") == "cell":
            J = complex(d["J"])
            H[pos[u], pos[v]] += J
            H[pos[v], pos[u]] += np.conj(J)
    for r, d in G.nodes(data=True):
        if d.get("kind", "cell") != "reservoir":
            continue
        gamma = d["gamma"]
        n_r = d.get("n_th", 0.0)
        p = np.zeros(n, complex)
        for _, c, e in G.out_edges(r, data=True):
            p[pos[c]] = e["p"]
        for j in range(n):
            for k in range(n):
                D[j, k] += gamma * np.conj(p[j]) * p[k]
                Q[j, k] += gamma * n_r * p[j] * np.conj(p[k])
    M = -1j * H - D / 2
    return dict(cells=order, omega=omega, H=H, D=D, M=M, Q=Q, E=E, alpha0=alpha0, n0=n0)


def naive_steady(M, E, Q):
    """alpha_ss = i M^{-1} E, and Nc_ss from conj(M) X + X M^T = -Q.

    Nc_ss is solved twice, independently: with scipy.linalg.solve_continuous_lyapunov and with the
    Kronecker (vectorised) form (I kron conj(M) + M kron I) vec(X) = -vec(Q) (column-major vec);
    the two must agree, and the Kronecker one is returned.
    """
    n = M.shape[0]
    alpha = np.linalg.solve(M, 1j * E)
    X1 = la.solve_continuous_lyapunov(np.conj(M), -Q)
    K = np.kron(np.eye(n), np.conj(M)) + np.kron(M, np.eye(n))
    X2 = np.linalg.solve(K, -Q.reshape(-1, order="F")).reshape((n, n), order="F")
    scale = max(1.0, np.abs(X2).max())
    assert np.abs(X1 - X2).max() <= 1e-9 * scale, "naive Lyapunov solves disagree"
    return alpha, X2


def naive_propagate(M, E, Q, alpha0, Nc0, times):
    """Exact solution at each time, one scipy.linalg.expm(M t) per time (docs/theory/model.md,
    "Steady state and exact propagation").

    alpha(t) = alpha_ss + e^{Mt}(alpha0 - alpha_ss);  Nc(t) = Nc_ss + e^{conj(M)t}(Nc0 - Nc_ss) e^{M^T t}.
    Needs a steady state (every eigenvalue of M with negative real part).

    Returns alpha (T, N) complex and Nc (T, N, N) complex.
    """
    alpha_ss, Nc_ss = naive_steady(M, E, Q)
    T, n = len(times), M.shape[0]
    alpha = np.empty((T, n), complex)
    Nc = np.empty((T, n, n), complex)
    for k, t in enumerate(times):
        U = la.expm(M * t)
        alpha[k] = alpha_ss + U @ (alpha0 - alpha_ss)
        Nc[k] = Nc_ss + np.conj(U) @ (Nc0 - Nc_ss) @ U.T
    return alpha, Nc


def energies(omega, alpha, Nc):
    """E_i = omega_i (|alpha_i|^2 + Re Nc_ii); alpha (..., N), Nc (..., N, N)."""
    occ = np.abs(alpha) ** 2 + np.real(np.diagonal(Nc, axis1=-2, axis2=-1))
    return omega * occ


def naive_simulate(G, times):
    """Energies (T, N) and amplitudes (T, N) of G at ``times`` by expm propagation."""
    a = naive_arrays(G)
    alpha, Nc = naive_propagate(a["M"], a["E"], a["Q"], a["alpha0"], np.diag(a["n0"]).astype(complex), times)
    return energies(a["omega"], alpha, Nc), alpha


def naive_steady_state(G):
    """Steady energies (N,) and amplitudes (N,) of G."""
    a = naive_arrays(G)
    alpha, Nc = naive_steady(a["M"], a["E"], a["Q"])
    return energies(a["omega"], alpha, Nc), alpha


def rel_err(got, want):
    """max |got - want| / max |want|: error relative to the largest reference value."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = np.abs(want).max()
    assert scale > 0, "reference is identically zero; use an absolute tolerance"
    return float(np.abs(got - want).max() / scale)
