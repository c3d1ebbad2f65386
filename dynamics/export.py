"""Export: sweep groups to one labelled `xarray.Dataset`, and atomic writes of netCDF, JSON and figures.

Every file is written to a temporary name in its directory and renamed into place, so an interrupted run never
leaves a half-written file behind.
"""

from __future__ import annotations

import json
import os
import platform
from typing import Any, Sequence

import numpy as np
import xarray as xr

from dynamics.files import atomic_path, write_json
from dynamics import simulator as simulator_lib
from dynamics.simulator import Simulator
from dynamics.sweep import Group

__all__ = ["to_dataset", "atomic_path", "write_netcdf", "decoded_attrs", "write_json", "write_figure",
           "environment"]


def _group_dataset(spec: Simulator, group: Group, every: int) -> xr.Dataset:
    lead = tuple(group.traced) + ("seed",)
    coords: dict[str, Any] = {name: list(values) for name, values in group.traced.items()}
    coords["seed"] = list(group.seeds)
    data_vars = {}
    seedless = simulator_lib.seedless(spec)
    for name, value in group.outputs.items():
        dims = lead + (("step",) if name in group.record_names else ()) + tuple(simulator_lib.dims(spec, name))
        if value.ndim != len(dims):
            raise ValueError(f"output {name!r} has shape {value.shape} but dims {dims}")
        if name in seedless:
            value, dims = np.take(value, 0, axis=len(lead) - 1), tuple(d for d in dims if d != "seed")
        data_vars[name] = (dims, value)
    ds = xr.Dataset(data_vars, coords=coords)
    if "step" in ds.dims:
        ds = ds.assign_coords(step=np.arange(ds.sizes["step"]) * every)
    # Every other axis gets an integer index, so groups of different sizes (e.g. particle counts) align.
    ds = ds.assign_coords({d: np.arange(ds.sizes[d]) for d in ds.dims if d not in ds.coords})
    return ds.expand_dims({k: [v] for k, v in group.static.items()})


def to_dataset(spec: Simulator, groups: Sequence[Group], grid_order: Sequence[str], every: int,
               attrs: dict[str, Any]) -> xr.Dataset:
    """One Dataset: a dimension per swept parameter in `grid_order`, then `seed`, then each output's own axes.

    Groups whose axes differ in size are aligned by outer join (the shorter padded with NaN).
    """
    parts = [_group_dataset(spec, g, every) for g in groups]
    ds = parts[0] if len(parts) == 1 else merge_disjoint(parts)
    # Alignment passes integers through float NaN; every cell is filled again, so their dtype comes back.
    ds = ds.assign({k: ds[k].astype(v.dtype) for k, v in parts[0].data_vars.items()
                    if v.dtype.kind in "iu" and ds[k].dtype != v.dtype and not ds[k].isnull().any()})
    ds = ds.transpose(*grid_order, "seed", ..., missing_dims="ignore")
    ds.attrs.update({k: _attr(v) for k, v in attrs.items()})
    return describe(spec, ds)


def merge_disjoint(parts: Sequence[xr.Dataset]) -> xr.Dataset:
    """`xr.merge(parts, join="outer", compat="no_conflicts", combine_attrs="drop")` for parts that cover disjoint
    cells (sweep groups: disjoint static coordinates), the same Dataset with a fraction of its memory.

    xr.merge reindexes every part to the union of the coordinates before combining, so a scaling ladder's final
    particles (N/8 ... N, padded to N) briefly take several padded copies: 0.7 GB more than the run itself at
    N = 250,000 (benchmarks/mfld.py). Here each variable is allocated once, padded with xarray's own fill value
    for its dtype (NaN; integers and booleans become float64, as xr.merge does), and each part is written into its
    cells.
    """
    from xarray.core.dtypes import maybe_promote  # the fill value and dtype xarray's outer join uses

    union = xr.align(*(xr.Dataset(coords={d: p.indexes[d] for d in p.dims}) for p in parts), join="outer")[0]
    indexes = {d: union.indexes[d] for d in union.dims}
    data_vars = {}
    for name in dict.fromkeys(n for p in parts for n in p.data_vars):
        first = next(p[name] for p in parts if name in p.data_vars)
        # maybe_promote maps bool to object (bools and NaN), which netCDF cannot store; xr.merge gives float64.
        dtype, fill = maybe_promote(np.dtype(float) if first.dtype == bool else first.dtype)
        out = np.full(tuple(len(indexes[d]) for d in first.dims), fill, dtype)
        for p in parts:
            if name in p.data_vars:
                var = p[name].transpose(*first.dims)
                out[np.ix_(*(indexes[d].get_indexer(var.indexes[d]) for d in first.dims))] = var.values
        data_vars[name] = (first.dims, out)
    return xr.Dataset(data_vars, coords=indexes)


_ENGINE_OUTPUTS = {"nonfinite_step": simulator_lib.Output(
    "first step whose state held a NaN or inf (-1: none; an inf record: to record resolution)", "step")}


def describe(spec: Simulator, ds: xr.Dataset) -> xr.Dataset:
    """CF attributes from the sim's declared outputs: `long_name` and `units` on every variable (so that
    `ds.loss.plot()` labels its axes), and on each theory value the variable it predicts; the swept parameters'
    coordinates get their config docs and units."""
    from dynamics import config as config_lib
    for name, out in {**spec.outputs, **_ENGINE_OUTPUTS}.items():
        if name in ds.data_vars:
            ds[name].attrs.update(long_name=out.long_name, units=out.units)
            if out.predicts:
                ds[name].attrs["predicts"] = out.predicts
    import dataclasses
    for field, _, units, _, doc in config_lib.describe(spec.config) if dataclasses.is_dataclass(spec.config) else ():
        if field in ds.coords:
            ds[field].attrs.update(long_name=doc, units=units)
    if "step" in ds.coords:
        ds["step"].attrs.update(long_name="training step", units="step")
    if "seed" in ds.coords:
        ds["seed"].attrs.update(long_name="seed: the member's key is jax.random.key(seed)", units="1")
    return ds


def _attr(value):
    """netCDF attributes are numbers or strings: bools become 0/1, containers JSON."""
    if isinstance(value, bool):
        return int(value)
    return value if isinstance(value, (int, float, str)) else json.dumps(value, default=str)


def write_netcdf(ds: xr.Dataset, path: str) -> None:
    ds = ds.copy()
    ds.attrs = {k: _attr(v) for k, v in ds.attrs.items()}
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")


def decoded_attrs(ds: xr.Dataset) -> dict[str, Any]:
    """A Dataset's attrs with the JSON-encoded containers decoded again (for config.json)."""
    out = {}
    for k, v in ds.attrs.items():
        try:
            out[k] = json.loads(v) if isinstance(v, str) and v[:1] in "[{" else v
        except json.JSONDecodeError:
            out[k] = v
    return out


def write_figure(fig, path: str) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format=os.path.splitext(path)[1][1:])


def environment() -> dict[str, Any]:
    """Versions and devices, for a result's attrs."""
    import jax
    import jaxlib
    import flax
    import optax
    return dict(python=platform.python_version(), jax=jax.__version__, jaxlib=jaxlib.__version__,
                flax=flax.__version__, optax=optax.__version__, numpy=np.__version__, xarray=xr.__version__,
                platform=platform.platform(), devices=[str(d) for d in jax.devices()],
                process_count=jax.process_count(), x64=bool(jax.config.jax_enable_x64))
