"""Work a battery can deliver and power the drive injects (alpha and Nc; with squeezing also Mc, below).

* Local ergotropy of cell i: W_i = omega_i |alpha_i|^2 (the passive state of a displaced thermal
  state is the thermal state with the same Nc_ii); ``collective=False`` sums them over the cells.
* Collective (Gaussian) ergotropy of cells B: W_B = sum_{i in B} omega_i (|alpha_i|^2 + Nc_ii)
  - sum_k omega_(k)up lambda_(k)down, lambda the eigenvalues of Nc[B, B] sorted descending paired with
  the frequencies of B sorted ascending (largest occupation on the lowest frequency): the work a
  displacement plus a passive interferometer extracts. W_B >= sum of local ergotropies.
* With squeezing (a general Gaussian network, :mod:`chiralnet.gaussian`; Mc != 0) the local ergotropy is
  omega_i (|alpha_i|^2 + n + 1/2 - sqrt((n + 1/2)^2 - |m|^2)), n = Nc_ii, m = Mc_ii, and the collective one
  reads the symplectic eigenvalues of the cells' quadrature covariance
  (:mod:`chiralnet.observables.gaussian`): squeezing is work that a thermal state lacks.
* Injected power: P_in = -2 omega_L sum_i Im(conj(E_i) alpha_i) (alpha in the rotating frame). In steady
  state it equals the net photon loss rate times omega_L (the steady field oscillates at omega_L); for
  resonant cells that is the rate of energy loss (one resonant mode: 4 omega |E|^2 / kappa).
"""

from __future__ import annotations

import numpy as np

from .. import config
from ..checks import array, flag
from ..errors import ChiralnetError
from ..results import SimulationResult, SteadyState
from .gaussian import covariance, gaussian_ergotropy_squeezed, local_ergotropy

__all__ = ["ergotropy", "injected_power", "gaussian_ergotropy"]


def gaussian_ergotropy(omega, alpha, Nc):
    """Collective Gaussian ergotropy of modes with frequencies ``omega`` (B,), amplitudes ``alpha`` (..., B)
    and fluctuations ``Nc`` (..., B, B) Hermitian: float or (...,) array, vectorised over the leading axes.

    Examples
    --------
    >>> Nc = np.array([[1.0, 0.5], [0.5, 0.5]])
    >>> round(float(gaussian_ergotropy(np.array([1.0, 2.0]), np.array([0.3, 0.4j]), Nc)), 10)
    0.7190169944
    """
    omega = array(omega, "omega", "gaussian_ergotropy")
    alpha = array(alpha, "alpha", "gaussian_ergotropy", complex)
    Nc = array(Nc, "Nc", "gaussian_ergotropy", complex)
    B = omega.shape[-1] if omega.ndim == 1 else -1
    if omega.ndim != 1 or alpha.shape[-1:] != (B,) or Nc.shape[-2:] != (B, B) or Nc.shape[:-2] != alpha.shape[:-1]:
        raise ChiralnetError(f"gaussian_ergotropy: shapes must be omega (B,), alpha (..., B), Nc (..., B, B) with the "
                             f"same leading axes; got {omega.shape}, {alpha.shape}, {Nc.shape}")
    occ = alpha.real**2 + alpha.imag**2 + np.diagonal(Nc, axis1=-2, axis2=-1).real
    lam = np.linalg.eigvalsh(Nc)[..., ::-1]          # descending
    passive = (lam * np.sort(omega)).sum(axis=-1)    # frequencies ascending
    return (omega * occ).sum(axis=-1) - passive


def _parts(state, what):
    """(omega (N,), alpha (..., N), cells, kind) of a SteadyState or SimulationResult."""
    if isinstance(state, SteadyState):
        alpha = state.amplitudes
        kind = "steady"
    elif isinstance(state, SimulationResult):
        if state.amplitudes is None:
            raise ChiralnetError(f"{what} needs the amplitudes of the run, which simulate(..., "
                                 "store_amplitudes=False) drops; simulate with store_amplitudes=True (the default)")
        alpha = state.amplitudes
        kind = "result"
    else:
        raise ChiralnetError(f"{what} takes a SteadyState (steady_state(G)) or a SimulationResult (simulate(G, "
                             f"times)), got {type(state).__name__}")
    if state.omega is None:
        raise ChiralnetError(f"{what}: this {type(state).__name__} carries no cell frequencies (omega); "
                             "make it with chiralnet.steady_state or chiralnet.simulate")
    return np.asarray(state.omega, float), alpha, kind


def _cell_index(state, cells):
    if cells is None:
        return np.flatnonzero(state.battery)
    if isinstance(cells, (str, bytes)) or not hasattr(cells, "__iter__"):
        cells = [cells]
    cells = list(cells)
    if not cells:
        raise ChiralnetError("ergotropy: the cell set is empty; give at least one cell (default: the battery cells)")
    pos = {c: i for i, c in enumerate(state.cells)}
    unhashable = [c for c in cells if getattr(type(c), "__hash__", None) is None]
    if unhashable:
        raise ChiralnetError(f"ergotropy: cells are names (hashable), got {unhashable[0]!r}")
    missing = [c for c in cells if c not in pos]
    if missing:
        shown = list(state.cells)[:10]
        raise ChiralnetError(f"ergotropy: cells {missing[:5]} are not in the network; cells are {shown}")
    if len(set(cells)) != len(cells):
        raise ChiralnetError(f"ergotropy: repeated cells in {cells[:10]}")
    return np.array([pos[c] for c in cells], np.int64)


def ergotropy(state, cells=None, *, collective: bool = False):
    """Ergotropy (extractable work, units of omega) of a set of cells.

    Parameters
    ----------
    state : SteadyState or SimulationResult
        From :func:`chiralnet.steady_state` (returns a float) or :func:`chiralnet.simulate` (returns an
        (n_times,) array).
    cells : sequence, optional
        Cell names; default the battery cells.
    collective : bool, keyword-only
        A real bool (``"no"`` or 0 is refused: a truthy string would mean True). False: the sum of the local ergotropies omega_i |alpha_i|^2. True: the Gaussian ergotropy of the
        cells together (eigenvalues of Nc[B, B]), which a simulation keeps for the battery cells
        (``result.battery_fluctuations``) whenever it integrates the fluctuations. With squeezing (Mc != 0):
        the local omega_i (|alpha_i|^2 + n + 1/2 - sqrt((n + 1/2)^2 - |m|^2)) and, collectively, the
        symplectic eigenvalues of the cells' covariance (also ``result.battery_anomalous``).

    Raises
    ------
    ChiralnetError
        Cells not in the network, an empty set, a flag that is not a bool, or a result that lacks what is needed (the message says
        which option keeps it).

    Examples
    --------
    >>> import chiralnet as cn
    >>> G = cn.two_cell(n_th=0.5)
    >>> ss = cn.steady_state(G)
    >>> round(ss.battery_energy, 4), round(ergotropy(ss), 4)   # the thermal part is no work
    (75.3801, 74.8801)
    """
    collective = flag(collective, "collective", "ergotropy")
    omega, alpha, kind = _parts(state, "ergotropy")
    idx = _cell_index(state, cells)
    a = alpha[..., idx]
    w = omega[idx]
    squeezed = _squeezed_ergotropy(state, kind, idx, w, a, collective)
    if squeezed is not None:
        return squeezed
    local = (w * (a.real**2 + a.imag**2)).sum(axis=-1)
    if not collective:
        return float(local) if kind == "steady" else local
    if kind == "steady":
        Nc = state.state.Nc if state.state is not None else None
        if Nc is None:
            return float(local)  # Nc = 0: a coherent state, all of its energy is work
        return float(gaussian_ergotropy(w, a, np.asarray(Nc)[np.ix_(idx, idx)]))
    thermal = state.final_state is not None and state.final_state.Nc is not None
    if not thermal:
        return local
    block = state.battery_fluctuations
    bat = np.flatnonzero(state.battery)
    if block is None:
        raise ChiralnetError(f"ergotropy(collective=True) needs the battery block of Nc at each time, which this "
                             f"result lacks: chiralnet.simulate keeps it (result.battery_fluctuations) by default "
                             f"for a battery of at most config.BATTERY_BLOCK_MAX_CELLS = {config.BATTERY_BLOCK_MAX_CELLS} "
                             f"cells (this one has {bat.size}); pass simulate(..., battery_fluctuations=True) to keep "
                             "a larger one, or cells=[...] to keep the block of a few battery cells")
    where = {c: k for k, c in enumerate(bat)}
    if not set(idx.tolist()) <= set(where):
        other = [state.cells[i] for i in idx if i not in where]
        raise ChiralnetError(f"ergotropy(collective=True) of cells {other[:5]}: a simulation keeps Nc only for the "
                             "battery cells (result.battery_fluctuations); mark those cells battery=True, or use "
                             "collective=False (local ergotropy needs no Nc)")
    sub = np.array([where[i] for i in idx], np.int64)
    return gaussian_ergotropy(w, a, block[:, sub[:, None], sub[None, :]])


def _squeezed_ergotropy(state, kind, idx, w, a, collective):
    """The ergotropy of a state with anomalous moments (Mc != 0), or None for a phase-insensitive one (whose
    formulas above stay as they are, bit for bit)."""
    if kind == "steady":
        st = state.state
        if st is None or st.Mc is None:
            return None
        if not collective:
            n = st.dense_Nc().diagonal().real[idx]
            return float(local_ergotropy(w, a, n, np.asarray(st.Mc).diagonal()[idx]).sum())
        return float(gaussian_ergotropy_squeezed(w, a, st.dense_Nc()[np.ix_(idx, idx)], np.asarray(st.Mc)[np.ix_(idx, idx)]))
    if getattr(state, "anomalous", None) is None:
        return None
    if not collective:
        return local_ergotropy(w, a, np.asarray(state.fluctuations)[:, idx], state.anomalous[:, idx]).sum(axis=-1)
    cells = [state.cells[i] for i in idx]
    _, _, sigma, _ = covariance(state, cells, "ergotropy(collective=True)")
    from ..gaussian import sigma_to_moments

    Nc, Mc = sigma_to_moments(sigma)
    return gaussian_ergotropy_squeezed(w, a, Nc, Mc)


def injected_power(state, network=None):
    """Power injected by the time-dependent Hamiltonian terms (units of omega^2): a float for a steady state, an
    (n_times,) array for a simulation result.

    The coherent drives inject P_in = -2 omega_L sum_i Im(conj(E_i) alpha_i). On a general Gaussian network
    (a state with anomalous moments: ``steady.state.Mc``, ``result.anomalous``) the two-photon pumps and
    parametric links, driven at 2 omega_L in the lab frame, do work too: -2 omega_L Im sum_ij conj(G_ij)
    <a_i a_j> (docs/theory/gaussian.md); pass the ``network`` (graph or model) that made the state so that
    it is included. A result keeps only Mc_ii, so a parametric link (which needs Mc_uv) is refused there:
    use :func:`chiralnet.observables.injected_energy` (exact, every term) or a steady state.

    Examples
    --------
    >>> import chiralnet as cn
    >>> G = cn.network(drive_frequency=1.0)
    >>> cn.add_cell(G, "a", omega=1.0, kappa=0.01, drive=0.1)
    >>> round(injected_power(cn.steady_state(G)), 12)   # 4 omega |E|^2 / kappa
    4.0
    >>> P = cn.network(drive_frequency=1.0)
    >>> cn.add_cell(P, "a", omega=1.0, kappa=1.0, pump=0.2)   # below threshold: kappa omega n = 2P^2 / (1 - 4P^2)
    >>> round(injected_power(cn.steady_state(P), P), 10)
    0.0952380952
    """
    omega, alpha, kind = _parts(state, "injected_power")
    if state.drive is None or state.drive_frequency is None:
        raise ChiralnetError("injected_power: this result carries no drive; make it with chiralnet.simulate")
    E = np.asarray(state.drive, complex)
    p = -2.0 * state.drive_frequency * (np.conj(E) * alpha).imag.sum(axis=-1)
    anomalous = state.state.Mc if kind == "steady" else state.anomalous
    if anomalous is not None:
        p = p + _pump_power(state, network, alpha, kind)
    return float(p) if kind == "steady" else p


def _pump_power(state, network, alpha, kind):
    """-2 omega_L Im sum_ij conj(G_ij) <a_i a_j> of a general network's steady state or result (injected_power)."""
    from ..gaussian import general_model
    from ..results import ProtocolResult
    from ..solve.base import model_and_state

    if network is None:
        raise ChiralnetError("injected_power: this state has squeezing (anomalous moments), so the network may have "
                             "two-photon pumps or parametric links, which inject energy too; pass the network that "
                             "made it, injected_power(state, G), so that their work is counted")
    if isinstance(state, ProtocolResult):
        raise ChiralnetError("injected_power of a protocol with squeezing: its phases may have different pumps; "
                             "take each phase's run or use injected_energy per phase")
    gm = general_model(model_and_state(network)[0])
    if tuple(gm.cells) != tuple(state.cells):
        raise ChiralnetError("injected_power: network does not match the state (its cells differ, or the result "
                             "keeps only some cells: simulate without cells=)")
    G = gm.pairing
    if not G.any():
        return 0.0
    if kind == "steady":
        aa = np.outer(alpha, alpha) + state.state.dense_Mc()
        return -2.0 * state.drive_frequency * float((np.conj(G) * aa).sum().imag)
    links = [t for t in gm.terms if t[0] == "parametric"]
    if links:
        _, u, v, _ = links[0]
        raise ChiralnetError(f"injected_power: the parametric link ({u!r}, {v!r}) does work through <a_u a_v>, which a "
                             "result does not keep (only Mc_ii); use chiralnet.observables.injected_energy (exact, "
                             "every term) or injected_power of a steady state")
    d = np.diagonal(G)
    return -2.0 * state.drive_frequency * (np.conj(d) * (alpha**2 + state.anomalous)).imag.sum(axis=-1)
