"""Which kind of chiralnet file a TOML document is, and which command runs it.

Four kinds of TOML file, each with its own reader and command: scenario files
(:mod:`~chiralnet.formats.scenario_toml`, ``chiralnet run`` / ``chiralnet steady``), sweep files
(:mod:`~chiralnet.formats.sweep_toml`, ``chiralnet sweep``), optimisation files
(:mod:`~chiralnet.formats.optimize_toml`, ``chiralnet optimize``) and spectrum files
(:mod:`~chiralnet.formats.spectrum_toml`, ``chiralnet spectrum``). The kind is decided by the file's tables
(:func:`file_kind`); only a file without any telling table falls back on its name (``x.sweep.toml``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["KINDS", "file_kind", "check_kind"]

#: kind -> (what it is called, the command that runs it, the tables that mark it, in order of weight).
KINDS = {
    "spectrum": ("a spectrum file", "chiralnet spectrum {path} --out DIR", ("spectrum",)),
    "optimize": ("an optimisation file", "chiralnet optimize {path} --out DIR",
                 ("bounds", "objective", "budget", "optimizer")),
    "sweep": ("a sweep file", "chiralnet sweep {path} --out DIR", ("grid", "quantities", "disorder", "run", "base")),
    "scenario": ("a scenario file", "chiralnet run {path}", ("network", "times", "phase", "solver")),
}

#: File name endings that name a kind (used only when no table tells).
_SUFFIXES = {".spectrum.toml": "spectrum", ".optimize.toml": "optimize", ".sweep.toml": "sweep"}


#: Tables two kinds share ([network]: scenario and spectrum files; [base]: sweep and optimisation files).
_SHARED = {"network", "base"}


def file_kind(data: dict, path=None) -> str | None:
    """The kind of a parsed TOML document: ``"scenario"``, ``"sweep"``, ``"optimize"``, ``"spectrum"``, or None.

    The first kind of :data:`KINDS` with one of its tables wins (a spectrum file has ``[network]`` too,
    an optimisation file ``[base]`` as a sweep file does). A document with none of them is named by the
    ending of ``path`` (``.sweep.toml``, ``.optimize.toml``, ``.spectrum.toml``), else None.

    Examples
    --------
    >>> from chiralnet.formats.kinds import file_kind
    >>> file_kind({"base": {"builder": "chain"}, "grid": {"gamma": [0.01, 0.02]}})
    'sweep'
    >>> file_kind({"network": {"builder": "chain"}, "spectrum": {}})
    'spectrum'
    >>> file_kind({}, "x.optimize.toml"), file_kind({}, "x.toml")
    ('optimize', None)
    """
    if isinstance(data, dict):
        for kind, (_, _, tables) in KINDS.items():
            if any(t in data for t in tables):
                return kind
    name = Path(path).name if path is not None else ""
    return next((kind for end, kind in _SUFFIXES.items() if name.endswith(end)), None)


def check_kind(data: dict, expected: str, path, error) -> None:
    """Raise ``error`` (a ChiralnetError subclass) when ``data`` is another kind of file than ``expected``,
    naming the kind, the table that tells and the command that runs it."""
    kind = file_kind(data, path)
    if kind is None or kind == expected:
        return
    what, command, tables = KINDS[kind]
    found = [t for t in tables if isinstance(data, dict) and t in data]
    named = file_kind({}, path)
    if named == expected and set(found) <= _SHARED:  # e.g. x.spectrum.toml without [spectrum]: the reader
        return                                      # names the missing table
    why = f"it has a [{found[0]}] table" if found else f"its name ends in {Path(path).name[Path(path).name.index('.'):]}"
    raise error(f"{path}: this is {what} ({why}), not {KINDS[expected][0]}: use `{command.format(path=path)}`")
