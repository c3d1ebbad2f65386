"""Sweeps: a grid of parameters times seeds, compiled once per static shape, vmapped and sharded over devices.

Traced parameters and seeds are flattened into one *member* axis that is vmapped inside one compiled program and
sharded over every device of every process (`dynamics.devices`). Static parameters form an outer loop of *groups*:
one compilation each. A group too large for memory runs in *batches* of at most `chunk` members.

Member randomness: the member with seed s uses `jax.random.key(s)`, whatever else is swept, and step t of a run uses
`fold_in` of it with t. So a sweep equals the loop of single runs it stands for, on any number of devices or hosts,
in any batching and across resumes, and adding seeds leaves the old ones unchanged. Grid points share their noise
(common random numbers), which makes differences between them less noisy.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import sys
import time
from typing import Any, NamedTuple, Sequence

import jax
import numpy as np

from dynamics import compile as compile_lib
from dynamics import config as config_lib
from dynamics import devices as devices_lib
from dynamics.checkpoint import Checkpoints
from dynamics.runner import member_bytes, prefetch, run_batch
from dynamics.simulator import Simulator, check_steps

__all__ = ["Group", "plan", "run_groups", "members_config", "batch_size", "memory_limit"]


class Group(NamedTuple):
    """One static-shape group of a sweep: its static values, traced grid, seeds and outputs (numpy, member axes
    first: one per traced grid parameter, then seed)."""
    static: dict[str, Any]
    traced: dict[str, list]
    seeds: list[int]
    outputs: dict[str, np.ndarray]
    record_names: tuple[str, ...]
    run_seconds: float


def members_config(base, static: dict, traced: dict, seeds: Sequence[int]):
    """The validated configs of a group's members, traced grid in row-major order and seeds innermost."""
    configs = []
    for values in itertools.product(*traced.values()):
        cfg = dataclasses.replace(base, **static, **dict(zip(traced, values)))
        config_lib.validate(cfg)
        configs.extend([cfg] * len(seeds))
    return configs


def _coerced(cls, grid: dict) -> dict:
    return {name: [config_lib.coerce(cls, name, v) for v in values] for name, values in grid.items()}


def plan(spec: Simulator, base, grid: dict[str, list], seeds: Sequence[int]) -> list[tuple[dict, list]]:
    """Validates a sweep without running it: (static values, member configs) for each static-shape group.

    Raises ConfigError for an unknown parameter or any value out of range, before anything is compiled.
    """
    cls = spec.config
    names = {f.name for f in dataclasses.fields(cls)}
    for name, values in grid.items():
        if name not in names:
            raise config_lib.ConfigError(f"--sweep={name}=...: not a parameter of {spec.name!r}; "
                                         f"allowed: {', '.join(sorted(names))}")
        if not values:
            raise config_lib.ConfigError(f"--sweep={name}=: needs at least one value")
        if name in spec.outputs:
            # xarray cannot hold a coordinate and a variable of one name: refused before anything runs, not at export.
            raise config_lib.ConfigError(f"--sweep={name}=...: {name!r} is also the name of one of "
                                         f"{spec.name!r}'s outputs, so it cannot be a sweep axis; allowed: one run "
                                         f"per value (--{name}=VALUE)")
    grid = _coerced(cls, grid)
    for name, values in grid.items():
        for v in values:
            config_lib.check(cls, name, v)
    static_names = [n for n in grid if not config_lib.is_traced(cls, n)]
    traced = {n: grid[n] for n in grid if config_lib.is_traced(cls, n)}
    plans = [(dict(zip(static_names, c)), members_config(base, dict(zip(static_names, c)), traced, seeds))
             for c in itertools.product(*(grid[n] for n in static_names))]
    for _, configs in plans:
        check_steps(configs[0])
    return plans


def memory_limit() -> int:
    """Bytes one device may use: the accelerator's own limit, or on CPU 80% of the host's available memory shared
    by its local devices."""
    device = jax.local_devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"])
    try:
        with open("/proc/meminfo") as f:
            available = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable"))
    except (OSError, StopIteration):
        available = 8 << 30
    return int(0.8 * available / jax.local_device_count())


def batch_size(spec: Simulator, config, members: int, devices: int, chunk: int | None, limit: int,
               per_member: int | None = None) -> int:
    """Members per program: `chunk` if given, else as many as fit in `limit` bytes per device (all if they fit).

    Raises ConfigError, before anything is compiled, when not even one member per device fits.
    """
    per_member = member_bytes(spec, config) if per_member is None else per_member
    fit = limit // max(per_member, 1)
    if fit < 1:
        static = " ".join(f"{k}={getattr(config, k)}" for k in ("particles", "samples", "dim") if hasattr(config, k))
        raise config_lib.ConfigError(
            f"--memory_limit={_mb(limit)}: one member ({static}) needs about {_mb(per_member)} per device; "
            f"allowed: a limit above that, or smaller shapes")
    size = chunk if chunk else fit * devices
    return max(1, min(members, size))


def _mb(n: float) -> str:
    return f"{n / 2 ** 20:,.1f}MB"


def run_groups(spec: Simulator, base, grid: dict[str, list], seeds: Sequence[int], *, quiet: bool = False,
               devices=None, chunk: int | None = None, limit: int | None = None, checkpoint_dir: str | None = None,
               resume: bool = False, checkpoint_seconds: float = 60.0, on_batch=None) -> list[Group]:
    """Runs `base` over `grid` x `seeds`: one compiled program per combination of static grid values, in batches
    of at most `chunk` members (default: as many as fit in `limit` bytes per device), checkpointed to
    `checkpoint_dir` after every batch and every `checkpoint_seconds` within one. `on_batch(group, batch, loaded)`
    is called after each batch (for tests and logs)."""
    seeds = list(seeds)
    plans = plan(spec, base, grid, seeds)  # validates every member before compiling anything
    traced = {n: v for n, v in _coerced(spec.config, grid).items() if config_lib.is_traced(spec.config, n)}
    devices = list(devices if devices is not None else devices_lib.sweep_devices())
    limit = limit or memory_limit()
    # The estimate traces setup and start (75 ms for a tiny sim): once per group.
    estimates = [member_bytes(spec, configs[0]) for _, configs in plans]
    sizes = [batch_size(spec, configs[0], len(configs), len(devices), chunk, limit, per_member)
             for (_, configs), per_member in zip(plans, estimates)]
    checkpoints = Checkpoints(checkpoint_dir, writer=devices_lib.is_writer())
    # The precision is part of the plan: float32 and float64 members differ in data and results, and must not mix.
    checkpoints.check_plan(dict(sim=spec.name, config=config_lib.to_dict(base), grid=grid, seeds=seeds,
                                batches=sizes, precision=str(jax.dtypes.canonicalize_dtype(np.float64))), resume)
    say = (lambda msg: None) if quiet or not devices_lib.is_writer() else (lambda msg: print(msg, file=sys.stderr))
    repeated = lambda configs: seeds * (len(configs) // len(seeds))
    # Every group's first batch starts compiling now, side by side; each runs as soon as its programs are ready.
    for g, ((_, configs), size) in enumerate(zip(plans, sizes)):
        if not checkpoints.has_batch(g, 0):
            prefetch(spec, configs[:size], repeated(configs)[:size], devices)
    groups = []
    for g, ((static, configs), size) in enumerate(zip(plans, sizes)):
        label = f"[group {g + 1}/{len(plans)}]" + "".join(f" {k}={v}" for k, v in static.items())
        count = math.ceil(len(configs) / size)
        say(f"{label}: {len(configs)} members, about {_mb(estimates[g])} each; "
            f"{count} batch(es) of <= {size} over {len(devices)} device(s)")
        t0, before = time.perf_counter(), compile_lib.stats()["compile_seconds"]
        parts = []
        for b in range(count):
            members = slice(b * size, (b + 1) * size)
            loaded = checkpoints.load_batch(g, b)
            if loaded is None:
                batch_label = label + (f" batch {b + 1}/{count}" if count > 1 else "")
                loaded = run_batch(spec, configs[members], repeated(configs)[members],
                                   label=batch_label, quiet=quiet, devices=devices, checkpoints=checkpoints,
                                   batch=(g, b), checkpoint_seconds=checkpoint_seconds)
                checkpoints.save_batch(g, b, *loaded)
                if on_batch:
                    on_batch(g, b, False)
            else:
                say(f"{label} batch {b + 1}/{count}: loaded from checkpoint")
                if on_batch:
                    on_batch(g, b, True)
            parts.append(loaded)
        outputs = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
        seconds = time.perf_counter() - t0 - (compile_lib.stats()["compile_seconds"] - before)
        shape = tuple(len(v) for v in traced.values()) + (len(seeds),)
        outputs = {k: v.reshape(shape + v.shape[1:]) for k, v in outputs.items()}
        groups.append(Group(static, traced, seeds, outputs, parts[0][1], seconds))
    return groups
