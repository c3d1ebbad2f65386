"""ntk_stability's net, NTK Gram, NTK-margin programs, replica sets and XOR step (sims/ntk_stability/) against exact
identities.

Tolerances are float64 round-off (eps = 2.2e-16) scaled by the computation: a Gram entry is a sum of P ~ 1e3
products of O(1) terms, so two exact constructions differ by ~P eps max K_ii ~ 1e-13 relative; the margin programs are
exact active-set methods stopped at a KKT slack of 1e3 eps max Q_ii, so their optimal values agree to ~1e-12
relative (the acceptance asks 1e-6); a certificate (a feasible point of each side of the max-min duality with equal
values) closes the gap to the same round-off.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.ntk_stability import Config
from sims.ntk_stability import data, kernel, margin, model, sim

DIM, WIDTH, DEPTH, N = 5, 16, 3, 12
ITERATIONS = 500


def deep_net(activation="gelu"):
    return model.network("mixture", activation)


@pytest.fixture(scope="module")
def deep():
    """A depth-3 gelu net at init and n = 12 inputs on the unit sphere, with labels of a mixture."""
    params = model.init_params(jax.random.key(0), DIM, WIDTH, DEPTH, jnp.float64)
    X = jax.random.normal(jax.random.key(1), (N, DIM))
    X = X / jnp.linalg.norm(X, axis=1, keepdims=True)
    y = jnp.where(X[:, 0] + 0.3 * jax.random.normal(jax.random.key(2), (N,)) > 0, 1.0, -1.0)
    return params, X, y


@pytest.fixture(scope="module")
def gram(deep):
    params, X, _ = deep
    return jax.jit(lambda p, X: model.ntk_gram_jacobian(deep_net(), p, X))(params, X)


@pytest.fixture(scope="module")
def margins(deep, gram):
    _, _, y = deep
    return jax.jit(margin.ntk_margin, static_argnums=2)(gram, y, ITERATIONS)


@pytest.mark.slow
def test_scan_over_layers_equals_an_explicit_layer_loop(deep):
    params, X, _ = deep
    H = jax.nn.gelu(X @ params["first"].T / np.sqrt(DIM))
    for W in params["hidden"]:
        H = jax.nn.gelu(H @ W.T / np.sqrt(WIDTH))
    expected = H @ params["out"] / np.sqrt(WIDTH)
    np.testing.assert_allclose(model.forward(params, X, "gelu"), expected, rtol=1e-13, atol=1e-14)


def test_gram_from_jacobian_equals_gram_from_jvp_vjp_products(deep, gram):
    params, X, _ = deep
    products = jax.jit(lambda p, X: model.ntk_gram_products(deep_net(), p, X))(params, X)
    chex.assert_shape(products, (N, N))
    # P = 16 * 5 + 2 * 16 * 16 + 16 = 608 terms per entry: ~1e-13 of max K_ii.
    np.testing.assert_allclose(products, gram, rtol=0, atol=1e-12 * float(jnp.max(jnp.diag(gram))))


def test_gram_is_the_inner_product_of_per_sample_gradients(deep, gram):
    params, X, _ = deep
    phi = [model.flatten(jax.grad(lambda p: model.forward(p, X[i:i + 1], "gelu")[0])(params)) for i in (0, 5)]
    np.testing.assert_allclose(gram[0, 5], phi[0] @ phi[1], rtol=1e-12)


def test_simplex_qp_and_svm_dual_give_the_same_margin(margins):
    assert float(margins.gamma) > 0  # 12 points in a 608-dimensional feature space are separable
    assert bool(margins.converged)
    np.testing.assert_allclose(margins.gamma_dual, margins.gamma, rtol=1e-10)


def test_margin_direction_attains_the_margin_and_certifies_it(deep, margins):
    # For any unit u, min_i y_i <phi_i, u> <= gamma <= |sum_i p_i y_i phi_i| for any p in the simplex (weak
    # duality). u* is the unit direction built from p*, so equality of its attained margin with sqrt(p*' Q p*)
    # certifies both as the optimum, independently of how p* was found.
    params, X, y = deep
    net = deep_net()
    p = margins.weights
    chex.assert_trees_all_close(jnp.sum(p), 1.0, atol=1e-14)
    assert float(jnp.min(p)) >= 0
    u = model.vjp_direction(net, params, X, p * y)
    norm = jnp.linalg.norm(model.flatten(u))
    np.testing.assert_allclose(norm, margins.gamma, rtol=1e-12)
    attained = jnp.min(y * jax.jvp(lambda w: net(w, X), (params,), (u,))[1]) / norm
    np.testing.assert_allclose(attained, margins.gamma, rtol=1e-10)


def test_svm_dual_solution_is_feasible_and_satisfies_complementary_slackness(deep, gram, margins):
    _, _, y = deep
    Q = gram * y[:, None] * y[None, :]
    a = margins.dual
    slack = Q @ a - 1.0
    scale = 1e3 * np.finfo(np.float64).eps * float(jnp.max(jnp.diag(Q))) * float(jnp.sum(a))
    assert float(jnp.min(a)) >= 0
    assert float(jnp.min(slack)) >= -scale
    np.testing.assert_allclose(a * slack, 0.0, atol=scale * float(jnp.max(a)))


def test_margin_is_zero_when_one_input_carries_both_labels(deep, gram):
    # z_0 = y_0 phi_0 and -z_0 both lie in the hull, so 0 does: gamma = 0 and p* = (1/2, 1/2) on the pair.
    # p' Q p then sums round-off of size ~eps max Q_ii, so gamma <= sqrt(1e2 eps max Q_ii).
    _, _, y = deep
    K = jnp.block([[gram, gram[:, :1]], [gram[:1, :], gram[:1, :1]]])
    labels = jnp.concatenate([y, -y[:1]])
    p, converged = jax.jit(margin.simplex_qp, static_argnums=1)(K * labels[:, None] * labels[None, :], ITERATIONS)
    assert bool(converged)
    gamma = jnp.sqrt(jnp.maximum(p @ (K * labels[:, None] * labels[None, :]) @ p, 0.0))
    assert float(gamma) <= np.sqrt(1e2 * np.finfo(np.float64).eps * float(jnp.max(jnp.diag(K))))


def test_flat_draws_and_batched_keys_give_jax_randoms_numbers_exactly():
    # The sim draws for compile time (one flat hash per draw, keys and coin flips batched by vmap); the numbers must
    # be jax.random's own, bit for bit, or every result would change.
    key = jax.random.key(11)
    np.testing.assert_array_equal(model.normal(key, (7, 5, 3), jnp.float64), jax.random.normal(key, (7, 5, 3)))
    np.testing.assert_array_equal(model.bernoulli(key, 0.3, (9, 4)), jax.random.bernoulli(key, 0.3, (9, 4)))
    keys = jax.random.split(key, 4)
    for i, k in enumerate(jax.vmap(lambda k: jax.random.split(k, 3))(keys)):
        np.testing.assert_array_equal(jax.random.key_data(k), jax.random.key_data(jax.random.split(keys[i], 3)))
    folded = jax.vmap(jax.random.fold_in)(keys[:2], jnp.array([5, 64], "uint32"))
    for i, data_ in enumerate((5, 64)):
        np.testing.assert_array_equal(jax.random.key_data(folded[i]),
                                      jax.random.key_data(jax.random.fold_in(keys[i], data_)))
    sign, flip = jax.vmap(lambda k, p: jax.random.bernoulli(k, p, (6,)))(keys[:2], jnp.array([0.5, 0.2]))
    np.testing.assert_array_equal(sign, jax.random.bernoulli(keys[0], 0.5, (6,)))
    np.testing.assert_array_equal(flip, jax.random.bernoulli(keys[1], 0.2, (6,)))


def test_replica_sets_swap_or_drop_exactly_one_sample():
    cfg = Config(dim=3, samples=6, replicas=2, test_samples=4)
    d = data.make_data(cfg, jax.random.key(3), jnp.float64)
    X, y, w = sim._replica_sets(d, 2)
    chex.assert_shape((X, y, w), ((5, 6, 3), (5, 6), (5, 6)))
    for i in range(2):
        changed = np.flatnonzero(np.any(np.asarray(X[1 + i] != d.X), axis=1))
        np.testing.assert_array_equal(changed, [i])
        np.testing.assert_array_equal(X[1 + i, i], d.X_fresh[i])
        np.testing.assert_array_equal(w[1 + 2 + i], np.eye(6)[i] == 0)
        np.testing.assert_array_equal(X[1 + 2 + i], d.X)
    np.testing.assert_array_equal(w[:3], 1.0)


def test_xor_labels_correlate_with_the_two_signal_coordinates_only():
    # E[y x x^T] = e_1 e_2^T + e_2 e_1^T on the hypercube. Entries (1, 2), (2, 1) are exactly 1 (y x_1 x_2 = 1);
    # every other entry is a mean of N i.i.d. +-1 terms with mean 0 and standard error 1/sqrt(N): the largest of
    # the d^2 - 2 = 62 is below 5/sqrt(N) with probability 1 - 62 * 5.7e-7.
    cfg = Config(task="xor", activation="quadratic", dim=8)
    X, y = data.draw(cfg, jax.random.key(4), jax.random.key(5), 40000, jnp.float64)
    C = np.asarray((X * y[:, None]).T @ X / X.shape[0])
    signal = np.zeros((8, 8))
    signal[0, 1] = signal[1, 0] = 1.0
    np.testing.assert_allclose(C, signal, atol=5 / np.sqrt(X.shape[0]))


@pytest.mark.parametrize("second_layer", ["sign", "gaussian"])
@pytest.mark.slow
def test_one_xor_step_at_eta_m_multiplies_each_neuron_by_i_plus_2a_c(second_layer):
    # The theory note's mechanism: with f = (1/m) sum_j a_j (w_j . x)^2 and eta = m, a full-batch GD step on the
    # logistic loss is w_j <- (I + 2 a_j C_hat) w_j with C_hat = mean_i |l'(y_i f_i)| y_i x_i x_i^T, exactly.
    cfg = Config(task="xor", activation="quadratic", second_layer=second_layer, dim=6, samples=32, width=4, lr=0.0,
                 replicas=0, test_samples=8, steps=1, record_every=1)
    context = sim.setup(cfg, jax.random.key(6))
    after = sim.step(cfg, context, sim.init(cfg, context, jax.random.key(6)), jax.random.key(7))
    W, v = context.w0["first"], context.w0["out"]
    a = np.sign(v) if second_layer == "sign" else v
    X, y = context.X[0], context.y[0]
    f = model.xor_forward(context.w0, X, second_layer)
    weight = jax.nn.sigmoid(-y * f)  # |l'(u)| = 1 / (1 + e^u)
    C = (X * (weight * y)[:, None]).T @ X / X.shape[0]
    expected = np.stack([(np.eye(6) + 2 * a[j] * C) @ W[j] for j in range(4)])
    np.testing.assert_allclose(after.params["first"][0], expected, rtol=1e-12, atol=1e-12 * float(jnp.max(jnp.abs(W))))
    np.testing.assert_array_equal(after.params["out"][0], v)  # the second layer is fixed


def test_infinite_width_ntk_of_the_quadratic_net_is_its_closed_form():
    # sigma(t) = t^2 with one hidden layer: E[u^2 u'^2] = s s' + 2 c^2 and E[2u 2u'] = 4c for (u, u') ~ N(0, [[s, c],
    # [c, s']]), so Theta = s s' + 6 c^2 with s = |x|^2/d, c = x.x'/d. Gauss-Hermite quadrature integrates these
    # polynomials exactly: round-off only.
    X = np.asarray(jax.random.normal(jax.random.key(8), (5, DIM)))
    S = X @ X.T / DIM
    expected = np.outer(np.diag(S), np.diag(S)) + 6 * S ** 2
    np.testing.assert_allclose(kernel.ntk(X, "quadratic", 1), expected, rtol=1e-12)


@pytest.mark.slow
def test_infinite_width_ntk_quadrature_has_converged():
    # Softplus and gelu are analytic: 32 Gauss-Hermite nodes per dimension against 64 agree to round-off.
    X = np.asarray(jax.random.normal(jax.random.key(9), (4, DIM)))
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    for activation in ("softplus", "gelu"):
        np.testing.assert_allclose(kernel.ntk(X, activation, 3), kernel.ntk(X, activation, 3, nodes=64), rtol=1e-10)


def test_infinite_width_ntk_is_the_mean_empirical_gram_with_one_hidden_layer(deep):
    # With L = 1 the empirical Gram at init is a mean of m i.i.d. neuron terms, so its expectation is the
    # infinite-width NTK exactly, at any width. 4000 inits at m = 16: each of the 78 distinct entries' Monte-Carlo mean
    # lies within 4.5 of its standard errors (a false alarm per entry 7e-6, 5e-4 for all of them); a wrong
    # parameterization (a factor m, or d, in the Gram) is hundreds of standard errors away.
    _, X, _ = deep
    net = deep_net("softplus")
    grams = jax.jit(jax.vmap(lambda k: model.ntk_gram_jacobian(net, model.init_params(k, DIM, WIDTH, 1, jnp.float64),
                                                               X)))(jax.random.split(jax.random.key(10), 4000))
    grams = np.asarray(grams)
    theta = kernel.ntk(np.asarray(X), "softplus", 1)
    z = (grams.mean(0) - theta) / (grams.std(0, ddof=1) / np.sqrt(grams.shape[0]))
    assert np.max(np.abs(z[np.triu_indices(N)])) < 4.5, np.max(np.abs(z))
