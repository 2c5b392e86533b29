"""The one Numba factory: every kernel is compiled through :func:`jit`.

``cache=True`` keeps compiled code on disk between runs, ``fastmath`` stays off
(results must match the reference to machine precision) and compilation is lazy.
"""

import types

import numba


def jit(fn=None, *, parallel=False):
    """Decorate ``fn`` with ``numba.njit(cache=True, fastmath=False, nogil=True, parallel=parallel)``.

    Use as ``@jit`` or ``@jit(parallel=True)`` (a kernel with ``prange`` loops).
    """
    def wrap(f):
        return numba.njit(cache=True, fastmath=False, nogil=True, parallel=parallel)(f)

    return wrap if fn is None else wrap(fn)


def renamed(f, suffix):
    """A copy of the Python function ``f`` under another name, so Numba caches its two compiled
    variants (serial and parallel) in separate files (the cache key ignores ``parallel``)."""
    g = types.FunctionType(f.__code__, f.__globals__, f.__name__ + suffix, f.__defaults__, f.__closure__)
    g.__qualname__ = f.__qualname__ + suffix
    g.__doc__ = f.__doc__
    return g


#: What the command prints once on stderr when it has to compile a kernel (a cold cache).
COMPILING_NOTICE = "chiralnet: compiling kernels on first use (about a minute, cached afterwards)..."

_announcer = None


def announce_compilation(stream=None) -> None:
    """Print :data:`COMPILING_NOTICE` once, on ``stream`` (default ``sys.stderr``), when a chiralnet kernel
    is compiled in this process.

    A cold cache is detected where Numba itself finds it: its ``numba:compile`` event fires only when a
    kernel is neither compiled in this process nor loaded from the on-disk cache (``cache=True``), so a
    warm cache prints nothing and costs nothing. Kernels of other packages are ignored. Calling it again
    does nothing; used by the ``chiralnet`` command (the first run is otherwise silent for about 50 s).
    """
    global _announcer
    if _announcer is not None:
        return
    import sys

    from numba.core import event

    class _Announce(event.Listener):
        done = False

        def on_start(self, ev):
            if self.done:
                return
            dispatcher = (ev.data or {}).get("dispatcher")
            module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
            if module.split(".")[0] == "chiralnet":
                self.done = True
                out = stream if stream is not None else sys.stderr
                try:
                    print(COMPILING_NOTICE, file=out, flush=True)
                except (OSError, ValueError):  # a closed or broken stderr: nothing to tell
                    pass

        def on_end(self, ev):
            pass

    _announcer = _Announce()
    event.register("numba:compile", _announcer)
