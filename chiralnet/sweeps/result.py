"""The result of a sweep: arrays labelled by the swept parameters; CSV, xarray/NetCDF and a figure."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field

import numpy as np

from .spec import sweep_quantities

__all__ = ["SweepResult", "atomic_write"]

STATUS_MEANING = {0: "ok", 1: "no steady state (quantities NaN)", 2: "time_to_90 not reached within the horizon"}


def atomic_write(path, write, mode="wb"):
    """Write ``path`` all at once: ``write(fh)`` fills a temp file in the same folder, then os.replace.

    A reader never sees a half-written file, and an interrupted write leaves the old file (or none).
    The data are flushed to disk before the rename (a stored chunk survives a crash).
    Temporary names are those of :func:`chiralnet.files.atomic_path` (``.<name>.<pid>-<hex>.tmp``).
    """
    from ..files import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())


@dataclass(frozen=True, eq=False)
class SweepResult:
    """Quantities on the grid of swept parameters.

    Attributes
    ----------
    dims : tuple of str
        Swept parameter names, the leading axes of every array.
    coords : dict
        name -> values of each swept axis (floats, ints, bools or strings); also ``cell`` and
        ``time`` when a quantity has those extra axes.
    data : dict
        quantity name -> ndarray of shape (*grid_shape) or (*grid_shape, n_cells) or
        (*grid_shape, n_times); energies in omega, times in 1/omega. A disorder sweep adds a last axis
        ``stat`` (``coords["stat"]``: ``mean``, ``std``, ``q5``, ``q50``, ``q95``, ...); see :meth:`stat`.
    status : ndarray (*grid_shape) int8
        0 ok, 1 no steady state at that point (its quantities are NaN), 2 time_to_90 not reached.
        In a disorder sweep: 1 (2) when a realisation at that point has no steady state (does not reach
        90 %); the statistics are then NaN.
    attrs : dict
        Provenance (builder, fixed parameters, engine, chunk counts; ``disorder`` as JSON).
    realisations : dict
        Disorder sweeps with ``keep_realisations``: quantity -> ndarray (*grid_shape[, n_cells | n_times],
        n_realisations), every realisation's value (``coords["realisation"]``); else empty.
    """

    dims: tuple
    coords: dict
    data: dict
    status: np.ndarray
    attrs: dict = field(default_factory=dict)
    realisations: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple:
        return self.status.shape

    def __getitem__(self, name) -> np.ndarray:
        return self.data[name]

    def _extra_dim(self, q):
        return sweep_quantities()[q][1]

    def _extra_dims(self, q) -> tuple:
        """Dimensions of q's array beyond the grid: cell or time, then stat (disorder sweeps)."""
        extra = self._extra_dim(q)
        return ((extra,) if extra else ()) + (("stat",) if "stat" in self.coords else ())

    def stat(self, quantity: str, name: str = "mean") -> np.ndarray:
        """One statistic of a disorder sweep's quantity: ``res.stat("battery_energy", "q95")``,
        shape (*grid_shape[, n_cells | n_times])."""
        if "stat" not in self.coords:
            raise KeyError("this sweep has no disorder ensemble (no stat dimension)")
        stats = list(self.coords["stat"])
        if name not in stats:
            raise KeyError(f"no statistic {name!r}; have {stats}")
        return self.data[quantity][..., stats.index(name)]

    def to_xarray(self):
        """An :class:`xarray.Dataset`, one variable per quantity plus ``status`` (needs xarray)."""
        import xarray as xr

        coords = {d: np.asarray(self.coords[d]) for d in self.dims}
        for extra in ("cell", "time", "stat", "realisation"):
            if extra in self.coords:
                vals = self.coords[extra]
                coords[extra] = np.asarray([str(c) for c in vals] if extra in ("cell", "stat") else vals)
        vars_ = {}
        for q, arr in self.data.items():
            vars_[q] = (self.dims + self._extra_dims(q), arr, {"description": sweep_quantities()[q][0]})
        for q, arr in self.realisations.items():
            extra = self._extra_dim(q)
            vars_[f"{q}_realisations"] = (self.dims + ((extra,) if extra else ()) + ("realisation",), arr,
                                          {"description": f"{sweep_quantities()[q][0]}, every disorder realisation"})
        meaning = "; ".join(f"{k}: {v}" for k, v in STATUS_MEANING.items())
        vars_["status"] = (self.dims, self.status, {"description": meaning})
        attrs = {k: str(v) for k, v in self.attrs.items()}
        return xr.Dataset(vars_, coords=coords, attrs=attrs)

    def to_netcdf(self, path) -> None:
        """Write NetCDF (needs xarray; h5netcdf or scipy as engine), atomically."""
        import importlib.util

        ds = self.to_xarray()
        have_h5 = all(importlib.util.find_spec(m) is not None for m in ("h5netcdf", "h5py"))
        engine = "h5netcdf" if have_h5 else "scipy"
        if engine == "scipy":
            data = bytes(ds.to_netcdf(engine="scipy"))
            atomic_write(path, lambda fh: fh.write(data))
        else:  # h5netcdf writes to a path: a temporary one, renamed when complete
            from ..files import atomic_path

            with atomic_path(path) as tmp:
                ds.to_netcdf(tmp, engine=engine)

    def csv_text(self) -> str:
        """The result as CSV text: one row per grid point, one column per swept parameter and value.

        Quantities with a cell or time axis get one column each, named ``cell_energy[<cell>]`` and
        ``battery_energy_at[t=<time>]``; a disorder sweep one column per statistic, ``battery_energy[mean]``,
        ``battery_energy[q95]``, ``cell_energy[3][std]`` (kept realisations are in the NetCDF file only).
        No pandas or xarray needed.
        """
        header = list(self.dims)
        cols = []
        stats = [f"[{s}]" for s in self.coords["stat"]] if "stat" in self.coords else [""]
        for q, arr in self.data.items():
            extra = self._extra_dim(q)
            arr = arr.reshape(self.status.size, -1, len(stats))  # (points, cells or times or 1, stats)
            if extra == "cell":
                labels = [f"{q}[{c}]" for c in self.coords["cell"]]
            elif extra == "time":
                labels = [f"{q}[t={float(t)!r}]" for t in self.coords["time"]]
            else:
                labels = [q]
            for k, label in enumerate(labels):
                for j, s in enumerate(stats):
                    header.append(label + s)
                    cols.append(arr[:, k, j])
        header.append("status")
        cols.append(self.status.reshape(-1))
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        grids = np.unravel_index(np.arange(self.status.size), self.shape)
        axes = [self.coords[d] for d in self.dims]
        for p in range(self.status.size):
            row = [_fmt(axes[a][grids[a][p]]) for a in range(len(self.dims))]
            row += [_fmt(c[p]) for c in cols]
            w.writerow(row)
        return buf.getvalue()

    def to_csv(self, path) -> None:
        """Write :meth:`csv_text` to ``path`` atomically."""
        text = self.csv_text().encode()
        atomic_write(path, lambda fh: fh.write(text))

    def plot_all(self, quantities=None):
        """One panel per quantity (default: all of them): :func:`chiralnet.plotting.design.plot_sweep`."""
        from ..plotting.design import plot_sweep

        return plot_sweep(self, quantities)

    def plot(self, quantity: str | None = None, ax=None):
        """Figure of one quantity: a line plot for one swept parameter, a map for two float ones.

        With two axes of which one is categorical (strings, booleans, ints) or has at most 6 values, one
        line per value is drawn instead of a map. Further axes are held at their first value (named in the
        title). ``quantity`` defaults to the first scalar quantity; a cell or time axis shows its last entry.
        Returns the :class:`matplotlib.figure.Figure` (no pyplot state is touched when ``ax`` is None).
        """
        from matplotlib.figure import Figure

        from ..plotting.design import PARAMETER_UNITS, parameter_label, quantity_label

        scalars = [q for q in self.data if self._extra_dim(q) is None]
        q = quantity or (scalars[0] if scalars else next(iter(self.data)))
        if q not in self.data:
            raise KeyError(f"no quantity {q!r} in this result; have {list(self.data)}")
        arr = self.data[q]
        label = quantity_label(q)
        band = None
        if "stat" in self.coords:  # the mean, with a band between the lowest and highest quantile
            stats = list(self.coords["stat"])
            qs = [s for s in stats if s.startswith("q")]
            if len(qs) >= 2:
                band = (arr[..., stats.index(qs[0])], arr[..., stats.index(qs[-1])], f"{qs[0]} to {qs[-1]}")
            arr = arr[..., 0]
            label = f"{label}, mean"
        if self._extra_dim(q) is not None:
            arr = arr[..., -1]
            band = None if band is None else (band[0][..., -1], band[1][..., -1], band[2])
            extra = self._extra_dim(q)
            at = self.coords[extra][-1]
            label = f"{label} at {extra} = {at}" + (" (1/omega)" if extra == "time" else "")
        if ax is None:
            fig = Figure(figsize=(6, 4.2), layout="constrained")
            ax = fig.add_subplot()
        else:
            fig = ax.figure
        dims = list(self.dims[:2])
        index = (slice(None),) * len(dims) + (0,) * (arr.ndim - len(dims))
        sub = arr[index]
        if band is not None:
            band = (band[0][index], band[1][index], band[2])
        fixed = ", ".join(f"{d}={self.coords[d][0]!r}" for d in self.dims[2:])
        if len(dims) == 2 and self._categorical(dims[0]) and not self._categorical(dims[1]):
            dims, sub = dims[::-1], sub.T
            band = None if band is None else (band[0].T, band[1].T, band[2])
        if len(dims) == 1 or sub.shape[1] == 1:
            y = sub.reshape(-1)
            x = self._axis_values(dims[0])
            ax.plot(x, y, marker="." if y.size < 60 else None)
            if band is not None:
                ax.fill_between(x, band[0].reshape(-1), band[1].reshape(-1), alpha=0.25, label=band[2])
                ax.legend(fontsize=8)
            ax.set_ylabel(label)
        elif self._categorical(dims[1]) or len(self.coords[dims[1]]) <= 6:
            for k, v in enumerate(self.coords[dims[1]]):
                x = self._axis_values(dims[0])
                lines = ax.plot(x, sub[:, k], marker="." if sub.shape[0] < 60 else None, label=f"{dims[1]} = {v}" + (
                    f" {PARAMETER_UNITS[dims[1]]}" if PARAMETER_UNITS.get(dims[1]) == "omega" else ""))
                if band is not None:
                    ax.fill_between(x, band[0][:, k], band[1][:, k], alpha=0.2, color=lines[0].get_color())
            ax.set_ylabel(label + ("" if band is None else f", band {band[2]}"))
            ax.legend(fontsize=8)
        else:
            mesh = ax.pcolormesh(self._axis_values(dims[0]), self._axis_values(dims[1]), sub.T, shading="nearest")
            fig.colorbar(mesh, ax=ax, label=label)
            ax.set_ylabel(parameter_label(dims[1]))
            if self._is_log(dims[1]):
                ax.set_yscale("log")
            self._ticks(ax, dims[1], "y")
        ax.set_xlabel(parameter_label(dims[0]))
        if self._is_log(dims[0]):
            ax.set_xscale("log")
        self._ticks(ax, dims[0], "x")
        if fixed:
            ax.set_title(fixed, fontsize=9)
        return fig

    def _categorical(self, d):
        return np.asarray(self.coords[d]).dtype.kind not in "f"

    def _ticks(self, ax, d, which):
        v = np.asarray(self.coords[d])
        if v.dtype.kind in "USbO":
            getattr(ax, f"set_{which}ticks")(np.arange(v.size))
            getattr(ax, f"set_{which}ticklabels")([str(s) for s in v])

    def _axis_values(self, d):
        v = np.asarray(self.coords[d])
        return np.arange(v.size) if v.dtype.kind in "USbO" else v

    def _is_log(self, d):
        v = np.asarray(self.coords[d])
        if v.dtype.kind not in "f" or v.size < 3 or np.any(v <= 0):
            return False
        r = v[1:] / v[:-1]
        return bool(np.allclose(r, r[0], rtol=1e-9) and not np.allclose(np.diff(v), v[1] - v[0], rtol=1e-9))

    def save_figure(self, path, quantity: str | None = None) -> None:
        """Draw :meth:`plot` of ``quantity``, or by default one panel per quantity (:meth:`plot_all`), and save
        it to ``path`` (format from the suffix, PNG by default) atomically."""
        fig = self.plot(quantity) if quantity is not None else self.plot_all()
        buf = io.BytesIO()
        fig.savefig(buf, format=os.path.splitext(os.fspath(path))[1].lstrip(".") or "png", dpi=120)
        atomic_write(path, lambda fh: fh.write(buf.getvalue()))


def _fmt(v):
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, (np.integer,)):
        return str(int(v))
    if isinstance(v, (np.bool_, bool)):
        return str(bool(v))
    return str(v)
