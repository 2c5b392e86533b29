"""The one Numba factory: every kernel is compiled through :func:`jit`.

``cache=True`` keeps compiled code on disk between runs, ``fastmath`` stays off
(results must match the reference to machine precision) and compilation is lazy.
"""

import numba


def jit(fn=None, *, parallel=False):
    """Decorate ``fn`` with ``numba.njit(cache=True, fastmath=False, nogil=True, parallel=parallel)``.

    Use as ``@jit`` or ``@jit(parallel=True)`` (a kernel with ``prange`` loops).
    """
    def wrap(f):
        return numba.njit(cache=True, fastmath=False, nogil=True, parallel=parallel)(f)

    return wrap if fn is None else wrap(fn)
