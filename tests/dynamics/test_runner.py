"""The runner (dynamics/runner.py) on a toy sim: a batch equals its members run alone, the memory estimate counts the
context once and the carry twice, scan chunks have one shape, and `clear_caches` makes a redefined function run."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dynamics import devices, runner, simulator
from dynamics.checkpoint import Checkpoints
from tests.dynamics import toy


def _batch(sim, configs, seeds):
    return runner.run_batch(sim, configs, seeds, label="toy", quiet=True, devices=devices.sweep_devices()[:1],
                            checkpoints=Checkpoints(None), batch=(0, 0))


@pytest.mark.parametrize("total", [1, 7, 20, 100, 1000, 997])
def test_chunk_records_divides_the_records_into_chunks_of_one_shape(total):
    chunk = runner.chunk_records(total)
    assert total % chunk == 0
    # at most ~20 chunks unless total has no divisor near total/20 (a prime: one chunk)
    assert chunk <= math.ceil(total / 20) or chunk == total


def test_batch_members_equal_their_single_runs():
    configs = [toy.Config(decay=0.2), toy.Config(decay=0.7)]
    outputs, records = _batch(toy.SIMULATOR, configs, [3, 4])
    assert set(records) == {"mean_square"}
    for i, (cfg, seed) in enumerate(zip(configs, [3, 4])):
        one = simulator.simulate(toy.SIMULATOR, cfg, jax.random.key(seed))
        np.testing.assert_array_equal(outputs["walkers"][i], one["walkers"])
        # The state is elementwise, so bit-identical; a reduction over walkers may be vectorized in another order
        # under vmap: a few ulp (README, "Sweeps at scale").
        np.testing.assert_allclose(outputs["mean_square"][i], one["mean_square"], rtol=8 * np.finfo(float).eps)


def test_memory_estimate_counts_the_context_once_and_the_carry_twice():
    cfg = toy.Config(walkers=1000, width=5000, steps=40, record_every=2)
    itemsize = jnp.dtype(jnp.result_type(float)).itemsize
    context = 5000 * itemsize
    carry = 1000 * itemsize + 4 + 4  # the walkers, the step and nonfinite_step counters (the key is not counted)
    records = itemsize * runner.chunk_records(cfg.steps // cfg.record_every)  # one scalar per record, one chunk
    assert runner.member_bytes(toy.SIMULATOR, cfg) == context + 2 * carry + records


def test_a_patched_function_the_sim_calls_runs_only_after_clear_caches(monkeypatch):
    # Programs are cached by the sim's own functions and shapes: patching a function they call while traced
    # (toy.kick) is invisible until the caches are cleared (the mutation tests' `fresh_programs`).
    cfg = toy.Config(walkers=5)
    runner.clear_caches()
    before = _batch(toy.SIMULATOR, [cfg], [0])[0]["walkers"]
    kick = toy.kick
    monkeypatch.setattr(toy, "kick", lambda key, shape, dtype: 3 * kick(key, shape, dtype))
    np.testing.assert_array_equal(_batch(toy.SIMULATOR, [cfg], [0])[0]["walkers"], before)  # the cached program
    runner.clear_caches()
    assert not np.array_equal(_batch(toy.SIMULATOR, [cfg], [0])[0]["walkers"], before)
    runner.clear_caches()
