"""Solvers: one file per simulation method, the steady state, and the method contract.

- :mod:`~chiralnet.solve.base`: the contract every method follows, time-grid checks.
- :mod:`~chiralnet.solve.exact`, :mod:`~chiralnet.solve.exact_sparse`, :mod:`~chiralnet.solve.rk45`:
  the methods (driver, Numba kernels, options), registered in :data:`METHODS`.
- :mod:`~chiralnet.solve.steady`: steady state and stability.
- :mod:`~chiralnet.solve.run`: one model from a state (method choice, memory check), :data:`METHODS`.
- :mod:`~chiralnet.solve.simulate`: :func:`simulate`.
- :mod:`~chiralnet.solve.stream`: :func:`simulate_to_file` (a long trace written to NetCDF block by block).
- :mod:`~chiralnet.solve.protocol`: :func:`protocol` (phases held one after another).
- :mod:`~chiralnet.solve.driven`: time-dependent drives (:mod:`chiralnet.drives`).
- :mod:`~chiralnet.solve.response`: the scattering matrix (:func:`chiralnet.scattering`).
- :mod:`~chiralnet.solve.batched`: Numba kernels over many small networks at once (sweeps, observables).
"""

from .protocol import Protocol, protocol
from .run import METHODS
from .simulate import simulate
from .steady import check_stability, steady_state
from .stream import simulate_to_file

__all__ = ["simulate", "simulate_to_file", "steady_state", "check_stability", "METHODS", "protocol", "Protocol"]
