"""The mean-field two-layer network of `mfld`: neurons h(x, z), losses l(a, y) and the first-variation gradient.

Mean-field network over particles x^1..x^N (the empirical measure rho):
    f_rho(z) = (1/N) sum_i h(x^i, z).
Objective F(mu) = F0(mu) + E_mu r,  F0(mu) = (1/n) sum_j l(f_mu(z_j), y_j),  r(x) = lambda' |x|^2.
The particle drift is the gradient of the first variation dF0/dmu(rho)(x) = (1/n) sum_j d1l(f_rho(z_j), y_j) h(x, z_j),
evaluated at each particle. Differentiating the averaged loss instead would give (1/N) of it (a known pitfall).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dynamics.langevin import gaussian

__all__ = ["param_dim", "neurons", "predict", "particle_block", "loss_value", "loss_slope", "loss_smoothness",
           "first_variation_grad", "potential_grad", "init_particles"]


def param_dim(config) -> int:
    """p, the dimension of one particle x."""
    return {"linear": config.dim, "tanh2d": 2, "tanh": config.dim + 2}[config.model]


def neurons(config, x_NP: jax.Array, z_nD: jax.Array) -> jax.Array:
    """h(x^i, z_j) for particles x (N, p) and inputs z (n, d): shape (N, n)."""
    if config.model == "linear":
        return x_NP @ z_nD.T
    if config.model == "tanh2d":
        return config.output_scale * jnp.tanh(x_NP[:, :1]) * jnp.tanh(x_NP[:, 1:2] * z_nD[:, 0])
    d = config.dim
    return config.output_scale * jnp.tanh(x_NP[:, d + 1:d + 2]) * jnp.tanh(x_NP[:, :d] @ z_nD.T + x_NP[:, d:d + 1])


def predict(config, x_MNP: jax.Array, z_nD: jax.Array) -> jax.Array:
    """f_rho(z_j) of each of the M networks: (M, n). The tanh neuron's sum runs over blocks of particles when
    `particle_block` splits them (no (N, n) array)."""
    if config.model == "tanh" and particle_block(config, z_nD.shape[0]) < config.particles:
        z1 = _with_ones(z_nD)
        return jax.vmap(lambda x: _tanh_neuron_sum(config, x, z1) / x.shape[0])(x_MNP)
    return jax.vmap(lambda x: jnp.mean(neurons(config, x, z_nD), axis=0))(x_MNP)


def loss_value(config, f, y):
    """l(f, y) elementwise."""
    if config.loss == "squared":
        return 0.5 * (f - y) ** 2
    return jax.nn.softplus(-y * f)


def loss_slope(config, f, y):
    """d1l(f, y) = dl/df elementwise."""
    if config.loss == "squared":
        return f - y
    return -y * jax.nn.sigmoid(-y * f)


def loss_smoothness(config) -> float:
    """L_l, the Lipschitz constant of d1l: 1 for squared, 1/4 for logistic."""
    return 1.0 if config.loss == "squared" else 0.25


def first_variation_grad(config, x_NP: jax.Array, z_nD: jax.Array, y_n: jax.Array) -> jax.Array:
    """grad_x dF0/dmu(rho)(x^i) for every particle: (N, p). The regularizer's gradient is added by the optimizer.

    One forward pass: the neurons' values give f_rho, and their pullback of d1l/n gives every particle's gradient.
    The paper's tanh neuron has a hand-written pullback (`_tanh_first_variation_grad`), the same numbers faster.
    """
    if config.model == "tanh":
        return _tanh_first_variation_grad(config, x_NP, z_nD, y_n)
    h_Nn, pullback = jax.vjp(lambda x: neurons(config, x, z_nD), x_NP)
    slope_n = loss_slope(config, jnp.mean(h_Nn, axis=0), y_n) / z_nD.shape[0]
    return pullback(jnp.broadcast_to(slope_n, h_Nn.shape))[0]


def potential_grad(config, x_NP: jax.Array, z_nD: jax.Array, weights_n: jax.Array) -> jax.Array:
    """grad_x of sum_j weights_j h(x, z_j) at every particle: (N, p). With weights g*/n it is the gradient of the
    optimum's first variation dF0/dmu(mu*), the fixed potential of thermodynamic integration."""
    h_Nn, pullback = jax.vjp(lambda x: neurons(config, x, z_nD), x_NP)
    return pullback(jnp.broadcast_to(weights_n, h_Nn.shape))[0]


BLOCK_ELEMENTS = 1 << 22  # 16 MiB of float32 per (B, n) activation array: a few of them stay in the last-level cache


def particle_block(config, samples: int) -> int:
    """B, the particles per block of the tanh neuron (config.particle_block, or automatic: all N while N n <=
    BLOCK_ELEMENTS, else BLOCK_ELEMENTS / n). Unblocked is faster while the (N, n) arrays fit in memory (XLA:CPU's
    loop costs tens of microseconds per block); blocked, memory is O(B n) at any N (benchmarks/mfld.py). Other
    neurons are not blocked: N."""
    if config.model != "tanh":
        return config.particles
    if config.particle_block:
        return min(config.particle_block, config.particles)
    return config.particles if config.particles * samples <= BLOCK_ELEMENTS else max(1, BLOCK_ELEMENTS // samples)


def _tanh(u: jax.Array) -> jax.Array:
    """tanh, as Eigen's float32 rational approximation (13/6 on [-7.905, 7.905], clamped) in float32: 1.9x faster
    than XLA:CPU's tanh in the step's (N, n) pass and within 4 ulp of it (tests/sims/test_mfld_blocked.py);
    jnp.tanh in float64, where the theory checks need every digit."""
    if u.dtype != jnp.float32:
        return jnp.tanh(u)
    u = jnp.clip(u, -7.90531110763549805, 7.90531110763549805)
    u2 = u * u
    p = u2 * -2.76076847742355e-16 + 2.00018790482477e-13
    for c in (-8.60467152213735e-11, 5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
              4.89352455891786e-03):
        p = u2 * p + c
    q = u2 * 1.19825839466702e-06 + 1.18534705686654e-04
    for c in (2.26843463243900e-03, 4.89352518554385e-03):
        q = u2 * q + c
    return u * p / q


def _weighted_rows(w_N, t_Nn):
    """sum_i w_i t_i: (n,), as a two-row matrix product whose second row is zero. Under `vmap` (the M systems, the
    sweep's members) a vector-matrix product becomes a batched one, which XLA:CPU ran an order of magnitude slower
    than the plain one at N = 1024-2048 on an Intel Xeon; the two-row product takes the fast matrix-matrix path,
    batched or not. On an AMD EPYC the batched product is fast and this form costs 2-8% of the step
    (benchmarks/mfld.py times both): the smaller loss."""
    return (jnp.stack([w_N, jnp.zeros_like(w_N)]) @ t_Nn)[0]


def _with_ones(z_nD):
    """(z, 1): (n, d + 1). The bias rides in the matrix products."""
    return jnp.concatenate([z_nD, jnp.ones((z_nD.shape[0], 1), z_nD.dtype)], axis=1)


def _blocks(x_NP, block: int):
    """x in blocks of B particles: (ceil(N / B), B, p), padded with zero particles. A zero particle has output
    weight tanh(0) = 0, so it adds nothing to f_rho; its gradient row is dropped."""
    nb = -(-x_NP.shape[0] // block)
    return jnp.pad(x_NP, ((0, nb * block - x_NP.shape[0]), (0, 0))).reshape(nb, block, x_NP.shape[1])


def _tanh_neuron_sum(config, x_NP, z1_nD):
    """sum_i h(x^i, z_j) = R sum_i tanh(a_i) tanh(w_i.z_j + b_i): (n,), one block of particles at a time."""
    d, R = config.dim, config.output_scale
    block = particle_block(config, z1_nD.shape[0])

    def partial(x):
        return _weighted_rows(jnp.tanh(x[:, d + 1]), _tanh(x[:, :d + 1] @ z1_nD.T))

    if block >= x_NP.shape[0]:
        return R * partial(x_NP)
    total, _ = jax.lax.scan(lambda acc, x: (acc + partial(x), None), jnp.zeros(z1_nD.shape[0], x_NP.dtype),
                            _blocks(x_NP, block))
    return R * total


def _tanh_first_variation_grad(config, x_NP, z_nD, y_n):
    """The tanh neuron's gradient, pulled back by hand: 1.3-1.5x faster on CPU than `jax.vmap` of autodiff.

    With t = tanh(w.z + b), a the output weight, s_j = d1l(f_rho(z_j), y_j)/n:
        grad_(w,b) = R tanh(a) sum_j (1 - t_j^2) s_j (z_j, 1),    grad_a = R (1 - tanh(a)^2) sum_j t_j s_j.
    The bias rides in the matrix products (z gets a column of ones), f_rho is one matrix-vector product, and
    1 - t^2 reuses the stored activations in the one elementwise pass that builds G. The (N, n) arrays are memory
    bound, so every pass saved counts as much as a matrix product.
    Blocked (`particle_block` B < N), f_rho is summed over blocks first, and each block's activations are then
    recomputed for its pullback: two passes over the particles, no (N, n) array, memory O(B n).
    """
    d, R, N = config.dim, config.output_scale, x_NP.shape[0]
    z1_nD = _with_ones(z_nD)
    block = particle_block(config, z_nD.shape[0])
    if block >= N:  # one block: f_rho from the stored activations (today's numbers, bit for bit, in float64)
        ta_N = jnp.tanh(x_NP[:, d + 1])
        t_Nn = _tanh(x_NP[:, :d + 1] @ z1_nD.T)
        f_n = (R / N) * _weighted_rows(ta_N, t_Nn)
        return _tanh_pullback(config, ta_N, t_Nn, z1_nD, loss_slope(config, f_n, y_n) / z_nD.shape[0])
    s_n = loss_slope(config, _tanh_neuron_sum(config, x_NP, z1_nD) / N, y_n) / z_nD.shape[0]

    def pullback(x):
        return _tanh_pullback(config, jnp.tanh(x[:, d + 1]), _tanh(x[:, :d + 1] @ z1_nD.T), z1_nD, s_n)

    return jax.lax.map(pullback, _blocks(x_NP, block)).reshape(-1, x_NP.shape[1])[:N]


def _tanh_pullback(config, ta_N, t_Nn, z1_nD, s_n):
    """Every particle's gradient from its activations t (N, n), output weights tanh(a) (N,) and s (n,)."""
    R = config.output_scale
    g_Nn = (1.0 - t_Nn * t_Nn) * s_n
    grad_wb = (R * ta_N)[:, None] * (g_Nn @ z1_nD)
    grad_a = R * (1.0 - ta_N * ta_N) * (t_Nn @ s_n)
    return jnp.concatenate([grad_wb, grad_a[:, None]], axis=1)


def init_particles(config, key) -> jax.Array:
    """x ~ N(0, init_scale^2 I): (M, N, p)."""
    shape = (config.ensemble, config.particles, param_dim(config))
    return config.init_scale * gaussian(key, shape)
