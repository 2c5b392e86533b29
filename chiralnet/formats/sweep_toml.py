"""Sweep files (TOML): the reader and the writer. :func:`chiralnet.sweeps.run_sweep` and
``chiralnet sweep`` run them; the format is in :func:`read_sweep`. :func:`write_sweep` writes a
:class:`~chiralnet.sweeps.SweepSpec` as a file that reads back to an equal spec.
"""

from __future__ import annotations

from ..errors import SweepError
from ..files import read_toml
from ..sweeps.spec import SECTIONS, SweepSpec, make_spec

__all__ = ["read_sweep", "write_sweep", "parse_sweep", "sweep_to_dict", "load_sweep"]


def parse_sweep(doc: dict, source: str = "<toml>", *, allow_code: bool = False) -> SweepSpec:
    """Build a :class:`SweepSpec` from a parsed sweep document (the dict of a TOML file).

    A document comes from a file, so by default only the registered builders may be named; pass
    ``allow_code=True`` to allow ``"module:function"`` builders (it imports and runs that code).
    """
    for section in doc:
        if section not in SECTIONS:
            raise SweepError(f"{source}: unknown section [{section}]; known: {sorted(SECTIONS)}")
        if not isinstance(doc[section], dict):
            raise SweepError(f"{source}: {section!r} must be a table [{section}]")
    base = dict(doc.get("base", {}))
    builder = base.pop("builder", None)
    base = _complex_base(base, builder, source)
    q = dict(doc.get("quantities", {}))
    for k in q:
        if k not in SECTIONS["quantities"]:
            raise SweepError(f"{source} [quantities]: unknown key {k!r}; known: {sorted(SECTIONS['quantities'])}")
    names = q.get("names", ["battery_energy"])
    if isinstance(names, str) or not isinstance(names, list):
        raise SweepError(f"{source} [quantities] names must be a list of names, got {names!r}")
    return make_spec(builder, doc.get("grid", {}), names, params=base, times=q.get("times"),
                     t90_max=q.get("t90_max"), t90_steps=q.get("t90_steps"), output=doc.get("output"),
                     run=doc.get("run"), source=source, allow_code=allow_code, disorder=doc.get("disorder"))


def _complex_base(base: dict, builder, source: str) -> dict:
    """The [base] values of a registered builder's complex parameters (``drive``, ``J``, ``pump``, ``m_th``,
    ``m_th_link``, ``parametric``) read as scenario files read them: a number, a string ``"0.1-0.02j"`` or a pair
    ``[re, im]``, or a list of them for a per-cell / per-link parameter; what :func:`write_sweep` writes."""
    from .. import builders
    from ..errors import ScenarioError
    from .scenario_toml import _Reader, _builder_value

    info = builders.BUILDERS.get(builder) if isinstance(builder, str) else None
    if info is None:
        return base
    out = dict(base)
    for key, value in base.items():
        param = info.parameters.get(key)
        if param is None or param.kind != "complex" or value is None:
            continue
        try:
            out[key] = _builder_value(_Reader(source), param, value, f"[base] {key}")
        except ScenarioError as exc:
            raise SweepError(str(exc)) from None
    return out


def read_sweep(path, *, allow_code: bool = False) -> SweepSpec:
    """Read a sweep file (TOML).

    Format::

        [base]                      # the network at every point
        builder = "two_cell"        # a chiralnet builder, or "module:function" returning a graph
        kappa_a = 0.003             # fixed keyword parameters of the builder

        [grid]                      # swept parameters, in this order (the dims of the result)
        gamma = {start = 0.001, stop = 0.1, num = 100, scale = "log"}   # or scale = "linear"
        kappa_b = [0.001, 0.003, 0.01]                                    # or an explicit list
        # builder = ["chain", "ring"]   sweeps the topology (then [base] has no builder)

        [quantities]                # optional; default names = ["battery_energy"]
        names = ["battery_energy", "cell_energy", "battery_energy_at", "time_to_90",
                 "ratio_nonreciprocal", "ratio_reciprocal", "total_energy"]
        times = [100.0, 1000.0]     # for battery_energy_at (1/omega)
        t90_max = 5000.0            # optional horizon of time_to_90
        t90_steps = 2000            # optional: grid steps before bisection (default config.T90_STEPS)

        [output]                    # optional files besides the chunk store
        csv = true
        netcdf = true
        figure = true

        [run]                       # optional
        chunk_size = 4096           # points per stored chunk
        batched = true              # allow the batched kernel for same-structure points
        processes = 2               # local pool size when the pool is used

        [disorder]                  # optional: an ensemble of disordered networks at every point
        kappa = 0.05                # relative spread of a per-cell / per-link parameter (5 %)
        gamma = 0.05
        realisations = 1000         # networks per grid point
        seed = 1                    # numpy SeedSequence seed (reproducible on any engine)
        distribution = "normal"     # or "uniform", "lognormal" (always positive)
        quantiles = [0.05, 0.5, 0.95]
        keep_realisations = false   # also keep every realisation (memory permitting)

    A sweep file is data: by default ``builder`` may only name a registered builder. A builder given
    as ``"module:function"`` imports and calls that code, so it needs ``allow_code=True``
    (``chiralnet sweep --allow-code``), which runs code from this file.

    Unknown sections and keys raise :class:`SweepError` naming the file and key; so does a file that
    cannot be read (missing, a folder, not UTF-8, not TOML).
    """
    from .kinds import check_kind

    doc = read_toml(path, "sweep", SweepError, "examples/*.sweep.toml")
    check_kind(doc, "sweep", path, SweepError)
    return parse_sweep(doc, source=str(path), allow_code=allow_code)


#: The former name of :func:`read_sweep` (``chiralnet.load_sweep``).
load_sweep = read_sweep


# ---------------------------------------------------------------------------------------------
# Writing.


def sweep_to_dict(spec: SweepSpec) -> dict:
    """The TOML document of ``spec`` (the inverse of :func:`parse_sweep`); grids as explicit lists.

    Raises
    ------
    SweepError
        When the builder is a Python callable (a file names builders by string).
    """
    if spec.builder is not None and not isinstance(spec.builder, str):
        raise SweepError(f"write_sweep: the builder {spec.builder!r:.60} is a Python callable; a sweep file names "
                         "a registered builder or 'module:function' (give make_spec the string instead)")
    base = {} if spec.builder is None else {"builder": spec.builder}
    base.update(spec.params)
    doc = {"base": base, "grid": dict(spec.axes)}
    q = {"names": list(spec.quantities)}
    if spec.times is not None:
        q["times"] = spec.times
    if spec.t90_max is not None:
        q["t90_max"] = float(spec.t90_max)
    q["t90_steps"] = int(spec.t90_steps)
    doc["quantities"] = q
    doc["output"] = {k: bool(v) for k, v in spec.output.items()}
    if spec.run:
        doc["run"] = {k: v for k, v in spec.run.items() if v is not None}
    if spec.disorder is not None:
        d = spec.disorder.to_json()
        doc["disorder"] = {**{k: float(v) for k, v in d.pop("spreads").items()}, **d}
    if not doc["base"]:
        del doc["base"]
    return doc


def write_sweep(spec: SweepSpec, path) -> None:
    """Write ``spec`` as a sweep file (atomically) that :func:`read_sweep` reads back to an equal spec.

    Parameters
    ----------
    spec : SweepSpec
        From :func:`chiralnet.sweeps.make_spec` or :func:`read_sweep`; its builder must be a string.
    path : str or os.PathLike
        The file to write (conventionally ``NAME.sweep.toml``).
    """
    from ..files import atomic_write_text
    from .scenario_toml import dumps_toml

    atomic_write_text(path, dumps_toml(sweep_to_dict(spec)))
