"""`rft_vanishing_gradients` dynamics: full-batch fine-tuning of a softmax policy by one objective, from an initial
state whose target probabilities p0 are set exactly (tabular, linear) or left by a short pretraining (mlp).

    theta_(t+1) = theta_t + eta J^T g(theta_t)   (model.direction; the objective is the sum over inputs)

The first-passage time to the reward level is measured at step resolution inside the dynamics: each step compares
the inputs' V with the level, and the crossing is interpolated linearly in logit(V) between the two steps around it
(error <= eta^2 c, theory.interpolation_bound). Recording every observable every step of a 10^6-step run would take
~0.5 GB; the passage time is the one observable that needs step resolution.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sims.rft_vanishing_gradients import model

__all__ = ["State", "OUTPUTS", "prepare", "setup", "init", "step", "record", "final"]


class State(NamedTuple):
    """params: the policy's parameters; V: (n,) expected reward at the current parameters; hit_time: (n,) time at
    which V first reached the level (-1: not yet); update: (n,) the step's logit gradient at y* (sampled for
    reinforce/normalized); exact_update: (n,) the exact RFT logit gradient at y* at the same parameters; initial: (n,)
    V at the start of fine-tuning; t: steps taken (int)."""
    params: object
    V: jax.Array
    hit_time: jax.Array
    update: jax.Array
    exact_update: jax.Array
    initial: jax.Array
    t: jax.Array


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # lazily: only the digits data set needs scikit-learn
    data = load_digits()
    return (data.data / 16.0).astype(np.float64), data.target.astype(np.int32)


def prepare(config) -> dict:
    """Host side: scikit-learn's digits (1797 x 64, scaled to [0, 1]) when chosen, else a placeholder."""
    if config.features != "digits":
        return {"x": np.zeros((1, 1), np.float32), "y": np.zeros(1, np.int32)}
    x, y = _digits()
    return {"x": x.astype(jax.dtypes.canonicalize_dtype(np.float64)), "y": y}


def _inputs(config, key, dtype) -> jax.Array:
    n, d = config.inputs, config.dim
    if config.features == "orthonormal":
        q, _ = jnp.linalg.qr(jax.random.normal(key, (d, d), dtype))
        return q[:n]
    x = jax.random.normal(key, (n, d), dtype)
    return x / jnp.sqrt(d) if config.policy == "linear" else x


def setup(config, key, prepared) -> dict:
    """The context: inputs x (n, d), targets y* (n,), rewards r (n, K), one-hot targets (n, K), initial p0 (n,)."""
    dtype = jnp.result_type(float)
    n, K = config.inputs, config.outputs
    k_x, k_y = jax.random.split(jax.random.fold_in(key, 1))
    if config.features == "digits":
        pick = jax.random.choice(k_x, prepared["x"].shape[0], (n,), replace=False)
        x, y_star = prepared["x"][pick].astype(dtype), prepared["y"][pick]
    else:
        x = _inputs(config, k_x, dtype) if config.policy != "tabular" else jnp.zeros((n, 1), dtype)
        y_star = (jnp.arange(n) % K if config.policy != "mlp" else jax.random.randint(k_y, (n,), 0, K)).astype(
            jnp.int32)
    frac = jnp.linspace(0.0, 1.0, n) if n > 1 else jnp.zeros(1)
    low = jnp.where(config.p0_min > 0, config.p0_min, config.p0)
    p0 = jnp.exp(jnp.log(config.p0) + frac * (jnp.log(low) - jnp.log(config.p0))).astype(dtype)
    return {"x": x, "y_star": y_star, "r": model.rewards(config.reward, y_star, K, dtype),
            "onehot": jax.nn.one_hot(y_star, K, dtype=dtype), "p0": p0}


def _pretrain(config, ctx, params):
    """mlp: full-batch SFT on the shifted labels (y* + 1) mod K, mean over inputs."""
    shifted = jnp.roll(ctx["onehot"], 1, axis=1)
    loss = lambda th: -jnp.mean(jnp.sum(shifted * jax.nn.log_softmax(model.logits(config, ctx, th)), axis=1))
    sgd = lambda _, th: jax.tree_util.tree_map(lambda a, b: a - config.pretrain_lr * b, th, jax.grad(loss)(th))
    return jax.lax.fori_loop(0, config.pretrain_steps, sgd, params)


def _expected(config, ctx, params) -> tuple[jax.Array, jax.Array]:
    p = jax.nn.softmax(model.logits(config, ctx, params), axis=-1)
    return p, jnp.sum(p * ctx["r"], axis=-1)


def init(config, ctx, key) -> State:
    """tabular: z = target logits; linear: W = Z^T (X X^T)^-1 X, so W x_i = z_i exactly (n <= d); mlp: flax's init
    (from the seed), then the pretraining."""
    K = config.outputs
    Z = model.target_logits(ctx["p0"], ctx["y_star"], K)
    if config.policy == "tabular":
        params = Z
    elif config.policy == "linear":
        X = ctx["x"]
        params = Z.T @ jnp.linalg.solve(X @ X.T, X)
    else:
        params = _pretrain(config, ctx, model.MLP(config.width, K).init(key, ctx["x"][:1]))
    _, V = _expected(config, ctx, params)
    zeros = jnp.zeros_like(V)
    return State(params, V, jnp.where(V >= config.level, 0.0, -1.0), zeros, zeros, V, jnp.zeros((), jnp.int32))


def _logit(v):
    return jnp.log(v) - jnp.log1p(-v)


def step(config, ctx, s: State, key) -> State:
    p, V = _expected(config, ctx, s.params)
    g = model.direction(config, p, ctx["r"], ctx["onehot"], s.t, key)
    _, vjp = jax.vjp(lambda th: model.logits(config, ctx, th), s.params)
    (grad,) = vjp(g)
    params = jax.tree_util.tree_map(lambda a, b: a + config.lr * b, s.params, grad)
    _, V_new = _expected(config, ctx, params)
    # First passage: V crosses the level during step t -> t + 1; interpolate in logit(V) (theory.interpolation_bound).
    crossed = (s.hit_time < 0) & (V_new >= config.level)
    frac = (_logit(config.level) - _logit(V)) / jnp.where(crossed, _logit(V_new) - _logit(V), 1.0)
    hit = jnp.where(crossed, config.lr * (s.t + jnp.clip(frac, 0.0, 1.0)), s.hit_time)
    target = lambda a: jnp.sum(a * ctx["onehot"], axis=-1)
    return State(params, V_new, hit, target(g), target(model.rft_logit_gradient(p, ctx["r"])), s.initial, s.t + 1)


def _grad_norms(config, ctx, params) -> jax.Array:
    """||grad_theta V(x_i)|| per input, by autodiff through softmax and the policy (independent of the identity)."""
    def value(th, i):
        return jnp.sum(jax.nn.softmax(model.logits_one(config, ctx, th, i)) * ctx["r"][i])

    def norm(i):
        gr = jax.grad(value)(params, i)
        return jnp.sqrt(sum(jnp.sum(x ** 2) for x in jax.tree_util.tree_leaves(gr)))

    return jax.vmap(norm)(jnp.arange(config.inputs))


def record(config, ctx, s: State) -> dict:
    p, V = _expected(config, ctx, s.params)
    r = ctx["r"]
    std = jnp.sqrt(jnp.maximum(jnp.sum(p * r ** 2, axis=-1) - V ** 2, 0.0))
    identity = jnp.linalg.norm(model.rft_logit_gradient(p, r), axis=-1)
    return {"expected_reward": V, "mean_reward": jnp.mean(V), "reward_std": std,
            "grad_norm": _grad_norms(config, ctx, s.params), "identity_norm": identity,
            "abs_deviation": jnp.sum(p * jnp.abs(r - V[:, None]), axis=-1),
            "fraction_below": jnp.mean((V < config.level).astype(V.dtype)), "update": s.update,
            "exact_update": s.exact_update}


def final(config, ctx, s: State) -> dict:
    r = ctx["r"]
    init_std = jnp.sqrt(jnp.maximum(s.initial * (1 - s.initial), 0.0)) if config.reward == "indicator" else \
        jnp.full_like(s.initial, jnp.nan)
    return {"hit_time": s.hit_time, "initial_reward": s.initial, "initial_std": init_std,
            "input_norm": jnp.linalg.norm(ctx["x"], axis=-1) if config.policy == "linear" else jnp.ones_like(s.V),
            "final_reward": jnp.sum(jax.nn.softmax(model.logits(config, ctx, s.params)) * r, axis=-1)}


def watch(s: State):
    return s.params


def _o(doc, units="1", dims=("input",)):
    from dynamics.simulator import Output
    return Output(doc, units, dims)


OUTPUTS = {
    "expected_reward": _o("V(x) = E_{y~p}[r(x, y)] per input"),
    "mean_reward": _o("mean over inputs of V(x)", dims=()),
    "reward_std": _o("std_{y~p}[r(x, y)] per input"),
    "grad_norm": _o("||grad_theta V(x)|| per input, by autodiff"),
    "identity_norm": _o("||p * (r - V)||_2: the logit gradient by the identity dV/dz_k = p_k (r_k - V)"),
    "abs_deviation": _o("E_{y~p}|r - V|, between the identity's norm and std"),
    "fraction_below": _o("fraction of inputs with V(x) below the level", dims=()),
    "update": _o("the last step's logit gradient at y* (sampled for reinforce/normalized)"),
    "exact_update": _o("the exact RFT logit gradient at y* at the same parameters"),
    "hit_time": _o("time eta * steps at which V first reached the level (-1: not reached)", "time"),
    "initial_reward": _o("V(x) at the start of fine-tuning (p0 for the indicator reward)"),
    "initial_std": _o("reward std at the start of fine-tuning, sqrt(p0 (1 - p0)) (indicator reward)"),
    "input_norm": _o("||x|| (linear policy; 1 otherwise): the Jacobian norm of z = W x"),
    "final_reward": _o("V(x) at the last step"),
}
