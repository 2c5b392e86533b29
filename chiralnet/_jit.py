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
