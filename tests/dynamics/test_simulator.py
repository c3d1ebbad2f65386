"""The declared contract (dynamics/simulator.py): the engine's one check of steps against record_every, the gallery's
plan, the declared axes and seedless outputs, and `simulate` as one pure function of (config, key)."""

import jax
import numpy as np
import pytest

from dynamics import simulator, trajectory
from dynamics.config import ConfigError
from tests.dynamics import toy


def test_record_every_not_dividing_steps_is_one_line_naming_both():
    with pytest.raises(ConfigError, match=r"^--record_every=3: must divide --steps=10; allowed: a divisor of 10$"):
        simulator.check_steps(toy.Config(steps=10, record_every=3))


def test_gallery_defaults_to_every_preset_with_its_own_sweep():
    assert simulator.gallery_runs(toy.SIMULATOR) == {"fast": None, "slow": None}
    chosen = toy.SIMULATOR._replace(gallery={"slow": {"decay": [0.8, 0.9]}})
    assert simulator.gallery_runs(chosen) == {"slow": {"decay": [0.8, 0.9]}}


def test_declared_axes_and_seedless_outputs_are_read_from_the_outputs():
    assert simulator.dims(toy.SIMULATOR, "walkers") == ("walker",)
    assert simulator.dims(toy.SIMULATOR, "nonfinite_step") == ()
    assert simulator.seedless(toy.SIMULATOR) == {"offset", "theory_mean_square"}


def test_simulate_is_the_engine_run_and_takes_jit_and_vmap():
    cfg = toy.Config()
    keys = jax.random.split(jax.random.key(0), 3)
    batched = jax.jit(jax.vmap(lambda k: simulator.simulate(toy.SIMULATOR, cfg, k)))(keys)
    for i, k in enumerate(keys):
        one = trajectory.simulate(toy.SIMULATOR.simulation, cfg, k, steps=cfg.steps, record_every=cfg.record_every)
        np.testing.assert_array_equal(batched["walkers"][i], one["walkers"])
        # The state is elementwise, so bit-identical; a reduction over walkers may be vectorized in another order
        # under vmap: a few ulp (README, "Sweeps at scale").
        np.testing.assert_allclose(batched["mean_square"][i], one["mean_square"], rtol=8 * np.finfo(float).eps)
    assert batched["mean_square"].shape == (3, cfg.steps // cfg.record_every + 1)
