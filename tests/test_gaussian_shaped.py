"""Shaped drives (pulses, tones, squares, callables, sums) on general Gaussian networks, against an independent
reference: the quadrature mean equation d<R>/dt = A <R> + b(E(t)) of tests/test_gaussian.py's plain
description, integrated by SciPy (smooth drives) or by one augmented expm per constant piece (square drives);
the covariance does not see the drive and is that description's exact one."""

import numpy as np
import pytest
import scipy.linalg as la
from scipy.integrate import solve_ivp

import chiralnet as cn
from chiralnet import drives
from chiralnet.errors import ChiralnetError
from chiralnet.gaussian import sigma_to_moments
from test_gaussian import DENSE_REL, _rel, graph_of, random_spec, reference_generator, reference_run, start_of

#: chiralnet's shaped-drive integration at rtol=1e-10, atol=1e-12 against SciPy's DOP853 at rtol=1e-12,
#: atol=1e-14 (the Gaussian and callable share is adaptive: its error is the integrator's tolerance).
SHAPED_REL = 1e-8
#: A network's pump, links and squeezed baths, shaped drives on cells 0 and 1.
RTOL, ATOL = 1e-10, 1e-12


def forcing(spec):
    """b(E) = B_re Re E + B_im Im E (2n,) of the reference's mean equation, linear in the drives E (n,)."""
    n = len(spec["cells"])
    A, b0, _ = reference_generator({**spec, "cells": [{**c, "drive": 0} for c in spec["cells"]]})
    assert not b0.any()
    cols = []
    for unit in (1.0, 1j):
        for i in range(n):
            cells = [{**c, "drive": unit if k == i else 0} for k, c in enumerate(spec["cells"])]
            cols.append(reference_generator({**spec, "cells": cells})[1])
    B = np.array(cols).T  # (2n, 2n): columns Re E_0..Re E_n-1, Im E_0..Im E_n-1
    return A, lambda E: B @ np.concatenate([np.real(E), np.imag(E)])


def shaped_network(seed, shapes):
    """A random general network (every anomalous term) whose cells 0 and 1 carry ``shapes`` (two drives)
    on top of their constant drives."""
    spec = random_spec(np.random.default_rng(seed), n=3)
    G = graph_of(spec)
    for i, shape in enumerate(shapes):
        G.nodes[f"c{i}"]["drive"] = spec["cells"][i]["drive"] + shape
    return spec, G


def drive_values(spec, shapes, t):
    """E (n,) complex at time t: the constant drives plus the shapes (evaluated by chiralnet.drives' own
    __call__, a direct formula per term)."""
    E = np.array([c["drive"] for c in spec["cells"]], complex)
    for i, shape in enumerate(shapes):
        E[i] += complex(shape(t, drive_frequency=spec["wL"]))
    return E


def check_against(spec, res, R, times):
    n = len(spec["cells"])
    alpha = (R[:, :n] + 1j * R[:, n:]) / np.sqrt(2)
    return _rel(res.amplitudes, alpha)


@pytest.mark.parametrize("seed", [0, 1])
def test_smooth_shaped_drives_match_the_quadrature_ode(seed):
    """A Gaussian pulse plus a detuned tone on cell 0, a callable on cell 1: means to SHAPED_REL, the covariance
    (drive-independent) to DENSE_REL."""
    shapes = [drives.gaussian(0.15 - 0.1j, t0=4.0, width=1.2) + drives.tone(0.05j, frequency=1.3),
              drives.function(lambda t: 0.08 * np.sin(0.7 * t) * np.exp(-0.05 * t), max_step=0.5)]
    spec, G = shaped_network(seed, shapes)
    times = np.linspace(0.0, 12.0, 25)
    res = cn.simulate(G, times, rtol=RTOL, atol=ATOL)
    assert res.method == "exact-gaussian" and res.options["rtol"] == RTOL
    A, b = forcing(spec)
    R0, S0 = start_of(spec)
    sol = solve_ivp(lambda t, R: A @ R + b(drive_values(spec, shapes, t)), (0.0, times[-1]), R0, method="DOP853",
                    t_eval=times, rtol=1e-12, atol=1e-14)
    assert _rel(res.amplitudes, (sol.y[:3].T + 1j * sol.y[3:].T) / np.sqrt(2)) < SHAPED_REL
    _, Ss = reference_run(spec, R0, S0, times)
    Nc, Mc = sigma_to_moments(Ss)
    assert _rel(res.fluctuations, Nc.diagonal(axis1=1, axis2=2).real) < DENSE_REL
    assert _rel(res.anomalous, Mc.diagonal(axis1=1, axis2=2)) < DENSE_REL
    assert _rel(res.final_state.dense_Mc(), Mc[-1]) < DENSE_REL
    assert _rel(res.energies, spec_energies(spec, res.amplitudes, res.fluctuations)) < 1e-14
    np.testing.assert_allclose(res.drive[:, :2], np.array([drive_values(spec, shapes, t)[:2] for t in times]),
                               rtol=1e-14, atol=1e-16)


def spec_energies(spec, alpha, fluct):
    omega = np.array([c["omega"] for c in spec["cells"]])
    return omega * (np.abs(alpha) ** 2 + fluct)


@pytest.mark.parametrize("seed", [2, 3])
def test_square_drives_match_the_piecewise_exact_solution(seed):
    """Square pulses (exact on both copies): one augmented expm per constant piece, to DENSE_REL."""
    shapes = [drives.square(0.2 + 0.1j, 1.5, 6.0), drives.square(-0.1j, 3.0, 4.5) + drives.square(0.05, 5.0, 20.0)]
    spec, G = shaped_network(seed, shapes)
    times = np.linspace(0.0, 9.0, 19)
    res = cn.simulate(G, times)
    A, b = forcing(spec)
    R0, _ = start_of(spec)
    m = A.shape[0]
    edges = sorted({0.0, 1.5, 3.0, 4.5, 5.0, 6.0})
    R, t_prev, out = R0.copy(), 0.0, []
    for t in times:
        for e in [x for x in edges if t_prev < x < t] + [t]:
            if e > t_prev:
                aug = np.zeros((m + 1, m + 1))
                aug[:m, :m], aug[:m, m] = A * (e - t_prev), b(drive_values(spec, shapes, t_prev)) * (e - t_prev)
                E = la.expm(aug)
                R, t_prev = E[:m, :m] @ R + E[:m, m], e
        out.append(R.copy())
    R = np.array(out)
    assert _rel(res.amplitudes, (R[:, :3] + 1j * R[:, 3:]) / np.sqrt(2)) < DENSE_REL
    assert res.stats["square_runs"] == 3  # three (start, stop) pairs, each with its conjugate copy inside
