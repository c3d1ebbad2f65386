"""Runs one batch of sweep members (configs of one static shape) as one vmapped program sharded over devices:
start, then scan chunks (with progress and carry checkpoints between them), then finish.

Every program is jitted with its inputs and outputs sharded along the member axis, so the carry keeps one sharding
from chunk to chunk, and compiled ahead of time through `dynamics.compile` (one compilation per shape).
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from dynamics import compile as compile_lib
from dynamics import devices as devices_lib
from dynamics import trajectory
from dynamics.checkpoint import Checkpoints

__all__ = ["run_batch", "prefetch", "chunk_records", "member_shapes", "member_bytes", "clear_caches"]


def chunk_records(total: int, target_chunks: int = 20) -> int:
    """Records per scan chunk: the largest divisor of `total` no larger than total/target_chunks, so every chunk has
    one shape (one compilation). Falls back to one chunk when `total` has no useful divisor."""
    cap = max(1, math.ceil(total / target_chunks))
    best = max(d for d in range(1, cap + 1) if total % d == 0)
    return best if best * 200 >= total else total


def member_shapes(sim, config):
    """(context, carry, first record) of one member as `jax.ShapeDtypeStruct` pytrees (`jax.eval_shape`: only the
    sim's host-side `prepare` runs)."""
    prepared = (sim.prepare(config),) if sim.prepare else ()
    key = jax.random.key(0)
    context = jax.eval_shape(lambda k, *p: trajectory.setup(sim.simulation, config, k, *p), key, *prepared)
    carry, record = jax.eval_shape(lambda ctx, k: trajectory.start(sim.simulation, config, ctx, k), context, key)
    return context, carry, record


def member_bytes(sim, config) -> int:
    """Estimated device memory of one member: its context once, its carry twice (the chunk's input and output), a
    scan chunk of records, and the sim's own estimate of its step's temporaries (`sim.workspace`)."""
    context, carry, record = member_shapes(sim, config)
    nbytes = lambda tree: sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree_util.tree_leaves(tree)
                              if not jnp.issubdtype(x.dtype, jax.dtypes.prng_key))
    total = config.steps // config.record_every
    return nbytes(context) + 2 * nbytes(carry) + nbytes(record) * chunk_records(total) + int(sim.workspace(config))


class _Progress:
    def __init__(self, label: str, total_steps: int, quiet: bool):
        self.label, self.total, self.quiet = label, total_steps, quiet or not devices_lib.is_writer()
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


def _fns(spec, devices) -> dict[str, Callable]:
    sim, shard = spec.simulation, devices_lib.sharding(devices)
    jit = lambda f, **kw: jax.jit(f, in_shardings=shard, out_shardings=shard, **kw)
    return dict(
        setup=jit(jax.vmap(lambda c, k, *prepared: trajectory.setup(sim, c, k, *prepared))),
        start=jit(jax.vmap(lambda c, ctx, k: trajectory.start(sim, c, ctx, k))),
        advance=lambda num, every: jit(jax.vmap(lambda c, ctx, carry: trajectory.advance(sim, c, ctx, carry, num,
                                                                                           every)),
                                       donate_argnums=(2,)),
        finish=jit(jax.vmap(lambda c, ctx, carry: trajectory.finish(sim, c, ctx, carry))),
    )


_FNS: dict[Any, dict[str, Callable]] = {}


def clear_caches() -> None:
    """Forgets every compiled program: the engine's jitted functions and compiled executables, and JAX's traces.
    For tests that patch a function a sim calls while being traced (a mutation), and for notebooks that redefine one;
    otherwise an earlier compilation of the same shapes would run instead."""
    _FNS.clear()
    compile_lib._CACHE.clear()
    jax.clear_caches()


def _stack(configs):
    """One config whose traced leaves carry a leading member axis (numpy, in JAX's default dtypes)."""
    def stack(*xs):
        arr = np.asarray(xs)
        return arr.astype(jax.dtypes.canonicalize_dtype(arr.dtype))
    return jax.tree_util.tree_map(stack, *configs)


def _inputs(spec, configs: list, seeds: list[int], devices):
    """(program key, jitted functions, stacked config, keys, prepared) of a batch, on `devices`."""
    # Keyed by the functions themselves, not the name: a sim redefined in a notebook (or mutated in a test) compiles
    # anew instead of running the old program.
    key = (spec.name, *spec.simulation, tuple(devices))
    fns = _FNS[key] if key in _FNS else _FNS.setdefault(key, _fns(spec, devices))
    cfg = devices_lib.put(_stack(configs), devices)
    keys = devices_lib.put(jnp.stack([jax.random.key(s) for s in seeds]), devices)
    prepared = (devices_lib.put(_stack([spec.prepare(c) for c in configs]), devices),) if spec.prepare else ()
    return key, fns, cfg, keys, prepared


def prefetch(spec, configs: list, seeds: list[int], devices) -> None:
    """Starts compiling a batch's four programs in the background (`dynamics.compile.prefetch`), from the shapes of
    its context and carry (`jax.eval_shape`), so that a sweep's static shapes compile side by side and while earlier
    ones run. A sim with a host-side `prepare` (an LP, an SDP) is compiled when it runs instead: preparing twice
    would cost more than it saves."""
    if spec.prepare:
        return
    key, fns, cfg, keys, prepared = _inputs(spec, configs, seeds, devices)
    shard = devices_lib.sharding(devices)
    abstract = lambda tree: jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=shard),
                                                   tree)
    context = abstract(jax.eval_shape(fns["setup"], cfg, keys))
    carry = abstract(jax.eval_shape(fns["start"], cfg, context, keys)[0])
    compile_lib.prefetch((*key, "setup"), fns["setup"], cfg, keys)
    compile_lib.prefetch((*key, "start"), fns["start"], cfg, context, keys)
    steps, every = configs[0].steps, configs[0].record_every
    if steps // every:
        chunk = chunk_records(steps // every)
        compile_lib.prefetch((*key, "advance", chunk, every), fns["advance"](chunk, every), cfg, context, carry)
    compile_lib.prefetch((*key, "finish"), fns["finish"], cfg, context, carry)


def run_batch(spec, configs: list, seeds: list[int], *, label: str, quiet: bool, devices,
              checkpoints: Checkpoints, batch: tuple[int, int], checkpoint_seconds: float = 60.0):
    """Runs `configs` (member i with key `jax.random.key(seeds[i])`) as one program.

    Returns numpy outputs with a leading member axis and the names of those that are records (axis 1 is `step`).
    Resumes from `checkpoints` when they hold this batch's carry.
    """
    key, fns, cfg, keys, prepared = _inputs(spec, configs, seeds, devices)
    size = len(configs)
    steps, every = configs[0].steps, configs[0].record_every
    total = steps // every
    chunk = chunk_records(total) if total else 0

    # The context is built once per batch (and again on a resume: it is a function of config and key) and passed to
    # every chunk's program as an argument, never carried or checkpointed.
    context = compile_lib.compiled((*key, "setup"), fns["setup"], cfg, keys, *prepared)(cfg, keys, *prepared)
    carry, first = compile_lib.compiled((*key, "start"), fns["start"], cfg, context, keys)(cfg, context, keys)
    records, done = [devices_lib.gather(first)], 0
    saved = checkpoints.load_carry(*batch)
    if saved is not None:
        leaves, recorded, done = saved
        fresh, treedef = jax.tree_util.tree_flatten(carry)
        restored = [jax.random.wrap_key_data(x) if jnp.issubdtype(f.dtype, jax.dtypes.prng_key) else x
                    for x, f in zip(devices_lib.put(leaves, devices), fresh)]
        carry, records = jax.tree_util.tree_unflatten(treedef, restored), [recorded]
    if total:
        advance = compile_lib.compiled((*key, "advance", chunk, every), fns["advance"](chunk, every), cfg, context,
                                       carry)
    progress = _Progress(label, steps, quiet)
    last_save = time.perf_counter()
    while done < total:
        carry, recs = advance(cfg, context, carry)
        records.append(devices_lib.gather(recs))
        done += chunk
        progress.update(done * every)
        if done < total and time.perf_counter() - last_save >= checkpoint_seconds:
            merged = _concat(records)
            records = [merged]
            checkpoints.save_carry(*batch, jax.tree_util.tree_leaves(devices_lib.gather(carry)), merged, done)
            last_save = time.perf_counter()
    final = devices_lib.gather(compile_lib.compiled((*key, "finish"), fns["finish"], cfg, context, carry)(
        cfg, context, carry))
    recorded = _concat(records)
    outputs = {k: np.asarray(v)[:size] for k, v in {**final, **recorded}.items()}
    return outputs, tuple(recorded)


def _concat(records: list[dict]) -> dict:
    return {k: np.concatenate([r[k] for r in records], axis=1) for k in records[0]}
