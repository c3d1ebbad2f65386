"""The linear multiclass classifier of `implicit_bias`, its losses, margins and the gradient in log space.

Logits z_i = W h_i. For each loss, the derivative with respect to an off-class logit c != y_i is positive and its
logarithm is computed directly: log S_ic (cross-entropy), z_c - z_y (exponential), log sigmoid(z_c - z_y) (PairLogLoss).
The true class's derivative is minus their sum. So the gradient is exp(s) * G with s the largest off-class log-weight
and G = (1/n) sum_i sum_{c != y_i} exp(l_ic - s) (e_c - e_{y_i}) h_i^T: nothing is computed as 1 - S_y, which rounds
to 0 long before the off-class terms vanish (the theory note's trap).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dynamics.optimizers import LogScaled

__all__ = ["log_scaled_gradient", "logits", "loss_value", "margin", "off_class_log_weights"]


def logits(W_kd, x_nd):
    """z = x W^T: (n, k)."""
    return x_nd @ W_kd.T


def _true(z_nk, y_n):
    return jnp.take_along_axis(z_nk, y_n[:, None], axis=1)


def off_class_log_weights(config, z_nk, y_n):
    """log dl_i/dz_ic for c != y_i, and -inf at c = y_i: (n, k)."""
    if config.loss == "cross_entropy":
        weights = jax.nn.log_softmax(z_nk, axis=1)
    elif config.loss == "exponential":
        weights = z_nk - _true(z_nk, y_n)
    else:
        weights = jax.nn.log_sigmoid(z_nk - _true(z_nk, y_n))
    return jnp.where(jax.nn.one_hot(y_n, z_nk.shape[1], dtype=bool), -jnp.inf, weights)


def log_scaled_gradient(config, W_kd, x_nd, y_n) -> LogScaled:
    """grad L(W) = exp(log_scale) * mantissa, with no cancellation (see the module docstring)."""
    log_w = off_class_log_weights(config, logits(W_kd, x_nd), y_n)
    scale = jnp.max(log_w)
    off = jnp.exp(log_w - scale)
    dz = off - jax.nn.one_hot(y_n, W_kd.shape[0], dtype=off.dtype) * jnp.sum(off, axis=1, keepdims=True)
    return LogScaled(scale, dz.T @ x_nd / x_nd.shape[0])


def loss_value(config, z_nk, y_n):
    """The mean loss, from the margins z_y - z_c so that small losses keep their precision."""
    diff = z_nk - _true(z_nk, y_n)
    off = jnp.where(jax.nn.one_hot(y_n, z_nk.shape[1], dtype=bool), -jnp.inf, diff)
    if config.loss == "cross_entropy":
        return jnp.mean(jax.nn.softplus(jax.nn.logsumexp(off, axis=1)))
    if config.loss == "exponential":
        return jnp.mean(jnp.sum(jnp.exp(off), axis=1))
    return jnp.mean(jnp.sum(jnp.where(jnp.isfinite(off), jax.nn.softplus(off), 0.0), axis=1))


def margin(z_nk, y_n):
    """m(W) = min_i min_{c != y_i} (z_{i y_i} - z_ic)."""
    diff = _true(z_nk, y_n) - z_nk
    return jnp.min(jnp.where(jax.nn.one_hot(y_n, z_nk.shape[1], dtype=bool), jnp.inf, diff))
