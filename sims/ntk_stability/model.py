"""The deep smooth net in NTK parameterization, the logistic loss, and the empirical NTK at init.

Network (the paper's eq. (1); Taheri, Thrampoulidis, Mazumdar 2025, §2), for x^0 = x in R^d with ||x|| <= 1:

    x^1 = sigma(W_1 x^0 / sqrt(d)),   x^l = sigma(W_l x^(l-1) / sqrt(m))  (l = 2..L),   Phi(w; x) = v . x^L / sqrt(m)

with every entry of W_1 (m, d), W_l (m, m) and v (m,) drawn N(0, 1) at init. The L - 1 square layers are one stacked
array scanned over, so compile time does not grow with L. Parameters are a dict pytree:
`first` (m, d), `hidden` (L - 1, m, m), `out` (m,).

Logistic loss l(u) = log(1 + exp(-u)); empirical risk F_hat(w) = sum_i c_i l(y_i Phi(w; x_i)) / sum_i c_i with sample
weights c_i (1, or 0 for a deleted sample).

NTK at init: phi_i = grad_w Phi(w_0; x_i) (P,), K = J J^T (n, n) with J (n, P) the stacked phi_i.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = ["ACTIVATION", "normal", "bernoulli", "init_params", "forward", "xor_forward", "network", "logistic", "risk",
           "flatten", "ntk_gram", "ntk_gram_jacobian", "ntk_gram_products", "vjp_direction"]

ACTIVATION = {
    "gelu": jax.nn.gelu,
    "softplus": jax.nn.softplus,
    "tanh": jnp.tanh,
    "quadratic": jnp.square,
}


def normal(key, shape: tuple, dtype):
    """`jax.random.normal(key, shape, dtype)`, drawn flat and reshaped: the same numbers (threefry draws the bits of
    any shape as those of its flattened size, in row-major order; tests/sims/test_ntk_stability_model.py checks it),
    but on CPU a draw over two or more axes compiles in ~2 s against ~0.4 s flat, for every call site."""
    return jax.random.normal(key, (math.prod(shape),), dtype).reshape(shape)


def bernoulli(key, p, shape: tuple):
    """`jax.random.bernoulli(key, p, shape)`, drawn flat and reshaped (as `normal`)."""
    return jax.random.bernoulli(key, p, (math.prod(shape),)).reshape(shape)


def init_params(key, dim: int, width: int, depth: int, dtype) -> dict:
    """Every entry N(0, 1): first (m, d), hidden (L - 1, m, m), out (m,)."""
    k1, k2, k3 = jax.random.split(key, 3)
    return dict(first=normal(k1, (width, dim), dtype), hidden=normal(k2, (depth - 1, width, width), dtype),
                out=jax.random.normal(k3, (width,), dtype))


def forward(params: dict, X, activation: str):
    """Phi(w; x_i) for the rows of X (n, d): (n,)."""
    sigma = ACTIVATION[activation]
    m, d = params["first"].shape
    H = sigma(X @ params["first"].T / math.sqrt(d))

    def layer(H, W):
        return sigma(H @ W.T / math.sqrt(m)), None

    H, _ = jax.lax.scan(layer, H, params["hidden"])
    return H @ params["out"] / math.sqrt(m)


def xor_forward(params: dict, X, second_layer: str = "sign"):
    """f(x_i) = (1/m) sum_j a_j (w_j . x_i)^2 for the rows of X (n, d), with the second layer a held fixed:
    a_j = sign(v_j) (second_layer "sign") or a_j = v_j ("gaussian"), v = params["out"] ~ N(0, I_m).

    Why the signs: one step with eta = m maps w_j to (I + 2 a_j C_hat) w_j, C_hat = batch mean of |l'| y x x^T, whose
    mean e_1 e_2^T + e_2 e_1^T has eigenvalues +-1 (times the mean |l'| <= 1) on e_1 +- e_2. The right direction
    (e_1 + sign(a_j) e_2) grows by 1 + 2|a_j| lambda, the wrong one by |1 - 2|a_j| lambda|: with |a_j| = 1 the wrong
    one never grows, while a Gaussian a_j with |a_j| > 1 (a third of the neurons) amplifies it too."""
    v = jax.lax.stop_gradient(params["out"])
    a = jnp.sign(v) if second_layer == "sign" else v
    return jnp.square(X @ params["first"].T) @ a / a.shape[0]


def network(task: str, activation: str, second_layer: str = "sign"):
    """net(params, X) -> (n,): the XOR net for task xor, else the deep net with the given activation."""
    if task == "xor":
        return lambda params, X: xor_forward(params, X, second_layer)
    return lambda params, X: forward(params, X, activation)


def logistic(margins):
    """l(u) = log(1 + e^(-u)), stable for large |u|."""
    return jnp.logaddexp(0.0, -margins)


def risk(net, params: dict, X, y, weights=None):
    """F_hat = sum_i c_i l(y_i Phi(x_i)) / sum_i c_i (plain mean without weights)."""
    losses = logistic(y * net(params, X))
    if weights is None:
        return jnp.mean(losses)
    return jnp.sum(weights * losses) / jnp.sum(weights)


def flatten(tree) -> jax.Array:
    """The leaves of a parameter pytree (or of one with a leading batch axis, kept) concatenated: (..., P)."""
    return jnp.concatenate([jnp.reshape(x, (-1,)) for x in jax.tree_util.tree_leaves(tree)])


def ntk_gram_jacobian(net, params: dict, X):
    """K = J J^T from the materialized Jacobian J (n, P) (vmap of grad): exact, memory n P."""
    grad_one = jax.grad(lambda p, x: net(p, x[None])[0])
    J = jax.vmap(grad_one, in_axes=(None, 0))(params, X)
    J = jnp.concatenate([jnp.reshape(x, (X.shape[0], -1)) for x in jax.tree_util.tree_leaves(J)], axis=1)
    return J @ J.T


def ntk_gram_products(net, params: dict, X):
    """K = J J^T column by column, K e_j = J (J^T e_j), from one linearization and its transpose: memory P per
    column, for nets whose Jacobian does not fit."""
    f = lambda p: net(p, X)
    _, jvp = jax.linearize(f, params)
    _, vjp = jax.vjp(f, params)
    column = lambda e: jvp(vjp(e)[0])
    return jax.lax.map(column, jnp.eye(X.shape[0], dtype=X.dtype))


# Above this many Jacobian entries (n P), the Gram is built from products (64 MiB of float64).
JACOBIAN_LIMIT = 1 << 23


def ntk_gram(net, params: dict, X):
    """The empirical NTK Gram K (n, n) at `params`, by the cheaper of the two exact constructions."""
    P = sum(x.size for x in jax.tree_util.tree_leaves(params))
    if X.shape[0] * P <= JACOBIAN_LIMIT:
        return ntk_gram_jacobian(net, params, X)
    return ntk_gram_products(net, params, X)


def vjp_direction(net, params: dict, X, c) -> dict:
    """J^T c = sum_i c_i grad_w Phi(w; x_i), a parameter pytree."""
    _, vjp = jax.vjp(lambda p: net(p, X), params)
    return vjp(c)[0]
