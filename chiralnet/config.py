"""Tunables in one place. Change them at run time: ``chiralnet.config.DENSE_MAX_CELLS = 500``."""

#: Above this many cells the model is assembled as scipy.sparse CSR instead of dense arrays.
DENSE_MAX_CELLS = 2000

#: Up to this many cells a dense model (``sparse=False``, the default below DENSE_MAX_CELLS) is summed
#: straight into (N, N) arrays, and the small-network routes (dense stability check, dense steady state)
#: apply: scipy.sparse objects cost ~20-100 us each to build, most of a small network's run.
SMALL_MAX_CELLS = 64

#: Up to this many cells the "exact" method steps the fluctuations Nc <- Phi Nc Phi^H + W in plain loops
#: instead of BLAS products (measured on the reference machine, 61 steps: 12 against 25 us at 4 cells,
#: even at 8, twice as slow at 12).
SMALL_PRODUCT_MAX_CELLS = 6

#: Up to this many output times a float64 time grid is checked and classified (uniform or not) in one kernel
#: call each (``solve.base.check_times``, ``distinct_steps``): ~1 us instead of ~15 us of NumPy calls, the
#: same results bitwise. Longer grids take the NumPy route, whose fixed cost is then small.
SMALL_GRID_MAX_TIMES = 4096

#: Largest N for which the "exact" method builds dense propagators e^{M dt} (N x N each); also the
#: largest feedback block check_stability eigendecomposes densely (larger ones: sparse eigs).
EXACT_MAX_CELLS = 3000

#: Largest N the general Gaussian path (squeezing, parametric terms: chiralnet.gaussian) takes: its model keeps
#: dense N x N arrays (drift, pairing, noise, squeezing), and below GAUSSIAN_SPARSE_MIN_CELLS it works on dense
#: 2N x 2N real quadrature matrices (the sparse routes above estimate their memory and refuse up front).
GAUSSIAN_MAX_CELLS = 3000

#: From this N on, a general Gaussian trace (and a steady state with pumps or parametric links) takes the sparse
#: phase-insensitive machinery (chiralnet.solve.general.sparse_route: the network itself plus one pass for Mc
#: without pairing, the doubled model of 2N modes with it); below it the dense quadrature kernel, faster there
#: (crossover measured at 32-48 cells on a thermal chain with squeezed baths or pumps).
GAUSSIAN_SPARSE_MIN_CELLS = 48

#: The doubled model is made triangular (chiralnet.solve.general.triangular_doubled) by the eigenvectors of
#: its strongly connected blocks (a pump: 2 modes, a parametric link: 4) when each has at most this many modes
#: and eigenvectors of condition number at most GAUSSIAN_BLOCK_MAX_COND (rounding grows with it).
GAUSSIAN_BLOCK_MAX_MODES = 16
GAUSSIAN_BLOCK_MAX_COND = 1e4

#: Budget (complex entries) for the stack of dense propagators "exact" precomputes, one per distinct dt.
EXACT_MAX_PROPAGATOR_ENTRIES = 20_000_000

#: Default relative and absolute tolerances of the adaptive integrator.
RTOL = 1e-8
ATOL = 1e-10

#: Fraction of the machine's memory a single request may use before MemoryLimitError.
MEMORY_FRACTION = 0.8

#: Absolute memory limit in GB for one request; None means MEMORY_FRACTION of physical memory.
MEMORY_LIMIT_GB = None

#: Exact sparse stepping: substeps keep ||M h||_1 <= TAYLOR_THETA; the Taylor series of e^{M h}
#: stops when two successive terms fall below TAYLOR_TOL relative to the sum (1-norms).
TAYLOR_THETA = 3.0
TAYLOR_TOL = 2.0**-53
TAYLOR_MAX_TERMS = 80

#: Most Taylor substeps one exact-sparse run may take (summed over output times) before it refuses
#: with SolverError instead of running for hours. Steps long enough for e^{M h} to fall below 2^-60
#: (proven from the damping) land on the steady state and cost nothing.
MAX_TAYLOR_SUBSTEPS = 10**7

#: Default step limit of the adaptive integrator ("rk45", and the integration of shaped drives).
RK45_MAX_STEPS = 10_000_000

#: The adaptive integration of a Gaussian drive pulse lands on t0 and on the ends of its support
#: [t0 - c width, t0 + c width], c = PULSE_SUPPORT_WIDTHS (exp(-c^2/2) = 2.6e-18 there), and steps at
#: most PULSE_MAX_STEP widths inside it: a pulse is never stepped over, however quiet the start.
PULSE_SUPPORT_WIDTHS = 9.0
PULSE_MAX_STEP = 1.0

#: The largest step (1/omega) of the adaptive integration of a drive that is a Python callable which
#: declares no ``max_step`` (``drives.function(f, breakpoints=..., max_step=...)``): a callable is assumed
#: to have no feature shorter than this unless it says so. ``result.stats["drive_h_max"]`` reports the
#: bound used and ``drive_h_max_source`` where it came from.
CALLABLE_MAX_STEP = 1.0

#: Default step limit of the adaptive integration of a drive with a Python callable (evaluated six times
#: a step from Python, ~20 us a step): a callable that varies faster than the tolerances allow (a sign
#: flip every 1e-6, say) stops with an error naming the cell, the time reached and the step length after
#: a few seconds, instead of running for hours. ``simulate(..., max_steps=...)`` overrides it.
CALLABLE_MAX_STEPS = 200_000

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

#: ``chiralnet spectrum`` refuses a spectrum file with more detunings than this (before any work); fewer
#: are refused too when their scattering matrices and CSV text would not fit in memory.
SPECTRUM_MAX_POINTS = 10**7

#: Above this many cells ``chiralnet run`` skips the network drawing (one arrow per link is slow and unreadable).
NETWORK_FIGURE_MAX_CELLS = 1000

#: Networks with at most this many cells (zero temperature) go through the batched kernels.
BATCH_MAX_CELLS = 64

#: Default horizon, in slowest decay times of M.
T90_HORIZON_DECAYS = 40.0

#: Default number of grid intervals over the horizon before bisection.
T90_STEPS = 2000

#: The charging times and the maximum average power find their default horizon (config.T90_HORIZON_DECAYS
#: over the slowest decay rate) from the eigenvalues of M up to this many cells; above it they need an
#: explicit horizon (``chiralnet run`` passes the scenario's last output time).
DEFAULT_HORIZON_MAX_CELLS = 2000

#: Relative tolerance of the check that the tabulated (sweep) assembly equals build_model.
ASSEMBLY_RTOL = 1e-12

#: Sample points (besides up to 16 corners) a tabulated group is checked at.
VERIFY_RANDOM_POINTS = 8

#: Largest number of values one range axis may ask for before its array is allocated, and largest
#: t90_steps (each point steps that many times): above them a sweep file is refused at once.
SWEEP_MAX_AXIS_VALUES = 10**8
SWEEP_MAX_T90_STEPS = 10**6

#: Seconds to wait for a Dask scheduler before reporting it unreachable.
SCHEDULER_TIMEOUT = 3.0

#: Below this many points the embedded engine does not start a process pool (start-up costs seconds).
POOL_MIN_POINTS = 2000

#: Central finite-difference step (relative to each variable's bounds width) where no adjoint applies.
OPTIMIZE_FD_STEP = 1e-6

#: Above this many variables a budget uses SPG instead of SLSQP.
OPTIMIZE_SLSQP_MAX_VARIABLES = 200

#: Default starts of ``method="multistart"``.
OPTIMIZE_N_STARTS = 8

#: Default iteration limit of the local methods.
OPTIMIZE_MAXITER = 500

#: Relative step of the model differences for a base that is not a registered builder.
GRADIENT_DIFF_STEP = 1e-3

#: Largest T |S|^2 (output times x the squared size of the battery's feeding block) a hot-network
#: ``stored_power`` keeps (16 bytes each).
POWER_MAX_BLOCK_ENTRIES = 50_000_000

#: Most bytes of model arrays (M stacks) assembled per kernel launch; realisations are processed in blocks.
DISORDER_BLOCK_BYTES = 32 * 2**20

#: Most realisations per kernel launch (also the rows of random numbers drawn at once).
DISORDER_BLOCK_REALISATIONS = 16384

#: Realisations per chunk the default chunk size aims at: batched / one model per realisation.
DISORDER_CHUNK_REALISATIONS_BATCHED = 65536
DISORDER_CHUNK_REALISATIONS_SINGLE = 512

#: A "normal" disorder whose expected number of factors <= 0 over the whole sweep reaches this is refused.
DISORDER_MAX_EXPECTED_NONPOSITIVE = 1e-3

#: A simulation keeps the battery block Nc[B, B] at every output time (``result.battery_fluctuations``, for
#: the collective ergotropy) by default when the battery has at most this many cells (B^2 complex numbers,
#: 64 kB per time at 64 cells); larger batteries keep it only when asked (``simulate(...,
#: battery_fluctuations=True)``): a 799-cell chain's battery would otherwise add 10 MB per output time.
BATTERY_BLOCK_MAX_CELLS = 64

#: Apply a precomputed sparse propagator P = e^{M h} (:mod:`chiralnet.linalg.propagator`) to the
#: steps of an output grid that repeat one step length, instead of the Taylor series each time (for
#: amplitudes, when the state spans at least half the cells). False: always the series (kept for comparison).
SPARSE_PROPAGATOR = True

#: P is built only when it averages at most this many entries a row (a chain: K + 1, or 2K + 1 two-way;
#: a 2D lattice fills in as K^2 and keeps the series).
PROPAGATOR_MAX_ROW_ENTRIES = 64

#: ... and when building it (P and one Taylor term, 24 bytes an entry each) takes at most this many bytes
#: (and at most a tenth of the memory limit).
PROPAGATOR_MAX_BYTES = 2**30

#: ... and when the step recurs at least this many times on the output grid.
PROPAGATOR_MIN_USES = 4

#: ... and when cells x columns x uses (columns: 1 for amplitudes, N for the fluctuation matrix) reaches
#: this: below, building P costs more than the series it replaces (measured: 300 cells x 61 times was
#: 4.8 ms with P against 3.6 ms by the series; 2,000 x 61, 10.7 against 19.5 ms).
PROPAGATOR_MIN_WORK = 100_000

#: Shift the amplitude series by the common diagonal (:func:`chiralnet.linalg.csr.shifted`)? Off: on a smooth state the
#: unshifted terms are smaller (M acts as a difference operator), and the two measured the same at 10^5 cells.
TAYLOR_SHIFT_VECTOR = False

#: Step the fluctuations one-sidedly (Nc_ss + D) where Nc_ss is cheap and exact; False: always the
#: two-sided series of Nc itself (kept for comparison and as the path for feedback with noise).
FLUCTUATION_ONE_SIDED = True

#: Columns per block of the one-sided fluctuation passes (8 planes of N x width floats per block).
FLUCTUATION_BLOCK_WIDTH = 32

#: Most grid intervals (``steps``) of time_to_fraction, max_average_power and efficiency: each one is a
#: step of the exact propagation (and, off the batched kernels, an output time of N energies); more is
#: refused up front with the cost and this limit.
OBSERVABLE_MAX_STEPS = 10**6

#: The grid of those functions may space its points at most this many slowest decay times 1/|max Re eig M|
#: apart (horizon / steps): a coarser grid steps over the whole charging (horizon = 1e300 put the maximum
#: average power at t = 1e297) and is refused, naming the largest horizon that resolves it.
OBSERVABLE_MAX_STEP_DECAYS = 1.0

#: State: Nc must be Hermitian to this tolerance relative to its largest entry, and positive semidefinite
#: (no eigenvalue below -STATE_NC_RTOL times its largest entry). The eigenvalues are taken (eigvalsh) up to
#: STATE_NC_EIG_MAX_CELLS cells; a larger Nc is checked for Hermiticity and a non-negative diagonal only.
STATE_NC_RTOL = 1e-10
STATE_NC_EIG_MAX_CELLS = 200

#: optimize: most local iterations one call may run, n_starts x maxiter (each is at least one steady solve);
#: more is refused up front with the estimate and the largest n_starts that fits.
OPTIMIZE_MAX_ITERATIONS = 10**6

#: isolation_bandwidth: most grid points over the window (each a solve of the scattering matrix); more is
#: refused up front with the bytes it would take.
ISOLATION_MAX_GRID = 10**7
