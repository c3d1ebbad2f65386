"""The infinite-width NTK of the net in `model` (Jacot, Gabriel, Hongler 2018; Arora et al. 2019), computed on the host
by Gauss-Hermite quadrature, independently of the network code: the theory value beside the empirical NTK Gram at init.

For Phi(w; x) = v . x^L / sqrt(m), x^l = sigma(h^l), h^1 = W_1 x / sqrt(d), h^l = W_l x^(l-1) / sqrt(m), every entry
N(0, 1), the pre-activations of each layer tend (m -> infinity) to a Gaussian process with covariance Sigma^l, and

    Sigma^1(x, x') = x . x' / d,                      Theta^1 = Sigma^1,
    Sigma^(l+1) = E[sigma(u) sigma(u')],   Sigma_dot^(l+1) = E[sigma'(u) sigma'(u')],   (u, u') ~ N(0, Lambda^l),
    Theta^(l+1) = Sigma^(l+1) + Theta^l Sigma_dot^(l+1),                                 l = 1 .. L,

with Lambda^l the 2x2 covariance [[Sigma^l(x, x), Sigma^l(x, x')], [., Sigma^l(x', x')]]; the NTK is Theta^(L+1) (the
output is the (L+1)-th "pre-activation"). With one hidden layer (L = 1) the expected empirical Gram equals it exactly
at every width (it is a mean of m i.i.d. neuron terms); deeper, they differ by O(1/m).

The activations are jax's (`model.ACTIVATION`, the function sigma is not the parameterization under test), with the
derivative taken by autodiff.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from sims.ntk_stability.model import ACTIVATION

__all__ = ["QUADRATURE_NODES", "ntk"]

# Gauss-Hermite nodes per dimension. The integrands are smooth (analytic for softplus, gelu, tanh; a polynomial for
# quadratic, integrated exactly) and the variances O(1): 20 nodes agree with 64 to 1e-13 relative on softplus and gelu
# (tests/sims/test_ntk_stability_model.py checks 1e-10).
QUADRATURE_NODES = 20


def _gauss(nodes: int):
    """Nodes z (k,) and weights w (k,) of E[f(z)], z ~ N(0, 1)."""
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    return z, w / w.sum()


@functools.partial(jax.jit, static_argnums=(0, 4))
def _moments(activation: str, var_a, var_b, cov, nodes: int):
    """E[sigma(u) sigma(u')] and E[sigma'(u) sigma'(u')] for (u, u') ~ N(0, [[var_a, cov], [cov, var_b]]), elementwise
    over arrays (p,): u = sqrt(var_a) z_1, u' = sqrt(var_b) (rho z_1 + sqrt(1 - rho^2) z_2)."""
    sigma = ACTIVATION[activation]
    dsigma = jnp.vectorize(jax.grad(sigma))
    z, w = (jnp.asarray(a, var_a.dtype) for a in _gauss(nodes))
    a, b = jnp.sqrt(jnp.maximum(var_a, 0.0)), jnp.sqrt(jnp.maximum(var_b, 0.0))
    rho = jnp.clip(cov / jnp.maximum(a * b, 1e-300), -1.0, 1.0)
    u = a[:, None] * z[None, :]  # (p, k): z_1
    v = b[:, None, None] * (rho[:, None, None] * z[None, :, None]
                            + jnp.sqrt(1.0 - rho ** 2)[:, None, None] * z[None, None, :])  # (p, k, k): z_1, z_2
    weights = w[:, None] * w[None, :]

    def expect(f):
        return jnp.einsum("pi,pij,ij->p", f(u), f(v), weights)

    return expect(sigma), expect(dsigma)


# Pairs per quadrature batch: 8192 pairs x 20^2 nodes is 3.3M points (26 MiB in float64).
_PAIRS = 8192


def ntk(X: np.ndarray, activation: str, depth: int, nodes: int = QUADRATURE_NODES) -> np.ndarray:
    """The infinite-width NTK Gram (n, n) of the rows of X (n, d) for `depth` hidden layers."""
    X = np.asarray(X, float)
    n, d = X.shape
    i, j = np.triu_indices(n)
    sigma = (X @ X.T / d)[i, j]
    theta = sigma.copy()
    pad = -i.size % _PAIRS  # fixed batch shapes: one compilation per activation
    for _ in range(depth):
        diag = sigma[i == j]  # Sigma^l(x_k, x_k), k = 0 .. n-1 in order
        args = [np.concatenate([x, np.ones(pad)]).reshape(-1, _PAIRS) for x in (diag[i], diag[j], sigma)]
        parts = [_moments(activation, *(jnp.asarray(a[k]) for a in args), nodes) for k in range(args[0].shape[0])]
        s_new = np.concatenate([np.asarray(p[0]) for p in parts])[:i.size]
        s_dot = np.concatenate([np.asarray(p[1]) for p in parts])[:i.size]
        theta = s_new + theta * s_dot
        sigma = s_new
    K = np.zeros((n, n))
    K[i, j] = theta
    K[j, i] = theta
    return K
