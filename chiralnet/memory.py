"""Estimate memory before allocating, and refuse a request that would not fit.

Every large allocation in chiralnet (model assembly, output arrays, propagators, the N x N
fluctuation matrix, Lyapunov solves) is estimated here first. :func:`check` raises
:class:`~chiralnet.errors.MemoryLimitError` at once, naming the estimate in GB, the largest
items, and what would make the request fit -- instead of an out-of-memory crash later.

The limit is ``config.MEMORY_LIMIT_GB`` when set, else ``config.MEMORY_FRACTION`` of the
machine's physical memory.
"""

from __future__ import annotations

import mmap
import os

import numpy as np

from . import config
from .errors import MemoryLimitError

__all__ = ["limit_bytes", "check", "simulation_bytes", "steady_state_bytes", "model_bytes", "graph_bytes",
           "check_cells", "sweep_bytes", "check_disk", "format_bytes", "empty"]

_C = 16  # bytes per complex128
_F = 8   # bytes per float64 / int64
_GB = 1e9


def physical_bytes() -> int:
    """Physical memory of this machine in bytes (asked once per process: every run checks its memory,
    and two sysconf calls were a few percent of a small network's run)."""
    global _PHYSICAL
    if _PHYSICAL is None:
        try:
            _PHYSICAL = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
            _PHYSICAL = 16 * 2**30
    return _PHYSICAL


_PHYSICAL = None


def limit_bytes() -> float:
    """Bytes a single request may use."""
    if config.MEMORY_LIMIT_GB is not None:
        return float(config.MEMORY_LIMIT_GB) * _GB
    return config.MEMORY_FRACTION * physical_bytes()


def check(items: dict, what: str, fixes: str) -> float:
    """Raise :class:`MemoryLimitError` when the items (name -> bytes) add up to more than the limit.

    Parameters
    ----------
    items : dict or float
        Estimated allocations in bytes, by name (or one number).
    what : str
        The request, e.g. ``"simulate (100000 cells, 1000 times, method 'exact-sparse')"``.
    fixes : str
        What would make it fit, e.g. ``"fewer output times, or store_amplitudes=False"``.

    Returns
    -------
    float
        The estimate in bytes.
    """
    if not isinstance(items, dict):
        items = {"arrays": items}
    total = sum(items.values())  # exact for integers of any size (10**400 cells must not overflow a float)
    limit = limit_bytes()
    if total > limit:
        big = sorted(items.items(), key=lambda kv: -kv[1])[:3]
        parts = ", ".join(f"{name} {format_bytes(nbytes)}" for name, nbytes in big)
        source = (f"config.MEMORY_LIMIT_GB = {config.MEMORY_LIMIT_GB}" if config.MEMORY_LIMIT_GB is not None
                  else f"config.MEMORY_FRACTION = {config.MEMORY_FRACTION} of {physical_bytes() / _GB:.3g} GB")
        raise MemoryLimitError(
            f"{what} would need about {format_bytes(total)} ({parts}), more than the limit of "
            f"{limit / _GB:.3g} GB ({source}); to fit: {fixes}"
        )
    return float(total)


def format_bytes(nbytes) -> str:
    """``"3.2 GB"``; exact integers beyond the float range print as ``"more than 1e300 GB"``."""
    try:
        gb = float(nbytes) / _GB
    except OverflowError:
        return "more than 1e300 GB"
    return f"{gb:.3g} GB" if gb < 1e300 else "more than 1e300 GB"


#: Bytes a NetworkX network takes per cell and per link (a chiral link: a reservoir node, two couplings
#: and a coherent edge), measured with tracemalloc on the builders (chain: 2.4 kB per cell, lattice: 4.1 kB).
GRAPH_BYTES_PER_CELL = 700
GRAPH_BYTES_PER_LINK = 1700


def graph_bytes(n_cells: int, n_links: int | None = None) -> dict:
    """Estimated memory of a chiralnet network (a NetworkX graph) with ``n_cells`` cells and ``n_links`` links."""
    n = int(n_cells)
    links = n if n_links is None else int(n_links)
    return {"network cells": n * GRAPH_BYTES_PER_CELL, "network links": links * GRAPH_BYTES_PER_LINK}


def check_cells(n_cells, what: str, *, n_links=None, fixes: str = "fewer cells") -> float:
    """Refuse a network of ``n_cells`` cells before building it, when it would not fit in memory.

    Builders and file readers call this with the size they were asked for, so that ``n_cells = 10**9``
    (or a 10^5 x 10^5 lattice) is one clear :class:`MemoryLimitError` at once instead of minutes of
    building and a crash. Counts are exact integers (any size); ``n_links`` defaults to one per cell.

    Examples
    --------
    >>> from chiralnet.memory import check_cells
    >>> check_cells(10**12, "chain(n_cells=10**12)")      # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    chiralnet.errors.MemoryLimitError: chain(n_cells=10**12) would need about 2.4e+06 GB ...
    """
    items = graph_bytes(n_cells, n_links)
    return check(items, what, fixes)


def sweep_bytes(n_points: int, values_per_point: int) -> dict:
    """Estimated memory of a sweep's results: ``values_per_point`` float64 values per grid point.

    The chunks are read back and assembled into full arrays (twice the values), and the CSV text is
    built in memory (about 25 characters per value) before it is written.
    """
    n, v = int(n_points), int(values_per_point)
    return {"result arrays (chunks and assembled)": n * (2 * 8 * v + 2),
            "CSV text": n * 25 * (v + 2)}


def check_disk(nbytes, folder, what: str, fixes: str) -> None:
    """Raise :class:`MemoryLimitError` when ``folder`` (or its nearest existing parent) has less free space."""
    import shutil

    path = os.path.abspath(os.fspath(folder))
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    try:
        free = shutil.disk_usage(path).free
    except OSError:  # pragma: no cover - cannot tell: let the writes report it
        return
    if nbytes > free:
        raise MemoryLimitError(f"{what} would write about {format_bytes(nbytes)} to {os.fspath(folder)}, which has "
                               f"{format_bytes(free)} free; to fit: {fixes}")


#: Arrays from this size on are mapped by :func:`empty` (bytes).
MAPPED_MIN_BYTES = 1 << 22


def empty(shape, dtype=float) -> np.ndarray:
    """An uninitialised array like ``np.empty``, for large outputs that are written once.

    From ``MAPPED_MIN_BYTES`` on, the memory is an anonymous mapping of its own instead of NumPy's
    allocation, which asks the kernel for transparent huge pages (madvise): where the kernel then
    compacts memory on every first touch (``defrag = madvise``, a common default), writing fresh
    output cost 5x more (1.0 s against 0.19 s for 214 MB on the reference machine; 0.13 s with the pages
    populated by the mapping call, MAP_POPULATE, as done here where available). The array owns
    its mapping and frees it when collected; it behaves, pickles and copies as any ndarray.
    """
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in np.atleast_1d(shape)) if not np.isscalar(shape) else (int(shape),)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes < MAPPED_MIN_BYTES:
        return np.empty(shape, dtype)
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)  # pages mapped in one call
    return np.frombuffer(mmap.mmap(-1, nbytes, flags=flags), dtype=dtype).reshape(shape)


def model_bytes(n_cells: int, n_entries: int, n_links: int) -> dict:
    """Assembling a model: COO triplets of M and Q, CSR copies, per-cell arrays."""
    return {
        "M and Q triplets": 3 * n_entries * (_C + 2 * _F),
        "per-cell arrays": n_cells * (6 * _F + 3 * _C),
        "link arrays": n_links * (2 * _F + 3 * _C),
    }


def simulation_bytes(n_cells: int, n_times: int, *, method: str, thermal: bool, store_amplitudes: bool = True,
                     nnz: int | None = None, n_steps: int = 1, n_kept: int | None = None) -> dict:
    """Estimated allocations of :func:`chiralnet.simulate` by name, in bytes.

    Parameters
    ----------
    n_cells, n_times : int
        N and T.
    method : str
        A resolved method name (``"exact"``, ``"exact-sparse"``, ``"rk45"``).
    thermal : bool
        Whether the N x N fluctuation matrix is integrated.
    store_amplitudes : bool
        Whether the (T, N) complex amplitudes are kept (only ``"exact-sparse"`` runs without them).
    nnz : int, optional
        Nonzeros of M (default N^2).
    n_steps : int
        Distinct step lengths (dense propagators of ``"exact"``).
    n_kept : int, optional
        Cells whose per-cell arrays are kept (``simulate(..., cells=...)``; default all).

    "exact-sparse" keeps the amplitudes or the energies of the kept cells (energies are derived from
    the amplitudes on access); the other methods compute every cell's amplitudes and energies.
    """
    n, t = int(n_cells), int(n_times)
    k = n if n_kept is None else int(n_kept)
    nnz = n * n if nnz is None else int(nnz)
    items = {}
    if method == "exact-sparse":
        items["amplitudes (T x N complex)" if store_amplitudes else "energies (T x N)"] = \
            t * k * (_C if store_amplitudes else _F)
        items["totals (T x 2)"] = 2 * t * _F
    else:
        items["energies (T x N)"] = t * n * _F
        items["amplitudes (T x N complex)"] = t * n * _C
    if thermal:
        items["fluctuations (T x N)"] = t * n * _F
    if method == "exact":
        items["propagators e^(M dt)"] = 6 * n_steps * (n + 1) ** 2 * _C
        if thermal:
            items["noise propagators (Van Loan, 2N x 2N)"] = 8 * n_steps * (2 * n) ** 2 * _C
    elif method == "exact-sparse":
        items["CSR and work vectors"] = nnz * (_C + _F) + 6 * n * _C
        if thermal:
            items["fluctuation matrix and Taylor terms (N x N)"] = 7 * n * n * _C
    else:  # rk45
        dim = n + n * n if thermal else n
        items["Runge-Kutta stages"] = 11 * dim * _C
        items["diag(Nc) output (T x N complex)"] = t * n * _C  # the kernel's (T, N, 2) output buffer
        if thermal or nnz == n * n:
            items["dense M, conj(M), Q"] = 3 * n * n * _C
    return items


def steady_state_bytes(n_cells: int, *, nnz: int, thermal: bool, cascaded: bool, sparse: bool) -> dict:
    """Estimated allocations of :func:`chiralnet.steady_state` by name, in bytes."""
    n = int(n_cells)
    items = {"amplitudes": 4 * n * _C}
    if cascaded:
        items["topological order"] = 4 * n * _F + 2 * nnz * _F
    elif sparse:
        items["sparse LU factors (estimate)"] = 20 * nnz * (_C + _F)
    else:
        items["dense LU"] = 2 * n * n * _C
    if thermal:
        items["Lyapunov solve (N x N)"] = (3 if cascaded else 10) * n * n * _C
    return items
