"""Trajectories: one `lax.scan` that steps a dynamic and records observables every `record_every` steps.

A simulator hands the engine its dynamics as a `Simulation`, five pure functions of its config:

    setup(config, key[, prepared]) -> context        # constants: data, targets, theory; built once per member
    init(config, context, key) -> state              # what evolves: particles, weights, optimizer state
    step(config, context, state, key) -> state       # one step of the dynamic
    record(config, context, state) -> {name: array}  # observables at step 0 and every `record_every` steps
    final(config, context, state) -> {name: array}   # what is kept of the last state, and the theory, once

The context is diffrax's `args`: passed unchanged to every call and never carried through the scan, so it is not
copied per step, not checkpointed (a resume rebuilds it from the config and key), not counted twice in the memory
estimate, and not watched for divergence. What must stay finite, from step 0 on, is `watch(state)`: by default the
whole state; a sim whose state holds an infinity by design (a log-scale of -inf for an optimizer's zero momentum)
narrows it to the part that diverges (its parameters).
`setup` and `init` receive the same key, so a sim may split it once and give each its part. A sim whose theory needs
host-side solvers (an LP, an SDP) computes them before the run (`Simulator.prepare`); the engine passes the result,
one per member, to `setup` as `prepared`.

`simulate(sim, config, key)` composes them into one function that `jit` and `vmap` take. The sweep engine uses the
same pieces through `setup`/`start`/`advance`/`finish`, so that a long run advances in chunks (progress,
checkpoints) without ever changing the numbers: step t always draws its noise from `fold_in(key, t)`.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Simulation", "Carry", "setup", "start", "advance", "finish", "simulate", "num_records"]


class Simulation(NamedTuple):
    """The five functions of the module docstring."""
    setup: Callable[..., Any]
    init: Callable[[Any, Any, jax.Array], Any]
    step: Callable[[Any, Any, Any, jax.Array], Any]
    record: Callable[[Any, Any, Any], dict]
    final: Callable[[Any, Any, Any], dict]
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


def _keys(key) -> tuple[jax.Array, jax.Array]:
    """(the key of setup and init, the dynamics key)."""
    return tuple(jax.random.split(key))


def setup(sim: Simulation, config, key, *prepared):
    """The member's context (its constants)."""
    return sim.setup(config, _keys(key)[0], *prepared)


def start(sim: Simulation, config, context, key) -> tuple[Carry, dict]:
    """The initial carry and the step-0 record (each record value gets a leading `step` axis of length 1)."""
    init_key, dynamics_key = _keys(key)
    state = sim.init(config, context, init_key)
    record = sim.record(config, context, state)
    nonfinite = _flag(jnp.int32(-1), ~_all_finite(sim.watch(state)) | _any_inf(record), 0)
    carry = Carry(state, jnp.zeros((), jnp.int32), nonfinite, dynamics_key)
    return carry, jax.tree_util.tree_map(lambda x: x[None], record)


def advance(sim: Simulation, config, context, carry: Carry, num: int, record_every: int) -> tuple[Carry, dict]:
    """Takes `num * record_every` steps and returns the `num` records taken after each block of `record_every`."""

    def one_step(c: Carry, _):
        state = sim.step(config, context, c.state, jax.random.fold_in(c.key, c.step))
        nonfinite = _flag(c.nonfinite_step, ~_all_finite(sim.watch(state)), c.step + 1)
        return Carry(state, c.step + 1, nonfinite, c.key), None

    def one_record(c: Carry, _):
        c, _ = jax.lax.scan(one_step, c, None, length=record_every)
        record = sim.record(config, context, c.state)
        return c._replace(nonfinite_step=_flag(c.nonfinite_step, _any_inf(record), c.step)), record

    return jax.lax.scan(one_record, carry, None, length=num)


def finish(sim: Simulation, config, context, carry: Carry) -> dict:
    out = dict(sim.final(config, context, carry.state))
    out["nonfinite_step"] = carry.nonfinite_step
    return out


def simulate(sim: Simulation, config, key, *prepared, steps: int, record_every: int) -> dict:
    """The whole run as one function: final outputs plus every record, stacked along a leading `step` axis."""
    context = setup(sim, config, key, *prepared)
    carry, first = start(sim, config, context, key)
    carry, rest = advance(sim, config, context, carry, steps // record_every, record_every)
    records = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), first, rest)
    return {**finish(sim, config, context, carry), **records}
