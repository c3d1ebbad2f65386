"""icl_single_index's flax transformer (sims/icl_single_index/transformer.py): causal masking, order (in)sensitivity,
shapes and dtypes under x64, jit/vmap/scan, and that it learns the single-index tasks in context within a CPU budget.

Round-off. Float64, eps = 2.2e-16. A masked logit is the most negative float, so its softmax weight is exactly 0 and a
later token adds an exact 0 to every sum: causality holds bit for bit (measured: 0), and the tolerance is a few eps
times the scale of the predictions. Permuting the prompt reorders the attention's sums of at most 2L terms of size
<= max|v|, which changes each by <= 2L eps max|v|; LayerNorm, the MLP and the readout carry that with O(1) gain at
initialization, so 2L eps * 10 * scale bounds the change (measured <= 2 eps * scale at L = 8, 80x inside).
"""

import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sims.icl_single_index import baselines, data
from sims.icl_single_index import transformer as tr

pytestmark = pytest.mark.slow  # a transformer trained on CPU

EPS = np.finfo(np.float64).eps
D, L, B = 3, 8, 4  # small shapes for the invariance tests: every jitted function below compiles once per module
predict = jax.jit(tr.predict)


def make(layers, dtype=None, seed=0):
    """Parameters of a width-16, 2-head model for inputs in R^D, initialized under jit (flax's init run op by op
    compiles every primitive apart: seconds per model)."""
    module = tr.Transformer(layers=layers, width=16, heads=2, dtype=dtype)
    return jax.jit(lambda key: tr.init(key, module, D, tr.adam(1e-3))[0])(jax.random.PRNGKey(seed))


def inputs(seed, batch=B, length=L, dim=D):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.standard_normal((batch, length, dim))), jnp.asarray(rng.standard_normal((batch, length)))


@pytest.fixture(scope="module", params=[1, 2], ids=["1layer", "2layers"])
def params(request):
    return make(request.param)


def test_prediction_at_i_ignores_later_inputs_and_labels(params):
    """Redrawing x_j for j > i and y_j for j >= i leaves every prediction at positions <= i unchanged (exactly, by the
    mask; tolerance 4 eps * scale)."""
    x, y = inputs(0)
    base = predict(params, x, y)
    tol = 4 * EPS * float(jnp.max(jnp.abs(base)))
    for i in range(L):
        x_new, y_new = inputs(100 + i)
        x2 = x.at[:, i + 1:].set(x_new[:, i + 1:])
        y2 = y.at[:, i:].set(y_new[:, i:])
        np.testing.assert_allclose(predict(params, x2, y2)[:, :i + 1], base[:, :i + 1], rtol=0, atol=tol)


def test_prediction_at_i_sees_the_last_label_and_its_own_input(params):
    """Changing y_(i-1) (the last prompt label) or x_i (the query) moves the prediction at i by far more than
    round-off: at initialization the smallest change is 4e-4-2e-3 (measured), against 1e8 * 4 eps * scale = 1e-7."""
    x, y = inputs(0)
    base = predict(params, x, y)
    floor = 1e8 * 4 * EPS * float(jnp.max(jnp.abs(base)))
    for i in range(1, L):
        moved_label = jnp.abs(predict(params, x, y.at[:, i - 1].add(1.0))[:, i] - base[:, i])
        moved_query = jnp.abs(predict(params, x.at[:, i].add(1.0), y)[:, i] - base[:, i])
        assert float(jnp.min(moved_label)) > floor and float(jnp.min(moved_query)) > floor, i


def reverse_prompt(x, y, i):
    """The pairs 0..i-1 in reverse order (a permutation with no fixed pair for i >= 2 apart from the middle one)."""
    return x.at[:, :i].set(x[:, :i][:, ::-1]), y.at[:, :i].set(y[:, :i][:, ::-1])


def test_one_layer_prediction_is_invariant_to_the_prompt_order():
    """With no positional embedding, one causal layer's prediction at i is a symmetric function of the pairs before i:
    reversing them changes it by round-off only (tolerance from the module docstring: 2L eps * 10 * scale)."""
    p = make(1, seed=1)
    x, y = inputs(1)
    base = predict(p, x, y)
    tol = 2 * L * EPS * 10 * float(jnp.max(jnp.abs(base)))
    for i in range(2, L):
        np.testing.assert_allclose(predict(p, *reverse_prompt(x, y, i))[:, i], base[:, i], rtol=0, atol=tol)


def test_two_causal_layers_see_the_prompt_order():
    """Two causal layers are NOT order-invariant without a positional embedding: pair j's hidden state depends on the
    pairs before j, which the second layer reads. Reversing the prompt moves the predictions by far more than the
    one-layer round-off bound (measured: by 0.3, 1e15 eps times the scale, at initialization)."""
    p = make(2, seed=1)
    x, y = inputs(1)
    base = predict(p, x, y)
    tol = 2 * L * EPS * 10 * float(jnp.max(jnp.abs(base)))
    moved = max(float(jnp.max(jnp.abs(predict(p, *reverse_prompt(x, y, i))[:, i] - base[:, i])))
                for i in range(2, L))
    assert moved > 1e6 * tol


def test_shapes_and_float64_under_x64(params):
    x, y = inputs(2)
    out = predict(params, x, y)
    assert out.shape == (B, L) and out.dtype == jnp.float64
    assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {jnp.dtype(jnp.float64)}
    chex.assert_tree_all_finite(out)
    # predict_at is predict indexed at the prompt lengths; compiled apart, XLA may fuse differently: a few dozen ops
    # of relative round-off eps each, O(1) gain, so 100 eps * scale (measured 2 eps).
    at = jax.jit(tr.predict_at, static_argnums=3)(params, x, y, (0, 3, 7))
    np.testing.assert_allclose(at, out[:, [0, 3, 7]], rtol=0, atol=100 * EPS * float(jnp.max(jnp.abs(out))))
    with pytest.raises(ValueError):
        tr.predict_at(params, x, y, (L,))


def test_explicit_float32_module_stays_float32():
    p = make(1, dtype=jnp.float32)
    x, y = inputs(2)
    out = predict(p, x.astype(jnp.float32), y.astype(jnp.float32))
    assert out.dtype == jnp.float32
    assert {leaf.dtype for leaf in jax.tree.leaves(p)} == {jnp.dtype(jnp.float32)}


def test_jit_vmap_over_seeds_and_step_sizes_in_one_scan_without_retracing():
    """One compiled program trains 3 seeds x step sizes (traced through inject_hyperparams) for 3 steps of
    train_step inside lax.scan. A second call with new keys and step sizes does not retrace; step size 0 leaves the
    parameters exactly unchanged (the Adam update is -0 * m / (sqrt(v) + eps)), a positive one moves them; every
    loss is finite; and vmapped prediction equals each seed's own prediction to round-off (vmap batches the
    matmuls, which may sum in another order: 100 eps * scale as for predict_at)."""
    d, r, length, batch, steps = 4, 2, 6, 8, 3
    U = data.subspace(jax.random.PRNGKey(0), d, r)
    coefficients = jnp.asarray(data.normalized_link((0, 1, 1)))
    module = tr.Transformer(layers=1, width=16, heads=2)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def train(keys, lrs):
        def one(key, lr):
            optimizer = tr.adam(lr)
            params, opt_state = tr.init(key, module, d, optimizer)

            def body(carry, k):
                params, opt_state, value = tr.train_step(*carry, k, U, coefficients, 0.1, 0.0, batch, length,
                                                         optimizer)
                return (params, opt_state), value

            (trained, _), losses = jax.lax.scan(body, (params, opt_state), jax.random.split(key, steps))
            return params, trained, losses

        return jax.vmap(one)(keys, lrs)

    keys = jax.random.split(jax.random.PRNGKey(3), 3)
    start, trained, losses = train(keys, jnp.array([0.0, 1e-3, 1e-2]))
    start, trained, losses = train(keys[::-1], jnp.array([0.0, 3e-3, 3e-2]))  # no retrace (assert_max_traces)
    assert losses.shape == (3, steps) and losses.dtype == jnp.float64
    chex.assert_tree_all_finite(losses)
    chex.assert_trees_all_equal(jax.tree.map(lambda a: a[0], trained), jax.tree.map(lambda a: a[0], start))
    for seed in (1, 2):
        moved = jax.tree.map(lambda a, b: jnp.max(jnp.abs(a[seed] - b[seed])), trained, start)
        assert max(float(m) for m in jax.tree.leaves(moved)) > 0

    x, y = inputs(4, batch=2, length=length, dim=d)
    batched = jax.vmap(tr.predict, in_axes=(0, None, None))(trained, x, y)
    for seed in range(3):
        own = predict(jax.tree.map(lambda a: a[seed], trained), x, y)
        np.testing.assert_allclose(batched[seed], own, rtol=0, atol=100 * EPS * float(jnp.max(jnp.abs(own))))


# Learning (the acceptance: pretrained at small d, the transformer beats kernel ridge on the prompt at
# N* = 32). d = 16, r = 2, link (He_1 + He_2/sqrt 2)/sqrt 2 (normalized (0, 1, 1)), noise 0.1: label variance 1.01.
# Kernel ridge on a 32-sample prompt at d = 16 cannot resolve a degree-2 function of 16 inputs (153 monomials): the
# theory note's reference has 0.67 at N = 32 (ridge tuned on the test error, which favours it).
LEARN = dict(dim=16, rank=2, noise=0.1, steps=300, batch=64, lr=1e-3, length=33, tests=2048, prompt=32)


def test_pretrained_transformer_beats_kernel_ridge_on_the_prompt():
    """A 2-layer width-64 model, 300 Adam steps of 64 fresh prompts of 33 pairs (prompt lengths 0..32 all trained),
    against kernel ridge (polynomial and RBF kernels, ridge by leave-one-out on the prompt) on the same 2048 test
    prompts of N = 32 pairs, each learner predicting the 33rd label.

    Float32 on purpose: the claim is statistical, and float64 doubles the step time on CPU. Measured while writing
    the module: the transformer's MSE at N = 32 falls below 0.5 after 200-250 steps at d = 16 (seeds 0, 1), while
    kernel ridge stays near 0.7. The test asserts the paired difference (transformer - the better kernel) is
    negative by more than 3 standard errors over the test prompts, and that the transformer is below the label
    variance 1.01 by more than 5 standard errors."""
    cfg = LEARN
    start = time.time()
    U = data.subspace(jax.random.PRNGKey(0), cfg["dim"], cfg["rank"], jnp.float32)
    coefficients = jnp.asarray(data.normalized_link((0, 1, 1)), jnp.float32)
    optimizer = tr.adam(cfg["lr"])
    module = tr.Transformer(layers=2, width=64, heads=4, dtype=jnp.float32)
    N = cfg["prompt"]

    @jax.jit
    def pretrain_and_test(key):
        k_init, k_train, k_test = jax.random.split(key, 3)
        params, opt_state = tr.init(k_init, module, cfg["dim"], optimizer)

        def body(carry, k):
            params, opt_state, value = tr.train_step(*carry, k, U, coefficients, cfg["noise"], 0.0, cfg["batch"],
                                                     cfg["length"], optimizer)
            return (params, opt_state), value

        (params, _), losses = jax.lax.scan(body, (params, opt_state), jax.random.split(k_train, cfg["steps"]))
        test = data.sample_tasks(k_test, U, coefficients, cfg["tests"], N + 1, cfg["noise"])
        ours = (tr.predict_at(params, test.x, test.y, (N,))[:, 0] - test.y[:, N]) ** 2
        kernels = [(jax.vmap(lambda x, y: baselines.kernel_ridge(x[:N], y[:N], x[N:], kernel, degree=2)[0])(
            test.x, test.y) - test.y[:, N]) ** 2 for kernel in ("poly", "rbf")]
        return losses, ours, jnp.stack(kernels)

    losses, ours, kernels = jax.device_get(pretrain_and_test(jax.random.PRNGKey(0)))
    best = kernels[int(np.argmin(kernels.mean(axis=1)))]
    diff = ours - best
    se = diff.std() / np.sqrt(cfg["tests"])
    print(f"MSE at N={N}: transformer {ours.mean():.3f}, kernel ridge poly/rbf {kernels.mean(axis=1)}, "
          f"difference {diff.mean():.3f} +- {se:.3f}; {time.time() - start:.0f} s")
    assert np.all(np.isfinite(losses))
    assert diff.mean() < -3 * se, (diff.mean(), se)
    assert ours.mean() < 1.01 - 5 * ours.std() / np.sqrt(cfg["tests"])
