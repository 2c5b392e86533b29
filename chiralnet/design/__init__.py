"""Inverse design: exact gradients of steady-state quantities and optimisation of networks.

- :mod:`~chiralnet.design.adjoint`: :func:`gradient` by the adjoint method (one extra solve with M^H,
  one adjoint Lyapunov solve with hot baths), on the affine model of :mod:`chiralnet.parametrized`.
- :mod:`~chiralnet.design.optimizer`: :func:`optimize` (SciPy L-BFGS-B, SLSQP with a budget, SPG for large
  budgeted problems, multi-start, derivative-free for ``time_to_90``) and :class:`OptimizeResult`.
"""

from .adjoint import GRADIENT_QUANTITIES, gradient
from .optimizer import OPTIMIZERS, OptimizeResult, optimize

__all__ = ["gradient", "optimize", "OptimizeResult", "GRADIENT_QUANTITIES", "OPTIMIZERS"]
