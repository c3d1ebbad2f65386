"""Optimizers that optax lacks, as `optax.GradientTransformation`s: normalized steepest descent in any entrywise or
Schatten p-norm (SignGD, normalized GD, spectral descent), their momentum versions (Signum, momentum-NGD, Muon),
Adam whose epsilon may be 0, and the step size eta_t = lr * t^-decay. Every hyperparameter may be a traced array.

Normalized steepest descent in a norm |.| (Fan, Schmidt, Thrampoulidis 2025, "Implicit Bias of SignGD and Adam on
Multiclass Separable Data"):
    W <- W - eta_t Delta_t,    Delta_t = argmax_{|Delta| <= 1} <grad L, Delta>.
For the entrywise p-norm, Delta = sign(g) |g|^(q-1) / |g|_q^(q-1) with 1/p + 1/q = 1 (p = inf: sign(g); p = 2:
g / |g|_F). For the Schatten p-norm, the same map acts on the singular values (p = inf: U V^T, spectral descent).
Each parameter array is its own matrix: the argmax is taken leaf by leaf.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["steepest_direction", "scale_by_steepest_descent", "polynomial_step", "steepest_descent",
           "scale_by_adam_guarded", "adam", "LogScaled", "log_momentum", "mantissa_direction", "exp_scale",
           "log_adam"]


def _dual_exponent(p: float) -> float:
    if p == math.inf:
        return 1.0
    if p <= 1:
        raise ValueError(f"p={p}: steepest descent needs p > 1 (p = 1 has no unique direction)")
    return p / (p - 1)


def _unit_map(x, q: float):
    """x -> sign(x) |x|^(q-1) / |x|_q^(q-1), with 0 for x = 0 (the argmax of <x, d> over the unit p-ball)."""
    if q == 1.0:
        return jnp.sign(x)
    scale = jnp.max(jnp.abs(x))
    safe = jnp.where(scale > 0, scale, 1.0)
    y = x / safe  # scale-free: the map is homogeneous of degree 0, and this keeps |y|^(q-1) in range
    norm = jnp.sum(jnp.abs(y) ** q) ** ((q - 1) / q)
    return jnp.where(scale > 0, jnp.sign(y) * jnp.abs(y) ** (q - 1) / norm, 0.0)


def steepest_direction(g: jax.Array, p: float = math.inf, kind: str = "entrywise") -> jax.Array:
    """argmax_{|D| <= 1} <g, D> for the entrywise or Schatten p-norm of a vector or matrix g."""
    q = _dual_exponent(p)
    if kind == "entrywise":
        return _unit_map(g, q)
    if kind != "schatten":
        raise ValueError(f"kind={kind!r}: allowed entrywise, schatten")
    u, s, vt = jnp.linalg.svd(g, full_matrices=False)
    return (u * _unit_map(s, q)) @ vt


def scale_by_steepest_descent(p: float = math.inf, kind: str = "entrywise") -> optax.GradientTransformation:
    """Replaces each gradient leaf by its steepest-descent direction in the p-norm (scale-free)."""
    return optax.stateless(lambda updates, params=None: jax.tree_util.tree_map(
        lambda g: steepest_direction(g, p, kind), updates))


def polynomial_step(lr, decay) -> optax.GradientTransformation:
    """Multiplies by -lr * t^-decay at step t = 1, 2, ...; lr and decay may be traced (no recompilation)."""
    def schedule(count):
        return -lr * (count + 1.0) ** (-decay)
    return optax.scale_by_schedule(schedule)


def steepest_descent(lr, decay=0.0, p: float = math.inf, kind: str = "entrywise",
                     momentum=None) -> optax.GradientTransformation:
    """Normalized steepest descent; with `momentum` (beta) the direction is taken of m_t = g_t + beta m_{t-1}:
    Signum (p = inf, entrywise), momentum-NGD (p = 2), Muon (p = inf, Schatten)."""
    chain = [] if momentum is None else [optax.trace(decay=momentum)]
    return optax.chain(*chain, scale_by_steepest_descent(p, kind), polynomial_step(lr, decay))


def scale_by_adam_guarded(b1=0.9, b2=0.99, eps=0.0) -> optax.GradientTransformation:
    """Adam's m_hat / (sqrt(v_hat) + eps), where an entry whose gradient has always been 0 gets 0 instead of 0/0, so
    eps = 0 (the theorem's Adam) is safe."""
    inner = optax.scale_by_adam(b1=b1, b2=b2, eps=0.0)

    def update(updates, state, params=None):
        _, state = inner.update(updates, state, params)
        count = state.count.astype(jnp.result_type(float))
        def direction(m, v):
            m_hat, v_hat = m / (1 - b1 ** count), v / (1 - b2 ** count)
            root = jnp.sqrt(v_hat)
            return jnp.where(root > 0, m_hat / jnp.where(root > 0, root + eps, 1.0), 0.0)
        return jax.tree_util.tree_map(direction, state.mu, state.nu), state

    return optax.GradientTransformation(inner.init, update)


def adam(lr, decay=0.0, b1=0.9, b2=0.99, eps=0.0) -> optax.GradientTransformation:
    """Adam with the step lr * t^-decay and a guarded epsilon (default 0)."""
    return optax.chain(scale_by_adam_guarded(b1, b2, eps), polynomial_step(lr, decay))


# Gradients carried in log scale.
# Late in training on separable data the loss gradient is exp(-margin * |W|): it underflows, and 1 - softmax rounds
# to 0 while the off-class terms do not, so a scale-free method then follows rounding noise. A sim can hand these
# transformations its gradient as LogScaled(log_scale, mantissa), gradient = exp(log_scale) * mantissa, computed in
# log space without cancellation. Scale-free directions use the mantissa; momentum and Adam keep their running
# averages in log scale too; GD multiplies the scale back in.


class LogScaled(NamedTuple):
    """A gradient exp(log_scale) * mantissa: log_scale a scalar, mantissa an array with max |entry| ~ 1."""
    log_scale: jax.Array
    mantissa: jax.Array


def _add_log_scaled(a: LogScaled, log_wa, b: LogScaled, log_wb) -> LogScaled:
    """exp(log_wa) a + exp(log_wb) b, in log scale."""
    sa, sb = a.log_scale + log_wa, b.log_scale + log_wb
    s = jnp.maximum(sa, sb)
    return LogScaled(s, jnp.exp(sa - s) * a.mantissa + jnp.exp(sb - s) * b.mantissa)


def log_momentum(beta) -> optax.GradientTransformation:
    """m_t = beta m_{t-1} + g_t on LogScaled gradients (the direction of m is what Signum, momentum-NGD and Muon
    use)."""
    def init(params):
        return LogScaled(jnp.asarray(-jnp.inf, params.dtype), jnp.zeros_like(params))

    def update(g: LogScaled, m: LogScaled, params=None):
        m = _add_log_scaled(m, jnp.log(beta), g, 0.0)
        return m, m

    return optax.GradientTransformation(init, update)


def mantissa_direction(p: float = math.inf, kind: str = "entrywise") -> optax.GradientTransformation:
    """The steepest-descent direction of a LogScaled gradient: the mantissa's, since the map ignores scale."""
    return optax.stateless(lambda g, params=None: steepest_direction(g.mantissa, p, kind))


def exp_scale() -> optax.GradientTransformation:
    """A LogScaled gradient as a plain array (GD: the step keeps the gradient's magnitude)."""
    return optax.stateless(lambda g, params=None: jnp.exp(g.log_scale) * g.mantissa)


class LogAdamState(NamedTuple):
    count: jax.Array
    mu: LogScaled
    nu: LogScaled


def log_adam(b1=0.9, b2=0.99, eps=0.0) -> optax.GradientTransformation:
    """Adam's m_hat / (sqrt(v_hat) + eps) on LogScaled gradients, with both moments kept in log scale; an entry whose
    gradient has always been 0 gets 0 (eps = 0 is the theorem's Adam)."""
    def init(params):
        zero = LogScaled(jnp.asarray(-jnp.inf, params.dtype), jnp.zeros_like(params))
        return LogAdamState(jnp.zeros((), jnp.int32), zero, zero)

    def update(g: LogScaled, state: LogAdamState, params=None):
        count = state.count + 1
        mu = _add_log_scaled(state.mu, jnp.log(b1), g, jnp.log1p(-b1))
        nu = _add_log_scaled(state.nu, jnp.log(b2), LogScaled(2 * g.log_scale, g.mantissa ** 2), jnp.log1p(-b2))
        t = count.astype(g.mantissa.dtype)
        m_hat = mu.mantissa / (1 - b1 ** t)
        root = jnp.sqrt(nu.mantissa / (1 - b2 ** t))
        # m_hat e^{s_m} / (root e^{s_v/2} + eps) = e^{s_m - s_v/2} m_hat / (root + eps e^{-s_v/2})
        # eps * e^{-s_v/2} overflows to inf when v underflows: the step is then ~0, and eps = 0 must not make 0 * inf
        denominator = root + jnp.where(eps > 0, eps * jnp.exp(-nu.log_scale / 2), 0.0)
        ratio = jnp.where(root > 0, m_hat / jnp.where(root > 0, denominator, 1.0), 0.0)
        return jnp.exp(mu.log_scale - nu.log_scale / 2) * ratio, LogAdamState(count, mu, nu)

    return optax.GradientTransformation(init, update)
