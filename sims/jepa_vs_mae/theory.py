"""`jepa_vs_mae` theory: the per-feature scalar ODEs, their fixed points and critical times (theory note, derived
from the model and checked against full-matrix GD; arXiv 2407.03475 eqs. 7-8 in the reading of the README).

With diagonal covariances and the balanced init, the weights stay diagonal and every layer's gain equals the
predictor's, v = wbar^(1/L) (v^2 - a_l^2 is conserved, and starts at 0). Per feature, in v:

    JEPA  dv/dt = lambda v^(2L) (1 - v / rho),            wbar* = rho^L,          v* = rho
    MAE   dv/dt = lambda v^L (1 - v^(L+1) / rho),         wbar* = rho^(L/(L+1)),  v* = rho^(1/(L+1))

(equivalently dwbar/dt = L (lambda wbar^(3 - 1/L) - (lambda/rho) wbar^3) and L (lambda wbar^(2 - 1/L) - ...)).
GD on the balanced weights is exactly forward Euler on these v-ODEs with step lr (the layer and predictor gradients
coincide when v = a_l), so its critical time is late by (lr/2) ln(f(v1)/f(v0)) + O(lr^2): the Euler map is the
time-lr flow of f - (lr/2) f' f, and integrating dv over that field adds (lr/2) int f'/f dv.

Critical time: the time wbar takes from eps to half its fixed point (v from eps^(1/L) to v1 = (wbar*/2)^(1/L)).
JEPA in closed form, u = v/rho:
    t = 1/(lambda rho^(2L-1)) [sum_{k=2}^{2L} (u0^(1-k) - u1^(1-k))/(k-1) + ln(u1/u0) + ln((1-u0)/(1-u1))]
MAE by 1/(v^L (1 - v^(L+1)/rho)) = v^-L + v/(rho - v^(L+1)): the first term in closed form, the second (smooth,
v^(L+1)/rho <= 1/2 up to v1) by Gauss-Legendre quadrature.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["rhs", "encoder_fixed_point", "predictor_fixed_point", "half_level", "critical_time", "euler_shift",
           "ode_path", "small_eps_time"]

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(48)


def rhs(objective: str, v, lam, rho, L: int):
    """dv/dt of one feature (jepa_ema: JEPA's, the no-lag prediction)."""
    if objective == "mae":
        return lam * v ** L * (1 - v ** (L + 1) / rho)
    return lam * v ** (2 * L) * (1 - v / rho)


def encoder_fixed_point(objective: str, rho, L: int):
    """wbar*: rho^L (JEPA), rho^(L/(L+1)) (MAE)."""
    return rho ** (L / (L + 1)) if objective == "mae" else rho ** L


def predictor_fixed_point(objective: str, rho, L: int):
    """v*: rho (JEPA), rho^(1/(L+1)) (MAE); the MAE product v wbar* = rho."""
    return rho ** (1 / (L + 1)) if objective == "mae" else rho


def half_level(objective: str, rho, L: int):
    """v1 = (wbar*/2)^(1/L): v when the encoder gain reaches half its fixed point."""
    return (encoder_fixed_point(objective, rho, L) / 2) ** (1 / L)


def critical_time(objective: str, lam, rho, L: int, eps):
    """Time for wbar to go from eps to wbar*/2 under the ODE (closed form for JEPA; MAE: closed form plus a
    48-point Gauss-Legendre integral of a smooth term)."""
    v0, v1 = eps ** (1 / L), half_level(objective, rho, L)
    if objective == "mae":
        first = jnp.log(v1 / v0) if L == 1 else (v0 ** (1 - L) - v1 ** (1 - L)) / (L - 1)
        half, mid = (v1 - v0) / 2, (v1 + v0) / 2
        v = mid[..., None] + half[..., None] * _NODES
        second = half * jnp.sum(_WEIGHTS * v / (rho[..., None] - v ** (L + 1)), axis=-1)
        return (first + second) / lam
    u0, u1 = v0 / rho, v1 / rho
    powers = sum((u0 ** (1 - k) - u1 ** (1 - k)) / (k - 1) for k in range(2, 2 * L + 1))
    return (powers + jnp.log(u1 / u0) + jnp.log((1 - u0) / (1 - u1))) / (lam * rho ** (2 * L - 1))


def small_eps_time(lam, rho, L: int, eps):
    """JEPA's leading terms for small eps: sum_{n=1}^{2L-1} eps^(-n/L) / (n lambda rho^(2L-1-n)) (the theory note;
    the n = 2L-1 term does not depend on rho, the others favour large rho, less suppressed as L grows)."""
    return sum(eps ** (-n / L) / (n * lam * rho ** (2 * L - 1 - n)) for n in range(1, 2 * L))


def euler_shift(objective: str, lam, rho, L: int, eps, lr):
    """First-order delay of GD's critical time behind the flow's: (lr/2) ln(f(v1)/f(v0))."""
    v0, v1 = eps ** (1 / L), half_level(objective, rho, L)
    return lr / 2 * jnp.log(rhs(objective, v1, lam, rho, L) / rhs(objective, v0, lam, rho, L))


def ode_path(objective: str, lam, rho, L: int, eps, lr, records: int, record_every: int) -> jax.Array:
    """v(t) of every feature at the records t = lr * record_every * k, k = 0 ... records - 1: RK4 with step lr in a
    scan (its O(lr^4) error is far below GD's O(lr)). lam, rho: (d,). Returns (records, d)."""
    f = lambda v: rhs(objective, v, lam, rho, L)

    def rk4(v, _):
        k1 = f(v)
        k2 = f(v + lr / 2 * k1)
        k3 = f(v + lr / 2 * k2)
        k4 = f(v + lr * k3)
        return v + lr / 6 * (k1 + 2 * k2 + 2 * k3 + k4), None

    def block(v, _):
        v, _ = jax.lax.scan(rk4, v, None, length=record_every)
        return v, v

    v0 = jnp.broadcast_to(eps ** (1 / L), lam.shape).astype(lam.dtype)
    _, path = jax.lax.scan(block, v0, None, length=records - 1)
    return jnp.concatenate([v0[None], path])
