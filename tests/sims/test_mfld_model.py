"""mfld model: the particle drift is N times the gradient of the averaged loss (the first variation's gradient),
and the hand-written tanh pullback equals autodiff."""

import chex
import jax
import jax.numpy as jnp
import pytest

import sims
from sims.mfld import model


def _setup(model_name, loss="squared", dim=3):
    config = sims.make_config("mfld", model=model_name, dim=dim if model_name != "tanh2d" else 1, loss=loss,
                              dataset="circles" if loss == "logistic" else "teacher", particles=7)
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(k1, (7, model.param_dim(config)))
    z = jax.random.normal(k2, (5, config.dim))
    y = jnp.sign(jax.random.normal(k3, (5,))) if loss == "logistic" else jax.random.normal(k3, (5,))
    return config, x, z, y


@pytest.mark.parametrize("model_name,loss", [("linear", "squared"), ("tanh2d", "squared"), ("tanh", "squared"),
                                             ("tanh", "logistic")])
def test_drift_is_n_times_gradient_of_averaged_loss(model_name, loss):
    """d/dx^i F0((1/N) sum_k delta_{x^k}) = (1/N) grad dF0/dmu(rho)(x^i): the drift needs the factor N (the theory
    note's first pitfall). float64 autodiff of the same expression: agreement to 1e-12."""
    config, x, z, y = _setup(model_name, loss, dim=2 if loss == "logistic" else 3)
    averaged = lambda x: jnp.mean(model.loss_value(config, jnp.mean(model.neurons(config, x, z), axis=0), y))
    chex.assert_trees_all_close(model.first_variation_grad(config, x, z, y), x.shape[0] * jax.grad(averaged)(x),
                                rtol=1e-12, atol=1e-14)
