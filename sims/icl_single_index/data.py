"""Single-index tasks whose index features share a low-dimensional subspace (Oko et al. 2024, section 2).

A task: beta = U theta with U (d, r) orthonormal (the subspace S, shared by all tasks) and theta uniform on the unit
sphere of R^r; inputs x ~ N(0, I_d); labels y = sigma*(x . beta) + noise * N(0, 1) with the link
sigma*(z) = sum_i c_i h_i(z), h_i = He_i / sqrt(i!) the orthonormal (probabilists') Hermite polynomials, so that
E sigma*(z)^2 = sum_i c_i^2 for z ~ N(0, 1). The information exponent Q is the lowest i >= 1 with c_i != 0.

Every function is pure in its key and jit/vmap-friendly; shapes are static.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from dynamics.langevin import gaussian

__all__ = ["Tasks", "hermite", "in_subspace_coupled", "information_exponent", "link_value", "normalized_link",
           "sample_tasks", "subspace"]


def normalized_link(coefficients) -> tuple[float, ...]:
    """The coefficients rescaled so that sum_(i >= 1) c_i^2 = 1 (c_0 kept as given, then scaled alike)."""
    scale = math.sqrt(sum(c * c for c in coefficients[1:]))
    return tuple(c / scale for c in coefficients)


def information_exponent(coefficients) -> int:
    return next(i for i, c in enumerate(coefficients) if i >= 1 and c != 0)


def hermite(z, degree: int) -> jax.Array:
    """h_0(z), ..., h_degree(z) stacked on a new last axis: h_i = He_i / sqrt(i!), from the three-term recurrence
    He_(i+1) = z He_i - i He_(i-1)."""
    he = [jnp.ones_like(z), z]
    for i in range(1, degree):
        he.append(z * he[i] - i * he[i - 1])
    return jnp.stack([he[i] / math.sqrt(math.factorial(i)) for i in range(degree + 1)], axis=-1)


def link_value(z, coefficients) -> jax.Array:
    """sigma*(z) for coefficients (..., P + 1) broadcast against z (...)."""
    P = coefficients.shape[-1] - 1
    return jnp.sum(hermite(z, P) * coefficients, axis=-1)


def subspace(key, dim: int, rank: int, dtype=None) -> jax.Array:
    """U (d, r) with orthonormal columns, uniform (QR of a Gaussian matrix with the signs fixed)."""
    q, r = jnp.linalg.qr(gaussian(key, (dim, rank), dtype))
    return q * jnp.sign(jnp.diagonal(r))


def in_subspace_coupled(key_in, key_out, U, shape: tuple[int, ...]) -> jax.Array:
    """x (*shape, d) ~ N(0, I_d) drawn as x = U z + (I - U U^T) g, z ~ N(0, I_r) from key_in, g ~ N(0, I_d) from
    key_out: the covariance is U U^T + (I - U U^T) = I, so each x is an exact standard Gaussian whatever U is. Its
    coordinates in S, z = U^T x, come from key_in with a shape that does not involve d: members of a sweep over d
    that share a seed draw the same z (common random numbers), so they see the same labels and the same in-S inputs
    and differ only in the d - r directions that d adds. That pairs the comparisons across d (report._dim_rows):
    their differences lose the noise the d's share."""
    z = gaussian(key_in, (*shape, U.shape[1]), U.dtype)
    g = gaussian(key_out, (*shape, U.shape[0]), U.dtype)
    return z @ U.T + g - (g @ U) @ U.T


class Tasks(NamedTuple):
    """x: (T, L, d) inputs; y: (T, L) labels; beta: (T, d) index features; link: (T, P + 1) coefficients."""
    x: jax.Array
    y: jax.Array
    beta: jax.Array
    link: jax.Array


def sample_tasks(key, U, coefficients, tasks: int, length: int, noise, link_noise=0.0) -> Tasks:
    """`tasks` independent tasks of `length` samples each, their betas in span(U); the inputs from
    `in_subspace_coupled`, so that a sweep over d shares every label (theta, z = U^T x, the noise and the link draws
    have shapes free of d).

    coefficients: (P + 1,) normalized link; link_noise: each nonzero c_i (i >= 1) is multiplied, per task, by
    1 + link_noise * xi_i with xi_i ~ N(0, 1) (the information exponent is kept)."""
    rank = U.shape[1]
    dtype = U.dtype
    k_theta, k_x, k_noise, k_link, k_in = jax.random.split(key, 5)
    theta = gaussian(k_theta, (tasks, rank), dtype)
    beta = (theta / jnp.linalg.norm(theta, axis=1, keepdims=True)) @ U.T
    x = in_subspace_coupled(k_in, k_x, U, (tasks, length))
    c = jnp.asarray(coefficients, dtype)
    xi = gaussian(k_link, (tasks, c.shape[0]), dtype)
    link = c * (1 + link_noise * jnp.where(jnp.arange(c.shape[0]) >= 1, xi, 0.0))
    z = jnp.einsum("tld,td->tl", x, beta)
    y = link_value(z, link[:, None, :]) + noise * gaussian(k_noise, (tasks, length), dtype)
    return Tasks(x, y, beta, link)
