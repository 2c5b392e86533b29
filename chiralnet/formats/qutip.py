"""Export a network as a Lindblad master equation in QuTiP 5 (truncated Fock space).

:func:`to_qutip` gives the Hamiltonian, collapse operators, initial state and annihilation
operators of the master equation whose exact moments chiralnet solves, in the frame rotating at
omega_L, so a network can be cross-checked with ``qutip.mesolve`` or extended with what the
linear model cannot hold (a Kerr term, a qubit). With N cells, cutoffs d_i, units of omega::

    H = sum_i (omega_i - omega_L) a_i^dag a_i + sum_links (J a_u^dag a_v + h.c.)
        + sum_i (E_i a_i^dag + conj(E_i) a_i)
        + sum_i (P_i a_i^dag^2 + conj(P_i) a_i^2)/2 + sum_parametric (g a_u^dag a_v^dag + h.c.)
    c_ops: sqrt(kappa_i (n_i + 1)) a_i, sqrt(kappa_i n_i) a_i^dag        (local baths)
           sqrt(Gamma_r (n_r + 1)) z_r, sqrt(Gamma_r n_r) z_r^dag         (reservoirs, z_r = sum_i p_ri a_i)

A squeezed bath or reservoir (``m_th`` = M != 0) is exported as the pair of jump operators that
diagonalise its Kossakowski matrix rate [[N+1, -conj(M)], [-M, N]] on (z, z^dag): sqrt(lam_k)
(V_0k z + V_1k z^dag) (one operator at the bound |M|^2 = N(N+1)). A squeezed start ``xi0`` is
D(alpha0) S(xi0) rho_th(n0) S(xi0)^dag D(alpha0)^dag with ``qutip.squeeze``'s S(xi) = exp((conj(xi) a^2 -
xi a^dag^2)/2), chiralnet's convention (docs/theory/gaussian.md).

The drive term E a^dag + conj(E) a gives d<a>/dt = M <a> - i E, chiralnet's convention. A shaped drive
E(t) (:mod:`chiralnet.drives`: gaussian, square, tone, a sum, any callable) makes H a ``qutip.QobjEvo``
with the coefficient functions E_i(t) and conj(E_i(t)) of the rotating-frame amplitude, t from the start
of the run (t = 0, as in :func:`chiralnet.simulate` without ``state0``).
Only collapse operators with a nonzero rate are returned. QuTiP is optional:
``pip install chiralnet[qutip]``.
"""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np

from .. import drives as _drives
from .. import memory
from ..errors import ChiralnetError
from ..model import Model
from ..network import CELL_DEFAULTS, RESERVOIR_DEFAULTS, validate_network
from ..network import cells as cell_nodes
from ..network import reservoirs as reservoir_nodes

__all__ = ["to_qutip", "fock_bytes"]


def _qutip():
    try:
        import qutip
    except ImportError:
        raise ChiralnetError("to_qutip needs QuTiP 5, which is not installed: pip install 'chiralnet[qutip]' "
                             "(or pip install 'qutip>=5')") from None
    major = str(getattr(qutip, "__version__", "0")).split(".")[0]
    if not major.isdigit() or int(major) < 5:
        raise ChiralnetError(f"to_qutip needs QuTiP >= 5, found {qutip.__version__}: pip install -U 'qutip>=5'")
    return qutip


def _cutoffs(cutoff, cells) -> list[int]:
    n = len(cells)
    if isinstance(cutoff, (list, tuple, np.ndarray)):
        values = list(cutoff)
        if len(values) != n:
            raise ChiralnetError(f"to_qutip: 'cutoff' lists {len(values)} values for {n} cells; give one int or "
                                 f"one per cell in cell order {cells[:8]}")
    else:
        values = [cutoff] * n
    out = []
    for c, d in zip(cells, values):
        if isinstance(d, bool) or not isinstance(d, Integral):
            raise ChiralnetError(f"to_qutip: Fock cutoff of cell {c!r} must be an integer >= 2, got {d!r}")
        if d < 2:
            raise ChiralnetError(f"to_qutip: Fock cutoff of cell {c!r} is {d}; it must be >= 2 (levels 0..cutoff-1)")
        out.append(int(d))
    return out


def fock_bytes(cutoffs, *, n_hamiltonian_terms: int, collapse_sizes) -> dict:
    """Estimated bytes of the density matrix, the sparse Liouvillian and the ODE solver's vectors.

    Parameters
    ----------
    cutoffs : sequence of int
        Fock cutoff per cell; D = prod(cutoffs).
    n_hamiltonian_terms : int
        Terms of H that are products of at most two ladder operators (each ~D nonzeros).
    collapse_sizes : sequence of int
        Number of cells in each collapse operator (a sum over k cells gives ~k^2 D nonzeros in c^dag c).
    """
    D = math.prod(int(d) for d in cutoffs)
    D2 = float(D) * float(D)
    # -i(H x 1 - 1 x H^T): 2 nnz(H) D; each c: c x conj(c) (k^2 D^2) and the two anticommutator halves (2 k^2 D^2).
    nnz = 2.0 * D2 * max(1, n_hamiltonian_terms) + sum(3.0 * k * k * D2 for k in collapse_sizes)
    return {
        "density matrix (D^2 complex)": 16.0 * D2,
        "Liouvillian (sparse, D^2 x D^2)": 24.0 * nnz,
        "ODE solver vectors (about 10 x D^2 complex)": 160.0 * D2,
    }


def to_qutip(G, cutoff, *, state0=None):
    """The master equation of ``G`` as QuTiP objects: ``(H, c_ops, rho0, a)``.

    Parameters
    ----------
    G : networkx.DiGraph
        A chiralnet network (a :class:`~chiralnet.Model` no longer tells local baths from reservoirs,
        so the graph is needed).
    cutoff : int or sequence of int
        Fock levels per cell (0..cutoff-1), >= 2; one int for every cell or one per cell in cell order.
    state0 : State, optional
        Build ``rho0`` from this state (e.g. ``result.final_state``, put into the network's frame) instead of
        the network's own start: each cell's displaced squeezed thermal state of its ``alpha``,
        ``Nc[i, i]`` and ``Mc[i, i]``. A state whose ``Nc`` or ``Mc`` correlates cells (an entangled or
        correlated start) is refused, naming the pair: build it in QuTiP.

    Returns
    -------
    H : qutip.Qobj or qutip.QobjEvo
        Hamiltonian in the frame rotating at omega_L (detunings, coherent links, drive E a^dag + h.c.,
        two-photon pumps, parametric links); a
        ``QobjEvo`` ``[H0, [a_i^dag, E_i(t)], [a_i, conj(E_i(t))], ...]`` when a cell has a shaped drive
        (times in 1/omega from t = 0), which ``qutip.mesolve`` takes as it is.
    c_ops : list of qutip.Qobj
        Collapse operators of every local bath and reservoir at its temperature (nonzero rates only); a
        squeezed one (``m_th``) as the two jump operators of its Kossakowski matrix.
    rho0 : qutip.Qobj
        Initial density matrix: the product over cells of displaced squeezed thermal states
        D(alpha0) S(xi0) rho_th(n0) S(xi0)^dag D^dag (coherent states when n0 = 0 and xi0 = 0), built in the
        truncated space; or the product state of ``state0``.
    a : list of qutip.Qobj
        Annihilation operators in cell order (``cn.cells(G)``).

    Raises
    ------
    ChiralnetError
        QuTiP missing, a cutoff < 2, or a Fock space too large for memory (``MemoryLimitError``, checked
        before anything is built).

    Examples
    --------
    >>> import numpy as np, qutip, chiralnet as cn
    >>> G = cn.two_cell(drive=0.01)
    >>> H, c_ops, rho0, a = cn.to_qutip(G, 4)
    >>> H.dims, len(c_ops), len(a)
    ([[4, 4], [4, 4]], 3, 2)
    >>> out = qutip.mesolve(H, rho0, [0.0, 10.0], c_ops, e_ops=[a[0]])
    >>> bool(abs(out.expect[0][-1] - cn.simulate(G, [0.0, 10.0]).amplitudes[-1, 0]) < 1e-6)
    True
    >>> S = cn.network(drive_frequency=1.0)                     # a squeezed bath: two jump operators
    >>> cn.add_cell(S, "s", omega=1.0, kappa=0.5, n_th=0.3, m_th=0.2 + 0.1j)
    >>> H, c_ops, rho0, a = cn.to_qutip(S, 30)
    >>> rho = qutip.steadystate(H, c_ops)
    >>> len(c_ops), complex(np.round(qutip.expect(a[0] * a[0], rho), 9))   # <a a> = m_th
    (2, (0.2+0.1j))
    >>> P = cn.two_cell(drive=cn.drives.gaussian(0.01, t0=5.0, width=2.0))
    >>> type(cn.to_qutip(P, 4)[0]).__name__
    'QobjEvo'
    """
    if isinstance(G, Model):
        raise ChiralnetError("to_qutip needs the network graph: a Model no longer tells local baths from "
                             "reservoirs (pass the graph it was built from)")
    validate_network(G)
    cells = cell_nodes(G)
    dims = _cutoffs(cutoff, cells)
    nodes = G.nodes
    links = [(u, v, J) for u, v, J in G.edges(data="J") if J is not None and J != 0]
    parametric = [(u, v, g) for u, v, g in G.edges(data="g") if g is not None and g != 0]
    res = reservoir_nodes(G)
    driven = [c for c in cells if nodes[c].get("drive", CELL_DEFAULTS["drive"]) != 0]
    pumped = [c for c in cells if nodes[c].get("pump", 0) != 0]
    sizes = [1] * len(cells) + [len(list(G.successors(r))) for r in res]
    memory.check(fock_bytes(dims, n_hamiltonian_terms=len(cells) + 2 * len(links) + 2 * len(driven)
                            + 2 * len(pumped) + 2 * len(parametric),
                            collapse_sizes=sizes),
                 f"to_qutip: a Fock space of dimension D = prod(cutoff) = {math.prod(dims)} "
                 f"({len(cells)} cells, cutoff {dims if len(set(dims)) > 1 else dims[0]})",
                 "a smaller cutoff or fewer cells")
    qt = _qutip()
    eyes = [qt.qeye(d) for d in dims]
    a = []
    for i, d in enumerate(dims):
        factors = list(eyes)
        factors[i] = qt.destroy(d)
        a.append(qt.tensor(*factors).to("CSR") if len(dims) > 1 else qt.destroy(d).to("CSR"))
    index = {c: i for i, c in enumerate(cells)}
    omega_L = float(G.graph.get("drive_frequency", 1.0))

    H = 0 * a[0].dag() * a[0]
    shaped = []  # [operator, coefficient function] pairs of the shaped drives
    c_ops = []
    for c in cells:
        attrs, ai = nodes[c], a[index[c]]
        detuning = float(attrs["omega"]) - omega_L
        if detuning != 0:
            H += detuning * ai.dag() * ai
        value = attrs.get("drive", CELL_DEFAULTS["drive"])
        if _drives.is_time_dependent(value):
            E_t, conj_E_t = _coefficients(_drives.as_drive(value), omega_L, f"to_qutip: drive of cell {c!r}")
            shaped += [[ai.dag(), E_t], [ai, conj_E_t]]
        elif complex(value) != 0:
            E = complex(value)
            H += E * ai.dag() + np.conj(E) * ai
        P = complex(attrs.get("pump", 0j))
        if P != 0:  # two-photon pump (P a^dag^2 + conj(P) a^2)/2
            H += 0.5 * (P * ai.dag() * ai.dag() + np.conj(P) * ai * ai)
        kappa = float(attrs.get("kappa", CELL_DEFAULTS["kappa"]))
        n_th = float(attrs.get("n_th", CELL_DEFAULTS["n_th"]))
        _bath(c_ops, kappa, n_th, ai, complex(attrs.get("m_th", 0j)))
    for u, v, J in links:
        J = complex(J)
        H += J * a[index[u]].dag() * a[index[v]] + np.conj(J) * a[index[v]].dag() * a[index[u]]
    for u, v, g in parametric:  # g a_u^dag a_v^dag + conj(g) a_u a_v
        g = complex(g)
        H += g * a[index[u]].dag() * a[index[v]].dag() + np.conj(g) * a[index[u]] * a[index[v]]
    for r in res:
        z = 0 * a[0]
        for _, c, p in G.out_edges(r, data="p"):
            z += complex(p) * a[index[c]]
        _bath(c_ops, float(nodes[r]["gamma"]), float(nodes[r].get("n_th", RESERVOIR_DEFAULTS["n_th"])), z,
              complex(nodes[r].get("m_th", 0j)))

    starts = _product_start(state0, cells, omega_L) if state0 is not None else None
    states = []
    for c, d in zip(cells, dims):
        if starts is None:
            alpha0 = complex(nodes[c].get("alpha0", CELL_DEFAULTS["alpha0"]))
            n0 = float(nodes[c].get("n0", CELL_DEFAULTS["n0"]))
            xi0 = complex(nodes[c].get("xi0", 0j))
        else:
            alpha0, n0, xi0 = starts[c]
        rho = qt.thermal_dm(d, n0) if n0 > 0 else qt.fock_dm(d, 0)
        if xi0 != 0:  # S(xi) = exp((conj(xi) a^2 - xi a^dag^2)/2), qutip.squeeze's convention
            S = qt.squeeze(d, xi0)
            rho = S * rho * S.dag()
        if alpha0 != 0:
            D = qt.displace(d, alpha0)
            rho = D * rho * D.dag()
        states.append(rho)
    rho0 = (qt.tensor(*states) if len(states) > 1 else states[0]).to("Dense")  # displaced states are dense
    if shaped:
        H = qt.QobjEvo([H, *shaped])
    return H, c_ops, rho0, a


def _product_start(state, cells, omega_L):
    """{cell: (alpha0, n0, xi0)} of a State without correlations between cells: the one-mode Gaussian state of
    n = Nc_ii, m = Mc_ii is D(alpha) S(xi) rho_th(n0) S(xi)^dag D^dag with n0 + 1/2 = nu =
    sqrt((n + 1/2)^2 - |m|^2), sinh(2r) = 2|m|/(2 n0 + 1), xi = r e^{i arg(-m)} (docs/theory/gaussian.md)."""
    from ..model import State

    if not isinstance(state, State):
        raise ChiralnetError(f"to_qutip: state0 must be a chiralnet State (e.g. result.final_state), got "
                             f"{type(state).__name__}")
    state = state.for_cells(tuple(cells)).in_frame(omega_L)
    Nc, Mc = state.dense_Nc(), state.dense_Mc()
    for name, X in (("Nc", Nc), ("Mc", Mc)):
        off = np.abs(X - np.diag(np.diag(X)))
        if off.size and off.max() > 1e-12 * max(1.0, float(np.abs(X).max())):
            i, j = np.unravel_index(int(np.argmax(off)), off.shape)
            raise ChiralnetError(f"to_qutip: state0 correlates cells {cells[i]!r} and {cells[j]!r} ({name}[{i}, {j}] "
                                 f"= {complex(X[i, j]):.3g}); only product states are exported (each cell a displaced "
                                 "squeezed thermal state): build a correlated start in QuTiP")
    out = {}
    for i, c in enumerate(cells):
        n, m = float(Nc[i, i].real), complex(Mc[i, i])
        nu = math.sqrt(max((n + 0.5) ** 2 - abs(m) ** 2, 0.25))
        r = 0.5 * math.asinh(2 * abs(m) / (2 * nu))
        out[c] = (complex(state.alpha[i]), nu - 0.5, r * np.exp(1j * np.angle(-m)) if m != 0 else 0j)
    return out


def _coefficients(drive, omega_L: float, where: str):
    """The QuTiP coefficient functions t -> E(t) and t -> conj(E(t)) of a shaped drive (rotating frame at
    ``omega_L``); a callable that raises or returns junk is reported naming the cell."""

    def value(t):
        try:
            return complex(np.asarray(drive(float(t), omega_L))[()])
        except ChiralnetError as exc:
            raise ChiralnetError(f"{where}: {exc}") from None

    def E_t(t):
        return value(t)

    def conj_E_t(t):
        return value(t).conjugate()

    value(0.0)  # a callable that fails fails here, with the cell named, not inside mesolve
    return E_t, conj_E_t


def _bath(c_ops, rate, n, op, m=0j):
    """Append the jump operators of a bath of rate ``rate``, occupation ``n`` and anomalous correlation ``m``
    on ``op`` (nonzero rates only).

    Unsqueezed (m = 0): sqrt(rate (n + 1)) op and sqrt(rate n) op^dag. Squeezed: the dissipator
    rate [(n + 1) L[z] + n L[z^dag]] - rate m (z^dag rho z^dag - ..) - rate conj(m) (z rho z - ..) has the
    Kossakowski matrix rate [[n + 1, -conj(m)], [-m, n]] on (z, z^dag); its eigenvectors V[:, k] with
    eigenvalues lam_k >= 0 give the jump operators sqrt(lam_k) (V[0, k] z + V[1, k] z^dag). A squeezed vacuum
    at the bound |m|^2 = n (n + 1) has one zero eigenvalue: one jump operator.
    """
    if rate <= 0:
        return
    if m == 0:
        c_ops.append(math.sqrt(rate * (n + 1.0)) * op)
        if n > 0:
            c_ops.append(math.sqrt(rate * n) * op.dag())
        return
    lam, V = np.linalg.eigh(rate * np.array([[n + 1.0, -np.conj(m)], [-m, n]]))
    floor = 1e-14 * rate * (2 * n + 1)  # an eigenvalue this small is the bound |m|^2 = n (n + 1), exactly 0
    for k in range(2):
        if lam[k] > floor:
            c_ops.append(math.sqrt(lam[k]) * (complex(V[0, k]) * op + complex(V[1, k]) * op.dag()))
