"""Training and test data of `mfld`. Every data set is a pure function of the config and a key, so it can be drawn
inside a jitted, vmapped run; the four-point set of the tanh2d oracle is fixed."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from dynamics.langevin import gaussian

__all__ = ["Data", "make_data", "FOUR_POINT_Z", "FOUR_POINT_Y"]

# The theory note's oracle 2 (four scalar inputs and targets).
FOUR_POINT_Z = (0.5, 1.0, 2.0, 3.0)
FOUR_POINT_Y = (0.2, 0.5, 0.8, 0.9)
# The paper's multi-index task: y = (R_bar / k) sum_{j <= k} tanh(z_j), with R_bar = 100 and k = d.
MULTI_INDEX_SCALE = 100.0


class Data(NamedTuple):
    """z_train: (n, d) inputs; y_train: (n,) targets (labels +-1 for circles); z_test: (n_test, d);
    y_test: (n_test,)."""
    z_train: jax.Array
    y_train: jax.Array
    z_test: jax.Array
    y_test: jax.Array


def _teacher(config, key, z):
    """A fixed tanh teacher: y = (2/k) sum_j tanh(w_j . z) with unit-norm random directions w_j (k = teacher_width)."""
    w = gaussian(key, (config.teacher_width, config.dim), z.dtype)
    w = w / jnp.linalg.norm(w, axis=1, keepdims=True)
    return 2.0 * jnp.mean(jnp.tanh(z @ w.T), axis=1)


def _gaussian_linear(config, key, z):
    """y = beta . z with beta ~ N(0, I/d) fixed by the data key."""
    beta = gaussian(key, (config.dim,), z.dtype) / jnp.sqrt(config.dim)
    return z @ beta


def _draw(config, task_key, key, n, dtype):
    """n samples (z, y) of the config's data set; `task_key` fixes the task (teacher, beta) across draws.

    One normal draw of shape (n, d + 1) gives the inputs and the label noise (circles: the angle from two normals,
    the 2-D noise from two more), so a data set costs one random-number kernel to compile and run.
    """
    if config.dataset == "circles":
        # As sklearn's make_circles: balanced classes on radii 1 (label -1) and 2 (+1), isotropic Gaussian noise of
        # std `noise` on each coordinate.
        g = gaussian(key, (n, 4), dtype)
        label = jnp.where(jnp.arange(n) % 2 == 0, -1.0, 1.0).astype(dtype)
        angle = jnp.arctan2(g[:, 0], g[:, 1])  # uniform on the circle: the angle of an isotropic Gaussian
        radius = 1.5 + 0.5 * label
        circle = jnp.stack([radius * jnp.cos(angle), radius * jnp.sin(angle)], axis=1)
        return circle + config.noise * g[:, 2:], label
    g = gaussian(key, (n, config.dim + 1), dtype)
    z, label_noise = g[:, :-1], config.noise * g[:, -1]
    if config.dataset == "teacher":
        return z, _teacher(config, task_key, z) + label_noise
    if config.dataset == "gaussian_linear":
        return z, _gaussian_linear(config, task_key, z) + label_noise
    return z, MULTI_INDEX_SCALE * jnp.mean(jnp.tanh(z), axis=1)  # multi_index: noiseless, as in the paper


def make_data(config) -> Data:
    """The data of `config`, drawn from `jax.random.key(config.data_seed)` (so all seeds of a sweep share it).

    four_point has no distribution: its test set is its training set.
    """
    dtype = jnp.result_type(float)
    if config.dataset == "four_point":
        z, y = jnp.asarray(FOUR_POINT_Z, dtype)[:, None], jnp.asarray(FOUR_POINT_Y, dtype)
        return Data(z, y, z, y)
    task_key, sample_key = jax.random.split(jax.random.key(config.data_seed))
    n = config.samples
    z, y = _draw(config, task_key, sample_key, n + config.test_samples, dtype)
    return Data(z[:n], y[:n], z[n:], y[n:])
