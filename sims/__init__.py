"""The simulators, one per paper, and any registered by other packages, behind one Python API:

    ds = sims.run("mfld", seed=0, particles=1024, temperature=0.01)
    ds = sims.sweep("mfld", {"particles": [64, 128, 256], "temperature": [0.01, 0.1]}, seeds=8, steps=1000)
    ds, rows = sims.execute("mfld", out="runs/mine", particles=4096)   # what `python run.py` does, as a library

Both return an `xarray.Dataset`: a dimension per swept parameter in grid order, then `seed`, then each output's own
axes; records have a `step` coordinate; theory values sit beside what they predict as `theory_<name>`.

The registry: every subpackage of `sims` that defines `SIMULATOR` (a `dynamics.simulator.Simulator`), and every
module named by the entry-point group `training_dynamics_sim.sims` of an installed package (name = module; the
module defines `SIMULATOR`). Adding a sim here touches its config file and its package, nothing else; adding one in
another package touches nothing here.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
import pkgutil
import time
from typing import Any, Sequence

import xarray as xr

from dynamics import xla_flags  # noqa: F401  (before any JAX computation)
from dynamics import compile as compile_lib
from dynamics import config as config_lib
from dynamics import export
from dynamics import report as report_lib
from dynamics import sweep as sweep_lib
from dynamics.simulator import Simulator

__all__ = ["ENTRY_POINTS", "registry", "names", "load", "make_config", "preset_plan", "default_grid", "check", "run",
           "sweep", "execute", "diverged"]

ENTRY_POINTS = "training_dynamics_sim.sims"


def _builtin() -> list[str]:
    return [m.name for m in pkgutil.iter_modules(__path__) if m.ispkg]


def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINTS)}


def _import(path: str) -> Simulator | None:
    sim = getattr(importlib.import_module(path), "SIMULATOR", None)
    return sim if isinstance(sim, Simulator) else None


@functools.cache
def registry() -> dict[str, Simulator]:
    """{name: Simulator} of the built-in sims and of every installed package's entry points (imports them all)."""
    found: dict[str, Simulator] = {}
    for path in [f"sims.{m}" for m in _builtin()] + list(_entry_points().values()):
        sim = _import(path)
        if sim is not None:
            if sim.name in found and found[sim.name] is not sim:
                raise RuntimeError(f"two simulators are named {sim.name!r} ({path} and another)")
            found[sim.name] = sim
    return found


def names() -> tuple[str, ...]:
    return tuple(registry())


@functools.cache
def load(name: str) -> Simulator:
    """The registered sim `name`, importing only its own package (a built-in one, or the entry point of that name)."""
    path = f"sims.{name}" if name in _builtin() else _entry_points().get(name)
    sim = _import(path) if path else None
    if sim is None or sim.name != name:
        sim = registry().get(name)  # an entry point named otherwise than its sim
    if sim is None:
        raise config_lib.ConfigError(f"--sim={name}: unknown simulator; allowed: {', '.join(registry())}")
    return sim


def make_config(name: str, preset: str | None = None, **params):
    """The validated config of sim `name`: its defaults, overridden by `preset`, then by `params`. A sim may name
    the preset that `params` imply when none is given (`implied_preset`, e.g. `--task=xor`)."""
    sim = load(name)
    preset = preset if preset is not None else sim.implied_preset(params)
    base = {}
    if preset is not None:
        if preset not in sim.presets:
            raise config_lib.ConfigError(f"--preset={preset}: unknown preset of {name}; "
                                         f"allowed: {', '.join(sim.presets)}")
        base = dict(sim.presets[preset])
    return config_lib.build(sim.config, **{**base, **params})


def preset_plan(name: str, preset: str | None) -> tuple[dict, int]:
    """The sweep and seed count a preset runs with when none is given (`preset_sweeps`, `preset_seeds`), chosen so
    that the preset's verdicts are conclusive."""
    sim = load(name)
    if preset is None:
        return {}, 1
    return dict(sim.preset_sweeps.get(preset, {})), int(sim.preset_seeds.get(preset, 1))


def default_grid(name: str, preset: str | None, config, scaling: bool = True) -> dict:
    """The sweep a run without `--sweep` gets: the preset's own, else the sim's scaling ladder (`scaling`)."""
    sim = load(name)
    if preset in sim.preset_sweeps:
        return dict(sim.preset_sweeps[preset])
    return dict(sim.scaling_grid(config)) if scaling else {}


def _seed_list(seed: int, seeds: int | Sequence[int]) -> list[int]:
    seed_list = list(range(seed, seed + seeds)) if isinstance(seeds, int) else list(seeds)
    if not seed_list or (isinstance(seeds, int) and seeds < 1):
        raise config_lib.ConfigError(f"--seeds={seeds}: must be an integer >= 1")
    return seed_list


def check(name: str, grid: dict[str, Sequence[Any]] | None = None, seeds: int | Sequence[int] = 1, *,
          seed: int = 0, preset: str | None = None, chunk: int | None = None, memory_limit: int | None = None,
          devices: int | None = None, **params) -> None:
    """Validates a sweep exactly as `sweep` would, without compiling or running anything: every parameter value,
    and that each group fits in memory (raises ConfigError)."""
    sim = load(name)
    plans = sweep_lib.plan(sim, make_config(name, preset, **params), dict(grid or {}), _seed_list(seed, seeds))
    import jax
    limit = memory_limit or sweep_lib.memory_limit()
    for _, configs in plans:
        sweep_lib.batch_size(sim, configs[0], len(configs), devices or jax.device_count(), chunk, limit)


def sweep(name: str, grid: dict[str, Sequence[Any]] | None = None, seeds: int | Sequence[int] = 1, *,
          seed: int = 0, preset: str | None = None, quiet: bool = True, devices=None, chunk: int | None = None,
          memory_limit: int | None = None, checkpoint_dir: str | None = None, resume: bool = False,
          checkpoint_seconds: float = 60.0, on_batch=None, **params) -> xr.Dataset:
    """Runs sim `name` over `grid` (parameter -> values) and `seeds`.

    seeds: a count K (seeds `seed`, ..., `seed + K - 1`) or an explicit list. Traced parameters and seeds share one
    compiled, vmapped program per combination of static parameters (shapes, choices), sharded over every device.
    chunk: members per program (default: as many as fit in `memory_limit` bytes per device).
    checkpoint_dir: where finished batches and scan carries are checkpointed; `resume=True` continues from them.
    """
    grid = dict(grid or {})
    sim = load(name)
    cfg = make_config(name, preset, **params)
    seed_list = _seed_list(seed, seeds)
    before = compile_lib.stats()
    t0 = time.perf_counter()
    loaded = []

    def batch_done(group, batch, from_checkpoint):
        if from_checkpoint:
            loaded.append(f"{group}-{batch}")
        if on_batch:
            on_batch(group, batch, from_checkpoint)

    groups = sweep_lib.run_groups(sim, cfg, grid, seed_list, quiet=quiet, devices=devices, chunk=chunk,
                                  limit=memory_limit, checkpoint_dir=checkpoint_dir, resume=resume,
                                  checkpoint_seconds=checkpoint_seconds, on_batch=batch_done)
    after = compile_lib.stats()
    compile_seconds = after["compile_seconds"] - before["compile_seconds"]
    attrs = dict(sim=name, preset=preset or "", config=config_lib.to_dict(cfg),
                 grid={k: [config_lib.coerce(sim.config, k, v) for v in vs] for k, vs in grid.items()},
                 seeds=seed_list, compile_seconds=compile_seconds, compilations=after["compiles"] - before["compiles"],
                 compile_work_seconds=after["compile_work_seconds"] - before["compile_work_seconds"],
                 run_seconds=time.perf_counter() - t0 - compile_seconds, batches_from_checkpoint=loaded,
                 **export.environment())
    return export.to_dataset(sim, groups, list(grid), cfg.record_every, attrs)


def run(name: str, seed: int = 0, *, preset: str | None = None, quiet: bool = True, **params) -> xr.Dataset:
    """One simulation of sim `name` with key `jax.random.key(seed)`; `seed` stays as a scalar coordinate."""
    return sweep(name, {}, [seed], preset=preset, quiet=quiet, **params).isel(seed=0)


def diverged(ds: xr.Dataset) -> str | None:
    """Where a run first went non-finite ("step S (particles=64 seed=3)"), or None when every member finished."""
    steps = ds.nonfinite_step.where(ds.nonfinite_step >= 0)
    if not steps.notnull().any():
        return None
    first = int(steps.min())
    where = ds.nonfinite_step.where(ds.nonfinite_step == first, drop=True)
    return f"step {first} (" + " ".join(f"{d}={where[d].values[0]}" for d in where.dims) + ")"


def execute(name: str, out: str, *, preset: str | None = None, grid: dict | None = None, seeds: int | None = None,
            seed: int = 0, scaling: bool = True, resume: bool = False, quiet: bool = True, chunk: int | None = None,
            memory_limit: int | None = None, checkpoint_seconds: float = 60.0, writer: bool = True,
            argv: Sequence[str] | None = None, on_checked=None, **params) -> tuple[xr.Dataset, list]:
    """What `python run.py` does, as one library call: the preset's (or scaling) sweep and seeds unless given,
    validated before anything runs, checkpointed in `out`/checkpoint, then `out`/results.nc, config.json,
    comparison.txt/.csv/.tex and `name`.png written atomically (results first). Returns the Dataset and the rows of
    the comparison. `writer=False` (every process but 0 of a multi-host run) writes nothing; `argv`, when given, is
    kept in config.json; `on_checked()` is called once everything is validated, before anything runs."""
    _, preset_seeds = preset_plan(name, preset)
    config = make_config(name, preset, **params)
    grid = dict(grid) if grid else default_grid(name, preset, config, scaling)
    seeds = preset_seeds if seeds is None else seeds
    check(name, grid, seeds, seed=seed, preset=preset, chunk=chunk, memory_limit=memory_limit, **params)
    if on_checked:
        on_checked()
    ds = sweep(name, grid, seeds, seed=seed, preset=preset, quiet=quiet, chunk=chunk, memory_limit=memory_limit,
               checkpoint_dir=os.path.join(out, "checkpoint"), resume=resume, checkpoint_seconds=checkpoint_seconds,
               **params)
    sim = load(name)
    if writer:
        import shutil
        export.write_netcdf(ds, os.path.join(out, "results.nc"))  # results first: nothing is lost to a later failure
        export.write_json({**export.decoded_attrs(ds), **({"argv": list(argv)} if argv is not None else {})},
                          os.path.join(out, "config.json"))
        shutil.rmtree(os.path.join(out, "checkpoint"), ignore_errors=True)
    rows = sim.compare(ds)
    if writer:
        report_lib.write_tables(rows, os.path.join(out, "comparison"))
        if sim.figure is not None:
            export.write_figure(sim.figure(ds), os.path.join(out, f"{name}.png"))
    return ds, rows
