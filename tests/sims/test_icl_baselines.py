"""icl_single_index's prompt-only learners (sims/icl_single_index/baselines.py): exact leave-one-out CV against
refitting N times, kernel ridge against its closed form, and what each learner can and cannot learn from one prompt
(the theory note, "Learners that see only the prompt").

Tolerances. Float64 throughout (conftest). A backward-stable solve of a system with condition number kappa is accurate
to about kappa eps relative (eps = 2.2e-16), and the sums of N + d terms around it add (N + d) eps; the round-off
checks allow 10 (N + d) kappa eps, with kappa bounded from the data by (largest eigenvalue + lam) / (smallest + lam),
the smallest taken as 0 where a leave-one-out fold may be singular. Monte-Carlo
claims are tested on paired per-task differences against 3 standard errors over tasks (one-sided, a 0.13% false-alarm
rate at the boundary of the claim), or against thresholds derived from the feature count, in the test's comment.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sims.icl_single_index import baselines, data

EPS = np.finfo(np.float64).eps
# Small relative ridges for the round-off checks: 1e-4 keeps kappa <= 1e4 N, so the tolerance stays ~1e-8 relative.
RIDGES = np.array([1e-4, 1e-2, 1.0, 1e2])

# Jitted once per shape; `kernel` and `degree` select the program, ridges are data.
linear_ridge = jax.jit(baselines.linear_ridge)
linear_loo = jax.jit(baselines.linear_loo_residuals)
kernel_ridge = jax.jit(baselines.kernel_ridge, static_argnames=("kernel", "degree"))
kernel_loo = jax.jit(baselines.kernel_loo_residuals, static_argnames=("kernel", "degree"))
kernel_matrix = jax.jit(baselines.kernel_matrix, static_argnames=("kernel", "degree"))


def batched(fn, **static):
    """fn vmapped over tasks (axis 0 of every array argument), with its Python-level arguments bound."""
    return jax.jit(jax.vmap(functools.partial(fn, **static)))


def prompt(seed, N, d, Q=7):
    """x (N, d), y (N,), x_query (Q, d): Gaussian inputs, a generic nonlinear label (no closed form needed)."""
    rng = np.random.default_rng(seed)
    x, x_query = rng.standard_normal((N, d)), rng.standard_normal((Q, d))
    return x, np.tanh(x @ rng.standard_normal(d)) + 0.1 * rng.standard_normal(N), x_query


# One compiled sampler per (tasks, length, d); the link's coefficients and the noise are data. Eager sampling would
# compile every primitive separately, seconds per new shape.
sample_tasks = jax.jit(data.sample_tasks, static_argnums=(3, 4))


def task_batch(seed, link, tasks, length, d, noise=0.1, rank=2):
    """Single-index tasks from data.sample_tasks, as numpy arrays: x (T, length, d), y (T, length). The subspace is a
    QR in numpy (any orthonormal U will do; data.subspace would compile a QR for each d). Slicing and statistics stay
    in numpy: an eager jnp op compiles for every new shape."""
    U = np.linalg.qr(np.random.default_rng(1000 + seed).standard_normal((d, rank)))[0]
    t = sample_tasks(jax.random.key(seed), jnp.asarray(U), jnp.asarray(data.normalized_link(link)), tasks, length,
                     noise)
    return np.asarray(t.x), np.asarray(t.y)


def split(x, y, N, tasks=slice(None)):
    """The first N samples of each task as the prompt, the last 64 as held-out queries: x, y, x_q, y_q."""
    x, y = x[tasks], y[tasks]
    return x[:, :N], y[:, :N], x[:, -64:], y[:, -64:]


@pytest.fixture(scope="module")
def he2_tasks():
    """256 pure-He_2 tasks (link (0, 0, 1), noise 0.1) at d = 8 with 320 samples each: prompts of any N <= 256 and
    64 held-out queries, shared by the linear-ridge and kernel-ridge claims (one sampler compilation)."""
    return task_batch(0, (0, 0, 1), tasks=256, length=320, d=8)


def mse(pred, target):
    """Per-task mean squared error over the queries: (T,) from (T, Q) (pred may broadcast)."""
    return np.mean((np.asarray(pred) - target) ** 2, axis=1)


def numpy_kernel(kernel, x1, x2, degree=2):
    """The documented kernels, written independently: (1 + <x, x'>/d)^degree and exp(-|x - x'|^2 / (2 d))."""
    d = x1.shape[1]
    if kernel == "poly":
        return (1 + x1 @ x2.T / d) ** degree
    return np.exp(-np.sum((x1[:, None, :] - x2[None, :, :]) ** 2, axis=-1) / (2 * d))


def roundoff(N, d, top, lam, bottom=0.0):
    """10 (N + d) kappa eps with kappa = (top + lam) / (bottom + lam), top and bottom bounds on the extreme eigenvalues
    of the regularized matrix's data part: the module docstring's round-off tolerance (relative)."""
    return 10 * (N + d) * (top + lam) / (bottom + lam) * EPS


def brute_linear(x, y, x_eval, lam):
    """Ridge with an unpenalized intercept refitted from scratch: centre on these points, solve the normal equations."""
    mx, my = x.mean(axis=0), y.mean()
    xc = x - mx
    w = np.linalg.solve(xc.T @ xc + lam * np.eye(x.shape[1]), xc.T @ (y - my))
    return my + (x_eval - mx) @ w


def brute_kernel(kernel, x, y, x_eval, lam):
    return numpy_kernel(kernel, x_eval, x) @ np.linalg.solve(numpy_kernel(kernel, x, x) + lam * np.eye(len(y)), y)


@pytest.mark.parametrize("N,d", [(12, 5), (6, 10)])
def test_linear_loo_formula_equals_refitting_n_times(N, d):
    """e_i / (1 - H_ii) equals the residual of the ridge refitted without point i (lam fixed from the whole prompt),
    for N > d and N <= d; and linear_ridge predicts with the ridge whose brute-force LOO error is least."""
    x, y, x_query = prompt(0, N, d)
    xc = x - x.mean(axis=0)
    scale = np.sum(xc ** 2) / N
    top = np.linalg.norm(xc, 2) ** 2  # bounds the top eigenvalue of every fold's X_c^T X_c (a fold is a submatrix)
    loo = np.asarray(linear_loo(x, y, RIDGES))
    assert loo.shape == (len(RIDGES), N)
    brute = np.empty_like(loo)
    for r, ridge in enumerate(RIDGES):
        lam = ridge * scale
        for i in range(N):
            keep = np.arange(N) != i
            brute[r, i] = y[i] - brute_linear(x[keep], y[keep], x[i:i + 1], lam)[0]
        np.testing.assert_allclose(loo[r], brute[r], rtol=0,
                                   atol=roundoff(N, d, top, lam) * np.max(np.abs(brute[r])))
    best = RIDGES[np.argmin(np.mean(brute ** 2, axis=1))]
    expected = brute_linear(x, y, x_query, best * scale)
    np.testing.assert_allclose(linear_ridge(x, y, x_query, RIDGES), expected, rtol=0,
                               atol=roundoff(N, d, top, best * scale) * np.max(np.abs(expected)))


@pytest.mark.parametrize("kernel", ["poly", "rbf"])
def test_kernel_loo_formula_equals_refitting_n_times(kernel):
    """[(K + lam I)^-1 y]_i / [(K + lam I)^-1]_ii equals the residual of the KRR refitted without point i (lam fixed
    from the whole prompt's tr K / N); and kernel_ridge predicts with the ridge whose brute-force LOO error is least."""
    N, d = 12, 5
    x, y, x_query = prompt(1, N, d)
    K = numpy_kernel(kernel, x, x)
    scale, top = np.trace(K) / N, np.linalg.eigvalsh(K)[-1]  # a fold's K is a principal submatrix: top bounds it
    loo = np.asarray(kernel_loo(x, y, kernel, RIDGES))
    assert loo.shape == (len(RIDGES), N)
    brute = np.empty_like(loo)
    for r, ridge in enumerate(RIDGES):
        lam = ridge * scale
        for i in range(N):
            keep = np.arange(N) != i
            brute[r, i] = y[i] - brute_kernel(kernel, x[keep], y[keep], x[i:i + 1], lam)[0]
        np.testing.assert_allclose(loo[r], brute[r], rtol=0,
                                   atol=roundoff(N, d, top, lam) * np.max(np.abs(brute[r])))
    best = RIDGES[np.argmin(np.mean(brute ** 2, axis=1))]
    expected = brute_kernel(kernel, x, y, x_query, best * scale)
    np.testing.assert_allclose(kernel_ridge(x, y, x_query, kernel, RIDGES), expected, rtol=0,
                               atol=roundoff(N, d, top, best * scale) * np.max(np.abs(expected)))


@pytest.mark.parametrize("kernel,degree", [("poly", 2), ("poly", 3), ("rbf", 2)])
def test_single_ridge_kernel_ridge_is_closed_form(kernel, degree):
    """With a one-element grid there is nothing to choose: the prediction is K_q (K + lam I)^-1 y with
    lam = ridge tr(K) / N and the documented kernel (numpy_kernel, written independently)."""
    N, d, ridge = 12, 5, 1e-2
    x, y, x_query = prompt(2, N, d)
    K = numpy_kernel(kernel, x, x, degree)
    lam = ridge * np.trace(K) / N
    expected = numpy_kernel(kernel, x_query, x, degree) @ np.linalg.solve(K + lam * np.eye(N), y)
    got = kernel_ridge(x, y, x_query, kernel, np.array([ridge]), degree)
    np.testing.assert_allclose(got, expected, rtol=0,
                               atol=roundoff(N, d, np.linalg.eigvalsh(K)[-1], lam) * np.max(np.abs(expected)))


def test_kernels_are_as_documented():
    """poly of degree 2 is the inner product of the explicit degree-<=2 features (1, sqrt(2/d) x, vec(x x^T)/d), so its
    feature space is exactly the polynomials of degree <= 2; rbf factorizes over coordinates with bandwidth sqrt(d)
    and is 1 on the diagonal. Each entry is a sum of d products and a power or an exp: relative round-off ~ (d + 3)
    eps, and the rbf's |x|^2 + |x'|^2 - 2<x, x'> cancels to an absolute ~ 4 d eps in the exponent's numerator, /2d;
    both are far below 1e-13 of entries of size O(1)-O(10)."""
    d = 5
    x1, x2 = np.random.default_rng(3).standard_normal((2, 9, d))
    features = lambda x: np.concatenate([np.ones((len(x), 1)), np.sqrt(2 / d) * x,
                                         np.einsum("ni,nj->nij", x, x).reshape(len(x), -1) / d], axis=1)
    np.testing.assert_allclose(kernel_matrix("poly", x1, x2, 2), features(x1) @ features(x2).T, rtol=1e-13)
    np.testing.assert_allclose(kernel_matrix("poly", x1, x2, 3), (1 + x1 @ x2.T / d) ** 3, rtol=1e-13)
    per_coordinate = np.prod(np.exp(-(x1[:, None, :] - x2[None, :, :]) ** 2 / (2 * d)), axis=-1)
    np.testing.assert_allclose(kernel_matrix("rbf", x1, x2), per_coordinate, rtol=0, atol=1e-13)
    np.testing.assert_allclose(np.diag(kernel_matrix("rbf", x1, x1)), 1.0, rtol=0, atol=1e-13)


def test_linear_ridge_recovers_noiseless_linear_function():
    """y = c + x . beta without noise, N = 24 > d = 6. Every LOO residual is pure ridge bias, so LOO picks the grid's
    smallest ridge lam = 1e-6 |X_c|_F^2 / N: the prediction equals that ridge's refit to round-off (which pins the
    choice: the next ridge is 10^0.5 times larger, and so is its bias of ~1e-6). The intercept is exact
    (y_mean = c + x_mean . beta) and the slope's error is lam (X_c^T X_c + lam)^-1 beta, so at a query point
    |error| <= |x_q - x_mean| |beta| lam / (s_min^2 + lam): recovery up to that bias (~1e-6 here) plus round-off."""
    N, d = 24, 6
    rng = np.random.default_rng(4)
    x, x_query, beta = rng.standard_normal((N, d)), rng.standard_normal((10, d)), rng.standard_normal(d)
    y, truth = 0.3 + x @ beta, 0.3 + x_query @ beta
    xc = x - x.mean(axis=0)
    s = np.linalg.svd(xc, compute_uv=False)
    lam = baselines.ridge_grid()[0] * np.sum(xc ** 2) / N
    tol = roundoff(N, d, s[0] ** 2, lam, bottom=s[-1] ** 2) * np.max(np.abs(truth))  # ~1e-12
    pred = np.asarray(linear_ridge(x, y, x_query))
    np.testing.assert_allclose(pred, brute_linear(x, y, x_query, lam), rtol=0, atol=tol)
    bias = np.linalg.norm(x_query - x.mean(axis=0), axis=1) * np.linalg.norm(beta) * lam / (s[-1] ** 2 + lam)
    assert np.all(np.abs(pred - truth) <= bias + tol), (np.abs(pred - truth), bias)


def test_linear_ridge_no_better_than_mean_on_he2_task(he2_tasks):
    """Pure He_2 link: E[y x] = beta E[h_2(z) z] = 0 (Hermite orthogonality), so the best linear predictor is the
    constant E y. Given the prompt, a linear fit (c, w) has risk Var y + (E y - c)^2 + |w|^2 (Cov x = I,
    Cov(x, y) = 0). Linear ridge has c = y_mean - w . x_mean, so its risk minus the prompt mean's is
    |w|^2 + (w . x_mean)^2 + 2 (E y - y_mean)(w . x_mean) >= -(E y - y_mean)^2 |x_mean|^2, whose typical size is
    Var y d / N^2 = 0.008 at d = 8, N = 32: a quarter of the 3-SE allowance (SE ~ 0.012 over 256 tasks).
    Claim: the mean paired difference mse(linear ridge) - mse(prompt mean) is > -3 SE (measured +0.06: LOO keeps a
    small slope that only adds variance)."""
    x, y, x_query, y_query = split(*he2_tasks, N=32)
    pred = np.asarray(batched(baselines.linear_ridge)(x, y, x_query))
    diff = mse(pred, y_query) - mse(np.mean(y, axis=1, keepdims=True), y_query)
    se = np.std(diff, ddof=1) / np.sqrt(diff.shape[0])
    assert np.mean(diff) > -3 * se, (np.mean(diff), se)


def test_poly_kernel_learns_degree2_task_at_large_n_only(he2_tasks):
    """He_2 single-index task at d = 8 (variance 1, noise 0.1). The degree-2 poly kernel's features are the
    p = 45 polynomials of degree <= 2 on R^8 and hold the target. At N = 256 least squares in them has excess risk
    ~ noise^2 p / (N - p) = 0.002, so the test error is ~0.012 (noise 0.01 included; measured 0.012 +- 0.002 per
    task); we require < 0.1 on the mean of 4 tasks, 8x the expected value and > 80 standard errors from it (SE ~ 1e-3),
    10x below the variance. (4 tasks because each 256 x 256 eigh is the file's costliest LAPACK call.)
    At N = 16 < p the fit lives in the span of 16 kernel sections, which holds roughly 16/45 of a generic degree-2
    target's variance, so the error is >= ~0.64 (measured 1.10 +- 0.06 over 64 tasks, ridge shrinkage included);
    we require > 0.5."""
    x, y, x_query, y_query = split(*he2_tasks, N=256, tasks=slice(0, 4))
    large = np.mean(mse(batched(baselines.kernel_ridge, kernel="poly")(x, y, x_query), y_query))
    x, y, x_query, y_query = split(*he2_tasks, N=16, tasks=slice(4, 68))
    small = np.mean(mse(batched(baselines.kernel_ridge, kernel="poly")(x, y, x_query), y_query))
    assert large < 0.1, large
    assert small > 0.5, small


@pytest.mark.slow
def test_two_layer_gd_beats_mean_and_linear_ridge():
    """Default link (He_1 + He_2/sqrt 2)/sqrt 2 (Q = 1), N = 128, d = 16, the net's default hyperparameters. The
    prompt mean has error ~ 1 + noise^2, linear ridge ~ 0.5 + noise^2 + (d/N) 0.5 (it learns only the He_1 half);
    the net learns the index direction from the He_1 part and then fits the He_2 half along it (measured 0.10,
    against 0.87 and 0.49). Claims, on paired per-task differences over 16 tasks: the net beats the prompt mean and
    linear ridge by more than 3 standard errors each (measured gaps 0.77 and 0.39, SE 0.08 and 0.03)."""
    T = 16
    x, y, x_query, y_query = split(*task_batch(3, (0, 1, 1), tasks=T, length=192, d=16), N=128)
    keys = jax.random.split(jax.random.key(7), T)
    net = mse(batched(baselines.two_layer_gd)(x, y, x_query, keys), y_query)
    linear = mse(batched(baselines.linear_ridge)(x, y, x_query), y_query)
    mean = mse(np.mean(y, axis=1, keepdims=True), y_query)
    for other in (mean, linear):
        diff = net - other
        assert np.mean(diff) < -3 * np.std(diff, ddof=1) / np.sqrt(T), (net.mean(), other.mean())


def all_learners(x, y, x_query, key, lr=0.2):
    """Every learner on one prompt, stacked (4, Q): one program for the vmap and dtype checks instead of four."""
    return jnp.stack([baselines.linear_ridge(x, y, x_query),
                      baselines.kernel_ridge(x, y, x_query, "poly", degree=3),
                      baselines.kernel_ridge(x, y, x_query, "rbf"),
                      baselines.two_layer_gd(x, y, x_query, key, width=16, steps=50, lr=lr)])


@pytest.fixture(scope="module")
def small_tasks():
    """3 prompts with N = 10, d = 4, Q = 5, and a key per task."""
    x, y, x_query = (np.stack(a) for a in zip(*(prompt(10 + t, 10, 4, Q=5) for t in range(3))))
    return x, y, x_query, jax.random.split(jax.random.key(8), 3)


@pytest.mark.slow
def test_vmap_over_tasks_equals_python_loop(small_tasks):
    """jit(vmap) over 3 tasks gives each task's unbatched result, for every learner. Batched and unbatched programs
    may order sums differently, so they agree to round-off: kappa eps per solve (kappa <= 1e6 N for the smallest
    relative ridge 1e-6) is < 1e-8; 50 GD steps near a minimum add ~eps each, not amplified, ~1e-14 in all. rtol 1e-8
    covers both (measured: 6e-16)."""
    vmapped = jax.jit(jax.vmap(all_learners))(*small_tasks)
    single = jax.jit(all_learners)
    looped = np.stack([single(*(a[t] for a in small_tasks)) for t in range(3)])
    assert vmapped.shape == (3, 4, 5)
    chex.assert_trees_all_close(vmapped, looped, rtol=1e-8, atol=1e-10)


def test_float32_kept_and_new_step_size_does_not_recompile(small_tasks):
    """Float32 inputs give float32, finite predictions from every learner (the ridge grid and the step size are cast,
    not promoted), and the step size is traced: a second value reuses the compiled program (a retrace would raise)."""
    x, y, x_query, key = (a[0] for a in small_tasks)
    x, y, x_query = (jnp.asarray(a, jnp.float32) for a in (x, y, x_query))
    learners = jax.jit(chex.assert_max_traces(all_learners, n=1))
    first, second = learners(x, y, x_query, key, 0.2), learners(x, y, x_query, key, 0.1)
    assert first.dtype == jnp.float32 and first.shape == (4, 5)
    chex.assert_tree_all_finite((first, second))
    assert not np.allclose(first[3], second[3])  # the step size reached the net
