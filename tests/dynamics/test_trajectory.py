"""dynamics.trajectory: records every k steps, chunking that never changes the numbers, and divergence detection."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

import sims
from dynamics import simulator, trajectory

# x <- x * 1e100 from x = 1: float64 overflows (max 1.8e308) exactly at step 4.
OVERFLOW = trajectory.Simulation(
    setup=lambda config, key: jnp.inf,  # a constant context may be infinite: it is no divergence
    init=lambda config, context, key: jnp.ones(()),
    step=lambda config, context, x, key: x * 1e100,
    record=lambda config, context, x: {"x": x},
    final=lambda config, context, x: {})


def test_first_nonfinite_step_is_reported_exactly():
    out = trajectory.simulate(OVERFLOW, None, jax.random.key(0), steps=8, record_every=1)
    assert int(out["nonfinite_step"]) == 4


def test_records_before_divergence_are_kept():
    out = trajectory.simulate(OVERFLOW, None, jax.random.key(0), steps=8, record_every=1)
    assert np.all(np.isfinite(out["x"][:4])) and not np.any(np.isfinite(out["x"][4:]))


def test_finite_run_reports_no_divergence():
    finite = OVERFLOW._replace(step=lambda config, context, x, key: x * 0.5)
    assert int(trajectory.simulate(finite, None, jax.random.key(0), steps=8, record_every=2)["nonfinite_step"]) == -1


def test_records_start_at_step_zero_and_follow_every_k_steps():
    count = OVERFLOW._replace(step=lambda config, context, x, key: x + 1)
    out = trajectory.simulate(count, None, jax.random.key(0), steps=12, record_every=3)
    chex.assert_trees_all_equal(out["x"], jnp.array([1.0, 4.0, 7.0, 10.0, 13.0]))


def test_chunked_engine_run_equals_one_scan():
    """The engine advances in chunks (here 10 records of 1); `simulate` runs one scan. Step t draws its noise from
    fold_in(key, t) either way, so the arrays agree to float64 rounding."""
    params = dict(particles=100, steps=100, record_every=10)
    engine = sims.run("ou", seed=3, **params)
    whole = jax.jit(lambda c, k: simulator.simulate(sims.load("ou"), c, k))(sims.make_config("ou", **params),
                                                                              jax.random.key(3))
    np.testing.assert_allclose(engine.final_positions.values, whole["final_positions"], rtol=1e-10)
    np.testing.assert_allclose(engine.mean_square.values, whole["mean_square"], rtol=1e-10)


def test_context_is_passed_to_every_call_and_not_carried():
    """setup's context reaches init, step, record and final; the scan carry holds only the state."""
    sim = trajectory.Simulation(
        setup=lambda config, key: jnp.arange(3.0),
        init=lambda config, context, key: jnp.zeros(()),
        step=lambda config, context, x, key: x + context[1],
        record=lambda config, context, x: {"x": x + context[2]},
        final=lambda config, context, x: {"context": context})
    out = trajectory.simulate(sim, None, jax.random.key(0), steps=4, record_every=2)
    chex.assert_trees_all_equal(out["x"], jnp.array([2.0, 4.0, 6.0]))
    chex.assert_trees_all_equal(out["context"], jnp.arange(3.0))
    ctx = trajectory.setup(sim, None, jax.random.key(0))
    carry, _ = trajectory.start(sim, None, ctx, jax.random.key(0))
    assert carry.state.shape == ()
