"""Closed-form theory of `mfld`, in jax.numpy so it runs inside the jitted, vmapped simulation (float64 under --x64).

Free energy L(mu) = F(mu) + lambda Ent(mu), Ent(mu) = int mu log mu dx. Its minimizer mu* is the Gibbs law of its own
first variation. Two exact oracles (theory note, "Exact oracle 1 and 2"):

* `linear_oracle`: h(x, z) = x.z with squared loss. mu* = N(m*, s^2 I) and the Euler-Maruyama chain of N particles
  has an exactly Gaussian stationary law, so every stationary expectation is closed-form in discrete time.
* `quadrature_optimum`: h(x, z) = R tanh(a) tanh(w z) on x = (a, w) in R^2. mu* = p_{g*} where g* maximizes the
  concave dual D(g) = -(1/n) sum_j l*(g_j) - lambda log int exp(-[(1/n) sum_j g_j h(x, z_j) + r(x)] / lambda) dx,
  found by Newton's method on a trapezoid grid. D(g) <= L(mu*) for every g: a certified lower bound.

Theorem 1 of the paper: the particle part of the stationary free-energy gap is at most B/N, B = L_l R^2 / 2. Via Lemma 1,
for squared loss, the model error (1/n) sum_j (f_rho(z_j) - f*(z_j))^2 is at most 2B/N in stationarity.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from sims.mfld import model

__all__ = ["LinearOracle", "linear_oracle", "QuadratureOptimum", "quadrature_optimum", "dual_linear",
           "dual_quadrature", "chaos_constant"]

GRID_POINTS = 201  # per axis; results agree with a 401-point grid to 1e-15 (trapezoid error ~ exp(-2 pi^2 sigma^2 / h^2))
GRID_HALF_WIDTH = 7.0
NEWTON_ITERATIONS = 12  # converges in about 4 from g = 0; the rest cost little and guard harder settings


def chaos_constant(config):
    """B = L_l R^2 / 2 of Theorem 1 (infinite for the unbounded linear neuron)."""
    if config.model == "linear":
        return jnp.inf
    return model.loss_smoothness(config) * config.output_scale ** 2 / 2


class LinearOracle(NamedTuple):
    """Stationary law of N-particle noisy GD with h = x.z, squared loss, step eta, for an ensemble of M networks.

    mean: m* = K^-1 c, (p,). mean_cov: Cov(m_X) of one network, eigenvalues (lambda / (N kappa_k)) / (1 - eta kappa_k / 2),
    (p, p). particle_variance: each coordinate's fluctuation variance s^2 (1 - 1/N) / (1 - lambda' eta).
    loss, objective, model_error: stationary E F0(f_ens), E F(mixture), E mean_j (f_ens - f*)^2 (z_j).
    optimum_loss, optimum_objective, free_energy: F0(mu*), F(mu*), L(mu*).
    free_energy_gap: Delta_N = (lambda / 2N) sum_k log(1 + gamma_k) (continuous time).
    relaxation_rate: per unit time, of the fluctuation variance and of F(rho_t), -2 log|1 - 2 lambda' eta| / eta,
    which is Theorem 1's 2 alpha lambda = 4 lambda' as eta -> 0 (alpha = 1/s^2, the LSI constant of mu*).
    f_star: (n,) f*(z_j) = m*.z_j.
    """
    mean: jax.Array
    mean_cov: jax.Array
    particle_variance: jax.Array
    loss: jax.Array
    objective: jax.Array
    model_error: jax.Array
    optimum_loss: jax.Array
    optimum_objective: jax.Array
    free_energy: jax.Array
    free_energy_gap: jax.Array
    relaxation_rate: jax.Array
    f_star: jax.Array


def linear_oracle(config, z_nD, y_n) -> LinearOracle:
    lam, lam2, eta = config.temperature, config.l2, config.lr
    n, p = z_nD.shape
    N, M = config.particles, config.ensemble
    A = z_nD.T @ z_nD / n
    c = z_nD.T @ y_n / n
    a_k, U = jnp.linalg.eigh(A)
    kappa = a_k + 2 * lam2
    m_star = U @ ((U.T @ c) / kappa)
    mean_cov = (U * ((lam / (N * kappa)) / (1 - eta * kappa / 2))) @ U.T
    s2 = lam / (2 * lam2)
    variance = s2 * (1 - 1 / N) / (1 - lam2 * eta)
    optimum_loss = 0.5 * m_star @ A @ m_star - c @ m_star + 0.5 * jnp.mean(y_n ** 2)
    excess = 0.5 * jnp.trace(A @ mean_cov) / M
    loss = optimum_loss + excess
    objective = loss + lam2 * (m_star @ m_star + jnp.trace(mean_cov) + p * variance)
    optimum_objective = optimum_loss + lam2 * (m_star @ m_star + p * s2)
    free_energy = optimum_objective - lam * p / 2 * jnp.log(2 * jnp.pi * jnp.e * s2)
    gap = lam / (2 * N) * jnp.sum(jnp.log1p(a_k / (2 * lam2)))
    rate = -2 * jnp.log(jnp.abs(1 - 2 * lam2 * eta)) / eta
    return LinearOracle(m_star, mean_cov, variance, loss, objective, 2 * excess, optimum_loss, optimum_objective,
                        free_energy, gap, rate, z_nD @ m_star)


def dual_linear(config, g_n, z_nD, y_n):
    """D(g) for h = x.z, squared loss, in closed form: the log-partition is a Gaussian integral."""
    lam, lam2 = config.temperature, config.l2
    n, p = z_nD.shape
    b = z_nD.T @ g_n / n
    log_partition = b @ b / (4 * lam * lam2) + p / 2 * jnp.log(jnp.pi * lam / lam2)
    return -jnp.mean(g_n * y_n + g_n ** 2 / 2) - lam * log_partition


def _grid(dtype):
    x = jnp.linspace(-GRID_HALF_WIDTH, GRID_HALF_WIDTH, GRID_POINTS, dtype=dtype)
    h = x[1] - x[0]
    log_w = jnp.log(jnp.full_like(x, h).at[0].multiply(0.5).at[-1].multiply(0.5))
    return x, log_w


def _gibbs(config, g_n, z_n):
    """The Gibbs law p_g on the grid, as (log Z, P (grid_a, grid_w), tanh(a), tanh(w z_j) (grid_w, n), a, w).

    Its potential (1/n) sum_j g_j R tanh(a) tanh(w z_j) + lambda'(a^2 + w^2) is a product in (a, w) but for the
    regularizer, so expectations of h are matrix products with a (grid, grid) table instead of a (grid^2, n) one.
    """
    x, log_w = _grid(g_n.dtype)
    ta = jnp.tanh(x)
    tw_Gn = jnp.tanh(x[:, None] * z_n[None, :])
    u = tw_Gn @ g_n / z_n.shape[0]
    log_p = (-(config.output_scale * ta[:, None] * u[None, :] + config.l2 * (x[:, None] ** 2 + x[None, :] ** 2))
             / config.temperature + log_w[:, None] + log_w[None, :])
    log_z = jax.scipy.special.logsumexp(log_p)
    return log_z, jnp.exp(log_p - log_z), ta, tw_Gn, x


def dual_quadrature(config, g_n, z_nD, y_n):
    """D(g) for the tanh2d neuron and squared loss, by quadrature."""
    log_z = _gibbs(config, g_n, z_nD[:, 0])[0]
    return -jnp.mean(g_n * y_n + g_n ** 2 / 2) - config.temperature * log_z


class QuadratureOptimum(NamedTuple):
    """mu* of the tanh2d neuron. g: (n,) the dual maximizer g*; f_star: (n,) f*(z_j) = E_{mu*} h(x, z_j);
    free_energy: L(mu*) = D(g*); loss: F0(mu*); objective: F(mu*); second_moment: E_{mu*} |x|^2;
    gradient_norm: |grad D(g*)|, the Newton residual."""
    g: jax.Array
    f_star: jax.Array
    free_energy: jax.Array
    loss: jax.Array
    objective: jax.Array
    second_moment: jax.Array
    gradient_norm: jax.Array


def _moments(config, g_n, z_n):
    """E_{p_g} h(., z_j) (n,), Cov_{p_g} of h (n, n), E_{p_g} |x|^2."""
    log_z, P, ta, tw, x = _gibbs(config, g_n, z_n)
    R = config.output_scale
    mean = R * (ta @ P) @ tw
    second = R ** 2 * (tw.T * ((ta ** 2) @ P)) @ tw
    sq = x ** 2
    return mean, second - jnp.outer(mean, mean), jnp.sum(P * (sq[:, None] + sq[None, :]))


def quadrature_optimum(config, z_nD, y_n) -> QuadratureOptimum:
    """Newton's method on the concave dual: grad D = (f_g - y - g)/n, Hessian -I/n - Cov_{p_g}(h)/(lambda n^2)."""
    z_n = z_nD[:, 0]
    n = z_n.shape[0]

    def newton(g, _):
        f, cov, _ = _moments(config, g, z_n)
        hess = -jnp.eye(n, dtype=g.dtype) / n - cov / (config.temperature * n ** 2)
        return g - jnp.linalg.solve(hess, (f - y_n - g) / n), None

    g, _ = jax.lax.scan(newton, jnp.zeros_like(y_n), None, length=NEWTON_ITERATIONS)
    f, _, second_moment = _moments(config, g, z_n)
    loss = jnp.mean((f - y_n) ** 2) / 2
    return QuadratureOptimum(g, f, dual_quadrature(config, g, z_nD, y_n), loss,
                             loss + config.l2 * second_moment, second_moment,
                             jnp.linalg.norm((f - y_n - g) / n))
