"""Sweeps: a grid of parameters times seeds, compiled once per static shape, vmapped and sharded over devices.

Traced parameters and seeds are flattened into one *member* axis that is vmapped inside one compiled program and
sharded over every local device with `NamedSharding(mesh, P('sweep'))` (padded to a multiple of the device count).
Static parameters form an outer loop: one compilation per combination.

Member randomness: the member with seed s uses `jax.random.key(s)`, whatever else is swept. So a sweep equals the loop
of single runs it stands for, on any number of devices and in any batching, and adding seeds leaves the old ones
unchanged. Grid points share their noise (common random numbers), which makes differences between them less noisy.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import sys
import time
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from dynamics import compile as compile_lib
from dynamics import config as config_lib
from dynamics import trajectory

__all__ = ["Spec", "Group", "plan", "run_groups", "members_config", "chunk_records"]


class Spec(NamedTuple):
    """What the engine needs to know of a sim.

    name: the sim's name; config_cls: its config class (with static `steps` and `record_every` fields);
    simulation: its `trajectory.Simulation`; dims: for each output, the names of its axes (records get a leading
    `step` axis besides); seedless: outputs that do not depend on the key (data, theory), stored without a `seed`
    axis.
    """
    name: str
    config_cls: type
    simulation: trajectory.Simulation
    dims: dict[str, tuple[str, ...]]
    seedless: frozenset = frozenset()


class Group(NamedTuple):
    """One static-shape group of a sweep: its static values, traced grid, seeds and outputs (numpy, member axes
    first: one per traced grid parameter, then seed)."""
    static: dict[str, Any]
    traced: dict[str, list]
    seeds: list[int]
    outputs: dict[str, np.ndarray]
    record_names: tuple[str, ...]
    run_seconds: float


def _stack_configs(configs: Sequence[Any]):
    """One config whose traced leaves carry a leading member axis (in JAX's default dtypes)."""
    def stack(*xs):
        arr = np.asarray(xs)
        return jnp.asarray(arr, dtype=jax.dtypes.canonicalize_dtype(arr.dtype))
    return jax.tree_util.tree_map(stack, *configs)


def members_config(base, static: dict, traced: dict, seeds: Sequence[int]):
    """The validated configs of a group's members, traced grid in row-major order and seeds innermost."""
    configs = []
    for values in itertools.product(*traced.values()):
        cfg = dataclasses.replace(base, **static, **dict(zip(traced, values)))
        config_lib.validate(cfg)
        configs.extend([cfg] * len(seeds))
    return configs


def chunk_records(total: int, target_chunks: int = 20) -> int:
    """Records per chunk: the largest divisor of `total` no larger than total/target_chunks, so every chunk has one
    shape (one compilation). Falls back to one chunk when `total` has no useful divisor."""
    cap = max(1, math.ceil(total / target_chunks))
    best = max(d for d in range(1, cap + 1) if total % d == 0)
    return best if best * 200 >= total else total


def _sharding(devices) -> NamedSharding:
    """The member axis split over a one-axis `sweep` mesh of `devices`."""
    return NamedSharding(jax.sharding.Mesh(np.asarray(devices), ("sweep",)), P("sweep"))


def _mesh_put(tree, devices):
    """Pads the member axis to a multiple of the device count and shards it over the `sweep` mesh."""
    pad = (-jax.tree_util.tree_leaves(tree)[0].shape[0]) % len(devices)

    def put(x):
        x = jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)]) if pad else x
        return jax.device_put(x, _sharding(devices))

    return jax.tree_util.tree_map(put, tree)


class _Progress:
    def __init__(self, label: str, total_steps: int, quiet: bool):
        self.label, self.total, self.quiet = label, total_steps, quiet
        self.t0 = self.last = time.perf_counter()

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if self.quiet or (now - self.last < 2.0 and done < self.total):
            return
        self.last = now
        rate = done / max(now - self.t0, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        print(f"  {self.label} step {done}/{self.total}  {rate:,.0f} steps/s  ETA {eta:,.0f}s", file=sys.stderr,
              flush=True)


def _fns(spec: Spec, devices) -> dict[str, Callable]:
    """The vmapped pieces of a run, jitted with every input and output sharded along the member axis, so that
    the carry keeps one sharding from chunk to chunk."""
    sim, shard = spec.simulation, _sharding(devices)
    jit = lambda f, **kw: jax.jit(f, in_shardings=shard, out_shardings=shard, **kw)
    return dict(
        start=jit(jax.vmap(lambda c, k: trajectory.start(sim, c, k))),
        advance=lambda num, every: jit(jax.vmap(lambda c, carry: trajectory.advance(sim, c, carry, num, every)),
                                       donate_argnums=(1,)),
        finish=jit(jax.vmap(lambda c, carry: trajectory.finish(sim, c, carry))),
    )


_FNS: dict[Any, dict[str, Callable]] = {}


def _run_members(spec: Spec, configs: list, seeds: list[int], label: str, quiet: bool, devices):
    """Runs the members of one static group as one vmapped, sharded program.

    Returns numpy outputs with a leading member axis, and the names of those that are records (axis 1 is `step`).
    """
    key = (spec.name, tuple(devices))
    fns = _FNS[key] if key in _FNS else _FNS.setdefault(key, _fns(spec, devices))
    size = len(configs)
    cfg = _mesh_put(_stack_configs(configs), devices)
    keys = _mesh_put(jnp.stack([jax.random.key(s) for s in seeds]), devices)
    steps, every = configs[0].steps, configs[0].record_every
    total = steps // every
    chunk = chunk_records(total) if total else 0

    start = compile_lib.compiled((*key, "start"), fns["start"], cfg, keys)
    carry, first = start(cfg, keys)
    records = [jax.device_get(first)]
    if total:
        advance = compile_lib.compiled((*key, "advance", chunk, every), fns["advance"](chunk, every), cfg, carry)
    progress = _Progress(label, steps, quiet)
    done = 0
    while done < total:
        carry, recs = advance(cfg, carry)
        records.append(jax.device_get(recs))
        done += chunk
        progress.update(done * every)
    finish = compile_lib.compiled((*key, "finish"), fns["finish"], cfg, carry)
    final = jax.device_get(finish(cfg, carry))
    recorded = {k: np.concatenate([r[k] for r in records], axis=1) for k in records[0]}
    outputs = {k: np.asarray(v)[:size] for k, v in {**final, **recorded}.items()}
    return outputs, tuple(recorded)


def plan(spec: Spec, base, grid: dict[str, list], seeds: Sequence[int]) -> list[tuple[dict, list]]:
    """Validates a sweep without running it: (static values, member configs) for each static-shape group.

    Raises ConfigError for an unknown parameter or any value out of range, before anything is compiled.
    """
    cls = spec.config_cls
    names = {f.name for f in dataclasses.fields(cls)}
    for name, values in grid.items():
        if name not in names:
            raise config_lib.ConfigError(f"--sweep={name}=...: not a parameter of {spec.name!r}; "
                                         f"allowed: {', '.join(sorted(names))}")
        if not values:
            raise config_lib.ConfigError(f"--sweep={name}=: needs at least one value")
    grid = {name: [config_lib.coerce(cls, name, v) for v in values] for name, values in grid.items()}
    for name, values in grid.items():
        for v in values:
            config_lib.check(cls, name, v)
    static_names = [n for n in grid if not config_lib.is_traced(cls, n)]
    traced = {n: grid[n] for n in grid if config_lib.is_traced(cls, n)}
    return [(dict(zip(static_names, c)), members_config(base, dict(zip(static_names, c)), traced, seeds))
            for c in itertools.product(*(grid[n] for n in static_names))]


def run_groups(spec: Spec, base, grid: dict[str, list], seeds: Sequence[int], *, quiet: bool = False,
               devices=None) -> list[Group]:
    """Runs `base` over `grid` x `seeds`: one compiled program per combination of static grid values."""
    seeds = list(seeds)
    plans = plan(spec, base, grid, seeds)  # validates every member before compiling anything
    traced = {n: [config_lib.coerce(spec.config_cls, n, v) for v in grid[n]] for n in grid
              if config_lib.is_traced(spec.config_cls, n)}
    devices = list(devices if devices is not None else jax.local_devices())
    groups = []
    for i, (static, configs) in enumerate(plans):
        label = f"[{i + 1}/{len(plans)}]" + "".join(f" {k}={v}" for k, v in static.items())
        t0 = time.perf_counter()
        before = compile_lib.stats()["compile_seconds"]
        outputs, record_names = _run_members(spec, configs, seeds * (len(configs) // len(seeds)), label, quiet,
                                             devices)
        seconds = time.perf_counter() - t0 - (compile_lib.stats()["compile_seconds"] - before)
        shape = tuple(len(v) for v in traced.values()) + (len(seeds),)
        outputs = {k: v.reshape(shape + v.shape[1:]) for k, v in outputs.items()}
        groups.append(Group(static, traced, seeds, outputs, record_names, seconds))
    return groups
