"""The paper's simplified transformer and its two-stage pretraining (Oko, Song, Suzuki, Wu 2024, section 3,
Algorithm 1), as reconstructed in the theory note (the paper's text was not reachable; what is implemented):

    phi(x) = relu(W x + b) in R^m                       one MLP layer (features)
    psi = (1/N) sum_i y_i phi(x_i) in R^m               linear attention over the prompt
    f(x_q) = phi(x_q)^T Gamma psi                        the prediction for the query x_q

Stage I: W_0 with rows uniform on the sphere, b_0 uniform on [-1, 1], Gamma_0 = init_gamma I / m; one gradient step
on W of the squared loss (1/(2 T_1)) sum_t (f_t(x_q) - y_q)^2 over T_1 tasks of N_1 prompt samples, with the weight
decay that erases the init (W_1 = -eta_1 grad). Only the rows' directions matter after the normalization that
follows, so eta_1 does not appear: w_j <- -grad_j / |grad_j|; then the biases are redrawn. For Q = 1 the gradient
of neuron j is proportional to its projection on S, which stage I's alignment mean_j |P_S w_j| measures.

Stage II: W frozen, Gamma fitted by ridge regression over T_2 tasks, linear in vec Gamma with features
vec(phi(x_q) psi^T) (m^2 unknowns), the normal equations accumulated over chunks of tasks inside jit. It is fitted
for each test prompt length N* (N_2 = N*), since psi's variance, which the ridge fit absorbs, scales as 1/N.

The projection floor: per task, the least-squares fit of y on phi(x) from many samples, E_beta min_a E(y - a.phi)^2,
the in-context error's limit as N* -> infinity with Gamma -> E[phi phi^T]^-1.
"""

from __future__ import annotations

import jax
import jax.scipy.linalg
import jax.numpy as jnp

from dynamics.langevin import gaussian
from sims.icl_single_index import data

__all__ = ["features", "predict", "init_features", "stage1", "alignment", "stage2", "projection_floor",
           "TASK_CHUNK"]

TASK_CHUNK = 256  # tasks per chunk of stage I's gradient and stage II's normal equations


def features(W, b, x) -> jax.Array:
    """phi(x) = relu(x W^T + b): W (m, d), b (m,), x (..., d) -> (..., m)."""
    return jax.nn.relu(x @ W.T + b)


def predict(W, b, Gamma, x_prompt, y_prompt, x_query) -> jax.Array:
    """f(x_q) = phi(x_q)^T Gamma psi for one prompt x_prompt (N, d), y_prompt (N,) and queries x_query (Q, d)
    -> (Q,)."""
    psi = jnp.mean(y_prompt[:, None] * features(W, b, x_prompt), axis=0)
    return features(W, b, x_query) @ (Gamma @ psi)


def init_features(key, width: int, dim: int, dtype=None, U=None) -> tuple[jax.Array, jax.Array]:
    """W (m, d) with rows uniform on the unit sphere, b (m,) uniform on [-1, 1].

    U (d, r), optional: draw the rows' Gaussians with `data.in_subspace_coupled`, so that their components in S
    (which set each neuron's direction after stage I) are the same at every d for one key. The rows' law is the same
    uniform one either way, independent of U: the coupling only pairs the members of a sweep over d."""
    k_w, k_b = jax.random.split(key)
    if U is None:
        W = gaussian(k_w, (width, dim), dtype)
    else:
        W = data.in_subspace_coupled(jax.random.fold_in(k_w, 1), k_w, U, (width,))
    W = W / jnp.linalg.norm(W, axis=1, keepdims=True)
    return W, jax.random.uniform(k_b, (width,), W.dtype, -1.0, 1.0)


def _chunks(total: int) -> tuple[int, int]:
    """(chunks, tasks per chunk): total rounded up to whole chunks of at most TASK_CHUNK tasks."""
    size = min(TASK_CHUNK, total)
    return -(-total // size), size


def stage1(key, U, coefficients, width: int, tasks: int, length: int, noise, link_noise, init_gamma
           ) -> tuple[jax.Array, jax.Array]:
    """Stage I: (W_1, b_1) after one normalized gradient step on W from a random init. The gradient is summed over
    ceil(T_1 / 256) chunks of tasks inside a `lax.scan`, each task with `length` prompt samples and one query."""
    dim = U.shape[0]
    k_init, k_tasks, k_bias = jax.random.split(key, 3)
    W0, b0 = init_features(k_init, width, dim, U.dtype, U)
    Gamma0 = init_gamma * jnp.eye(width, dtype=U.dtype) / width
    chunks, size = _chunks(tasks)

    def chunk_loss(W, t):
        sample = data.sample_tasks(t, U, coefficients, size, length + 1, noise, link_noise)
        f = jax.vmap(lambda x, y: predict(W, b0, Gamma0, x[:-1], y[:-1], x[-1:])[0])(sample.x, sample.y)
        return 0.5 * jnp.sum((f - sample.y[:, -1]) ** 2)

    def body(grad, i):
        return grad + jax.grad(chunk_loss)(W0, jax.random.fold_in(k_tasks, i)), None

    grad, _ = jax.lax.scan(body, jnp.zeros_like(W0), jnp.arange(chunks))
    norm = jnp.linalg.norm(grad, axis=1, keepdims=True)
    W1 = -grad / jnp.where(norm > 0, norm, 1.0)  # a zero row (Gamma_0 = 0) stays zero
    return W1, jax.random.uniform(k_bias, (width,), U.dtype, -1.0, 1.0)


def alignment(W, U) -> jax.Array:
    """mean_j |P_S w_j| / |w_j| (rows of W, S = span U): 1 when every neuron lies in S, ~sqrt(r/d) at random."""
    norm = jnp.linalg.norm(W, axis=1)
    return jnp.mean(jnp.linalg.norm(W @ U, axis=1) / jnp.where(norm > 0, norm, 1.0))


def stage2(key, W, b, U, coefficients, tasks: int, length: int, noise, link_noise, ridge) -> jax.Array:
    """Stage II: Gamma (m, m) = argmin (1/T_2) sum_t (<Gamma, phi_q psi^T> - y_q)^2 + ridge |Gamma|_F^2 over T_2 tasks
    with prompts of `length` samples, from normal equations accumulated over chunks of tasks."""
    m = W.shape[0]
    chunks, size = _chunks(tasks)

    def body(carry, i):
        A, c = carry
        sample = data.sample_tasks(jax.random.fold_in(key, i), U, coefficients, size, length + 1, noise, link_noise)
        phi = features(W, b, sample.x)  # (size, N + 1, m)
        psi = jnp.mean(sample.y[:, :-1, None] * phi[:, :-1], axis=1)
        Z = (phi[:, -1, :, None] * psi[:, None, :]).reshape(size, m * m)
        return (A + Z.T @ Z, c + Z.T @ sample.y[:, -1]), None

    zeros = (jnp.zeros((m * m, m * m), W.dtype), jnp.zeros((m * m,), W.dtype))
    (A, c), _ = jax.lax.scan(body, zeros, jnp.arange(chunks))
    n = chunks * size
    return jnp.linalg.solve(A / n + ridge * jnp.eye(m * m, dtype=W.dtype), c / n).reshape(m, m)


def projection_floor(key, W, b, beta, link, noise, samples: int) -> jax.Array:
    """min_a E(y - a.phi(x))^2 for one task (beta (d,), link (P + 1,)): the least-squares fit on `samples` draws,
    evaluated on as many fresh ones (so it is an unbiased estimate of the fitted predictor's risk, above the floor
    by about m/samples of it)."""
    k_fit, k_eval = jax.random.split(key)

    def draw(k):
        k_x, k_n = jax.random.split(k)
        x = gaussian(k_x, (samples, beta.shape[0]), beta.dtype)
        y = data.link_value(x @ beta, link) + noise * gaussian(k_n, (samples,), beta.dtype)
        return features(W, b, x), y

    phi, y = draw(k_fit)
    # Normal equations by Cholesky, not lstsq's SVD: 15x faster batched on CPU, equal to 4e-16 in float64 on these
    # well-conditioned (samples >> m) features; in float32 the coefficients' error ~ cond^2 eps enters the risk only
    # at second order (the risk is stationary at the least-squares fit).
    a = jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(phi.T @ phi), phi.T @ y)
    phi, y = draw(k_eval)
    return jnp.mean((y - phi @ a) ** 2)
