"""Time-dependent drive shapes: a cell's ``drive`` may be a number, one of these, a sum, or a callable.

In the frame rotating at the drive frequency omega_L, a drive E(t) enters only the amplitude
equation, d alpha/dt = M alpha - i E(t); the fluctuations Nc do not see it. Time t is the
simulation time (from t = 0 of the run or protocol), in 1/omega.

- :func:`gaussian` ``(amplitude, t0, width)``: amplitude exp(-(t - t0)^2 / (2 width^2)).
- :func:`square` ``(amplitude, start, stop)``: amplitude on [start, stop), else 0.
- :func:`tone` ``(amplitude, frequency)``: a drive at another frequency, amplitude
  exp(-i (frequency - omega_L) t) in the rotating frame.
- :func:`constant` ``(amplitude)``: what a plain number means.
- any Python callable ``f(t) -> complex`` (the rotating-frame amplitude at time t).

Drives add with ``+`` (numbers and callables too: ``0.05 + gaussian(0.1, 500, 100)``).

How they are solved (``chiralnet.simulate``): constant parts, tones and square pulses exactly
(each tone is a constant drive in its own rotating frame, and a square pulse is a constant drive
switched on and off); Gaussians and callables by an adaptive Dormand-Prince 5(4) integration of
their share of the amplitudes, with dense output at the output times (``rtol``/``atol`` options).

Examples
--------
>>> import chiralnet as cn
>>> from chiralnet import drives
>>> pulse = drives.gaussian(0.1, t0=50.0, width=10.0) + drives.tone(0.01, frequency=1.02)
>>> G = cn.network()
>>> cn.add_cell(G, "a", omega=1.0, kappa=0.01, drive=pulse)
>>> bool(abs(pulse(50.0, drive_frequency=1.02) - 0.11) < 1e-12)   # the tone is constant when omega_L = 1.02
True
"""

from __future__ import annotations

import cmath
from dataclasses import dataclass
from numbers import Number

import numpy as np

from .checks import number
from .errors import ChiralnetError

__all__ = ["Drive", "Constant", "Gaussian", "Square", "Tone", "Function", "Sum",
           "constant", "gaussian", "square", "tone", "function", "as_drive", "is_time_dependent", "DriveSchedule",
           "schedule"]


def _amplitude(value, where) -> complex:
    if isinstance(value, bool) or not isinstance(value, Number):
        raise ChiralnetError(f"{where} must be a number (complex allowed), got {value!r}")
    try:
        value = complex(value)
    except OverflowError:
        raise ChiralnetError(f"{where} is too large for a float, got {value!r}") from None
    if not cmath.isfinite(value):
        raise ChiralnetError(f"{where} must be finite, got {value}")
    return value


class Drive:
    """A drive amplitude E(t) in the rotating frame. Add drives with ``+``; call to evaluate."""

    #: Marks drives without isinstance, so that a second copy of this module (pytest's doctest
    #: collection imports it again) still recognises them.
    _chiralnet_drive = True

    def terms(self) -> tuple:
        """The elementary drives this one is the sum of."""
        return (self,)

    def __add__(self, other):
        if isinstance(other, Number) and not isinstance(other, bool) and other == 0:
            return self
        return Sum(self.terms() + as_drive(other).terms())

    def __radd__(self, other):
        if isinstance(other, Number) and not isinstance(other, bool) and other == 0:
            return self  # sum([...]) starts from 0
        return Sum(as_drive(other).terms() + self.terms())

    def __call__(self, t, drive_frequency: float = 1.0):
        """E(t) at time(s) ``t`` (scalar or array), complex; ``drive_frequency`` is omega_L (tones only)."""
        t = np.asarray(t, float)
        total = np.zeros(t.shape, complex)
        for term in self.terms():
            total = total + term._value(t, drive_frequency)
        return total[()] if total.ndim == 0 else total


@dataclass(frozen=True, eq=False)
class Constant(Drive):
    """A constant amplitude (what a plain number ``drive`` means)."""

    _kind = "constant"

    amplitude: complex

    def __post_init__(self):
        object.__setattr__(self, "amplitude", _amplitude(self.amplitude, "constant drive: 'amplitude'"))

    def _value(self, t, omega_L):
        return np.full(t.shape, self.amplitude)


@dataclass(frozen=True, eq=False)
class Gaussian(Drive):
    """amplitude exp(-(t - t0)^2 / (2 width^2))."""

    _kind = "gaussian"

    amplitude: complex
    t0: float
    width: float

    def __post_init__(self):
        object.__setattr__(self, "amplitude", _amplitude(self.amplitude, "gaussian drive: 'amplitude'"))
        object.__setattr__(self, "t0", number(self.t0, "'t0'", "gaussian drive"))
        width = number(self.width, "'width'", "gaussian drive")
        if not width > 0:
            raise ChiralnetError(f"gaussian drive: 'width' must be > 0 (1/omega), got {width}")
        object.__setattr__(self, "width", width)

    def _value(self, t, omega_L):
        return self.amplitude * np.exp(-0.5 * ((t - self.t0) / self.width) ** 2)


@dataclass(frozen=True, eq=False)
class Square(Drive):
    """amplitude on [start, stop), else 0."""

    _kind = "square"

    amplitude: complex
    start: float
    stop: float

    def __post_init__(self):
        object.__setattr__(self, "amplitude", _amplitude(self.amplitude, "square drive: 'amplitude'"))
        start = number(self.start, "'start'", "square drive")
        stop = number(self.stop, "'stop'", "square drive")
        if not stop > start:
            raise ChiralnetError(f"square drive: 'stop' ({stop}) must be after 'start' ({start})")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "stop", stop)

    def _value(self, t, omega_L):
        return np.where((t >= self.start) & (t < self.stop), self.amplitude, 0j)


@dataclass(frozen=True, eq=False)
class Tone(Drive):
    """A drive at lab frequency ``frequency``: amplitude exp(-i (frequency - omega_L) t) in the rotating frame."""

    _kind = "tone"

    amplitude: complex
    frequency: float

    def __post_init__(self):
        object.__setattr__(self, "amplitude", _amplitude(self.amplitude, "tone drive: 'amplitude'"))
        object.__setattr__(self, "frequency", number(self.frequency, "'frequency'", "tone drive"))

    def _value(self, t, omega_L):
        return self.amplitude * np.exp(-1j * (self.frequency - omega_L) * t)


@dataclass(frozen=True, eq=False)
class Function(Drive):
    """A Python callable ``f(t) -> complex``: the rotating-frame amplitude at simulation time t.

    ``breakpoints`` (times where f jumps or has a narrow feature) are landed on by the adaptive
    integrator; ``max_step`` (1/omega) bounds its step (default ``config.CALLABLE_MAX_STEP``).
    """

    _kind = "function"

    f: object
    breakpoints: tuple = ()
    max_step: float | None = None

    def __post_init__(self):
        if not callable(self.f):
            raise ChiralnetError(f"a function drive needs a callable f(t) -> complex, got {self.f!r}")
        if isinstance(self.breakpoints, (str, bytes)) or not hasattr(self.breakpoints, "__iter__"):
            raise ChiralnetError(f"function drive: 'breakpoints' must be a list of times, got {self.breakpoints!r}")
        points = tuple(sorted(number(t, "'breakpoints'", "function drive") for t in self.breakpoints))
        object.__setattr__(self, "breakpoints", points)
        if self.max_step is not None:
            step = number(self.max_step, "'max_step'", "function drive")
            if not step > 0:
                raise ChiralnetError(f"function drive: 'max_step' must be > 0 (1/omega), got {step}")
            object.__setattr__(self, "max_step", step)

    def _value(self, t, omega_L):
        return np.vectorize(lambda s: evaluate_function(self.f, s, "drive"), otypes=[complex])(t)


@dataclass(frozen=True, eq=False)
class Sum(Drive):
    """A sum of elementary drives (``a + b``)."""

    parts: tuple

    def terms(self) -> tuple:
        return self.parts


def constant(amplitude) -> Constant:
    """A constant drive (a plain number means the same)."""
    return Constant(amplitude)


def gaussian(amplitude, t0, width) -> Gaussian:
    """amplitude exp(-(t - t0)^2 / (2 width^2)); ``t0``, ``width`` in 1/omega, width > 0."""
    return Gaussian(amplitude, t0, width)


def square(amplitude, start, stop) -> Square:
    """amplitude on [start, stop) (1/omega), else 0; solved exactly."""
    return Square(amplitude, start, stop)


def tone(amplitude, frequency) -> Tone:
    """A drive at lab frequency ``frequency`` (units of omega): amplitude exp(-i (frequency - omega_L) t)
    in the rotating frame; solved exactly (a constant drive in its own frame)."""
    return Tone(amplitude, frequency)


def function(f, *, breakpoints=(), max_step=None) -> Function:
    """A Python callable ``f(t) -> complex`` with what the integrator needs to know of it.

    Parameters
    ----------
    f : callable
        The rotating-frame amplitude at simulation time t (1/omega).
    breakpoints : sequence of float
        Times where f jumps or has a narrow feature: the integrator lands on each.
    max_step : float, optional
        The largest step (1/omega) the integrator may take (default ``config.CALLABLE_MAX_STEP``): no
        feature of f shorter than it goes unseen. A plain callable as a ``drive`` is ``function(f)``.
    """
    return Function(f, breakpoints, max_step)


def _is_drive(value) -> bool:
    return getattr(type(value), "_chiralnet_drive", False) is True


def as_drive(value) -> Drive:
    """A number, drive or callable as a :class:`Drive`; else ChiralnetError."""
    if _is_drive(value):
        return value
    if isinstance(value, Number) and not isinstance(value, bool):
        return Constant(value)
    if callable(value):
        return Function(value)
    raise ChiralnetError(f"a drive must be a number, a chiralnet.drives shape or a callable f(t) -> complex, "
                         f"got {value!r}")


def is_time_dependent(value) -> bool:
    """Whether a cell's ``drive`` value is anything but a plain number."""
    return _is_drive(value) or (callable(value) and not isinstance(value, Number))


def evaluate_function(f, t, where) -> complex:
    """f(t) as a finite complex number; ChiralnetError naming ``where`` when it raises or returns junk."""
    try:
        value = f(float(t))
    except ChiralnetError:
        raise
    except Exception as exc:  # the user's callable: any failure is reported with the cell it drives
        raise ChiralnetError(f"{where}: the drive callable raised {type(exc).__name__}: {exc} at t = {t}") from None
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, bool) or not isinstance(value, Number):
        raise ChiralnetError(f"{where}: the drive callable returned {value!r} at t = {t}; it must return a number")
    value = complex(value)
    if not cmath.isfinite(value):
        raise ChiralnetError(f"{where}: the drive callable returned {value} at t = {t}; it must be finite")
    return value


@dataclass(frozen=True, eq=False)
class DriveSchedule:
    """The time-dependent part of a model's drive, grouped by how it is solved (cell indices in node order).

    Attributes
    ----------
    tones : tuple of (dw, amplitudes (N,) complex)
        Forcing -i A e^{-i dw t}, one entry per distinct dw = frequency - omega_L != 0.
    squares : tuple of (start, stop, amplitudes (N,) complex)
        Forcing -i A on [start, stop), one entry per distinct (start, stop).
    pulses : tuple of (cell index, amplitude, t0, width)
        Gaussian pulses.
    functions : tuple of (cell index, cell name, callable, breakpoints, max_step)
        Python callables, with the breakpoints (tuple) and max_step (float or None) they declare.
    """

    tones: tuple = ()
    squares: tuple = ()
    pulses: tuple = ()
    functions: tuple = ()

    @property
    def integrated(self) -> bool:
        """Whether anything needs the adaptive integration (Gaussians or callables)."""
        return bool(self.pulses or self.functions)

    def at(self, times, n_cells: int) -> np.ndarray:
        """The time-dependent drive amplitudes E(t) - E_const at simulation ``times`` (T,): (T, N) complex."""
        t = np.asarray(times, float)
        out = np.zeros((t.size, n_cells), complex)
        for dw, amps in self.tones:
            out += np.exp(-1j * dw * t)[:, None] * amps
        for start, stop, amps in self.squares:
            out += ((t >= start) & (t < stop))[:, None] * amps
        for i, amplitude, t0, width in self.pulses:
            out[:, i] += amplitude * np.exp(-((t - t0) ** 2) / (2.0 * width**2))
        for i, cell, f, _, _ in self.functions:
            out[:, i] += [complex(f(tk)) for tk in t]  # a user callable: evaluated once per output time
        return out

    def doubled(self, n_cells: int) -> "DriveSchedule":
        """The schedule of E2(t) = (E(t), -conj E(t)) on the 2N modes b = (a, a^dag) of a general Gaussian
        network's doubled model (:func:`chiralnet.gaussian.doubled_model`): cell i's terms, and on mode N + i
        their negated conjugates. A tone A e^{-i dw t} -> -conj(A) e^{+i dw t}; a square or Gaussian pulse keeps
        its times with amplitude -conj(A) (compiled as the original); a callable f -> -conj f, evaluated once a
        stage for both copies (:class:`_Conjugated` reuses the value the original just returned)."""
        n = n_cells
        tones = {}
        for dw, amps in self.tones:
            tones.setdefault(dw, np.zeros(2 * n, complex))[:n] += amps
            tones.setdefault(-dw, np.zeros(2 * n, complex))[n:] -= np.conj(amps)
        squares = tuple((a, b, np.concatenate([amps, -np.conj(amps)])) for a, b, amps in self.squares)
        pulses = self.pulses + tuple((n + i, -np.conj(amp), t0, w) for i, amp, t0, w in self.pulses)
        shared = [_Remembered(f) for _, _, f, _, _ in self.functions]
        functions = (tuple((i, cell, f, bp, step) for (i, cell, _, bp, step), f in zip(self.functions, shared))
                     + tuple((n + i, cell, _Conjugated(f), bp, step)
                             for (i, cell, _, bp, step), f in zip(self.functions, shared)))
        return DriveSchedule(tuple(tones.items()), squares, pulses, functions)


class _Remembered:
    """A drive callable that keeps its last (t, f(t)), so that its :class:`_Conjugated` copy, asked at the same
    t right after, does not call the user's function again."""

    def __init__(self, f):
        self.f, self.t, self.value = f, None, None

    def __call__(self, t):
        value = self.f(t)
        self.t, self.value = t, value
        return value


class _Conjugated:
    """-conj f(t) of a :class:`_Remembered` callable f: the drive of the conjugate mode a^dag."""

    def __init__(self, remembered):
        self.source = remembered

    def __call__(self, t):
        src = self.source
        value = src.value if src.t is not None and src.t == t else src.f(t)
        return -np.conj(complex(value))


def schedule(values, cells, drive_frequency) -> tuple[np.ndarray, DriveSchedule | None]:
    """Split per-cell drive values (numbers, drives, callables) into the constant amplitudes (N,)
    complex and a :class:`DriveSchedule` (None when every drive is constant)."""
    n = len(cells)
    const = np.zeros(n, complex)
    tones, squares, pulses, functions = {}, {}, [], []
    for i, (cell, value) in enumerate(zip(cells, values)):
        if not is_time_dependent(value):
            const[i] = value
            continue
        for term in as_drive(value).terms():
            kind = getattr(term, "_kind", None)  # not isinstance: a module imported twice (doctests) still works
            if kind == "constant":
                const[i] += term.amplitude
            elif kind == "tone":
                dw = term.frequency - drive_frequency
                if dw == 0:
                    const[i] += term.amplitude
                else:
                    tones.setdefault(dw, np.zeros(n, complex))[i] += term.amplitude
            elif kind == "square":
                squares.setdefault((term.start, term.stop), np.zeros(n, complex))[i] += term.amplitude
            elif kind == "gaussian":
                pulses.append((i, term.amplitude, term.t0, term.width))
            elif kind == "function":
                functions.append((i, cell, term.f, term.breakpoints, term.max_step))
            else:  # a Drive subclass from outside: evaluate it as a callable
                functions.append((i, cell, term, (), None))
    if not (tones or squares or pulses or functions):
        return const, None
    return const, DriveSchedule(tuple(tones.items()), tuple((a, b, v) for (a, b), v in squares.items()),
                                tuple(pulses), tuple(functions))
