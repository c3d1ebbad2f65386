"""The simulators, one per paper, behind one Python API:

    ds = sims.run("mfld", seed=0, particles=1024, temperature=0.01)
    ds = sims.sweep("mfld", {"particles": [64, 128, 256], "temperature": [0.01, 0.1]}, seeds=8, steps=1000)

Both return an `xarray.Dataset`: a dimension per swept parameter in grid order, then `seed`, then each output's own
axes; records have a `step` coordinate; theory values sit beside what they predict as `theory_<name>`.
"""

from __future__ import annotations

import importlib
import time
from typing import Any, Sequence

import xarray as xr

from dynamics import xla_flags  # noqa: F401  (before any JAX computation)
from dynamics import compile as compile_lib
from dynamics import config as config_lib
from dynamics import export
from dynamics import sweep as sweep_lib
from dynamics.sweep import plan, run_groups

__all__ = ["NAMES", "load", "make_config", "preset_plan", "check", "run", "sweep"]

NAMES = ("mfld", "implicit_bias", "neural_collapse", "icl_single_index", "ntk_stability")


def load(name: str):
    """The sim module `sims.<name>` (it defines Config, PRESETS, SPEC and simulate)."""
    if name not in NAMES:
        raise config_lib.ConfigError(f"--sim={name}: unknown simulator; allowed: {', '.join(NAMES)}")
    return importlib.import_module(f"sims.{name}")


def make_config(name: str, preset: str | None = None, **params):
    """The validated config of sim `name`: its defaults, overridden by `preset`, then by `params`. A sim may name
    the preset that `params` imply when none is given (`implied_preset(params)`, e.g. `--task=xor`)."""
    module = load(name)
    if preset is None and hasattr(module, "implied_preset"):
        preset = module.implied_preset(params)
    base = {}
    if preset is not None:
        if preset not in module.PRESETS:
            raise config_lib.ConfigError(f"--preset={preset}: unknown preset of {name}; "
                                         f"allowed: {', '.join(module.PRESETS)}")
        base = dict(module.PRESETS[preset])
    return config_lib.build(module.Config, **{**base, **params})


def preset_plan(name: str, preset: str | None) -> tuple[dict, int]:
    """The sweep and seed count a preset runs with when none is given: `PRESET_SWEEPS[preset]` (default none) and
    `PRESET_SEEDS[preset]` (default 1), chosen so that the preset's verdicts are conclusive."""
    module = load(name)
    if preset is None:
        return {}, 1
    return (dict(getattr(module, "PRESET_SWEEPS", {}).get(preset, {})),
            int(getattr(module, "PRESET_SEEDS", {}).get(preset, 1)))


def _seed_list(seed: int, seeds: int | Sequence[int]) -> list[int]:
    seed_list = list(range(seed, seed + seeds)) if isinstance(seeds, int) else list(seeds)
    if not seed_list:
        raise config_lib.ConfigError(f"--seeds={seeds}: must be an integer >= 1")
    return seed_list


def check(name: str, grid: dict[str, Sequence[Any]] | None = None, seeds: int | Sequence[int] = 1, *,
          seed: int = 0, preset: str | None = None, chunk: int | None = None, memory_limit: int | None = None,
          devices: int | None = None, **params) -> None:
    """Validates a sweep exactly as `sweep` would, without compiling or running anything: every parameter value,
    and that each group fits in memory (raises ConfigError)."""
    spec = load(name).SPEC
    plans = plan(spec, make_config(name, preset, **params), dict(grid or {}), _seed_list(seed, seeds))
    import jax
    limit = memory_limit or sweep_lib.memory_limit()
    for _, configs in plans:
        sweep_lib.batch_size(spec, configs[0], len(configs), devices or jax.device_count(), chunk, limit)


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
    cfg = make_config(name, preset, **params)
    seed_list = _seed_list(seed, seeds)
    module = load(name)
    before = compile_lib.stats()
    t0 = time.perf_counter()
    loaded = []

    def batch_done(group, batch, from_checkpoint):
        if from_checkpoint:
            loaded.append(f"{group}-{batch}")
        if on_batch:
            on_batch(group, batch, from_checkpoint)

    groups = run_groups(module.SPEC, cfg, grid, seed_list, quiet=quiet, devices=devices, chunk=chunk,
                        limit=memory_limit, checkpoint_dir=checkpoint_dir, resume=resume,
                        checkpoint_seconds=checkpoint_seconds, on_batch=batch_done)
    after = compile_lib.stats()
    compile_seconds = after["compile_seconds"] - before["compile_seconds"]
    attrs = dict(sim=name, preset=preset or "", config=config_lib.to_dict(cfg),
                 grid={k: [config_lib.coerce(module.Config, k, v) for v in vs] for k, vs in grid.items()},
                 seeds=seed_list, compile_seconds=compile_seconds, compilations=after["compiles"] - before["compiles"],
                 run_seconds=time.perf_counter() - t0 - compile_seconds, batches_from_checkpoint=loaded,
                 **export.environment())
    return export.to_dataset(module.SPEC, groups, list(grid), cfg.record_every, attrs)


def run(name: str, seed: int = 0, *, preset: str | None = None, quiet: bool = True, **params) -> xr.Dataset:
    """One simulation of sim `name` with key `jax.random.key(seed)`; `seed` stays as a scalar coordinate."""
    return sweep(name, {}, [seed], preset=preset, quiet=quiet, **params).isel(seed=0)
