"""Closed forms of the seed paper's two-cell battery (PRL 132, 210402), errata applied.

Charger a (driven on resonance with amplitude E) and battery b, both at frequency omega;
Lambda_i = Gamma_i + kappa_i. Frequencies and rates in units of omega, times in 1/omega.
All functions broadcast over NumPy arrays.

Errata (checked against exact propagation; README "Errata in the seed paper"):

* Eq. (6) as printed, 16 omega Gamma^2 E^2/Lambda^4 [1 + e^{-Lambda t/2}(e^{-Lambda t/2} - 2)],
  is wrong at finite t. The Lambda_a = Lambda_b limit of Eq. (5) is
  16 omega Gamma^2 E^2/Lambda^4 [1 - e^{-Lambda t/2}(1 + Lambda t/2)]^2.
* Eq. (9): the sinh term of beta(t) has a plus sign,
  beta(t) = [(Delta^2 + kappa_ab^2) cosh(Delta t/2) + 2 kappa_ab Delta sinh(Delta t/2)] / (2 Delta^2).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "cooperativity",
    "dissipative_cooperativity",
    "delta",
    "battery_energy_nonreciprocal",
    "battery_energy_nonreciprocal_eq5",
    "battery_energy_symmetric",
    "charger_energy_nonreciprocal",
    "battery_energy_reciprocal",
    "steady_battery_energy_nonreciprocal",
    "steady_charger_energy_nonreciprocal",
    "steady_battery_energy_reciprocal",
    "eta_bb",
    "eta_bb_opt",
    "eta_bb_opt_balanced",
]


def cooperativity(J, kappa_a, kappa_b):
    """Coherent cooperativity C = 4 |J|^2 / (kappa_a kappa_b)."""
    return 4 * np.abs(J) ** 2 / (kappa_a * kappa_b)


def dissipative_cooperativity(gamma, Lambda):
    """Dissipative cooperativity C_d = 4 Gamma^2 / Lambda^2 (= eta_AB at steady state)."""
    return 4 * gamma**2 / Lambda**2


def delta(J, kappa_a, kappa_b):
    """Delta = sqrt(-16 |J|^2 + (kappa_a - kappa_b)^2), complex (imaginary when underdamped)."""
    return np.sqrt(np.asarray(-16 * np.abs(J) ** 2 + (kappa_a - kappa_b) ** 2, dtype=complex))


def battery_energy_nonreciprocal(t, *, omega, E, gamma, Lambda_a, Lambda_b):
    """Eq. (5): battery energy E_B^nr(t) of the one-way link, any Lambda_a, Lambda_b.

    Written as 16 omega Gamma^2 E^2 / (Lambda_a^2 Lambda_b^2) (1 - Y)^2 with
    Y = (b e^{-a t} - a e^{-b t}) / (b - a), a = Lambda_a/2, b = Lambda_b/2, which is Eq. (5)
    rearranged; evaluated without cancellation, so Lambda_a = Lambda_b (the corrected Eq. 6) is included.
    Gamma is the reservoir rate with |mu| = 1 (Gamma_a = xi Gamma, Gamma_b = Gamma/xi).
    """
    t = np.asarray(t, float)
    a, b = Lambda_a / 2, Lambda_b / 2
    # (e^{-a t} - e^{-b t}) / (b - a) = t e^{-m t} g(|a - b| t), m = min(a, b), g(x) = -expm1(-x)/x,
    # g(0) = 1: no cancellation at a = b and no overflow at large t for either order of a, b.
    m = np.minimum(a, b)
    x = np.abs(a - b) * t
    with np.errstate(invalid="ignore", divide="ignore"):
        g = np.where(x == 0, 1.0, -np.expm1(-x) / np.where(x == 0, 1.0, x))
    Y = np.exp(-a * t) + a * t * np.exp(-m * t) * g
    return 16 * omega * gamma**2 * E**2 / (Lambda_a**2 * Lambda_b**2) * (1 - Y) ** 2


def battery_energy_nonreciprocal_eq5(t, *, omega, E, gamma, Lambda_a, Lambda_b):
    """Eq. (5) exactly as printed (needs Lambda_a != Lambda_b); kept to show it agrees."""
    t = np.asarray(t, float)
    X = Lambda_a * np.exp(-Lambda_b * t / 2) - Lambda_b * np.exp(-Lambda_a * t / 2)
    D = Lambda_a - Lambda_b
    return 16 * omega * gamma**2 * E**2 / (Lambda_a**2 * Lambda_b**2) * (1 + X / D**2 * (X - 2 * D))


def battery_energy_symmetric(t, *, omega, E, gamma, Lambda):
    """Corrected Eq. (6), Lambda_a = Lambda_b = Lambda:
    16 omega Gamma^2 E^2 / Lambda^4 [1 - e^{-Lambda t/2}(1 + Lambda t/2)]^2.
    (The paper prints [1 + e^{-Lambda t/2}(e^{-Lambda t/2} - 2)], right only as t -> infinity.)"""
    t = np.asarray(t, float)
    x = Lambda * t / 2
    return 16 * omega * gamma**2 * E**2 / Lambda**4 * (1 - np.exp(-x) * (1 + x)) ** 2


def charger_energy_nonreciprocal(t, *, omega, E, Lambda_a):
    """Eq. (7): charger energy 4 omega E^2 (1 - e^{-Lambda_a t/2})^2 / Lambda_a^2 (exact as printed)."""
    t = np.asarray(t, float)
    return 4 * omega * E**2 * (-np.expm1(-Lambda_a * t / 2)) ** 2 / Lambda_a**2


def battery_energy_reciprocal(t, *, omega, E, J, kappa_a, kappa_b):
    """Eqs. (8)-(9): battery energy with a coherent link only (Gamma = 0), sign of sinh in beta corrected.

    E_B = zeta (1 - alpha(t) e^{-kappa_ab t/4} + [beta(t) - 2 kappa_a kappa_b (C+1)/Delta^2] e^{-kappa_ab t/2}),
    zeta = 4 omega E^2 C / (kappa_a kappa_b (C+1)^2), kappa_ab = kappa_a + kappa_b,
    alpha(t) = (2/Delta)(Delta cosh(Delta t/4) + kappa_ab sinh(Delta t/4)),
    beta(t) = [(Delta^2 + kappa_ab^2) cosh(Delta t/2) + 2 kappa_ab Delta sinh(Delta t/2)] / (2 Delta^2).
    Evaluated in complex arithmetic (Delta is imaginary when underdamped) with the 1/Delta and
    1/Delta^2 terms regrouped so that Delta = 0 (critical damping) is finite.
    """
    t = np.asarray(t, float)
    C = cooperativity(J, kappa_a, kappa_b)
    zeta = 4 * omega * E**2 * C / (kappa_a * kappa_b * (C + 1) ** 2)
    kab = kappa_a + kappa_b
    D = delta(J, kappa_a, kappa_b)
    q, h = D * t / 4, D * t / 2
    s = kab * t / 4
    # Every hyperbolic function is multiplied by its decay factor before evaluation (|Re Delta| < kappa_ab,
    # so cosh(q) e^{-s} etc. stay bounded); evaluating cosh and exp separately gives inf * 0 = NaN at
    # large t in the overdamped regime.
    # alpha e^{-s} with sinh(x)/x and (cosh(x) - 1)/x^2 = sinhc(x/2)^2 / 2, regular at x = 0.
    alpha_e = 2 * _cosh_exp(q, s) + 2 * kab * (t / 4) * _sinhc_exp(q, s)
    # [beta - 2 kappa_a kappa_b (C+1)/Delta^2] e^{-2s}
    #   = [cosh(h)/2 + 1/2 + kab^2 (cosh(h) - 1)/(2 Delta^2) + kab sinh(h)/Delta] e^{-2s}
    bracket_e = (_cosh_exp(h, 2 * s) / 2 + 0.5 * np.exp(-2 * s)
                 + kab**2 * (t / 2) ** 2 * _sinhc_exp(h / 2, s) ** 2 / 4 + kab * (t / 2) * _sinhc_exp(h, 2 * s))
    value = zeta * (1 - alpha_e + bracket_e)
    return value.real


def _cosh_exp(x, s):
    """cosh(x) e^{-s} for complex x and real s >= |Re x|, without overflow."""
    x = np.asarray(x, complex)
    return (np.exp(x - s) + np.exp(-x - s)) / 2


def _sinhc_exp(x, s):
    """sinh(x)/x e^{-s} (1 at x = 0) for complex x and real s >= |Re x|, without overflow."""
    x = np.asarray(x, complex)
    small = np.abs(x) < 1e-4
    safe = np.where(small, 1.0, x)
    return np.where(small, (1 + x**2 / 6 + x**4 / 120) * np.exp(-s), (np.exp(safe - s) - np.exp(-safe - s)) / (2 * safe))


def steady_battery_energy_nonreciprocal(*, omega, E, gamma, Lambda_a, Lambda_b):
    """E_B^nr(inf) = 16 omega Gamma^2 E^2 / (Lambda_a^2 Lambda_b^2)."""
    return 16 * omega * gamma**2 * E**2 / (Lambda_a**2 * Lambda_b**2)


def steady_charger_energy_nonreciprocal(*, omega, E, Lambda_a):
    """E_A^nr(inf) = 4 omega E^2 / Lambda_a^2."""
    return 4 * omega * E**2 / Lambda_a**2


def steady_battery_energy_reciprocal(*, omega, E, J, kappa_a, kappa_b):
    """E_B(inf) = 4 omega E^2 C / (kappa_a kappa_b (C+1)^2)."""
    C = cooperativity(J, kappa_a, kappa_b)
    return 4 * omega * E**2 * C / (kappa_a * kappa_b * (C + 1) ** 2)


def eta_bb(C, xi):
    """Eq. (10): E_B^nr(inf)/E_B(inf) with Gamma_a = Gamma_b = Gamma = 2|J|, xi = sqrt(kappa_a/kappa_b)."""
    sc = np.sqrt(C)
    return 4 * ((1 + C) / ((sc + xi) * (sc + 1 / xi))) ** 2


def eta_bb_opt(*, gamma, J, kappa_a, kappa_b):
    """Eq. (11): the ratio with optimal couplings Gamma_a = xi Gamma, Gamma_b = Gamma/xi."""
    J2 = np.abs(J) ** 2
    return gamma**2 * (4 * J2 + kappa_a * kappa_b) ** 2 / (J2 * (gamma + np.sqrt(kappa_a * kappa_b)) ** 4)


def eta_bb_opt_balanced(C):
    """Eq. (12): Eq. (11) at Gamma = 2|J|: 4 ((1 + C) / (sqrt(C) + 1)^2)^2."""
    return 4 * ((1 + C) / (np.sqrt(C) + 1) ** 2) ** 2
