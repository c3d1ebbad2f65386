"""mfld's particle-blocked tanh step: the same numbers as the unblocked one to round-off, memory O(B n) instead of
O(N n), and the float32 tanh within a few ulp of the exact one."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sims
from sims.mfld import data as data_lib
from sims.mfld import model


def _problem(particles=300, samples=40, dim=5, loss="squared"):
    config = sims.make_config("mfld", particles=particles, samples=samples, dim=2 if loss == "logistic" else dim,
                              loss=loss, dataset="circles" if loss == "logistic" else "teacher")
    data = data_lib.make_data(config)
    x = model.init_particles(config, jax.random.key(1))[0]
    return config, x, data


def test_float32_tanh_is_as_accurate_as_xlas_float32_tanh():
    """Eigen's rational tanh in float32 against float64 tanh, in ulp of the exact value, on a dense grid of [-12, 12]
    and on tiny arguments (relative): at most 6 ulp (measured 5.7, near |u| = 5.9, where the value is within 3e-7 of
    1), and at most 1.5 times the worst error of XLA's own float32 tanh on the same grid (measured 4.4 ulp). It
    saturates to exactly +-1."""
    u = np.concatenate([np.linspace(-12, 12, 200_001), np.geomspace(1e-30, 1e-2, 1001)]).astype(np.float32)
    exact = np.tanh(u.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    worst = {name: np.max(np.abs(np.asarray(f(jnp.asarray(u)), np.float64) - exact) / ulp)
             for name, f in (("rational", model._tanh), ("xla", jnp.tanh))}
    assert worst["rational"] <= 6 and worst["rational"] <= 1.5 * worst["xla"]
    assert model._tanh(jnp.float32(20.0)) == 1.0 and model._tanh(jnp.float32(-20.0)) == -1.0


def test_float64_tanh_is_jnp_tanh_bit_for_bit():
    """float64 runs (the theory checks) keep XLA's tanh: identical bits."""
    u = jnp.linspace(-9.0, 9.0, 1001, dtype=jnp.float64)
    assert np.array_equal(np.asarray(model._tanh(u)), np.asarray(jnp.tanh(u)))


SLOW = pytest.mark.slow


@pytest.mark.parametrize("block", [pytest.param(1, marks=SLOW), 7, pytest.param(300, marks=SLOW)])
@pytest.mark.parametrize("loss", ["squared", pytest.param("logistic", marks=SLOW)])
def test_blocked_gradient_equals_unblocked_to_round_off(block, loss):
    """Blocking only regroups the sum over particles of f_rho (float64: 1e-13 relative), whether or not B divides N
    (zero-padded particles add nothing)."""
    config, x, data = _problem(loss=loss)
    full = model.first_variation_grad(config, x, data.z_train, data.y_train)
    blocked = model.first_variation_grad(dataclasses.replace(config, particle_block=block), x, data.z_train,
                                         data.y_train)
    assert blocked.shape == full.shape
    np.testing.assert_allclose(blocked, full, rtol=1e-13, atol=1e-13 * float(jnp.max(jnp.abs(full))))


@pytest.mark.parametrize("block", [13])
def test_blocked_prediction_equals_unblocked_to_round_off(block):
    config, x, data = _problem()
    full = model.predict(config, x[None], data.z_test)
    blocked = model.predict(dataclasses.replace(config, particle_block=block), x[None], data.z_test)
    np.testing.assert_allclose(blocked, full, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("particles,samples,expected", [(4096, 1024, 4096), (4097, 1024, 4096),
                                                        (1_000_000, 1024, 4096), (4096, 256, 4096),
                                                        (1_000_000, 256, 16384), (10, 1 << 23, 1)])
def test_automatic_block_keeps_one_block_within_the_element_budget(particles, samples, expected):
    """B = N while N n <= 2^22 elements, else 2^22 / n (at least 1)."""
    config = dataclasses.replace(sims.make_config("mfld"), particles=particles, samples=samples)
    assert model.particle_block(config, samples) == expected


@pytest.mark.slow
def test_blocked_step_holds_no_particles_by_samples_array():
    """The compiled blocked drift's temporaries stay below one (N, n) array (float64: N n 8 bytes) at N = 8192,
    n = 512, B = 256; the unblocked drift's exceed it (it stores the (N, n) activations)."""
    config, x, data = _problem(particles=8192, samples=512, dim=4)

    def temp_bytes(block):
        c = dataclasses.replace(config, particle_block=block)
        fn = jax.jit(lambda x: model.first_variation_grad(c, x, data.z_train, data.y_train))
        return fn.lower(x).compile().memory_analysis().temp_size_in_bytes

    one_array = 8192 * 512 * 8
    assert temp_bytes(256) < one_array / 4
    assert temp_bytes(8192) >= one_array


@pytest.mark.slow
def test_blocked_run_equals_unblocked_run_to_round_off():
    """A whole run (noise, records, final test predictions) with B = 64 < N = 200: the same trajectory to 1e-10
    relative in float64 (round-off grows only through the contracting dynamics over 40 steps)."""
    grid = {"particle_block": [0, 64]}
    ds = sims.sweep("mfld", grid, [3], particles=200, samples=30, test_samples=50, dim=3, steps=40, record_every=10,
                    ensemble=2, quiet=True)
    for name in ("final_particles", "test_prediction", "loss", "test_loss", "ensemble_variance"):
        full, blocked = (np.asarray(ds[name].isel(particle_block=i)) for i in (0, 1))
        np.testing.assert_allclose(blocked, full, rtol=1e-10, atol=1e-12, err_msg=name)
