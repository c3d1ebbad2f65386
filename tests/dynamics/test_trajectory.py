"""dynamics.trajectory: records every k steps, chunking that never changes the numbers, and divergence detection."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

import sims
from dynamics import trajectory

# x <- x * 1e100 from x = 1: float64 overflows (max 1.8e308) exactly at step 4.
OVERFLOW = trajectory.Simulation(
    init=lambda config, key: jnp.ones(()),
    step=lambda config, x, key: x * 1e100,
    record=lambda config, x: {"x": x},
    final=lambda config, x: {})


def test_first_nonfinite_step_is_reported_exactly():
    out = trajectory.simulate(OVERFLOW, None, jax.random.key(0), steps=8, record_every=1)
    assert int(out["nonfinite_step"]) == 4


def test_records_before_divergence_are_kept():
    out = trajectory.simulate(OVERFLOW, None, jax.random.key(0), steps=8, record_every=1)
    assert np.all(np.isfinite(out["x"][:4])) and not np.any(np.isfinite(out["x"][4:]))


def test_finite_run_reports_no_divergence():
    finite = OVERFLOW._replace(step=lambda config, x, key: x * 0.5)
    assert int(trajectory.simulate(finite, None, jax.random.key(0), steps=8, record_every=2)["nonfinite_step"]) == -1


def test_records_start_at_step_zero_and_follow_every_k_steps():
    count = OVERFLOW._replace(step=lambda config, x, key: x + 1)
    out = trajectory.simulate(count, None, jax.random.key(0), steps=12, record_every=3)
    chex.assert_trees_all_equal(out["x"], jnp.array([1.0, 4.0, 7.0, 10.0, 13.0]))


def test_chunked_engine_run_equals_one_scan():
    """The engine advances in chunks (here 10 records of 1); `simulate` runs one scan. Step t draws its noise from
    fold_in(key, t) either way, so the arrays agree to float64 rounding."""
    params = dict(preset="linear_oracle", particles=4, steps=100, record_every=10, test_samples=4)
    engine = sims.run("mfld", seed=3, **params)
    mfld = sims.load("mfld")
    whole = jax.jit(mfld.simulate)(sims.make_config("mfld", **params), jax.random.key(3))
    np.testing.assert_allclose(engine.final_particles.values, whole["final_particles"], rtol=1e-10)
    np.testing.assert_allclose(engine.loss.values, whole["loss"], rtol=1e-10)
