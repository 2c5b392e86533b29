"""Tunables in one place. Change them at run time: ``chiralnet.config.DENSE_MAX_CELLS = 500``."""

#: Above this many cells the model is assembled as scipy.sparse CSR instead of dense arrays.
DENSE_MAX_CELLS = 2000

#: Largest N for which the "exact" method builds dense propagators e^{M dt} (N x N each); also the
#: largest feedback block check_stability eigendecomposes densely (larger ones: sparse eigs).
EXACT_MAX_CELLS = 3000

#: Budget (complex entries) for the stack of dense propagators "exact" precomputes, one per distinct dt.
EXACT_MAX_PROPAGATOR_ENTRIES = 20_000_000

#: Default relative and absolute tolerances of the adaptive integrator.
RTOL = 1e-8
ATOL = 1e-10

#: Fraction of the machine's memory a single request may use before MemoryLimitError.
MEMORY_FRACTION = 0.8

#: Absolute memory limit in GB for one request; None means MEMORY_FRACTION of physical memory.
MEMORY_LIMIT_GB = None

#: Entries of M with |M_ij| <= STRUCTURAL_ZERO * max|M| count as zero when looking for a cascade
#: (triangular) structure: the rounding left where a chiral link cancels M[u, v].
STRUCTURAL_ZERO = 1e-15

#: Exact sparse stepping: substeps keep ||M h||_1 <= TAYLOR_THETA; the Taylor series of e^{M h}
#: stops when two successive terms fall below TAYLOR_TOL relative to the sum (1-norms).
TAYLOR_THETA = 3.0
TAYLOR_TOL = 2.0**-53
TAYLOR_MAX_TERMS = 80

#: Most Taylor substeps one exact-sparse run may take (summed over output times) before it refuses
#: with SolverError instead of running for hours. Steps long enough for e^{M h} to fall below 2^-60
#: (proven from the damping) land on the steady state and cost nothing.
MAX_TAYLOR_SUBSTEPS = 10**7

#: Default step limit of the adaptive integrator ("rk45").
RK45_MAX_STEPS = 10_000_000

#: Threads over rows (Numba prange) from this many cells on: vector kernels, and the N x N
#: fluctuation kernels. Measured on the 2-core reference machine (shared, loaded): threads made the
#: vector kernel 3x slower at 10^5 cells (one parallel region per Taylor term costs more than the
#: ~1 ms of work in it), so both are off by default; lower them on an idle many-core machine.
PARALLEL_MIN_CELLS = 10**9
PARALLEL_MIN_CELLS_THERMAL = 10**9

#: method="auto": dense exact propagators up to this many cells; above it, the sparse exact
#: stepping when M has at most SPARSE_MAX_DENSITY * N^2 nonzeros. Below it, "exact" also forms
#: e^{M dt} with the Numba kernel linalg.expm.expm_small instead of scipy.linalg.expm.
AUTO_DENSE_MAX_CELLS = 64
SPARSE_MAX_DENSITY = 0.1

#: method="auto" picks rk45 instead of exact-sparse when the exact stepping would need more than
#: this many Taylor substeps per output time on average (very sparse output grids).
AUTO_MAX_SUBSTEPS_PER_OUTPUT = 8

#: chiralnet.scattering, method="auto" on a network with feedback loops: batched dense LU up to this
#: many cells, one sparse LU per frequency above it.
SCATTERING_DENSE_MAX_CELLS = 300

#: Budget of complex entries for one batch of dense (M + i delta) matrices (scattering, "dense").
SCATTERING_DENSE_BATCH_ENTRIES = 4_000_000

#: The cascaded scattering kernel runs threads over frequencies from this much work on (frequencies x
#: input ports x rows swept), with at least two frequencies per thread.
SCATTERING_PARALLEL_MIN_WORK = 10**7

#: Above this many cells ``chiralnet run`` skips the network drawing (one arrow per link is slow and unreadable).
NETWORK_FIGURE_MAX_CELLS = 1000
