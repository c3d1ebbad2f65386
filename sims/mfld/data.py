"""Training and test data of `mfld`. Every data set is a pure function of the config and a key, so it can be drawn
inside a jitted, vmapped run; the four-point set of the tanh2d oracle is fixed."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Data", "make_data", "FOUR_POINT_Z", "FOUR_POINT_Y"]

# The theory note's oracle 2 (four scalar inputs and targets).
FOUR_POINT_Z = (0.5, 1.0, 2.0, 3.0)
FOUR_POINT_Y = (0.2, 0.5, 0.8, 0.9)
# The paper's multi-index task: y = (R_bar / k) sum_{j <= k} tanh(z_j), with R_bar = 100 and k = d.
MULTI_INDEX_SCALE = 100.0


class Data(NamedTuple):
    """z_train: (n, d) inputs; y_train: (n,) targets (labels +-1 for circles); z_test: (n_test, d); y_test: (n_test,)."""
    z_train: jax.Array
    y_train: jax.Array
    z_test: jax.Array
    y_test: jax.Array


def _teacher(config, key, z):
    """A fixed tanh teacher: y = (2/k) sum_j tanh(w_j . z) with unit-norm random directions w_j (k = teacher_width)."""
    w = jax.random.normal(key, (config.teacher_width, config.dim), z.dtype)
    w = w / jnp.linalg.norm(w, axis=1, keepdims=True)
    return 2.0 * jnp.mean(jnp.tanh(z @ w.T), axis=1)


def _gaussian_linear(config, key, z):
    """y = beta . z with beta ~ N(0, I/d) fixed by the data key."""
    beta = jax.random.normal(key, (config.dim,), z.dtype) / jnp.sqrt(config.dim)
    return z @ beta


def _circles(config, key, n):
    """Two concentric circles of radii 1 (label -1) and 2 (label +1), radial noise N(0, noise^2)."""
    k_label, k_angle, k_noise = jax.random.split(key, 3)
    label = jnp.where(jax.random.bernoulli(k_label, 0.5, (n,)), 1.0, -1.0)
    angle = jax.random.uniform(k_angle, (n,), maxval=2 * jnp.pi)
    radius = 1.5 + 0.5 * label + config.noise * jax.random.normal(k_noise, (n,))
    return jnp.stack([radius * jnp.cos(angle), radius * jnp.sin(angle)], axis=1), label


def _draw(config, task_key, key, n, dtype):
    """n samples (z, y) of the config's data set; `task_key` fixes the task (teacher, beta) across draws."""
    if config.dataset == "four_point":
        return (jnp.asarray(FOUR_POINT_Z, dtype)[:, None], jnp.asarray(FOUR_POINT_Y, dtype))
    if config.dataset == "circles":
        z, y = _circles(config, key, n)
        return z.astype(dtype), y.astype(dtype)
    k_z, k_noise = jax.random.split(key)
    z = jax.random.normal(k_z, (n, config.dim), dtype)
    if config.dataset == "teacher":
        y = _teacher(config, task_key, z)
    elif config.dataset == "gaussian_linear":
        y = _gaussian_linear(config, task_key, z)
    else:  # multi_index
        y = MULTI_INDEX_SCALE * jnp.mean(jnp.tanh(z), axis=1)
        return z, y
    return z, y + config.noise * jax.random.normal(k_noise, (n,), dtype)


def make_data(config) -> Data:
    """The data of `config`, drawn from `jax.random.key(config.data_seed)` (so all seeds of a sweep share it).

    four_point has no distribution: its test set is its training set.
    """
    dtype = jnp.result_type(float)
    key = jax.random.key(config.data_seed)
    k_task, k_train, k_test = jax.random.split(key, 3)
    z, y = _draw(config, k_task, k_train, config.samples, dtype)
    z_test, y_test = _draw(config, k_task, k_test, config.test_samples, dtype)
    return Data(z, y, z_test, y_test)
