"""The seed paper's two-cell limits "with the same rates" as a network: defined once, here.

A network is compared with the paper's charger-battery pair built from its own parts:

* the charger is the cell with the largest |drive| (E = that drive), kappa_a its local damping;
* kappa_b is the mean local damping of the battery cells other than the charger, omega their mean frequency;
* the link rate Gamma is the mean over reservoirs of Gamma_r times the geometric mean of |p_i|^2 over
  the cells it touches (a chiral link's gamma, for any xi); a network without reservoirs uses Gamma = 2 |J|
  with the mean |J| of its coherent links (the paper's comparison at equal coupling);
* the asymmetry: Gamma_a is the mean reservoir rate Gamma_r |p_a|^2 on the charger (Gamma when no
  reservoir touches it), xi = Gamma_a / Gamma and Gamma_b = Gamma / xi, as the paper's
  Gamma_a = xi Gamma, Gamma_b = Gamma / xi.

Then (``chiralnet.analytic``)

* nonreciprocal: E_B^nr = 16 omega Gamma^2 E^2 / ((Gamma_a + kappa_a)^2 (Gamma_b + kappa_b)^2),
* reciprocal (J = Gamma/2, no reservoir): E_B = 4 omega E^2 C / (kappa_a kappa_b (C + 1)^2),
  C = Gamma^2 / (kappa_a kappa_b); undefined (None / NaN) when kappa_a kappa_b = 0.

The paper's own pair, ``two_cell(..., optimal=True)`` included, is its own reference (ratio 1).
"""

from __future__ import annotations

import numpy as np

from .. import analytic
from ..errors import ChiralnetError

__all__ = ["RATE_KEYS", "reference_rates", "two_cell_limits", "two_cell_reference"]

#: The rates of the reference pair, in this order (see the module docstring).
RATE_KEYS = ("omega", "E", "kappa_a", "kappa_b", "gamma", "gamma_a")


def reference_rates(G) -> dict:
    """The reference pair's rates of network ``G``: dict over :data:`RATE_KEYS` (floats; NaN when
    nothing is driven, no cell besides the charger exists, or there are no links)."""
    from ..model import build_model
    from ..network import reservoirs

    model = build_model(G, sparse=True)
    out = dict.fromkeys(RATE_KEYS, float("nan"))
    drive = np.abs(model.drive)
    if not drive.any():
        return out
    i = int(np.argmax(drive))
    order = model.cells
    charger = order[i]
    kappa = np.array([G.nodes[c].get("kappa", 0.0) for c in order], float)
    bat = model.battery.copy()
    bat[i] = False
    if not bat.any():
        bat = np.ones(len(order), bool)
        bat[i] = False
    if not bat.any():
        return out
    rates, on_charger = [], []
    for res in reservoirs(G):
        ps = {c: abs(p) ** 2 for _, c, p in G.out_edges(res, data="p")}
        vals = np.array(list(ps.values()), float)
        g_r = G.nodes[res]["gamma"]
        rates.append(g_r * float(np.exp(np.mean(np.log(vals)))) if np.all(vals > 0) else 0.0)
        if charger in ps:
            on_charger.append(g_r * ps[charger])
    if rates:
        gamma = float(np.mean(rates))
    else:
        js = [abs(J) for _, _, J in G.edges(data="J") if J is not None]
        if not js:
            return out
        gamma = 2 * float(np.mean(js))
    gamma_a = float(np.mean(on_charger)) if on_charger else gamma
    out.update(omega=float(np.mean(model.omega[bat])), E=float(drive[i]), kappa_a=float(kappa[i]),
               kappa_b=float(np.mean(kappa[bat])), gamma=gamma, gamma_a=gamma_a)
    return out


def two_cell_limits(omega, E, kappa_a, kappa_b, gamma, gamma_a=None):
    """Steady battery energies of the reference pair: (nonreciprocal, reciprocal), arrays or floats.

    Vectorised over any shape; NaN where a limit is undefined (no link, or kappa_a kappa_b = 0 for the
    reciprocal one). ``gamma_a`` defaults to ``gamma`` (xi = 1).
    """
    values = {"omega": omega, "E": E, "kappa_a": kappa_a, "kappa_b": kappa_b, "gamma": gamma, "gamma_a": gamma_a}
    arrays = {}
    for name, x in values.items():
        if x is None:
            continue
        try:  # NaN stays allowed (a rate reference_rates could not define); malformed input is an error
            with np.errstate(over="raise"):
                a = np.asarray(x)
                if a.dtype == object or a.dtype.kind not in "iuf":
                    raise TypeError
                arrays[name] = a.astype(float)
        except (TypeError, ValueError, OverflowError, FloatingPointError):
            raise ChiralnetError(f"two_cell_limits: {name} must be a real number or array of real numbers that a "
                                 f"float holds, got {x!r}"[:300]) from None
    omega, E, ka, kb, gamma = (arrays[k] for k in ("omega", "E", "kappa_a", "kappa_b", "gamma"))
    gamma_a = gamma if gamma_a is None else arrays["gamma_a"]
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = np.where(gamma > 0, gamma_a / gamma, 1.0)
        la, lb = gamma_a + ka, gamma / xi + kb
        ok = (la > 0) & (lb > 0) & (gamma > 0)
        nonrec = np.where(ok, analytic.steady_battery_energy_nonreciprocal(
            omega=omega, E=E, gamma=gamma, Lambda_a=la, Lambda_b=lb), np.nan)
        recip = np.where(ka * kb > 0, analytic.steady_battery_energy_reciprocal(
            omega=omega, E=E, J=gamma / 2, kappa_a=ka, kappa_b=kb), np.nan)
    return nonrec, recip


def two_cell_reference(G) -> dict:
    """The seed paper's two-cell steady battery energies "with the same rates" as network ``G``.

    Returns
    -------
    dict
        ``omega, E, kappa_a, kappa_b, gamma, gamma_a, xi, nonreciprocal, reciprocal`` (floats, or None
        where undefined: nothing driven, no links, or kappa_a kappa_b = 0 for ``reciprocal``).
        See :mod:`chiralnet.observables.reference` for the definition.

    Examples
    --------
    >>> import chiralnet as cn
    >>> ref = two_cell_reference(cn.two_cell(gamma=0.01, kappa_a=0.1, kappa_b=0.003, optimal=True))
    >>> round(ref["xi"], 6), round(ref["nonreciprocal"], 4)
    (5.773503, 28.7187)
    """
    rates = reference_rates(G)
    nonrec, recip = two_cell_limits(*(rates[k] for k in RATE_KEYS))
    out = {k: (None if np.isnan(v) else float(v)) for k, v in rates.items()}
    xi = rates["gamma_a"] / rates["gamma"] if rates["gamma"] > 0 else float("nan")
    out["xi"] = None if np.isnan(xi) else float(xi)
    out["nonreciprocal"] = None if np.isnan(nonrec) else float(nonrec)
    out["reciprocal"] = None if np.isnan(recip) else float(recip)
    return out
