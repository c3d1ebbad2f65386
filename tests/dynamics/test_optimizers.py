"""dynamics.optimizers: steepest descent directions are the argmax of <g, D> over the unit p-ball (Hoelder), Adam
with eps = 0 is finite, and the step size is lr * t^-decay with traced hyperparameters.

Tolerances: float64 sums of a few dozen O(1) terms, so identities hold to 1e-12."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dynamics import optimizers


def _norm(x, p, kind):
    values = np.abs(np.asarray(x)).ravel() if kind == "entrywise" else np.linalg.svd(np.asarray(x), compute_uv=False)
    return values.max() if p == math.inf else np.sum(values ** p) ** (1 / p)


def _dual(p):
    return 1.0 if p == math.inf else p / (p - 1)


CASES = [(p, kind) for kind in ("entrywise", "schatten") for p in (1.5, 2.0, 3.0, math.inf)]


@pytest.mark.parametrize("p,kind", CASES)
def test_direction_has_unit_norm_and_attains_the_dual_norm(p, kind):
    g = jax.random.normal(jax.random.key(0), (5, 4))
    d = optimizers.steepest_direction(g, p, kind)
    np.testing.assert_allclose(_norm(d, p, kind), 1.0, rtol=1e-12)
    np.testing.assert_allclose(jnp.sum(g * d), _norm(g, _dual(p), kind), rtol=1e-12)


@pytest.mark.parametrize("p,kind", CASES)
def test_no_unit_direction_descends_faster(p, kind):
    """Hoelder: <g, D'> <= |g|_q for every D' with |D'|_p = 1, so 200 random unit directions never beat D."""
    g = jax.random.normal(jax.random.key(1), (5, 4))
    best = float(jnp.sum(g * optimizers.steepest_direction(g, p, kind)))
    others = jax.random.normal(jax.random.key(2), (200, 5, 4))
    for other in np.asarray(others):
        assert np.sum(np.asarray(g) * other) / _norm(other, p, kind) <= best + 1e-12


def test_special_cases_are_sign_normalized_gradient_and_polar_factor():
    g = jax.random.normal(jax.random.key(3), (4, 3))
    chex.assert_trees_all_close(optimizers.steepest_direction(g, math.inf), jnp.sign(g))
    chex.assert_trees_all_close(optimizers.steepest_direction(g, 2.0), g / jnp.linalg.norm(g), rtol=1e-12)
    u, _, vt = np.linalg.svd(np.asarray(g), full_matrices=False)
    chex.assert_trees_all_close(optimizers.steepest_direction(g, math.inf, "schatten"), u @ vt, rtol=1e-12)


@pytest.mark.parametrize("p,kind", CASES)
def test_zero_gradient_gives_zero_step(p, kind):
    chex.assert_trees_all_equal(optimizers.steepest_direction(jnp.zeros((3, 2)), p, kind), jnp.zeros((3, 2)))


def test_direction_is_scale_free_down_to_tiny_gradients():
    """Late in training gradients are ~1e-200: the direction must be the same as for the unscaled gradient."""
    g = jax.random.normal(jax.random.key(4), (4, 3))
    chex.assert_trees_all_close(optimizers.steepest_direction(1e-200 * g, 3.0), optimizers.steepest_direction(g, 3.0),
                                rtol=1e-12)


def test_steps_follow_lr_times_t_to_the_minus_decay():
    opt = optimizers.steepest_descent(lr=0.1, decay=0.5, p=math.inf)
    state = opt.init(jnp.zeros(3))
    for t in range(1, 5):
        update, state = opt.update(jnp.array([1.0, -2.0, 0.0]), state)
        chex.assert_trees_all_close(update, -0.1 * t ** -0.5 * jnp.array([1.0, -1.0, 0.0]), rtol=1e-12)


def test_traced_lr_and_decay_do_not_recompile():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(lr, decay):
        opt = optimizers.steepest_descent(lr, decay, p=2.0, momentum=0.9)
        state = opt.init(jnp.ones(3))
        return opt.update(jnp.ones(3), state)[0]
    run(0.1, 0.5)
    run(0.3, 1.0)


def test_adam_with_zero_epsilon_is_finite_where_a_gradient_stays_zero():
    opt = optimizers.adam(lr=0.1, eps=0.0)
    state = opt.init(jnp.zeros(2))
    for _ in range(3):
        update, state = opt.update(jnp.array([0.5, 0.0]), state)
    assert np.all(np.isfinite(update)) and update[1] == 0.0
    # With a constant gradient m_hat / sqrt(v_hat) = sign(g): the step is -lr.
    np.testing.assert_allclose(update[0], -0.1, rtol=1e-12)


def test_adam_with_positive_epsilon_matches_optax():
    ours, theirs = optimizers.adam(lr=0.01, b1=0.9, b2=0.99, eps=1e-8), optax.adam(0.01, b1=0.9, b2=0.99, eps=1e-8)
    s1, s2 = ours.init(jnp.zeros(4)), theirs.init(jnp.zeros(4))
    for k in range(5):
        g = jax.random.normal(jax.random.key(k), (4,))
        u1, s1 = ours.update(g, s1)
        u2, s2 = theirs.update(g, s2)
        chex.assert_trees_all_close(u1, u2, rtol=1e-10)


def test_log_momentum_equals_plain_momentum_at_moderate_scale():
    """m_t = g_t + beta m_(t-1) kept as exp(s) * mantissa: where nothing underflows it is the plain recursion."""
    ours = optimizers.log_momentum(0.9)
    state = ours.init(jnp.zeros(3))
    plain = jnp.zeros(3)
    for k in range(4):
        g = jax.random.normal(jax.random.key(k), (3,))
        scale = float(k) - 2.0
        m, state = ours.update(optimizers.LogScaled(jnp.asarray(scale), g), state)
        plain = jnp.exp(scale) * g + 0.9 * plain
        chex.assert_trees_all_close(jnp.exp(m.log_scale) * m.mantissa, plain, rtol=1e-12)


def test_log_adam_equals_optax_adam_and_survives_underflow():
    """On LogScaled gradients Adam equals optax.adam's direction where nothing underflows, and stays finite and
    unchanged when every gradient is multiplied by e^-1000 (which is 0 in float64)."""
    ours, theirs = optimizers.log_adam(0.9, 0.99, 1e-8), optax.scale_by_adam(0.9, 0.99, 1e-8)
    tiny = optimizers.log_adam(0.9, 0.99, 0.0)
    s1, s2, s3 = ours.init(jnp.zeros(4)), theirs.init(jnp.zeros(4)), tiny.init(jnp.zeros(4))
    reference = optimizers.log_adam(0.9, 0.99, 0.0)
    s4 = reference.init(jnp.zeros(4))
    for k in range(5):
        g = jax.random.normal(jax.random.key(k), (4,))
        u1, s1 = ours.update(optimizers.LogScaled(jnp.asarray(0.0), g), s1)
        u2, s2 = theirs.update(g, s2)
        chex.assert_trees_all_close(u1, u2, rtol=1e-9)
        u3, s3 = tiny.update(optimizers.LogScaled(jnp.asarray(-1000.0), g), s3)
        u4, s4 = reference.update(optimizers.LogScaled(jnp.asarray(0.0), g), s4)
        chex.assert_trees_all_close(u3, u4, rtol=1e-12)
