"""simulate_to_file: a long trace written to a chunked NetCDF file block by block, never held in memory whole.

The output times are cut into blocks; each block is one run of the same method continued from the
previous block's final state (runs chain exactly: a continued run equals one long run to rounding), and
its rows are written into fixed-size, chunked HDF5 datasets (NetCDF-4 through h5netcdf, the ``sweep``
extra) and dropped. Memory is bounded by the block, whose length comes from a byte budget and the
estimates of :mod:`chiralnet.memory`. The file is written under a temporary name and renamed at the end
(:func:`chiralnet.files.atomic_path`), so an error or Ctrl-C leaves no half-written file.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import memory
from ..errors import ChiralnetError, MemoryLimitError
from ..files import atomic_path, check_target
from ..gaussian import general_model
from ..model import State
from ..results import cell_columns, simulation_result
from .base import distinct_steps
from .protocol import Protocol
from .run import _choose_method, _nnz, run_general_model, run_model
from .general import GENERAL_METHOD, check_general_method, needs_general
from .simulate import prepare_run

__all__ = ["simulate_to_file", "TraceFile", "STREAM_BLOCK_BYTES"]

#: Default memory budget of one block of :func:`simulate_to_file` (bytes).
STREAM_BLOCK_BYTES = 256 * 2**20

#: Output times per HDF5 chunk (at most): a short chunk in time pads the file's last chunk little (the
#: datasets have fixed size, so a partial chunk at the end is stored whole), and blocks longer than this
#: are cut to a multiple of it.
_CHUNK_ROWS = 64

#: Target size of one HDF5 chunk of a per-cell variable (bytes): large enough for fast writes, small
#: enough that reading one cell's time series does not read the whole file.
_CHUNK_BYTES = 4 * 2**20


@dataclass(frozen=True, eq=False)
class TraceFile:
    """What :func:`simulate_to_file` returns: where the trace is and how to continue it.

    Attributes
    ----------
    path : pathlib.Path
        The NetCDF file (open it lazily with ``xarray.open_dataset(path)`` or :meth:`open`).
    n_times : int
        Output times written.
    cells : tuple
        The cells of the per-cell variables, in column order.
    method : str
        The method that ran (``"auto"`` resolved once, for every block).
    final_state : State
        The state at the last output time (every cell of the network): pass it as ``state0`` to continue.
    stats : dict
        The methods' counters summed over the blocks, plus ``blocks``, ``block_times`` (output times
        per block) and ``block_bytes`` (the memory estimate of one block).
    """

    path: Path
    n_times: int
    cells: tuple
    method: str
    final_state: State
    stats: dict = field(default_factory=dict)

    def open(self, **kwargs):
        """The file as a lazily loaded ``xarray.Dataset`` (``xarray.open_dataset(self.path, **kwargs)``)."""
        import xarray as xr

        return xr.open_dataset(self.path, **kwargs)


def simulate_to_file(G_or_model, times, path, *, state0: State | None = None, method: str = "auto", cells=None,
                     store_amplitudes: bool = False, chunk_times: int | None = None, max_bytes: float | None = None,
                     progress: bool | None = None, rtol: float | None = None, atol: float | None = None,
                     max_steps: int | None = None) -> TraceFile:
    """Simulate like :func:`~chiralnet.simulate`, writing the trace to a chunked NetCDF file as it goes.

    For traces too large for memory: the output times run in blocks (each continued from the previous
    block's final state, with the method chosen once), and each block's rows are written to ``path`` and
    freed. The file has the variables of ``SimulationResult.to_xarray()``: ``energy`` (time, cell),
    ``amplitude`` (time, cell; with ``store_amplitudes=True``), ``fluctuation`` (time, cell; when Nc is
    integrated), ``battery`` (cell), plus ``total_energy`` and ``battery_energy`` (time), summed over every
    cell of the network, and the attribute ``method``. A network with squeezing or parametric terms (or a
    ``state0`` with ``Mc``) runs on the general path (``method="exact-gaussian"``) and the file also has
    ``anomalous`` (time, cell) complex, Mc_ii = <da_i da_i> (``SimulationResult.anomalous``); the final state
    carries the whole Mc. It is written under a temporary name and renamed
    when complete: an error or Ctrl-C leaves no file (and an older file at ``path`` untouched).

    Parameters
    ----------
    G_or_model, times, state0, method, cells, rtol, atol, max_steps
        As for :func:`~chiralnet.simulate` (a network or Model, not a protocol).
    path : str or os.PathLike
        The file to write (NetCDF-4/HDF5, conventionally ``.nc``); its folder must exist. Needs h5netcdf
        and h5py (``pip install 'chiralnet[sweep]'``).
    store_amplitudes : bool
        Also write the complex amplitudes (16 bytes per cell and time; energies alone take 8).
    chunk_times : int, optional
        Output times per block. Default: as many as fit in ``max_bytes`` by the estimates of
        :mod:`chiralnet.memory`.
    max_bytes : float, optional
        Memory budget of one block in bytes (default ``STREAM_BLOCK_BYTES``, 256 MiB). A budget that
        cannot hold the method's fixed memory and one output time raises MemoryLimitError. Blocks longer
        than 64 output times are cut to whole 64-time chunks of the file.
    progress : bool, optional
        Show a tqdm bar over the output times (default: when stderr is a terminal).

    Returns
    -------
    TraceFile
        ``path``, ``final_state``, ``method``, ``stats``; ``.open()`` gives the lazy xarray Dataset.

    Examples
    --------
    >>> import numpy as np, tempfile, os, chiralnet as cn
    >>> path = os.path.join(tempfile.mkdtemp(), "trace.nc")
    >>> out = cn.simulate_to_file(cn.chain(4), np.linspace(0, 100, 51), path, chunk_times=20)
    >>> out.stats["blocks"], out.method
    (3, 'exact')
    >>> with out.open() as ds:
    ...     ds.energy.shape
    (51, 4)
    """
    path = _check_path(path)
    h5netcdf, h5py = _backend()
    if isinstance(G_or_model, Protocol):
        raise ChiralnetError("simulate_to_file runs one network or Model; run a protocol's phases one by one "
                             "(each from the previous final_state) or use simulate for a protocol")
    given = {"rtol": rtol, "atol": atol, "max_steps": max_steps}
    model, state, t, start, store = prepare_run(G_or_model, times, state0, method, given, store_amplitudes)
    general = method == GENERAL_METHOD or needs_general(model, state)
    columns = cell_columns(model.cells, cells)
    kept = model.n_cells if columns is None else columns.size
    if general:  # squeezing, pumps, parametric links or a squeezed state0: exact-gaussian, with Mc_ii written
        check_general_method(method, given, model.time_dependent)
        method, thermal = GENERAL_METHOD, True
        model = general_model(model)
        block, block_bytes = _block_times_general(model.n_cells, t.size, kept, columns is not None, chunk_times,
                                                  max_bytes)
    else:
        thermal = model.thermal or state.Nc is not None
        if method == "auto":  # resolved once on the whole grid: every block runs the same method
            rel = t - start if start else t
            method = _choose_method(model, thermal, rel, distinct_steps(rel))
        block, block_bytes = _block_times(model, t.size, method, thermal, store, kept, chunk_times, max_bytes)
    labels = [str(c) for c in (model.cells if columns is None else (model.cells[i] for i in columns))]
    if len(set(labels)) < len(labels):
        raise ChiralnetError("the file labels cells by str(name), and two cells share a label (e.g. 1 and '1'); "
                             "rename one of them")
    per_time = kept * (8 + (16 if store else 0) + (8 if thermal else 0) + (16 if general else 0)) + 3 * 8
    memory.check_disk(per_time * t.size, path.parent, f"simulate_to_file ({kept} cells, {t.size} output times)",
                      "fewer output times, cells=[...], or store_amplitudes=False")

    show = sys.stderr.isatty() if progress is None else bool(progress)
    bar = _bar(show, progress is not None, t.size)
    stats: dict = {}
    reuse: dict = {}  # the general path's steady covariance and propagators, kept across blocks
    try:
        with _stoppable() as stop_if_asked, atomic_path(path) as tmp:
            with h5netcdf.File(tmp, "w") as f:
                out = _create(f, h5py, t, labels, model.battery if columns is None else model.battery[columns],
                              store, thermal, min(block, t.size), method, general)
                lo = 0
                while lo < t.size:
                    hi = min(lo + block, t.size)
                    first = 0 if lo == 0 else 1  # a continued block repeats the previous block's last time
                    tb = t[lo - first:hi]
                    rel = tb - start
                    if general:  # a squeezed or parametric network: exact propagation of <R> and sigma
                        trace, _ = run_general_model(model, state, rel, method, given, store, start, columns,
                                                     keep_block=False, cache=reuse)
                    else:
                        trace, _ = run_model(model, state, rel, method, given, store, t_offset=start,
                                             columns=columns)
                    res = simulation_result(trace, model, tb, method, store, columns)
                    rows = slice(lo, hi)
                    out["energy"][rows] = res.energies[first:]
                    out["total_energy"][rows] = res.total_energy[first:]
                    out["battery_energy"][rows] = res.battery_energy[first:]
                    if store:
                        out["amplitude"][rows] = res.amplitudes[first:]
                    if thermal:
                        out["fluctuation"][rows] = np.asarray(res.fluctuations)[first:]
                    if general:
                        out["anomalous"][rows] = res.anomalous[first:]
                    _add_stats(stats, res.stats)
                    state, start = res.final_state, float(tb[-1])
                    del trace, res
                    if bar is not None:
                        bar.update(hi - lo)
                    lo = hi
                    stop_if_asked()  # a Ctrl-C or SIGTERM that h5py swallowed in a callback stops here
    finally:
        if bar is not None:
            bar.close()
    stats.update(blocks=-(-t.size // block), block_times=block, block_bytes=block_bytes)
    cells_out = model.cells if columns is None else tuple(model.cells[i] for i in columns)
    return TraceFile(path=path, n_times=int(t.size), cells=cells_out, method=method, final_state=state, stats=stats)


def _check_path(path) -> Path:
    p = check_target(path)  # str or PathLike, no NUL byte, not an existing FIFO, device or folder
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ChiralnetError(f"cannot write {p}: the folder {parent} does not exist (create it first)")
    return p


@contextlib.contextmanager
def _stoppable():
    """While the file is written: Ctrl-C and SIGTERM always stop the run and leave no temporary file.

    Yields ``stop_if_asked()``, called after each block (outside h5py): it raises the KeyboardInterrupt or
    SystemExit(128 + SIGTERM) of a signal that arrived during the block even when the exception its
    handler raised was swallowed inside an h5py callback (seen in 2 of 10 Ctrl-C trials: the file kept
    growing). SIGTERM, which by default kills the process without cleanup, becomes SystemExit for the
    write, so :func:`~chiralnet.files.atomic_path` deletes the temporary file. Handlers are installed
    only in the main thread and only over the default ones (a handler of the caller's stays), and the
    previous handlers are restored afterwards.
    """
    pending = []

    def on_signal(signum, frame):
        pending.append(signum)
        _raise_for(signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        wanted = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
        for sig, default in wanted.items():
            if signal.getsignal(sig) is default:
                previous[sig] = signal.signal(sig, on_signal)

    def stop_if_asked():
        if pending:
            _raise_for(pending[0])

    try:
        yield stop_if_asked
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _raise_for(signum):
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + int(signum))


def _backend():
    try:
        import h5netcdf
        import h5py
    except ImportError as exc:
        raise ChiralnetError(f"simulate_to_file writes NetCDF through h5netcdf and h5py ({exc.name} is missing): "
                             "pip install 'chiralnet[sweep]'") from None
    return h5netcdf, h5py


def _block_times(model, n_times, method, thermal, store, kept, chunk_times, max_bytes):
    """Output times per block and that block's memory estimate (bytes): from ``chunk_times``, or the most
    that fit in ``max_bytes`` by :func:`chiralnet.memory.simulation_bytes` (a block holds one extra row,
    the time it continues from; energies derived from kept amplitudes are counted too)."""
    store_run = store or model.time_dependent
    nnz = _nnz(model) if model.is_sparse else None

    def estimate(rows):
        items = memory.simulation_bytes(model.n_cells, rows, method=method, thermal=thermal,
                                        store_amplitudes=store_run, nnz=nnz, n_steps=3,
                                        n_kept=None if model.time_dependent else kept)
        total = sum(items.values()) + rows * 2 * 8  # totals of the result
        if store_run:
            total += rows * kept * 8  # the energies, derived from the amplitudes when written
        return total

    per_row = estimate(2) - estimate(1)
    return _block_for(estimate(1) - per_row, per_row, n_times, method, chunk_times, max_bytes)


def _block_times_general(n, n_times, kept, subset, chunk_times, max_bytes):
    """Output times per block of the general Gaussian path and that block's memory estimate (bytes).

    Fixed: the propagators P and W of one distinct step and the Lyapunov work, ~12 (2N)^2 floats. Per output
    time: the means (2N), the kept cells' sigma_xx, sigma_pp, sigma_xp, amplitudes, energies, fluctuations and
    Mc_ii (11 floats a cell), and with ``cells=`` the totals' pass over every cell (5N floats).
    """
    m = 2 * n
    fixed = 12 * m * m * 8
    per_row = (m + 11 * kept + (5 * n if subset else 0) + 2) * 8
    return _block_for(fixed, per_row, n_times, GENERAL_METHOD, chunk_times, max_bytes)


def _block_for(fixed, per_row, n_times, method, chunk_times, max_bytes):
    """Output times per block, and the block's memory estimate (bytes), from a method's fixed bytes and its
    bytes per output time: ``chunk_times`` when given, else as many as ``max_bytes`` holds (default
    STREAM_BLOCK_BYTES), cut to whole HDF5 chunks."""
    if chunk_times is not None:
        if isinstance(chunk_times, bool) or not isinstance(chunk_times, (int, np.integer)) or chunk_times < 1:
            raise ChiralnetError(f"chunk_times must be a positive integer, got {chunk_times!r}")
        block = min(int(chunk_times), n_times)
        return block, fixed + (block + 1) * per_row
    budget = STREAM_BLOCK_BYTES if max_bytes is None else max_bytes
    if isinstance(budget, bool) or not isinstance(budget, (int, float, np.integer, np.floating)) \
            or not np.isfinite(budget) or budget <= 0:
        raise ChiralnetError(f"max_bytes must be a positive number of bytes, got {max_bytes!r}")
    rows = int((budget - fixed) // per_row)
    if rows < 2:  # the continued-from row and one output time
        raise MemoryLimitError(
            f"max_bytes = {budget:.4g} bytes cannot hold one block of simulate_to_file: method {method!r} needs "
            f"about {memory.format_bytes(fixed)} before any output and {per_row} bytes per output time; "
            f"raise max_bytes or give chunk_times")
    block = min(rows - 1, n_times)
    if block < n_times and block > _CHUNK_ROWS:  # whole HDF5 chunks per block: no chunk is written twice
        block -= block % _CHUNK_ROWS
    return block, fixed + (block + 1) * per_row


def _create(f, h5py, t, labels, battery, store, thermal, tc, method, general=False):
    """The file's dimensions, coordinates and fixed-size chunked variables; returns the per-time variables."""
    k = len(labels)
    f.dimensions = {"time": t.size, "cell": k}
    f.create_variable("time", ("time",), data=t)
    f.create_variable("cell", ("cell",), data=np.array(labels, dtype=object), dtype=h5py.string_dtype())
    b = f.create_variable("battery", ("cell",), data=np.asarray(battery, np.int8))
    b.attrs["dtype"] = "bool"  # xarray decodes int8 + dtype="bool" to bool, as it encodes bools
    f.attrs["method"] = method
    f.attrs["source"] = "chiralnet.simulate_to_file"
    out = {}

    def per_cell(name, dtype):
        size = np.dtype(dtype).itemsize
        rows = max(1, min(tc, _CHUNK_ROWS))
        ck = max(1, min(k, _CHUNK_BYTES // (size * rows)))
        ck = -(-k // -(-k // ck))  # equal chunks across the cells: the last one is not mostly padding
        out[name] = f.create_variable(name, ("time", "cell"), dtype=dtype, chunks=(rows, ck))

    per_cell("energy", float)
    if store:
        per_cell("amplitude", complex)
    if thermal:
        per_cell("fluctuation", float)
    if general:
        per_cell("anomalous", complex)
    for name in ("total_energy", "battery_energy"):
        out[name] = f.create_variable(name, ("time",), dtype=float, chunks=(max(1, min(t.size, 1 << 16)),))
    return out


def _add_stats(total: dict, stats: dict) -> None:
    """Sum numeric counters over blocks; keep the last value of anything else (e.g. a format name)."""
    for key, value in stats.items():
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
                and isinstance(total.get(key, 0), (int, float, np.integer, np.floating)):
            total[key] = total.get(key, 0) + value
        else:
            total[key] = value


def _bar(show: bool, asked: bool, total: int):
    if not show:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        if not asked:  # a terminal, no tqdm: no bar
            return None
        raise ChiralnetError("progress=True needs tqdm: pip install 'chiralnet[sweep]'") from None
    return tqdm(total=total, desc="simulate_to_file", unit="time", dynamic_ncols=True)
