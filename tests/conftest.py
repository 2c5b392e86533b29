"""Shared test settings: named tolerances and the hypothesis profile.

Tolerances are named here so every assertion says which accuracy it claims. ``rel`` errors are
max |got - want| / max |want| over the compared array (see ``naive.rel_err``).
"""

import os
import sys

from hypothesis import HealthCheck, settings

# Test helpers (naive.py, strategies.py) import as plain modules under --import-mode=importlib.
sys.path.insert(0, os.path.dirname(__file__))

#: Exact propagation (e^{M dt}) against a closed form or the naive expm reference.
EXACT_REL = 1e-12
#: Steady state against a closed form.
STEADY_REL = 1e-12
#: rk45 at RK_TIGHT against a closed form.
RK_REL = 1e-8
#: Tolerances that make rk45 "tight".
RK_TIGHT = dict(rtol=1e-10, atol=1e-12)
#: Exact propagation against the naive expm reference on random networks (rounding grows with
#: the number of steps and with non-normality of M).
RANDOM_EXACT_REL = 1e-10
#: rk45 at RK_TIGHT against exact propagation on random networks.
RANDOM_RK_REL = 1e-7
#: Steady state against the naive solve / Lyapunov reference on random networks.
RANDOM_STEADY_REL = 1e-10
#: Elementwise agreement of assembled M and Q with the naive loops.
ASSEMBLY_ABS = 1e-14
#: The balance condition of a chiral link: M[u, v] must vanish to rounding.
BALANCE_ABS = 1e-15

settings.register_profile(
    "chiralnet",
    max_examples=int(os.environ.get("CHIRALNET_HYPOTHESIS_EXAMPLES", "20")),
    deadline=None,
    # CI draws the same examples every run (a landing must not hinge on luck); locally they vary.
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("chiralnet")
