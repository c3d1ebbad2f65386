"""Policies p_theta(.|x) = softmax(z_theta(x)) over K outputs, rewards, and the logit-space update of each objective.

Every objective's parameter update is  eta * J^T g  with J = dz/dtheta (a VJP through the policy) and g (n, K) the
objective's gradient with respect to the logits, per input:

    RFT, exact:  dV/dz_k = p_k (r_k - V)                               (the gradient identity; V = sum_k p_k r_k)
    SFT:         d log p(y*)/dz_k = 1[k = y*] - p_k
    continuum:   V^-q dV/dz                                          (q = 0: RFT; q = 1 with the indicator: SFT)
    REINFORCE:   mean_s (r_s - b_s)(e_{y_s} - p), y_s ~ p, b_s the mean reward of the other samples (unbiased)
    normalized:  mean_s A_s (e_{y_s} - p), A_s = (r_s - mean r) / std_s (GRPO: 0 when all samples agree)
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["MLP", "rewards", "target_logits", "rft_logit_gradient", "sft_logit_gradient", "continuum_gradient",
           "sampled_gradient", "logits", "logits_one", "direction"]


class MLP(nn.Module):
    """One tanh hidden layer of `width`, K outputs."""
    width: int
    outputs: int

    @nn.compact
    def __call__(self, x):
        dtype = jnp.result_type(float)  # float64 parameters under x64 (flax's default is float32)
        return nn.Dense(self.outputs, param_dtype=dtype)(jnp.tanh(nn.Dense(self.width, param_dtype=dtype)(x)))


def rewards(kind: str, y_star: jax.Array, K: int, dtype) -> jax.Array:
    """r (n, K): 1[k = y*], or graded 1 - |k - y*| / (K - 1)."""
    k = jnp.arange(K)
    if kind == "indicator":
        return (k[None, :] == y_star[:, None]).astype(dtype)
    return (1.0 - jnp.abs(k[None, :] - y_star[:, None]) / (K - 1)).astype(dtype)


def target_logits(p0: jax.Array, y_star: jax.Array, K: int) -> jax.Array:
    """Logits (n, K) with p(y*) = p0 exactly and the other K - 1 logits equal (0): z_y* = ln((K - 1) p0 / (1 - p0))."""
    u = jnp.log((K - 1) * p0 / (1 - p0))
    return jnp.where(jnp.arange(K)[None, :] == y_star[:, None], u[:, None], 0.0)


def rft_logit_gradient(p: jax.Array, r: jax.Array) -> jax.Array:
    """dV/dz (n, K) = p * (r - V): the exact RFT gradient in logit space."""
    V = jnp.sum(p * r, axis=-1, keepdims=True)
    return p * (r - V)


def sft_logit_gradient(p: jax.Array, onehot: jax.Array) -> jax.Array:
    """d log p(y*)/dz (n, K) = e_y* - p."""
    return onehot - p


def continuum_gradient(p: jax.Array, r: jax.Array, q) -> jax.Array:
    """V^-q dV/dz (n, K): the gradient of V^(1-q)/(1-q) (of log V at q = 1)."""
    V = jnp.sum(p * r, axis=-1, keepdims=True)
    return V ** (-q) * rft_logit_gradient(p, r)


def sampled_gradient(p: jax.Array, r: jax.Array, key, samples: int, normalized: bool) -> jax.Array:
    """A Monte-Carlo estimate (n, K) of dV/dz from `samples` outputs per input: REINFORCE with the leave-one-out
    baseline (unbiased), or GRPO's std-normalized advantages (normalized=True)."""
    n, K = p.shape
    y = jax.random.categorical(key, jnp.log(p)[:, None, :], axis=-1, shape=(n, samples))  # (n, S)
    r_s = jnp.take_along_axis(r, y, axis=1)  # (n, S)
    if normalized:
        std = jnp.std(r_s, axis=1, keepdims=True)
        adv = jnp.where(std > 0, (r_s - jnp.mean(r_s, axis=1, keepdims=True)) / jnp.where(std > 0, std, 1.0), 0.0)
    else:
        adv = r_s - (jnp.sum(r_s, axis=1, keepdims=True) - r_s) / (samples - 1)
    score = jax.nn.one_hot(y, K, dtype=p.dtype) - p[:, None, :]  # (n, S, K): d log p(y_s) / dz
    return jnp.mean(adv[..., None] * score, axis=1)


def logits(config, ctx: dict, params) -> jax.Array:
    """z (n, K) of every input."""
    if config.policy == "tabular":
        return params
    if config.policy == "linear":
        return ctx["x"] @ params.T
    return MLP(config.width, config.outputs).apply(params, ctx["x"])


def logits_one(config, ctx: dict, params, i) -> jax.Array:
    """z (K,) of input i alone (for per-input gradients)."""
    if config.policy == "tabular":
        return params[i]
    if config.policy == "linear":
        return params @ ctx["x"][i]
    return MLP(config.width, config.outputs).apply(params, ctx["x"][i])


def direction(config, p: jax.Array, r: jax.Array, onehot: jax.Array, step, key) -> jax.Array:
    """The objective's logit gradient g (n, K) at step `step` (the update is eta J^T g)."""
    m = config.method
    if m == "rft":
        return rft_logit_gradient(p, r)
    if m == "sft":
        return sft_logit_gradient(p, onehot)
    if m == "continuum":
        return continuum_gradient(p, r, config.q)
    if m == "sft_then_rft":
        return jnp.where(step < config.warmup, sft_logit_gradient(p, onehot), rft_logit_gradient(p, r))
    return sampled_gradient(p, r, key, config.samples, m == "normalized")
