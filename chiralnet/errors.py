"""One exception family for chiralnet.

Every error a user can trigger with bad input is a :class:`ChiralnetError`, which
subclasses :class:`ValueError` so ``except ValueError`` keeps working.
"""

__all__ = ["ChiralnetError", "NetworkError", "NoSteadyStateError", "SolverError", "MemoryLimitError", "ScenarioError",
           "SweepError"]


class ChiralnetError(ValueError):
    """Base class of every error chiralnet raises on bad input or failed numerics."""


class NetworkError(ChiralnetError):
    """The graph does not follow the chiralnet schema (names the cell, link or key)."""


class NoSteadyStateError(ChiralnetError):
    """The generator M has an eigenvalue with real part >= 0: no steady state exists."""


class SolverError(ChiralnetError):
    """A solver failed: bad times or options, non-finite state, or step size underflow."""


class MemoryLimitError(ChiralnetError):
    """A request would need more memory than chiralnet is allowed to use."""


class ScenarioError(ChiralnetError):
    """A scenario (or spectrum, optimisation) file is malformed; the message names the file, the key and the fix."""


class SweepError(ChiralnetError):
    """A sweep is ill-defined (names the file, section, key or point and what would fix it)."""
