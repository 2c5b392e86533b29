"""Numba kernels: arrays and scalars in, caller-allocated buffers out. No Python objects.

Notation: N cells, T output times. ``alpha`` is (N,) complex, ``Nc`` (N, N) complex Hermitian,
``Mc = conj(M)``, ``b = -i E`` the constant forcing. The dense methods' loops over time steps
live here ("exact" and "rk45"; the CSR Taylor stepping of "exact-sparse" is in :mod:`chiralnet.sparse`).
"""

import numpy as np

from ._jit import jit

# Status codes returned by the adaptive kernel.
OK = 0
MAX_STEPS = 1
STEP_UNDERFLOW = 2
NOT_FINITE = 3


@jit
def propagate_affine(P, c, step_kind, alpha0, omega, out_alpha, out_energy):
    """alpha_{k} = P[s] alpha_{k-1} + c[s] with s = step_kind[k]; alpha_{-1} = alpha0.

    P: (K, N, N) complex, c: (K, N) complex, step_kind: (T,) int, alpha0: (N,) complex,
    omega: (N,) float. Writes out_alpha (T, N) complex and out_energy (T, N) = omega |alpha|^2.
    """
    n = alpha0.shape[0]
    a = alpha0.copy()
    nxt = np.empty_like(a)
    for k in range(step_kind.shape[0]):
        s = step_kind[k]
        for i in range(n):
            acc = c[s, i]
            for j in range(n):
                acc += P[s, i, j] * a[j]
            nxt[i] = acc
        a, nxt = nxt, a
        for i in range(n):
            out_alpha[k, i] = a[i]
            out_energy[k, i] = omega[i] * (a[i].real * a[i].real + a[i].imag * a[i].imag)


@jit
def _matmul(A, B, out):
    """out = A B for small square matrices (no BLAS call)."""
    m = A.shape[0]
    for i in range(m):
        for j in range(m):
            acc = 0j
            for l in range(m):
                acc += A[i, l] * B[l, j]
            out[i, j] = acc


@jit
def one_norm_small(A):
    """||A||_1 of one (m, m) matrix: the largest column sum of |A_ij|."""
    m = A.shape[0]
    norm = 0.0
    for j in range(m):
        col = 0.0
        for i in range(m):
            col += abs(A[i, j])
        norm = max(norm, col)
    return norm


@jit
def expm_parameters(norm):
    """(s, q) for e^X with ||X||_1 = ``norm``: s squarings bring it to theta = norm 2^-s <= 1, and q
    (at most 18) is the smallest Taylor degree whose remainder bound theta^(q+1)/(q+1)! is below 2^-53."""
    s = max(0, int(np.ceil(np.log2(norm)))) if norm > 1.0 else 0
    theta = norm / 2.0**s
    q = 1
    bound = theta
    while q < 18 and bound * theta / (q + 1) > 2.0**-53:
        q += 1
        bound *= theta / q
    return s, q


@jit
def expm_one(A, c, s, q, X, E, T, out):
    """out = e^{c A} for one small (m, m) complex A and scalar c, with (s, q) from :func:`expm_parameters`.

    Taylor series of X = c A / 2^s in Horner form E = I + X E / k, then s squarings.
    X, E, T: (m, m) complex work buffers; writes out (m, m).
    """
    m = A.shape[0]
    for i in range(m):
        for j in range(m):
            X[i, j] = A[i, j] * c / 2.0**s
            E[i, j] = X[i, j] / q + (1.0 if i == j else 0.0)
    for d in range(q - 1, 0, -1):
        _matmul(X, E, T)
        for i in range(m):
            for j in range(m):
                T[i, j] = T[i, j] / d + (1.0 if i == j else 0.0)
        E, T = T, E
    for _ in range(s):
        _matmul(E, E, T)
        E, T = T, E
    out[:, :] = E


@jit
def expm_small(A, out):
    """out[k] = e^{A[k]} for a stack A (K, m, m) complex of small matrices (a few cells).

    Taylor series after scaling by 2^-s to ||A||_1 <= 1 (one s for the stack), of the smallest degree q
    (at most 18) whose remainder bound theta^(q+1)/(q+1)! is below 2^-53, in Horner form
    E = I + X E / k; then s squarings (:func:`expm_parameters`, :func:`expm_one`). Writes out (K, m, m) complex.
    """
    K, m = A.shape[0], A.shape[1]
    norm = 0.0
    for k in range(K):
        norm = max(norm, one_norm_small(A[k]))
    s, q = expm_parameters(norm)
    X = np.empty((m, m), np.complex128)
    E = np.empty((m, m), np.complex128)
    T = np.empty((m, m), np.complex128)
    for k in range(K):
        expm_one(A[k], 1.0, s, q, X, E, T, out[k])


@jit
def propagate_fluctuations(Phi, W, step_kind, Nc0, out_occupation):
    """Nc_k = Phi[s] Nc_{k-1} Phi[s]^H + W[s], s = step_kind[k]; Nc_{-1} = Nc0.

    Phi, W: (K, N, N) complex; Nc0: (N, N) complex. Writes out_occupation (T, N) = Re diag Nc_k
    and returns the last Nc (N, N).
    """
    Nc = Nc0.copy()
    for k in range(step_kind.shape[0]):
        s = step_kind[k]
        Nc = Phi[s] @ Nc @ np.conj(Phi[s]).T + W[s]
        for i in range(Nc.shape[0]):
            out_occupation[k, i] = Nc[i, i].real
    return Nc


# Dormand-Prince 5(4) tableau.
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
           max_steps, A, B, E, out_y_diag, stats):
    """Integrate from t = 0 to each of ``times`` with adaptive Dormand-Prince 5(4).

    Dense (``sparse`` False): y = [alpha, vec(Nc)] with M, Mc = conj(M), Q (n, n).
    Sparse: y = alpha, M in CSR (indptr, indices, data). Steps are chosen by the error
    estimate against rtol/atol and shortened only to land exactly on output times.
    Writes out_y_diag (T, n, 2): alpha and diag(Nc) at each output time;
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
    return OK, y
