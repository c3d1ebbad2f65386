"""Trajectories: one `lax.scan` that steps a dynamic and records observables every `record_every` steps.

A simulator hands the engine its dynamics as a `Simulation`, four pure functions of its config:

    init(config, key[, prepared]) -> state     # data, particles, optimizer state: one pytree
    step(config, state, key) -> state           # one step of the dynamic
    record(config, state) -> {name: array}      # observables, recorded at step 0 and every `record_every` steps
    final(config, state) -> {name: array}       # what is kept of the last state, and the closed-form theory

A sim whose theory needs host-side solvers (an LP, an SDP) computes it before the run in its `Spec.prepare(config)`;
the engine passes the result, one per member, to `init` as `prepared`.

`simulate(sim, config, key)` composes them into one function that `jit` and `vmap` take. The sweep engine uses the
same pieces through `start`/`advance`/`finish`, so that a long run advances in chunks (progress, checkpoints)
without ever changing the numbers: step t always draws its noise from `fold_in(key, t)`.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Simulation", "Carry", "start", "advance", "finish", "simulate", "num_records"]


class Simulation(NamedTuple):
    """`watch(state)` picks what must stay finite (default: the whole state); constants such as an infinite
    theory bound carried in the state are no divergence."""
    init: Callable[[Any, jax.Array], Any]
    step: Callable[[Any, Any, jax.Array], Any]
    record: Callable[[Any, Any], dict]
    final: Callable[[Any, Any], dict]
    watch: Callable[[Any], Any] = lambda state: state


class Carry(NamedTuple):
    """state: the sim's state; step: steps taken (int32); nonfinite_step: -1, or the first step whose watched state
    held a NaN or inf (exact), or the step of the first record that held an inf (to record resolution: an
    observable such as the loss can overflow before the particles do); key: the dynamics key, from which step t's
    key is `fold_in(key, t)`."""
    state: Any
    step: jax.Array
    nonfinite_step: jax.Array
    key: jax.Array


def num_records(steps: int, record_every: int) -> int:
    """Records of a run: the initial state, then one every `record_every` steps."""
    return steps // record_every + 1


def _all_finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)
              if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _any_inf(records: dict) -> jax.Array:
    # Records may be NaN by design (an oracle that does not apply), never inf.
    return jnp.any(jnp.stack([jnp.any(jnp.isinf(v)) for v in jax.tree_util.tree_leaves(records)]))


def _flag(nonfinite, bad, at):
    return jnp.where((nonfinite < 0) & bad, at, nonfinite).astype(jnp.int32)


def start(sim: Simulation, config, key, *prepared) -> tuple[Carry, dict]:
    """The initial carry and the step-0 record (each record value gets a leading `step` axis of length 1)."""
    init_key, dynamics_key = jax.random.split(key)
    state = sim.init(config, init_key, *prepared)
    record = sim.record(config, state)
    nonfinite = _flag(jnp.int32(-1), ~_all_finite(sim.watch(state)) | _any_inf(record), 0)
    carry = Carry(state, jnp.zeros((), jnp.int32), nonfinite, dynamics_key)
    return carry, jax.tree_util.tree_map(lambda x: x[None], record)


def advance(sim: Simulation, config, carry: Carry, num: int, record_every: int) -> tuple[Carry, dict]:
    """Takes `num * record_every` steps and returns the `num` records taken after each block of `record_every`."""

    def one_step(c: Carry, _):
        state = sim.step(config, c.state, jax.random.fold_in(c.key, c.step))
        nonfinite = _flag(c.nonfinite_step, ~_all_finite(sim.watch(state)), c.step + 1)
        return Carry(state, c.step + 1, nonfinite, c.key), None

    def one_record(c: Carry, _):
        c, _ = jax.lax.scan(one_step, c, None, length=record_every)
        record = sim.record(config, c.state)
        return c._replace(nonfinite_step=_flag(c.nonfinite_step, _any_inf(record), c.step)), record

    return jax.lax.scan(one_record, carry, None, length=num)


def finish(sim: Simulation, config, carry: Carry) -> dict:
    out = dict(sim.final(config, carry.state))
    out["nonfinite_step"] = carry.nonfinite_step
    return out


def simulate(sim: Simulation, config, key, *prepared, steps: int, record_every: int) -> dict:
    """The whole run as one function: final outputs plus every record, stacked along a leading `step` axis."""
    carry, first = start(sim, config, key, *prepared)
    carry, rest = advance(sim, config, carry, steps // record_every, record_every)
    records = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), first, rest)
    return {**finish(sim, config, carry), **records}
