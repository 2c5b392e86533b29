"""Running a sweep: chunks, the append-only chunk store, and the three engines.

Engines
-------
in-process
    Every structure group is batched: chunks run one after another in this process, each one call
    of the parallel (prange) Numba kernels, which use all cores.
local pool
    Some points need their own model: a ``concurrent.futures.ProcessPoolExecutor`` (spawn) runs chunks,
    one process per core, each with Numba and BLAS limited to one thread (no oversubscription).
dask
    ``scheduler="tcp://host:port"`` connects to a running scheduler; ``workers=N`` starts a
    ``LocalCluster`` of N single-threaded worker processes. One task per chunk; a worker that dies
    has its tasks rescheduled on another worker by Dask.

Output folder (``out``)
-----------------------
``sweep.json`` (manifest: the spec, its fingerprint, chunk size), ``chunks/c<id>.npz`` (one per finished
chunk, written atomically with a temp file and ``os.replace`` by the parent as soon as the chunk
returns), then ``result.csv``, ``result.nc`` (with xarray) and ``figure.png``, each written atomically.
``resume=True`` reuses every chunk already stored and computes only the missing ones.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import threading
import time
import warnings

import numpy as np

from .. import config
from .plan import Plan, compute_chunk, make_plan
from .result import SweepResult, atomic_write
from .spec import SweepError, SweepSpec

__all__ = ["run_sweep", "open_sweep"]

MANIFEST = "sweep.json"
CHUNKS = "chunks"
FORMAT = "chiralnet-sweep/1"
#: Environment of the worker processes this module starts (pool and LocalCluster): one thread each for
#: Numba, OpenMP and BLAS, and OpenMP threads that sleep instead of spin between kernel launches (on a
#: small machine spinning threads starve the worker's own Python work: ~10 ms per launch measured).
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


# ---------------------------------------------------------------------------------------------
# Chunk store.


class ChunkStore:
    """Append-only store of finished chunks in ``out``; never holds a half-written file."""

    def __init__(self, out, spec: SweepSpec, chunk_size: int, n_chunks: int, resume: bool):
        self.out = os.fspath(out)
        self.dir = os.path.join(self.out, CHUNKS)
        self.n_chunks = n_chunks
        manifest = {"format": FORMAT, "fingerprint": spec.fingerprint(), "chunk_size": chunk_size,
                    "n_chunks": n_chunks, "n_points": spec.n_points, "spec": spec.to_json()}
        path = os.path.join(self.out, MANIFEST)
        if os.path.exists(path):
            if not resume:
                raise SweepError(
                    f"output folder {self.out!r} already holds a sweep ({MANIFEST}); pass --resume (resume=True) "
                    "to finish it, or choose another folder"
                )
            old = _read_manifest(path)
            if old.get("fingerprint") != manifest["fingerprint"] or old.get("chunk_size") != chunk_size:
                raise SweepError(
                    f"output folder {self.out!r} holds a different sweep (spec or chunk_size changed); "
                    "resume with the same sweep file, or choose another folder"
                )
        else:
            if os.path.isdir(self.out) and any(not n.startswith(".") for n in os.listdir(self.out)):
                raise SweepError(f"output folder {self.out!r} is not empty and holds no sweep; choose a new folder")
        self._made = (not os.path.exists(path), not os.path.isdir(self.out))  # (manifest, folder) made here
        os.makedirs(self.dir, exist_ok=True)
        for name in os.listdir(self.dir):  # temp files of writes cut short by a crash
            if name.startswith(".") and name.endswith(".tmp") or name.startswith(".tmp-"):  # (older name)
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.dir, name))
        if not os.path.exists(path):
            text = json.dumps(manifest, indent=1).encode()
            atomic_write(path, lambda fh: fh.write(text))

    def discard_if_unused(self) -> None:
        """Remove what this store created, if no chunk was finished (a sweep whose first point failed)."""
        made_manifest, made_folder = self._made
        if not made_manifest or self.done():
            return
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(self.out, MANIFEST))
            os.rmdir(self.dir)
            if made_folder:
                os.rmdir(self.out)

    def path(self, cid) -> str:
        return os.path.join(self.dir, f"c{cid:08d}.npz")

    def done(self, verify: bool = False) -> set:
        """Ids of stored chunks; with ``verify``, only those that load (a damaged one is removed, to redo)."""
        ids = set()
        for name in os.listdir(self.dir):
            if name.startswith("c") and name.endswith(".npz"):
                try:
                    cid = int(name[1:-4])
                except ValueError:
                    continue
                if cid < self.n_chunks:
                    ids.add(cid)
        if verify:
            for cid in sorted(ids):
                try:
                    self.read(cid)
                except Exception:  # noqa: BLE001 - truncated, not a zip, wrong contents: compute it again
                    ids.discard(cid)
                    with contextlib.suppress(OSError):
                        os.unlink(self.path(cid))
        return ids

    def write(self, cid, arrays: dict) -> None:
        atomic_write(self.path(cid), lambda fh: np.savez(fh, **arrays))

    def read(self, cid) -> dict:
        with np.load(self.path(cid)) as z:
            return {k: z[k] for k in z.files}


def _read_manifest(path) -> dict:
    """The manifest of an output folder; a damaged one (not UTF-8, not JSON, not an object) is a SweepError."""
    try:
        with open(path, "rb") as fh:
            old = json.loads(fh.read().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise SweepError(f"{path!r} cannot be read ({type(exc).__name__}); it is damaged: remove the folder to "
                         "start again") from None
    if not isinstance(old, dict) or old.get("format") != FORMAT:
        raise SweepError(f"{path!r} is not a chiralnet sweep manifest ({FORMAT}); it is damaged: remove the folder "
                         "to start again")
    return old


# ---------------------------------------------------------------------------------------------
# Workers.

_WORKER_PLAN = None
#: Seconds between a worker's checks that the process that started it is still alive.
PARENT_POLL_SECONDS = 0.5


def _limit_threads():
    """One Numba thread in this worker (the pool or the Dask worker provides the parallelism).

    Numba reads ``NUMBA_NUM_THREADS`` when it is imported and again, through ``reload_config``, before
    every compilation; the second read raises RuntimeError if the value changed after the thread pool
    was launched. A Dask worker can import Numba before its Nanny applies ``env`` (the spawn start
    method re-imports the parent's main script first), so on a cold cache the first compilation found
    NUMBA_NUM_THREADS changed and failed. Re-read the environment here, before any thread is launched;
    if threads already run with another count, make the environment agree with them instead.
    """
    import numba
    from numba.core import config

    try:
        config.reload_config()
    except RuntimeError:  # threads launched with config.NUMBA_NUM_THREADS: keep later reloads consistent
        os.environ["NUMBA_NUM_THREADS"] = str(config.NUMBA_NUM_THREADS)
        config.reload_config()
    if numba.get_num_threads() != 1:
        numba.set_num_threads(1)


def _exit_with_parent(parent_pid: int) -> None:
    """End this worker process when ``parent_pid`` (the process that started it) dies, even by SIGKILL.

    On Linux the kernel sends SIGKILL on the parent's death (``prctl(PR_SET_PDEATHSIG)``); everywhere a
    daemon thread also polls :func:`os.getppid` (re-parenting changes it), which covers platforms without
    prctl and a parent that died before this ran. Both exit at once, without cleanup: a worker holds
    nothing that must be flushed (the parent writes every file).
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="chiralnet-exit-with-parent", daemon=True).start()


def _pool_init(plan, parent_pid=None):
    global _WORKER_PLAN
    _WORKER_PLAN = plan
    if parent_pid is not None:
        import signal

        # Ctrl-C reaches the whole process group: the parent stops the pool, the workers stay quiet.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _exit_with_parent(parent_pid)
    _limit_threads()


def _pool_chunk(cid, start, stop):
    return cid, compute_chunk(_WORKER_PLAN, start, stop)


def _dask_chunk(plan, cid, start, stop):
    _limit_threads()
    return cid, compute_chunk(plan, start, stop)


@contextlib.contextmanager
def _single_threaded_children():
    """Children spawned inside this block start with one Numba/BLAS thread each."""
    saved = {k: os.environ.get(k) for k in WORKER_ENV}
    os.environ.update(WORKER_ENV)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ---------------------------------------------------------------------------------------------
# Progress.


class _Progress:
    def __init__(self, enabled, total, desc):
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=total, desc=desc, unit="pt", unit_scale=True, dynamic_ncols=True)

    def update(self, n):
        if self.bar is not None:
            self.bar.update(n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _dask_progress(futures, client):
    """Dask's own text progress bar, extended with an ETA, in a background thread (terminal only)."""
    from distributed.diagnostics.progressbar import TextProgressBar, format_time

    class EtaBar(TextProgressBar):
        def _draw_bar(self, remaining, all, **kwargs):
            frac = (1 - remaining / all) if all else 1.0
            eta = format_time(self.elapsed * (1 - frac) / frac) if frac > 0 else "?"
            msg = "\r[{0:<{1}}] | {2}% Completed | {3} | ETA {4}".format(
                "#" * int(self.width * frac), self.width, int(100 * frac), format_time(self.elapsed), eta)
            with contextlib.suppress(ValueError):
                sys.stderr.write(msg)
                sys.stderr.flush()

        def _draw_stop(self, **kwargs):
            sys.stderr.write("\n")
            sys.stderr.flush()

    def target():
        with contextlib.suppress(Exception):
            EtaBar(futures, scheduler=client.scheduler.address)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t


# ---------------------------------------------------------------------------------------------
# Dask connection.


def connect_dask(workers=None, scheduler=None, timeout=None):
    """A ``distributed.Client`` (and the LocalCluster it owns, or None). Raises SweepError at once."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SweepError("the Dask engine needs the 'sweep' extra: pip install 'chiralnet[sweep]'") from None
    timeout = config.SCHEDULER_TIMEOUT if timeout is None else timeout
    if scheduler is not None:
        if not isinstance(scheduler, str) or not scheduler.strip():
            raise SweepError(f"scheduler must be an address such as 'tcp://10.0.0.5:8786', got {scheduler!r}")
        try:
            client = _new_client(Client, scheduler, timeout=timeout, set_as_default=False)
        except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, or garbage from a non-Dask server
            detail = " ".join(f"{type(exc).__name__}: {exc}".split())
            raise SweepError(
                f"cannot reach the Dask scheduler at {scheduler!r} within {timeout:g} s ({detail[:200]}); "
                "is it running, and is the address right?"
            ) from None
        return client, None
    # Single-threaded worker processes (Dask also sets OMP/MKL/OPENBLAS_NUM_THREADS=1 in them); the
    # dashboard on a free port, so a second cluster on this machine does not collide.
    cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=":0", env=dict(WORKER_ENV))
    client = None
    try:
        client = _new_client(Client, cluster, set_as_default=False)
        # Ctrl-C reaches the whole process group: each worker printed a KeyboardInterrupt traceback. They
        # ignore it (started now or restarted later); this process cancels the tasks and closes the cluster.
        register = getattr(client, "register_plugin", None) or client.register_worker_plugin
        register(_ignore_sigint_plugin(), name="chiralnet-ignore-sigint")
        return client, cluster
    except BaseException:
        if client is not None:
            client.close()
        cluster.close()
        raise


def _new_client(Client, address, **kwargs):
    """``Client(address, **kwargs)``; a constructor that fails is closed here, not by its destructor.

    A Client whose connection fails raises from ``__init__`` but keeps its event loop; its ``__del__``
    then tries to close it again and, seconds later, prints an "Exception ignored" traceback after the
    error was reported. Close the half-made client (found in the traceback) and mark it closed.
    """
    try:
        return Client(address, **kwargs)
    except BaseException as exc:
        tb = exc.__traceback__
        while tb is not None:
            obj = tb.tb_frame.f_locals.get("self")
            tb = tb.tb_next
            if isinstance(obj, Client):
                with contextlib.suppress(BaseException):
                    obj.close(timeout=1)
                with contextlib.suppress(BaseException):
                    obj.status = "closed"  # __del__ closes nothing more
                    obj._loop_runner.stop()
                break
        raise


# ---------------------------------------------------------------------------------------------
# The run.


def default_chunk_size(plan: Plan) -> int:
    d = plan.spec.disorder
    if d is not None:  # points of R realisations each: aim at a number of realisations per chunk
        batched = all(g.batched for g in plan.groups.values())
        target = config.DISORDER_CHUNK_REALISATIONS_BATCHED if batched else config.DISORDER_CHUNK_REALISATIONS_SINGLE
        return int(max(1, min(4096, target // d.realisations)))
    if all(g.batched for g in plan.groups.values()):
        # Large chunks: each is one parallel kernel launch (with Numba's OpenMP layer a launch can cost
        # ~10 ms when threads sleep between launches), and a few dozen chunks keep resume fine-grained.
        return int(min(65536, max(4096, 2 ** math.ceil(math.log2(max(1, plan.spec.n_points // 32))))))
    return 32


def run_sweep(spec: SweepSpec, *, out=None, resume: bool = False, workers: int | None = None,
              scheduler: str | None = None, processes: int | None = None, progress: bool | None = None,
              client=None) -> SweepResult:
    """Run a validated sweep (from :func:`make_spec` or :func:`load_sweep`).

    The parameters are those of :func:`chiralnet.sweeps.sweep`, plus ``client``: an existing
    ``distributed.Client`` to run on (the caller keeps ownership; it is not closed).
    Bad input (spec, plan, scheduler, output folder) raises :class:`SweepError` before any chunk runs.
    """
    if workers is not None and scheduler is not None:
        raise SweepError("give either workers (a local Dask cluster) or scheduler (a running one), not both")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise SweepError(f"workers must be an integer >= 1, got {workers!r}")
    processes = processes or spec.run.get("processes")
    if processes is not None and (isinstance(processes, bool) or not isinstance(processes, int) or processes < 1):
        raise SweepError(f"processes must be an integer >= 1, got {processes!r}")
    if resume and out is None:
        raise SweepError("resume needs the output folder of the interrupted sweep (out=...)")
    plan = make_plan(spec)
    _preflight(plan, out)
    chunk_size = int(spec.run.get("chunk_size") or default_chunk_size(plan))
    n = spec.n_points
    n_chunks = -(-n // chunk_size)
    bounds = [(c, c * chunk_size, min(n, (c + 1) * chunk_size)) for c in range(n_chunks)]
    memory = {}

    def finished(cid, arrays):
        if store is not None:
            store.write(cid, arrays)
        else:
            memory[cid] = arrays

    own_client = None
    cluster = None
    if client is None and (workers is not None or scheduler is not None):
        client, cluster = connect_dask(workers, scheduler)
        own_client = client
    try:
        store = ChunkStore(out, spec, chunk_size, n_chunks, resume) if out is not None else None
    except BaseException:
        if own_client is not None:
            own_client.close()
        if cluster is not None:
            cluster.close()
        raise
    have = store.done(verify=resume) if store is not None else set()
    todo = [b for b in bounds if b[0] not in have]
    show = sys.stderr.isatty() if progress is None else bool(progress)
    t0 = time.perf_counter()
    restore_logs = None
    try:
        if client is not None:
            engine = "dask"
            _run_dask(client, plan, todo, finished, show)
        elif _in_process(plan, todo, processes):
            engine = "in-process"
            bar = _Progress(show, sum(e - s for _, s, e in todo), "sweep")
            try:
                for cid, s, e in todo:
                    finished(cid, compute_chunk(plan, s, e))
                    bar.update(e - s)
            finally:
                bar.close()
        elif not _picklable(plan):
            warnings.warn("the base network's builder cannot be pickled (a lambda or a local function?), so the "
                          "sweep runs in this process; define it at module level to use the process pool",
                          RuntimeWarning, stacklevel=2)
            engine = "in-process"
            for cid, s, e in todo:
                finished(cid, compute_chunk(plan, s, e))
        else:
            engine = "local-pool"
            _run_pool(plan, todo, finished, processes or os.cpu_count() or 1, show)
    except BaseException as exc:  # bad input at a point, a failed worker, Ctrl-C: leave no half-made output folder
        if store is not None:
            store.discard_if_unused()
        if isinstance(exc, KeyboardInterrupt) and client is not None:
            restore_logs = _quiet_dask_logs(client)  # Ctrl-C: chiralnet's one line, not Dask's shutdown noise
        raise
    finally:
        if own_client is not None:
            own_client.close()
        if cluster is not None:
            cluster.close()
        if restore_logs is not None:
            restore_logs()
    elapsed = time.perf_counter() - t0
    chunks = {cid: (store.read(cid) if store is not None else memory[cid]) for cid, _, _ in bounds}
    result = _assemble(plan, bounds, chunks, {
        "engine": engine, "chunks": n_chunks, "computed_chunks": len(todo), "reused_chunks": n_chunks - len(todo),
        "chunk_size": chunk_size, "seconds": round(elapsed, 3), "fingerprint": spec.fingerprint(),
        "batched_groups": sum(g.batched for g in plan.groups.values()), "groups": len(plan.groups),
    })
    _warn_status(plan, result)
    if store is not None:
        write_outputs(result, store.out, spec.output)
    return result


def _preflight(plan, out) -> None:
    """Refuse a sweep whose results would not fit in memory, or its files on the disk of ``out``."""
    from .. import memory
    from ..errors import ChiralnetError

    spec = plan.spec
    values = 1 + sum(int(np.prod(plan.extra_shape(q), dtype=np.int64)) for q in spec.quantities)
    if spec.disorder is not None and spec.disorder.keep_realisations:
        values += spec.disorder.realisations * sum(int(np.prod(plan.value_shape(q), dtype=np.int64))
                                                   for q in spec.quantities)
    what = f"{spec.source}: a sweep of {spec.n_points} points x {values} values"
    fixes = "fewer grid points, or fewer quantities (cell_energy and battery_energy_at store one value per cell/time)"
    try:
        memory.check(memory.sweep_bytes(spec.n_points, values), what, fixes)
        if out is not None:
            # chunks (8 bytes a value) + result.csv (about 25 characters a value) + result.nc (8 bytes a value)
            memory.check_disk(spec.n_points * values * 41, out, what, fixes + ", or a folder with more free space")
    except ChiralnetError as exc:
        raise SweepError(str(exc)) from None


def _picklable(plan) -> bool:
    import pickle

    try:
        pickle.dumps(plan)
    except Exception:  # noqa: BLE001 - any pickling failure means: stay in this process
        return False
    return True


def _in_process(plan, todo, processes) -> bool:
    """Run here unless points need their own model and there are enough of them to pay for a pool."""
    if processes == 1 or len(todo) <= 1 or all(g.batched for g in plan.groups.values()):
        return True
    if processes is not None:
        return False
    per_point = 1 if plan.spec.disorder is None else plan.spec.disorder.realisations
    return sum(e - s for _, s, e in todo) * per_point < config.POOL_MIN_POINTS


def _run_pool(plan, todo, finished, n_proc, show):
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    bar = _Progress(show, sum(e - s for _, s, e in todo), "sweep")
    sizes = {cid: e - s for cid, s, e in todo}
    with _single_threaded_children(), _deferred_interrupt() as interrupted:
        ex = ProcessPoolExecutor(max_workers=n_proc, mp_context=mp.get_context("spawn"),
                                 initializer=_pool_init, initargs=(plan, os.getpid()))
        try:
            # Submitting starts the workers. Ctrl-C must not reach a worker that is still starting: it dies
            # before reading its start-up data, and the pipe write in this process then blocks for ever.
            # SIGINT blocked here is inherited (blocked) by the workers; here it is delivered afterwards.
            with _sigint_blocked():
                pending = {ex.submit(_pool_chunk, cid, s, e) for cid, s, e in todo}
            while pending:
                done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                for f in done:
                    cid, arrays = f.result()
                    finished(cid, arrays)
                    bar.update(sizes[cid])
                if interrupted.is_set():
                    raise KeyboardInterrupt
        except BaseException:
            # Stop at once: drop queued chunks and end the workers (they hold nothing; this process writes
            # every file), then wait for the pool's threads so the interpreter exits without hanging.
            for proc in list((getattr(ex, "_processes", None) or {}).values()):
                with contextlib.suppress(Exception):
                    proc.terminate()
            with contextlib.suppress(Exception):
                ex.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            bar.close()
        ex.shutdown(wait=True)


def _ignore_sigint_plugin():
    """A Dask WorkerPlugin whose ``setup`` (run in each worker's main thread, on start and restart) makes the
    worker ignore SIGINT. Only for the workers of a LocalCluster this process starts (its process group)."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class IgnoreSigint(WorkerPlugin):
        def setup(self, worker):
            import signal
            import threading

            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, signal.SIG_IGN)

    return IgnoreSigint()


def _quiet_workers():
    """On a worker: no more log lines from Dask (it is being shut down after an interrupt)."""
    import logging

    for name in [n for n in logging.root.manager.loggerDict if n.split(".")[0] == "distributed"] + ["distributed"]:
        logging.getLogger(name).disabled = True


def _quiet_dask_logs(client):
    """After Ctrl-C: silence the ``distributed`` loggers here and on the workers while the sweep's tasks are
    cancelled and its cluster closed (they printed about 60 lines of cancelled-task warnings and worker
    tracebacks before chiralnet's one line). Returns a function that re-enables the loggers here."""
    import logging

    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] in ("distributed", "tornado")]
    loggers = [logging.getLogger(n) for n in dict.fromkeys(["distributed", "tornado", *names])]
    before = [lg.disabled for lg in loggers]
    for lg in loggers:
        lg.disabled = True
    with contextlib.suppress(Exception):  # workers of a shared scheduler log on their own machines anyway
        client.run(_quiet_workers, on_error="ignore")

    def restore():
        for lg, was in zip(loggers, before):
            lg.disabled = was

    return restore


@contextlib.contextmanager
def _sigint_blocked():
    """Block SIGINT in this thread (and so in processes started inside) where the platform allows it."""
    import signal

    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def _deferred_interrupt():
    """Turn Ctrl-C into a flag checked between waits (main thread only).

    A KeyboardInterrupt raised inside ``concurrent.futures``' own locking left the pool's threads
    deadlocked at exit (a Ctrl-C'd sweep hung); the loop raises it itself at a safe point instead.
    """
    import signal

    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield flag
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: flag.set())
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_dask(client, plan, todo, finished, show):
    from distributed import as_completed

    if not todo:
        return
    plan_f = client.scatter(plan, broadcast=True, hash=False)
    tag = plan.spec.fingerprint()
    futures = [client.submit(_dask_chunk, plan_f, cid, s, e, key=f"chiralnet-sweep-{tag}-{cid}-{time.time_ns()}",
                             pure=False) for cid, s, e in todo]
    if show:
        _dask_progress(futures, client)
    try:
        for fut in as_completed(futures, loop=client.loop):
            cid, arrays = fut.result()
            finished(cid, arrays)
            fut.release()
    except BaseException:
        client.cancel(futures)
        raise


def _assemble(plan, bounds, chunks, attrs) -> SweepResult:
    spec = plan.spec
    n = spec.n_points
    data = {}
    for q in spec.quantities:
        full = np.empty((n,) + plan.extra_shape(q))
        for cid, s, e in bounds:
            full[s:e] = chunks[cid][q]
        data[q] = full.reshape(spec.shape + plan.extra_shape(q))
    realisations = {}
    d = spec.disorder
    if d is not None and d.keep_realisations:
        from .disorder import REALISATIONS_SUFFIX

        for q in spec.quantities:
            shape = plan.value_shape(q) + (d.realisations,)
            full = np.empty((n,) + shape)
            for cid, s, e in bounds:
                full[s:e] = chunks[cid][q + REALISATIONS_SUFFIX]
            realisations[q] = full.reshape(spec.shape + shape)
    status = np.empty(n, np.int8)
    for cid, s, e in bounds:
        status[s:e] = chunks[cid]["status"]
    coords = {name: (vals.copy() if isinstance(vals, np.ndarray) else list(vals)) for name, vals in spec.axes}
    if plan.cells is not None:
        coords["cell"] = list(plan.cells)
    if spec.times is not None:
        coords["time"] = spec.times.copy()
    attrs = {"builder": "swept" if spec.builder is None else plan.spec.to_json()["builder"],
             "params": json.dumps(spec.to_json()["params"]), **attrs}
    if d is not None:
        coords["stat"] = list(d.stats)
        if d.keep_realisations:
            coords["realisation"] = np.arange(d.realisations)
        attrs["disorder"] = json.dumps(d.to_json())
    return SweepResult(dims=spec.dims, coords=coords, data=data, status=status.reshape(spec.shape), attrs=attrs,
                       realisations=realisations)


def _warn_status(plan, result):
    horizon_bound = [q for q in ("time_to_90", "efficiency", "max_average_power", "max_average_power_time")
                     if q in plan.spec.quantities]
    reached = ("did not reach 90% of the steady battery energy (or the peak of the average power) within the "
               f"horizon, so {', '.join(horizon_bound) or 'the time quantities'} are undefined there")
    whats = ((1, "have no steady state"), (2, reached))
    if plan.spec.disorder is not None:  # NaN statistics: nothing is averaged over the survivors only
        whats = ((1, "have a realisation with no steady state"), (2, "have a realisation that " + reached))
    for code, what in whats:
        bad = np.flatnonzero(result.status.reshape(-1) == code)
        if bad.size:
            first = np.unravel_index(bad[0], result.shape)
            warnings.warn(
                f"{bad.size} of {result.status.size} points {what} (first at {plan.describe_point(first)}); "
                f"their values are NaN and status = {code}" + (" (raise t90_max)" if code == 2 else ""),
                RuntimeWarning, stacklevel=3,
            )


def write_outputs(result: SweepResult, out, output: dict) -> dict:
    """Write result.csv, result.nc (xarray) and figure.png into ``out`` as ``output`` asks; returns the paths."""
    paths = {}
    if output.get("csv", True):
        paths["csv"] = os.path.join(out, "result.csv")
        result.to_csv(paths["csv"])
    if output.get("netcdf", True):
        try:
            import xarray  # noqa: F401
        except ImportError:
            pass
        else:
            paths["netcdf"] = os.path.join(out, "result.nc")
            result.to_netcdf(paths["netcdf"])
    if output.get("figure", True):
        paths["figure"] = os.path.join(out, "figure.png")
        result.save_figure(paths["figure"])
    return paths


def open_sweep(out) -> dict:
    """The manifest of an output folder plus the ids of its stored chunks (for inspection)."""
    path = os.path.join(os.fspath(out), MANIFEST)
    if not os.path.exists(path):
        raise SweepError(f"{os.fspath(out)!r} holds no sweep ({MANIFEST} missing)")
    manifest = _read_manifest(path)
    chunk_dir = os.path.join(os.fspath(out), CHUNKS)
    done = sorted(int(n[1:-4]) for n in os.listdir(chunk_dir) if n.startswith("c") and n.endswith(".npz"))
    manifest["done_chunks"] = done
    return manifest
