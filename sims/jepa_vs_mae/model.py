"""`jepa_vs_mae` model: the deep linear encoder and predictor, the data's covariances and the two objectives.

Views x, y in R^d. Encoder W = W_L ... W_1, predictor V. With P = V W (the prediction map) and T the target map
(sg(W) for JEPA, the EMA encoder for jepa_ema, I for MAE), every objective is 1/2 E|P x - T y|^2, a function of the
second moments only:

    loss = 1/2 [tr(P Sxx P^T) - 2 tr(P Sxy T^T) + tr(T Syy T^T)],   Sxy = E[x y^T] = Syx^T,

so the population loss takes the exact covariances and a minibatch the empirical ones (the same gradient as the
sample loss). Data: Sxx = diag(lambda / rho), Syx = R diag(lambda) R^T (R = I unless rotated), y = B x + xi with
B = Syx Sxx^-1 and xi ~ N(0, Sxx), so Syy = B Sxx B^T + Sxx.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Weights", "covariances", "rotation", "sample_moments", "encoder", "loss", "target_map", "init_weights"]


class Weights(NamedTuple):
    """layers: (L, d, d) W_1 ... W_L (full) or (L, d) their diagonals; predictor: (d, d) V or (d,) its diagonal;
    target: the EMA copy of layers (jepa_ema; the online layers otherwise)."""
    layers: jax.Array
    predictor: jax.Array
    target: jax.Array


def rotation(key, d: int, theta, dtype) -> jax.Array:
    """R = (I - theta A/2)^-1 (I + theta A/2), the Cayley rotation of a random antisymmetric (d, d) A of spectral
    norm 1: orthogonal, R = I + theta A + O(theta^2), largest angle 2 arctan(theta/2) (R = I at theta = 0, d = 1)."""
    if d == 1:
        return jnp.ones((1, 1), dtype)
    g = jax.random.normal(key, (d, d), dtype)
    a = g - g.T
    a = a / jnp.linalg.norm(a, 2)
    eye = jnp.eye(d, dtype=dtype)
    return jnp.linalg.solve(eye - theta / 2 * a, eye + theta / 2 * a)


def covariances(lam, rho, rot) -> dict[str, jax.Array]:
    """Sxx (d, d), Syx (d, d), Syy (d, d) and the chain B, chol(Sxx) used to sample pairs."""
    sxx = jnp.diag(lam / rho)
    syx = rot @ jnp.diag(lam) @ rot.T
    b = syx @ jnp.diag(rho / lam)
    return {"sxx": sxx, "syx": syx, "syy": b @ sxx @ b.T + sxx, "b": b, "sx": jnp.diag(jnp.sqrt(lam / rho))}


def sample_moments(key, cov: dict, batch: int) -> dict[str, jax.Array]:
    """Empirical Sxx, Syx, Syy of `batch` Gaussian pairs y = B x + xi."""
    kx, kn = jax.random.split(key)
    d = cov["sxx"].shape[0]
    dtype = cov["sxx"].dtype
    x = jax.random.normal(kx, (batch, d), dtype) @ cov["sx"]
    y = x @ cov["b"].T + jax.random.normal(kn, (batch, d), dtype) @ cov["sx"]
    return {"sxx": x.T @ x / batch, "syx": y.T @ x / batch, "syy": y.T @ y / batch}


def encoder(layers: jax.Array) -> jax.Array:
    """W = W_L ... W_1: (d, d) from full layers, (d,) from diagonals."""
    if layers.ndim == 2:
        return jnp.prod(layers, axis=0)
    out = layers[0]
    for k in range(1, layers.shape[0]):
        out = layers[k] @ out
    return out


def target_map(objective: str, layers: jax.Array, target: jax.Array) -> jax.Array:
    """T: sg(W) for JEPA (the target's gradient stopped), the EMA encoder for jepa_ema, I for MAE."""
    if objective == "jepa":
        return jax.lax.stop_gradient(encoder(layers))
    if objective == "jepa_ema":
        return jax.lax.stop_gradient(encoder(target))
    return jnp.ones(layers.shape[1:2], layers.dtype) if layers.ndim == 2 else jnp.eye(layers.shape[1],
                                                                                        dtype=layers.dtype)


def loss(objective: str, layers: jax.Array, predictor: jax.Array, target: jax.Array, m: dict) -> jax.Array:
    """1/2 E|V W x - T y|^2 from the second moments m (sxx, syx, syy)."""
    T = target_map(objective, layers, target)
    if layers.ndim == 2:  # diagonal: only the moments' diagonals enter
        p = predictor * encoder(layers)
        sxx, syx, syy = jnp.diagonal(m["sxx"]), jnp.diagonal(m["syx"]), jnp.diagonal(m["syy"])
        return 0.5 * jnp.sum(p * p * sxx - 2 * p * T * syx + T * T * syy)
    P = predictor @ encoder(layers)
    return 0.5 * (jnp.sum((P @ m["sxx"]) * P) - 2 * jnp.sum((P @ m["syx"].T) * T) + jnp.sum((T @ m["syy"]) * T))


def init_weights(objective: str, structure: str, init: str, L: int, d: int, eps, key, dtype) -> tuple[Weights,
                                                                                                       jax.Array]:
    """Balanced init: every layer and the predictor at eps^(1/L) I. `orthogonal` puts the same init in random
    hidden bases, W_l = a Q_l Q_(l-1)^T (Q_0 = I), V = a Q_L I Q_L^T = a I (JEPA) or a Q_L^T (MAE): the loss is
    invariant under this change of basis, so GD follows the identity init's path in it. Returns the weights and Q_L (the
    output basis in which the gains are read)."""
    a = jnp.asarray(eps, dtype) ** (1.0 / L)
    if structure == "diagonal":
        layers = jnp.full((L, d), a, dtype)
        return Weights(layers, jnp.full((d,), a, dtype), layers), jnp.eye(d, dtype=dtype)
    if init == "identity":
        qs = [jnp.eye(d, dtype=dtype)] * (L + 1)
    else:
        qs = [jnp.eye(d, dtype=dtype)] + [jax.random.orthogonal(k, d, dtype=dtype)
                                          for k in jax.random.split(key, L)]
    layers = jnp.stack([a * qs[k + 1] @ qs[k].T for k in range(L)])
    q = qs[L]
    predictor = a * (jnp.eye(d, dtype=dtype) if objective != "mae" else q.T)
    return Weights(layers, predictor, layers), q
