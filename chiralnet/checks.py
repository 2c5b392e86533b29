"""Argument checks shared by the public functions above the solvers (observables, design, scattering).

Each raises :class:`~chiralnet.errors.ChiralnetError` naming the function, the argument, what was given
and what would fix it: a flag must be a real bool (``bool("no")`` is True, so a string would silently mean
yes), a number must be a finite real that a float holds (not a bool, not an integer beyond the float
range), a count must be an integer (an integral float such as ``1e6`` is read as one) and, where it sizes
work, at most a limit of :mod:`chiralnet.config`: the refusal comes before any of that work, with an
estimate of it and the largest value that fits.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Callable

import numpy as np

from .errors import ChiralnetError

__all__ = ["flag", "number", "count", "array"]


def _brief(value, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def flag(value, name: str, where: str) -> bool:
    """``value`` as a bool: True, False or a numpy bool; anything else is a ChiralnetError."""
    if not isinstance(value, (bool, np.bool_)):
        raise ChiralnetError(f"{where}: {name} must be True or False, got {_brief(value)} "
                             f"({type(value).__name__}; a string or number is not read as a flag)")
    return bool(value)


def number(value, name: str, where: str, *, positive: bool = False, nonnegative: bool = False,
           low: float | None = None, high: float | None = None) -> float:
    """``value`` as a finite float (not a bool, not complex, not an integer beyond the float range), optionally
    > 0 (``positive``), >= 0 (``nonnegative``) or in [low, high]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise ChiralnetError(f"{where}: {name} must be a real number, got {_brief(value)} ({type(value).__name__})")
    try:
        x = float(value)
    except OverflowError:
        raise ChiralnetError(f"{where}: {name} = {_brief(value)} is beyond the range of a float (about 1.8e308)") from None
    if not math.isfinite(x):
        raise ChiralnetError(f"{where}: {name} must be finite, got {x!r}")
    if positive and not x > 0:
        raise ChiralnetError(f"{where}: {name} must be > 0, got {x!r}")
    if nonnegative and not x >= 0:
        raise ChiralnetError(f"{where}: {name} must be >= 0, got {x!r}")
    if low is not None and high is not None and not low <= x <= high:
        raise ChiralnetError(f"{where}: {name} must be in [{low}, {high}], got {x!r}")
    return x


def count(value, name: str, where: str, *, minimum: int, limit: int | None = None, limit_name: str | None = None,
          cost: Callable[[int], str] | None = None) -> int:
    """``value`` as an int >= ``minimum`` (an integral float such as 1e6 counts; bools, fractions, NaN and
    infinities do not) and <= ``limit`` (``config.<limit_name>``): above it the ChiralnetError says what the
    request would cost (``cost(value)``, e.g. bytes or seconds) and the largest value that fits."""
    if isinstance(value, (bool, np.bool_)):
        raise ChiralnetError(f"{where}: {name} must be an integer >= {minimum}, got {value!r}")
    if isinstance(value, Integral):
        n = int(value)
    elif isinstance(value, Real) and math.isfinite(float(value)) and float(value).is_integer():
        n = int(float(value))
    else:
        raise ChiralnetError(f"{where}: {name} must be an integer >= {minimum}, got {_brief(value)}")
    if n < minimum:
        raise ChiralnetError(f"{where}: {name} must be an integer >= {minimum}, got {n}")
    if limit is not None and n > limit:
        what = f" ({cost(n)})" if cost is not None else ""
        raise ChiralnetError(f"{where}: {name} = {n:.3g} is more than this run may do{what}; the largest that fits "
                             f"is {name} = {limit} (config.{limit_name}; raise it to allow more)")
    return n


def array(value, name: str, where: str, dtype=float) -> np.ndarray:
    """``value`` as a numeric array of ``dtype`` (float or complex): ragged lists, strings, objects, bools and
    integers beyond the float range are a ChiralnetError instead of NumPy's ValueError / OverflowError /
    TypeError; non-finite entries too (the message gives the first one's index)."""
    try:
        with np.errstate(over="raise", invalid="raise"):
            raw = np.asarray(value)
            if raw.dtype == object or raw.dtype.kind not in "iufc" or (dtype is float and raw.dtype.kind == "c"):
                raise TypeError
            arr = raw.astype(dtype)
    except (TypeError, ValueError, OverflowError, FloatingPointError):
        kind = "real" if dtype is float else "complex"
        raise ChiralnetError(f"{where}: {name} must be a rectangular array of {kind} numbers that a float holds "
                             f"(no bools, strings, ragged rows or integers beyond ~1.8e308), got {_brief(value)}") from None
    bad = np.flatnonzero(~np.isfinite(arr).ravel())
    if bad.size:
        pos = np.unravel_index(bad[0], arr.shape)
        raise ChiralnetError(f"{where}: {name}{list(pos) if arr.ndim else ''} = {arr.ravel()[bad[0]]} is not finite")
    return arr
