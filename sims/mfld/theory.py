"""Closed-form theory of `mfld`, in jax.numpy so it runs inside the jitted, vmapped simulation (float64 under --x64).

Free energy L(mu) = F(mu) + lambda Ent(mu), Ent(mu) = int mu log mu dx. Its minimizer mu* is the Gibbs law of its own
first variation. Two exact oracles (theory note, "Exact oracle 1 and 2"):

* `linear_oracle`: h(x, z) = x.z with squared loss. mu* = N(m*, s^2 I) and the Euler-Maruyama chain of N particles
  has an exactly Gaussian stationary law, so every stationary expectation is closed-form in discrete time, also
  under the interpolated drift of thermodynamic integration (config.interpolation = s).
* `quadrature_optimum`: h(x, z) = R tanh(a) tanh(w z) on x = (a, w) in R^2. mu* = p_{g*} where g* maximizes the
  concave dual D(g) = -(1/n) sum_j l*(g_j) - lambda log int exp(-[(1/n) sum_j g_j h(x, z_j) + r(x)] / lambda) dx,
  found by Newton's method on a quadrature grid that follows the Gibbs law's scale (`_grid`). D(g) <= L(mu*) for
  every g: a certified lower bound. `check_quadrature` refuses a config whose grid cannot reach `QUADRATURE_TOLERANCE`.

Theorem 1 of the paper: the particle part of the stationary free-energy gap is at most B/N, B = L_l R^2 / 2. Via
Lemma 1, for squared loss, the model error (1/n) sum_j (f_rho(z_j) - f*(z_j))^2 is at most 2B/N in stationarity.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from dynamics.config import ConfigError
from sims.mfld import model

__all__ = ["LinearOracle", "linear_oracle", "QuadratureOptimum", "quadrature_optimum", "dual_linear",
           "dual_quadrature", "chaos_constant", "check_quadrature", "QUADRATURE_TOLERANCE"]

GRID_POINTS = 201  # per axis (odd: the half grid of every other node, `_half`, keeps both ends)
TAILS = 9.0  # the grid reaches this many prior standard deviations beyond the drift's reach: Gaussian tail e^-40
CENTER_SCALE = 1.0  # the sinh map's linear scale: tanh(a), tanh(w z) vary on O(1) (w: 1/max z) near the origin
NEWTON_ITERATIONS = 12  # converges in about 4 from g = 0; the rest cost little and guard harder settings
QUADRATURE_TOLERANCE = 1e-8  # absolute, on L(mu*) and f*(z_j): the digits the theory note quotes


def chaos_constant(config):
    """B = L_l R^2 / 2 of Theorem 1 (infinite for the unbounded linear neuron)."""
    if config.model == "linear":
        return jnp.inf
    return model.loss_smoothness(config) * config.output_scale ** 2 / 2


class LinearOracle(NamedTuple):
    """Stationary law of N-particle noisy GD with h = x.z, squared loss, step eta, for an ensemble of M networks,
    under the drift s dF0/dmu(rho) + (1 - s) dF0/dmu(mu*) (s = config.interpolation; s = 1 is the paper's eq. 3).

    The drift moves the mean m_X with K_s = s A + 2 lambda' I (eigenvalues kappa_k = s a_k + 2 lambda') about the
    same fixed point m* for every s, and every fluctuation x^i - m_X with 2 lambda' alone.
    mean: m* = K^-1 c, (p,). mean_cov: Cov(m_X) of one network, eigenvalues
    (lambda / (N kappa_k)) / (1 - eta kappa_k / 2), (p, p). particle_variance: each coordinate's fluctuation
    variance s^2 (1 - 1/N) / (1 - lambda' eta).
    loss, objective, model_error: stationary E F0(f_ens), E F(mixture), E mean_j (f_ens - f*)^2 (z_j).
    bregman: stationary E B_F0(rho_m, mu*) = tr(A Cov(m_X)) / 2 of one network, the integrand of thermodynamic
    integration at s (exact in discrete time).
    optimum_loss, optimum_objective, free_energy: F0(mu*), F(mu*), L(mu*).
    free_energy_gap: Delta_N = (lambda / 2N) sum_k log(1 + gamma_k) (continuous time, s = 1).
    relaxation_rate: per unit time, of the fluctuation variance, -2 log|1 - 2 lambda' eta| / eta,
    which is Theorem 1's 2 alpha lambda = 4 lambda' as eta -> 0 (alpha = 1/s^2, the LSI constant of mu*).
    f_star: (n,) f*(z_j) = m*.z_j.
    """
    mean: jax.Array
    mean_cov: jax.Array
    particle_variance: jax.Array
    loss: jax.Array
    objective: jax.Array
    model_error: jax.Array
    bregman: jax.Array
    optimum_loss: jax.Array
    optimum_objective: jax.Array
    free_energy: jax.Array
    free_energy_gap: jax.Array
    relaxation_rate: jax.Array
    f_star: jax.Array


def linear_oracle(config, z_nD, y_n) -> LinearOracle:
    lam, lam2, eta, s = config.temperature, config.l2, config.lr, config.interpolation
    n, p = z_nD.shape
    N, M = config.particles, config.ensemble
    A = z_nD.T @ z_nD / n
    c = z_nD.T @ y_n / n
    a_k, U = jnp.linalg.eigh(A)
    m_star = U @ ((U.T @ c) / (a_k + 2 * lam2))
    kappa = s * a_k + 2 * lam2
    mean_cov = (U * ((lam / (N * kappa)) / (1 - eta * kappa / 2))) @ U.T
    s2 = lam / (2 * lam2)
    variance = s2 * (1 - 1 / N) / (1 - lam2 * eta)
    optimum_loss = 0.5 * m_star @ A @ m_star - c @ m_star + 0.5 * jnp.mean(y_n ** 2)
    bregman = 0.5 * jnp.trace(A @ mean_cov)
    loss = optimum_loss + bregman / M
    objective = loss + lam2 * (m_star @ m_star + jnp.trace(mean_cov) + p * variance)
    optimum_objective = optimum_loss + lam2 * (m_star @ m_star + p * s2)
    free_energy = optimum_objective - lam * p / 2 * jnp.log(2 * jnp.pi * jnp.e * s2)
    gap = lam / (2 * N) * jnp.sum(jnp.log1p(a_k / (2 * lam2)))
    rate = -2 * jnp.log(jnp.abs(1 - 2 * lam2 * eta)) / eta
    return LinearOracle(m_star, mean_cov, variance, loss, objective, 2 * bregman / M, bregman, optimum_loss,
                        optimum_objective, free_energy, gap, rate, z_nD @ m_star)


def dual_linear(config, g_n, z_nD, y_n):
    """D(g) for h = x.z, squared loss, in closed form: the log-partition is a Gaussian integral."""
    lam, lam2 = config.temperature, config.l2
    n, p = z_nD.shape
    b = z_nD.T @ g_n / n
    log_partition = b @ b / (4 * lam * lam2) + p / 2 * jnp.log(jnp.pi * lam / lam2)
    return -jnp.mean(g_n * y_n + g_n ** 2 / 2) - lam * log_partition


def _grid(config, z_n, y_n):
    """Nodes x (P,) and log trapezoid weights (P,) of the rule for int dx: x = c sinh(t), t uniform on [-T, T].

    The Gibbs law p_g is the prior N(0, sigma^2 I), sigma^2 = lambda / (2 lambda'), tilted by exp(-b(x) / lambda),
    b(x) = (1/n) sum_j g_j h(x, z_j), whose gradient is at most Lip = R max|g| max(1, max z) with |g_j| <= R + |y_j|
    (|f| <= R at g* and at every recorded g_rho). Beyond r0 = Lip / (2 lambda') the density falls at least like
    exp(-(r - r0)^2 / (2 sigma^2)) (V(r) - V(r0) >= lambda' (r - r0)^2), so the grid reaches r0 + TAILS sigma.
    The sinh map keeps nodes CENTER_SCALE * dt apart near the origin (no wider than sigma), where tanh(a) and
    tanh(w z) vary, and spreads them where only the Gaussian remains: the integrand is analytic in a strip of t, so
    the trapezoid rule converges geometrically in P. One grid per config and data, for every g: D on it is concave,
    so weak duality holds on the grid exactly.
    """
    sigma = jnp.sqrt(config.temperature / (2 * config.l2))
    lip = config.output_scale * (config.output_scale + jnp.max(jnp.abs(y_n))) * jnp.maximum(1.0, jnp.max(jnp.abs(z_n)))
    extent = lip / (2 * config.l2) + TAILS * sigma
    c = jnp.minimum(CENTER_SCALE, sigma)
    t = jnp.arcsinh(extent / c) * jnp.linspace(-1.0, 1.0, GRID_POINTS, dtype=z_n.dtype)
    ends = jnp.ones_like(t).at[0].set(0.5).at[-1].set(0.5)
    return c * jnp.sinh(t), jnp.log((t[1] - t[0]) * c * jnp.cosh(t) * ends)


def _coarse(x, log_w, k):
    """Every k-th node of `_grid` with the weights of the trapezoid rule at k times the step ((P - 1) % k == 0)."""
    return x[::k], log_w[::k] + jnp.log(float(k))


def _gibbs(config, g_n, z_n, x, log_w):
    """The Gibbs law p_g on the grid, as (log Z, P (grid_a, grid_w), tanh(a), tanh(w z_j) (grid_w, n)).

    Its potential (1/n) sum_j g_j R tanh(a) tanh(w z_j) + lambda'(a^2 + w^2) is a product in (a, w) but for the
    regularizer, so expectations of h are matrix products with a (grid, grid) table instead of a (grid^2, n) one.
    """
    ta = jnp.tanh(x)
    tw_Gn = jnp.tanh(x[:, None] * z_n[None, :])
    u = tw_Gn @ g_n / z_n.shape[0]
    log_p = (-(config.output_scale * ta[:, None] * u[None, :] + config.l2 * (x[:, None] ** 2 + x[None, :] ** 2))
             / config.temperature + log_w[:, None] + log_w[None, :])
    log_z = jax.scipy.special.logsumexp(log_p)
    return log_z, jnp.exp(log_p - log_z), ta, tw_Gn


def _dual(config, g_n, z_n, y_n, x, log_w):
    return -jnp.mean(g_n * y_n + g_n ** 2 / 2) - config.temperature * _gibbs(config, g_n, z_n, x, log_w)[0]


def dual_quadrature(config, g_n, z_nD, y_n):
    """D(g) for the tanh2d neuron and squared loss, by quadrature."""
    z_n = z_nD[:, 0]
    return _dual(config, g_n, z_n, y_n, *_grid(config, z_n, y_n))


class QuadratureOptimum(NamedTuple):
    """mu* of the tanh2d neuron. g: (n,) the dual maximizer g*; f_star: (n,) f*(z_j) = E_{mu*} h(x, z_j);
    free_energy: L(mu*) = D(g*); loss: F0(mu*); objective: F(mu*); second_moment: E_{mu*} |x|^2;
    gradient_norm: |grad D(g*)|, the Newton residual; error: the larger of the quadrature's error estimate
    (`_error_estimate`) and Newton's residual in f*.
    """
    g: jax.Array
    f_star: jax.Array
    free_energy: jax.Array
    loss: jax.Array
    objective: jax.Array
    second_moment: jax.Array
    gradient_norm: jax.Array
    error: jax.Array


def _moments(config, g_n, z_n, x, log_w):
    """E_{p_g} h(., z_j) (n,), Cov_{p_g} of h (n, n), E_{p_g} |x|^2, the probability of the outermost nodes."""
    _, P, ta, tw = _gibbs(config, g_n, z_n, x, log_w)
    R = config.output_scale
    mean = R * (ta @ P) @ tw
    second = R ** 2 * (tw.T * ((ta ** 2) @ P)) @ tw
    sq = x ** 2
    edge = P[0].sum() + P[-1].sum() + P[:, 0].sum() + P[:, -1].sum()
    return mean, second - jnp.outer(mean, mean), jnp.sum(P * (sq[:, None] + sq[None, :])), edge


def _error_estimate(config, g_n, z_n, y_n, grid, edge):
    """The error of L(mu*) and f*(z_j) on the full grid. The trapezoid rule converges geometrically in 1/dt
    (error ~ C exp(-a / dt)), so with d1 = the change from the 2 dt rule to the full one (about the 2 dt rule's
    error) and d2 = from 4 dt to 2 dt, the full rule's error is about d1 (d1 / d2)^2; d1 itself when the ratio is
    not below 1 (not yet geometric). The probability of the outermost nodes bounds the truncation (beyond them the
    law falls faster than between them)."""
    def change(a, b):
        return jnp.maximum(jnp.abs(_dual(config, g_n, z_n, y_n, *a) - _dual(config, g_n, z_n, y_n, *b)),
                           jnp.max(jnp.abs(_moments(config, g_n, z_n, *a)[0] - _moments(config, g_n, z_n, *b)[0])))

    half, quarter = _coarse(*grid, 2), _coarse(*grid, 4)
    d1, d2 = change(grid, half), change(half, quarter)
    ratio = jnp.minimum(1.0, d1 / jnp.maximum(d2, jnp.finfo(d1.dtype).tiny))
    return jnp.maximum(d1 * ratio ** 2, edge)


def quadrature_optimum(config, z_nD, y_n) -> QuadratureOptimum:
    """Newton's method on the concave dual: grad D = (f_g - y - g)/n, Hessian -I/n - Cov_{p_g}(h)/(lambda n^2)."""
    z_n = z_nD[:, 0]
    n = z_n.shape[0]
    grid = _grid(config, z_n, y_n)

    def newton(g, _):
        f, cov, _, _ = _moments(config, g, z_n, *grid)
        hess = -jnp.eye(n, dtype=g.dtype) / n - cov / (config.temperature * n ** 2)
        return g - jnp.linalg.solve(hess, (f - y_n - g) / n), None

    g, _ = jax.lax.scan(newton, jnp.zeros_like(y_n), None, length=NEWTON_ITERATIONS)
    f, _, second_moment, edge = _moments(config, g, z_n, *grid)
    free_energy = _dual(config, g, z_n, y_n, *grid)
    # Newton's residual bounds |g - g*| (D is 1/n-strongly concave: |g - g*| <= n |grad D| = |f_g - y - g|).
    error = jnp.maximum(_error_estimate(config, g, z_n, y_n, grid, edge), jnp.max(jnp.abs(f - y_n - g)))
    loss = jnp.mean((f - y_n) ** 2) / 2
    return QuadratureOptimum(g, f, free_energy, loss, loss + config.l2 * second_moment, second_moment,
                             jnp.linalg.norm((f - y_n - g) / n), error)


@jax.jit
def _error(config, z_nD, y_n):
    return quadrature_optimum(config, z_nD, y_n).error


@functools.lru_cache(maxsize=256)
def _quadrature_error(config) -> float:
    from sims.mfld import data as data_lib
    with jax.enable_x64(True):
        d = data_lib.make_data(config)
        return float(_error(config, d.z_train, d.y_train))


def check_quadrature(config) -> None:
    """Raises ConfigError when `quadrature_optimum` cannot reach QUADRATURE_TOLERANCE for this config (tanh2d with
    squared loss, lambda > 0, lambda' > 0; no oracle is claimed otherwise). Computed once per config, in float64."""
    if config.model != "tanh2d" or config.loss != "squared" or not (config.temperature > 0 and config.l2 > 0):
        return
    error = _quadrature_error(config)
    if not error <= QUADRATURE_TOLERANCE:
        raise ConfigError(f"--temperature={config.temperature} --l2={config.l2} --output_scale={config.output_scale}: "
                          f"tanh2d's mu* by quadrature would be off by {error:.1e} (> {QUADRATURE_TOLERANCE:g}) "
                          f"on its {GRID_POINTS}-point grid; allowed: settings the quadrature resolves")
