"""Tunables in one place. Change them at run time: ``chiralnet.config.DENSE_MAX_CELLS = 500``."""

#: Above this many cells the model is assembled as scipy.sparse CSR instead of dense arrays.
DENSE_MAX_CELLS = 2000

#: Largest N for which the "exact" method builds dense propagators e^{M dt} (N x N each).
EXACT_MAX_CELLS = 3000

#: Budget (complex entries) for the stack of dense propagators "exact" precomputes, one per distinct dt.
EXACT_MAX_PROPAGATOR_ENTRIES = 20_000_000

#: Default relative and absolute tolerances of the adaptive integrator.
RTOL = 1e-8
ATOL = 1e-10

#: Fraction of the machine's memory a single request may use before MemoryLimitError.
MEMORY_FRACTION = 0.8
