"""What to sweep: the base network, the grid, the quantities; TOML sweep files.

A sweep is a base network (a builder of :mod:`chiralnet.builders` named by string, an importable
``"module:function"``, or a Python callable returning a graph), fixed keyword parameters, an
ordered grid of swept parameters and the quantities to compute at every grid point.
The file format and its reader and writer are in :mod:`chiralnet.formats.sweep_toml`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, field
from numbers import Integral, Number, Real

import numpy as np

from .. import config
from .. import builders
from ..errors import ChiralnetError, SweepError
from ..observables import QUANTITIES as _REGISTRY
from . import disorder as _disorder
from .disorder import finite_number

__all__ = ["SweepError", "SweepSpec", "sweep_quantities", "make_spec", "grid_values"]


def sweep_quantities() -> dict:
    """name -> (description with units, extra dimension or None) of every quantity a sweep can compute: the
    entries of the one registry :data:`chiralnet.observables.QUANTITIES` marked for sweeps, read live (a
    quantity registered after import counts)."""
    return {q.name: (f"{q.description} ({q.units})", q.dim) for q in _REGISTRY.values() if q.sweep}


def _known(name) -> bool:
    """Whether ``name`` is a sweep quantity of the registry."""
    return isinstance(name, str) and name in _REGISTRY and _REGISTRY[name].sweep


_REQUIRED = builders.REQUIRED

SECTIONS = {
    "base": None,  # builder + its keyword parameters
    "grid": None,  # any parameter of the builder
    "quantities": {"names", "times", "t90_max", "t90_steps"},
    "output": {"csv", "netcdf", "figure"},
    "run": {"chunk_size", "batched", "processes"},
    "disorder": None,  # relative spreads of per-cell / per-link parameters + realisations, seed, ...
}


def builder_parameters(fn, name: str) -> dict:
    """:func:`chiralnet.builders.builder_parameters`, raising SweepError (a sweep's error class)."""
    return builders.builder_parameters(fn, name, error=SweepError)


def resolve_builder(ref, where: str = "base builder", *, allow_code: bool = True):
    """:func:`chiralnet.builders.resolve_builder`, raising SweepError (a sweep's error class)."""
    return builders.resolve_builder(ref, where, allow_code=allow_code, error=SweepError)


def _brief(value, width: int = 40) -> str:
    """``repr(value)`` cut to ``width`` characters (error messages quote file contents only briefly)."""
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."





def _check_scalar(label: str, v) -> None:
    """A value of a sweep file's [base] or [grid]: integers must fit in int64, numbers in a float."""
    if isinstance(v, bool) or isinstance(v, str):
        return
    if isinstance(v, Integral) and not -2**63 < v < 2**63:
        raise SweepError(f"{label}: integer with {len(str(abs(int(v))))} digits is out of range (|value| < 2**63)")
    if isinstance(v, Real) and not finite_number(v):
        raise SweepError(f"{label}: non-finite value {_brief(v)}; every value must be finite")


def grid_values(name: str, spec, where: str = "grid") -> np.ndarray | list:
    """Values of one grid axis: a list, or ``{start, stop, num, scale}`` (scale 'linear' or 'log')."""
    label = f"{where} key {name!r}"
    if isinstance(spec, dict):
        unknown = set(spec) - {"start", "stop", "num", "scale"}
        if unknown:
            raise SweepError(f"{label}: unknown range key(s) {sorted(unknown)}; use start, stop, num, scale")
        missing = {"start", "stop", "num"} - set(spec)
        if missing:
            raise SweepError(f"{label}: range needs {sorted(missing)}")
        start, stop, num = spec["start"], spec["stop"], spec["num"]
        scale = spec.get("scale", "linear")
        for k, v in (("start", start), ("stop", stop)):
            if not finite_number(v):
                raise SweepError(f"{label}: {k} must be a finite number, got {_brief(v)}")
        if isinstance(num, bool) or not isinstance(num, Integral) or num < 1:
            raise SweepError(f"{label}: num must be an integer >= 1, got {_brief(num)}")
        if num > config.SWEEP_MAX_AXIS_VALUES:
            raise SweepError(f"{label}: num = {num} values is more than one axis may have ({config.SWEEP_MAX_AXIS_VALUES:.0e})")
        if scale == "linear":
            vals = np.linspace(float(start), float(stop), int(num))
        elif scale == "log":
            if not (start > 0 and stop > 0):
                raise SweepError(f"{label}: a log range needs start > 0 and stop > 0, got {start}, {stop}")
            vals = np.geomspace(float(start), float(stop), int(num))
        else:
            raise SweepError(f"{label}: scale must be 'linear' or 'log', got {scale!r}")
        if num > 1 and start == stop:
            raise SweepError(f"{label}: empty range (start == stop = {start}) with num = {num}")
        return vals
    if isinstance(spec, np.ndarray) and spec.ndim == 1 and spec.size and spec.dtype.kind == "f":
        if not np.isfinite(spec).all():  # an array from Python: checked as a whole, not value by value
            bad = spec[~np.isfinite(spec)][0]
            raise SweepError(f"{label}: non-finite value {bad}; every value must be finite")
        return np.array(spec, float)
    if isinstance(spec, np.ndarray):
        spec = spec.tolist()
    if isinstance(spec, (str, bytes)) or not hasattr(spec, "__len__"):
        raise SweepError(f"{label}: give a list of values or a range {{start, stop, num, scale}}, got {_brief(spec)}")
    vals = list(spec)
    if not vals:
        raise SweepError(f"{label}: empty list of values; give at least one")
    kinds = {_kind(v) for v in vals}
    if None in kinds or len(kinds) > 1 and kinds != {"int", "float"}:
        raise SweepError(f"{label}: values must all be numbers, all booleans or all strings, "
                         f"got {_brief(vals[:5], 80)}")
    if kinds <= {"int", "float"}:
        for v in vals:
            _check_scalar(label, v)
        if kinds == {"int"}:
            return [int(v) for v in vals]
        return np.array(vals, float)
    if len(set(vals)) != len(vals):
        raise SweepError(f"{label}: repeated values in {_brief(vals, 80)}")
    return [bool(v) for v in vals] if kinds == {"bool"} else [str(v) for v in vals]


def _wrong_type(bname: str, key: str, values) -> str | None:
    """What a built-in builder's parameter ``key`` expects, when ``values`` are not of that type; else None.

    Checked here so that a wrong type in a sweep file fails before an output folder is created.
    The parameter types are those of the registry (:data:`chiralnet.builders.BUILDERS`); a parameter
    that takes one value per cell or link may be a list of numbers (checked for length by the builder).
    """
    info = builders.BUILDERS.get(bname)
    param = None if info is None else info.parameters.get(key)
    if param is None:
        return None
    want = param.kind
    if want == "battery":  # "all", "last" or a list of cell numbers: the builder checks them
        ok = all(isinstance(v, str) or isinstance(v, (list, tuple, np.ndarray)) for v in values)
        return None if ok else "'all', 'last' or a list of cell numbers"
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":  # a float axis (finite: grid_values)
        return {"bool": "true or false", "int": "an integer"}.get(want)
    if param.per is not None and all(isinstance(v, (list, tuple, np.ndarray)) for v in values):
        values = [x for v in values for x in np.asarray(v, dtype=object).ravel()]
        if not values:
            return "a number or a non-empty list of numbers"
    kinds = {_kind(v) for v in values}
    if want == "bool":
        return None if kinds == {"bool"} else "true or false"
    if want == "int":
        return None if kinds == {"int"} else "an integer"
    numbers = all(isinstance(v, Number) and not isinstance(v, bool) for v in values)
    if want != "complex" and not kinds <= {"int", "float"} or not numbers:
        return "a number" if want != "complex" else "a number (complex allowed as a fixed [base] value)"
    return None


def _kind(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, Integral):
        return "int"
    if isinstance(v, Real):
        return "float"
    if isinstance(v, str):
        return "str"
    return None


@dataclass(frozen=True, eq=False)
class SweepSpec:
    """A validated sweep.

    Attributes
    ----------
    builder : str or callable or None
        The base network's builder; None when the grid sweeps ``builder`` (topology).
    params : dict
        Fixed keyword parameters of the builder.
    axes : tuple of (name, values)
        Swept parameters in grid order; float axes are 1-D float arrays, others lists
        (int, bool or str). The axis ``builder`` sweeps builders by name.
    quantities : tuple of str
        Names from :func:`sweep_quantities`.
    times : ndarray (T,) or None
        Output times of ``battery_energy_at`` (1/omega).
    t90_max : float or None
        Horizon searched by ``time_to_90`` (default 40 / slowest decay rate of M).
    t90_steps : int
        Grid steps over the horizon before bisection refines the crossing.
    output : dict
        ``csv``, ``netcdf``, ``figure`` flags for files written by a run with an output folder.
    run : dict
        ``chunk_size`` (points per stored chunk), ``batched`` (allow the batched kernel),
        ``processes`` (local pool size).
    source : str
        Where the spec came from (a file name or ``"<api>"``), used in error messages.
    disorder : Disorder or None
        A disorder ensemble at every grid point (:mod:`chiralnet.sweeps.disorder`): each quantity gains a
        last dimension ``stat``.
    """

    builder: object
    params: dict
    axes: tuple
    quantities: tuple
    times: np.ndarray | None = None
    t90_max: float | None = None
    t90_steps: int = config.T90_STEPS
    output: dict = field(default_factory=lambda: {"csv": True, "netcdf": True, "figure": True})
    run: dict = field(default_factory=dict)
    source: str = "<api>"
    disorder: _disorder.Disorder | None = None

    @property
    def dims(self) -> tuple:
        return tuple(name for name, _ in self.axes)

    @property
    def shape(self) -> tuple:
        return tuple(len(v) for _, v in self.axes)

    @property
    def n_points(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def to_json(self) -> dict:
        """A JSON-able description (the manifest of an output folder; resume compares its fingerprint)."""
        b = None if self.builder is None else resolve_builder(self.builder)[0]
        extra = {} if self.disorder is None else {"disorder": self.disorder.to_json()}
        return {**extra,
            "builder": b,
            "params": {k: _jsonable(v) for k, v in self.params.items()},
            "axes": [[n, _jsonable(v)] for n, v in self.axes],
            "quantities": list(self.quantities),
            "times": None if self.times is None else self.times.tolist(),
            "t90_max": self.t90_max,
            "t90_steps": self.t90_steps,
        }

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:16]


def _jsonable(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, complex):
        return [v.real, v.imag]
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def make_spec(builder, grid: dict, quantities=("battery_energy",), *, params=None, times=None, t90_max=None,
              t90_steps=None, output=None, run=None, source="<api>", allow_code: bool = True,
              disorder=None) -> SweepSpec:
    """Validate everything that can be checked without building a network and return a :class:`SweepSpec`.

    ``allow_code=False`` accepts only the registered builders by name (what a sweep file may name unless
    the user passes ``--allow-code``); from Python, callables and ``"module:function"`` are fine.
    Sizes are checked before anything is allocated: the number of grid points against the memory the
    results would take (:func:`chiralnet.memory.sweep_bytes`), each range's ``num`` against
    :data:`config.SWEEP_MAX_AXIS_VALUES`, ``t90_steps`` against :data:`config.SWEEP_MAX_T90_STEPS`, and swept or fixed sizes
    (``n_cells``, ``n_leaves``, ``rows`` x ``cols``) against :func:`chiralnet.memory.check_cells`.

    ``disorder`` is a :class:`~chiralnet.sweeps.disorder.Disorder`, or the ``[disorder]`` table of a sweep
    file (relative spreads by parameter plus ``realisations``, ``seed``, ``distribution``, ``quantiles``,
    ``keep_realisations``); its parameters are checked against the builders and its realisations against
    memory.
    """
    params = dict(params or {})
    if not isinstance(grid, dict) or not grid:
        raise SweepError(f"{source}: the grid is empty; sweep at least one parameter")
    for k, v in params.items():
        _check_scalar(f"{source} [base] key {k!r}", v)
    _check_points(grid, quantities, times, source)
    axes = tuple((str(name), grid_values(name, vals, f"{source} [grid]")) for name, vals in grid.items())
    names = [n for n, _ in axes]
    if "builder" in names:
        if builder is not None:
            raise SweepError(f"{source}: the grid sweeps 'builder'; do not also give a base builder")
        builder_names = dict(axes)["builder"]
        if not all(isinstance(b, str) for b in builder_names):
            raise SweepError(f"{source} [grid] key 'builder': give builder names as strings")
        candidates = [resolve_builder(b, f"{source} [grid] builder", allow_code=allow_code) for b in builder_names]
    else:
        if builder is None:
            raise SweepError(f"{source}: no base builder; set [base] builder = 'two_cell' (or another builder)")
        candidates = [resolve_builder(builder, f"{source} [base] builder", allow_code=allow_code)]
    both = set(params) & set(names)
    if both:
        raise SweepError(f"{source}: {sorted(both)} is both fixed in [base] and swept in [grid]; keep one")
    for bname, fn in candidates:
        accepted = builder_parameters(fn, bname)
        for key in list(params) + [n for n in names if n != "builder"]:
            if key not in accepted:
                section = "[grid]" if key in names else "[base]"
                raise SweepError(
                    f"{source} {section} key {key!r}: builder {bname!r} has no parameter {key!r}; "
                    f"its parameters are {sorted(accepted)}"
                )
        for key, vals in [(k, [v]) for k, v in params.items()] + [a for a in axes if a[0] != "builder"]:
            wrong = _wrong_type(bname, key, vals)
            if wrong:
                section = "[grid]" if key in names else "[base]"
                raise SweepError(f"{source} {section} key {key!r}: builder {bname!r} expects {wrong}, "
                                 f"got {[v.item() if isinstance(v, np.generic) else v for v in vals][:5]!r}")
        missing = [k for k, d in accepted.items() if d is _REQUIRED and k not in params and k not in names]
        if missing:
            raise SweepError(f"{source}: builder {bname!r} needs {missing}; give them in [base] or [grid]")
        _check_sizes(bname, params, axes, source)
    quantities = tuple(quantities)
    if not quantities:
        raise SweepError(f"{source} [quantities]: no quantity asked for; valid: {sorted(sweep_quantities())}")
    for q in quantities:
        if not _known(q):
            raise SweepError(f"{source} [quantities]: unknown quantity {_brief(q)}; valid: {sorted(sweep_quantities())}")
    if len(set(quantities)) != len(quantities):
        raise SweepError(f"{source} [quantities]: repeated quantity in {list(quantities)}")
    if "battery_energy_at" in quantities:
        if times is None:
            raise SweepError(f"{source} [quantities]: battery_energy_at needs times = [t1, t2, ...] (1/omega)")
        t = _times_array(times)
        if t is None or t.size == 0 or np.any(t < 0) or np.any(np.diff(t) <= 0):
            raise SweepError(
                f"{source} [quantities] times must be a non-empty, strictly increasing list of finite times >= 0 "
                f"(1/omega), got {_brief(times, 80)}"
            )
        times = t
    elif times is not None:
        raise SweepError(
            f"{source} [quantities]: times given but battery_energy_at not asked for; add it or drop times")
    if t90_max is not None and not (finite_number(t90_max) and t90_max > 0):
        raise SweepError(f"{source} [quantities] t90_max must be a finite time > 0, got {_brief(t90_max)}")
    t90_steps = config.T90_STEPS if t90_steps is None else t90_steps
    if isinstance(t90_steps, bool) or not isinstance(t90_steps, Integral) or t90_steps < 2:
        raise SweepError(f"{source} [quantities] t90_steps must be an integer >= 2, got {_brief(t90_steps)}")
    if t90_steps > config.SWEEP_MAX_T90_STEPS:
        raise SweepError(f"{source} [quantities] t90_steps = {t90_steps} is more than the limit of {config.SWEEP_MAX_T90_STEPS:.0e} "
                         "steps per point (the crossing is refined by bisection; a few thousand steps suffice)")
    out = {"csv": True, "netcdf": True, "figure": True}
    for k, v in (output or {}).items():
        if k not in out:
            raise SweepError(f"{source} [output]: unknown key {k!r}; known: {sorted(out)}")
        if not isinstance(v, bool):
            raise SweepError(f"{source} [output] {k} must be true or false, got {v!r}")
        out[k] = v
    run = dict(run or {})
    for k, v in run.items():
        if k not in SECTIONS["run"]:
            raise SweepError(f"{source} [run]: unknown key {k!r}; known: {sorted(SECTIONS['run'])}")
        if k == "batched" and not isinstance(v, bool):
            raise SweepError(f"{source} [run] batched must be true or false, got {v!r}")
        if k in ("chunk_size", "processes") and (isinstance(v, bool) or not isinstance(v, Integral) or v < 1):
            raise SweepError(f"{source} [run] {k} must be an integer >= 1, got {_brief(v)}")
        if k in ("chunk_size", "processes") and v >= 2**31:
            raise SweepError(f"{source} [run] {k} = {v} is out of range (< 2**31)")
    if disorder is not None:
        disorder = _check_disorder(disorder, candidates, params, axes, quantities, times, source)
    return SweepSpec(builder=builder, params=params, axes=axes, quantities=quantities, times=times,
                     t90_max=None if t90_max is None else float(t90_max), t90_steps=int(t90_steps),
                     output=out, run=run, source=source, disorder=disorder)


def _check_disorder(disorder, candidates, params, axes, quantities, times, source):
    """A :class:`Disorder` checked against the builders, the odds of negative rates and memory."""
    from .. import memory

    where = f"{source} [disorder]"
    if isinstance(disorder, dict):
        options = {k: v for k, v in disorder.items() if k in _disorder.OPTION_KEYS}
        spreads = {k: v for k, v in disorder.items() if k not in _disorder.OPTION_KEYS}
        disorder = _disorder.make_disorder(spreads, where=where, **options)
    elif not isinstance(disorder, _disorder.Disorder):
        raise SweepError(f"{where}: give a dict of relative spreads, got {_brief(disorder)}")
    _disorder.check_builders(disorder, candidates, where)
    n_points = 1
    for _, vals in axes:
        n_points *= len(vals)
    max_sizes = {bname: _largest_sizes(bname, params, axes) for bname, _ in candidates}
    _disorder.check_spreads(disorder, candidates, n_points, max_sizes, where)
    cells = max((s["cell"] for s in max_sizes.values() if s is not None), default=1)
    per_realisation = 2  # status and battery energy
    for q in quantities:
        dim = _REGISTRY[q].dim
        per_realisation += cells if dim == "cell" else (len(times) if dim == "time" else 1)
    R = disorder.realisations
    items = {"realisations of one grid point (values, sorted copies)": 3 * 8 * R * per_realisation}
    if disorder.keep_realisations:
        items["kept realisations (chunks and assembled)"] = 2 * 8 * n_points * R * (per_realisation - 2)
    try:
        memory.check(items, f"{where}: {R} realisations at each of {n_points} grid points",
                     "fewer realisations" + (", or keep_realisations = false" if disorder.keep_realisations else "")
                     + ", or fewer quantities")
    except ChiralnetError as exc:
        raise SweepError(str(exc)) from None
    return disorder


def _largest_sizes(bname, params, axes):
    """{"cell": n, "link": n} of the largest network of a registered builder in the grid; None if unknown."""
    info = builders.BUILDERS.get(bname)
    if info is None:
        return None
    swept = dict(axes)
    kw = {}
    for k in info.required:
        vals = swept[k] if k in swept else [params.get(k)]
        if not vals or not all(isinstance(v, Integral) and not isinstance(v, bool) and v >= 1 for v in vals):
            return None
        kw[k] = max(vals)
    try:
        return info.sizes(**kw)
    except ChiralnetError:
        return None


def _times_array(times):
    """Output times as a 1-D float array, or None when they are not a flat list of finite numbers."""
    if isinstance(times, np.ndarray):
        if times.ndim != 1 or times.dtype.kind not in "iuf":
            return None
        t = times.astype(float)
        return t if np.all(np.isfinite(t)) else None
    if isinstance(times, (str, bytes)) or not hasattr(times, "__len__"):
        return None
    if not all(finite_number(v) for v in times):  # ragged, nested, strings, booleans, huge integers
        return None
    return np.array([float(v) for v in times], float)


def _declared_len(vals) -> int:
    """Number of values a [grid] entry asks for, without allocating them (1 when malformed: checked later)."""
    if isinstance(vals, dict):
        num = vals.get("num", 1)
        return int(num) if isinstance(num, Integral) and not isinstance(num, bool) and num >= 1 else 1
    if isinstance(vals, (str, bytes)) or not hasattr(vals, "__len__"):
        return 1
    return max(1, len(vals))


def _check_points(grid, quantities, times, source) -> None:
    """Refuse a grid whose results would not fit in memory, before any axis is allocated."""
    from .. import memory

    n_points = 1
    for vals in grid.values():
        n_points *= _declared_len(vals)
    per_point = 1
    for q in (quantities if not isinstance(quantities, str) else [quantities]):
        extra = _REGISTRY[q].dim if _known(q) else None
        per_point += (_declared_len(times) if times is not None else 1) if extra == "time" else 1
    try:
        memory.check(memory.sweep_bytes(n_points, per_point), f"{source}: a sweep of {n_points} points",
                     "fewer grid points (num of a range, or values of a list)")
    except ChiralnetError as exc:
        raise SweepError(str(exc)) from None


#: builder -> (size parameters, cells and links from them) for the preflight of swept or fixed sizes.
_SIZES = {
    "chain": (("n_cells",), lambda n: (n, n)),
    "ring": (("n_cells",), lambda n: (n, n)),
    "star": (("n_leaves",), lambda n: (n + 1, n)),
    "lattice": (("rows", "cols"), lambda r, c: (r * c, 2 * r * c)),
}


def _check_sizes(bname, params, axes, source) -> None:
    """Refuse before building when the largest network of the grid would not fit in memory."""
    from .. import memory

    if bname not in _SIZES:
        return
    keys, size = _SIZES[bname]
    swept = dict(axes)
    largest = []
    for k in keys:
        vals = swept[k] if k in swept else [params.get(k, builders_default(bname, k))]
        ints = [v for v in vals if isinstance(v, Integral) and not isinstance(v, bool)]
        if len(ints) != len(vals) or not ints:
            return  # wrong types are reported by the builder's own checks
        largest.append(max(ints))
    if min(largest) < 1:
        return
    n_cells, n_links = size(*largest)
    text = ", ".join(f"{k} = {v}" for k, v in zip(keys, largest))
    try:
        memory.check_cells(n_cells, f"{source}: builder {bname!r} with {text} ({n_cells} cells)", n_links=n_links,
                           fixes="fewer cells")
    except ChiralnetError as exc:
        raise SweepError(str(exc)) from None


def builders_default(bname, key):
    """The default of a builder's keyword ``key`` (None when it has none)."""
    p = inspect.signature(builders.BUILDERS[bname].function).parameters.get(key)
    return None if p is None or p.default is inspect.Parameter.empty else p.default
