"""What every study shares: its result, its figure, and how it writes its files."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..files import atomic_write_text
from ..sweeps import sweep

__all__ = ["StudyResult"]


@dataclass(frozen=True, eq=False)
class StudyResult:
    """What a study computed: ``data`` (name -> array), the summary ``text`` and the files written."""

    name: str
    data: dict
    text: str
    paths: dict = field(default_factory=dict)


def _sweep(out, tag, *args, **kwargs):
    folder = None if out is None else os.path.join(out, "sweeps", tag)
    resume = folder is not None and os.path.exists(os.path.join(folder, "sweep.json"))
    return sweep(*args, out=folder, resume=resume, **kwargs)


def _finish(name, out, data, text, fig, columns):
    paths = {}
    if out is not None:
        os.makedirs(out, exist_ok=True)
        paths = {k: os.path.join(out, f"{name}.{k}") for k in ("csv", "png", "txt")}
        lines = [",".join(columns)]
        for row in zip(*(data[c] for c in columns)):
            lines.append(",".join(repr(float(v)) if isinstance(v, (float, np.floating)) else str(v) for v in row))
        from ..plotting import save_figure  # matplotlib only when a figure is written

        atomic_write_text(paths["csv"], "\n".join(lines) + "\n")
        atomic_write_text(paths["txt"], text)
        save_figure(fig, paths["png"], dpi=120)
    return StudyResult(name=name, data=data, text=text, paths=paths)


def _figure():
    from matplotlib.figure import Figure  # no pyplot: no global backend state, works headless

    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    return fig, fig.add_subplot()


