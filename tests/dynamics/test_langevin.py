"""dynamics.langevin: noisy gradient descent as an optax chain, against the exact discrete-time Ornstein-Uhlenbeck law.

For the potential V(x) = kappa x^2 / 2, x <- x - eta (kappa x + 2 l2 x) + sqrt(2 lambda eta) xi is an AR(1) chain with
stationary variance lambda / (k (1 - eta k / 2)), k = kappa + 2 l2, and mean 0.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dynamics import langevin


def _chain(kappa, lr, temperature, l2, steps, replicas, key):
    init, step = langevin.particle_dynamics(lambda x: kappa * x, langevin.noisy_gd(lr, temperature, l2))
    state = init(jnp.zeros((replicas,)))
    return jax.lax.scan(lambda s, t: (step(s, jax.random.fold_in(key, t)), None), state, jnp.arange(steps))[0]


@pytest.mark.parametrize("lr", [0.05, 0.2])
def test_noisy_gd_stationary_variance_matches_discrete_ornstein_uhlenbeck(lr):
    kappa, temperature, l2, replicas = 1.0, 0.3, 0.25, 200_000
    # 40 relaxation times (rate ~ k) from x = 0: the transient is e^-80 of the variance.
    steps = int(40 / ((kappa + 2 * l2) * lr))
    x = jax.jit(_chain, static_argnums=(4, 5))(kappa, lr, temperature, l2, steps, replicas, jax.random.key(0)).params
    k = kappa + 2 * l2
    want = temperature / (k * (1 - lr * k / 2))
    # The sample variance of R Gaussian draws has relative standard error sqrt(2/R) = 0.3%; allow 4 of them.
    np.testing.assert_allclose(np.var(np.asarray(x)), want, rtol=4 * np.sqrt(2 / replicas))
    assert abs(float(jnp.mean(x))) < 4 * np.sqrt(want / replicas)


def test_zero_temperature_is_plain_gradient_descent_with_weight_decay():
    init, step = langevin.particle_dynamics(lambda x: 2.0 * x, langevin.noisy_gd(0.1, 0.0, 0.5))
    state = step(init(jnp.ones(3)), jax.random.key(0))
    chex.assert_trees_all_close(state.params, jnp.full(3, 1 - 0.1 * (2.0 + 1.0)))


def test_langevin_noise_is_a_function_of_the_key():
    init, step = langevin.particle_dynamics(lambda x: x, langevin.noisy_gd(0.1, 1.0, 0.0))
    s = init(jnp.zeros(4))
    chex.assert_trees_all_equal(step(s, jax.random.key(1)), step(s, jax.random.key(1)))
    assert not np.allclose(step(s, jax.random.key(1)).params, step(s, jax.random.key(2)).params)
