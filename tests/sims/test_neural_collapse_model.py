"""neural_collapse's loss, gradient and collapse metrics (sims/neural_collapse/model.py) against hand derivations
(theory note, "Loss and model" and "Metrics").

Tolerances are float64 round-off, eps = 2.2e-16, scaled by how the computation amplifies it: a softmax of
similarities S = H^T H / tau with |S| <= 1/tau loses about eps (|S| + log N) <= eps (2/tau + log N) relative accuracy
in each probability (exp of a shifted S), and a sum of N terms adds N eps relative.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import ortho_group

from sims.neural_collapse import model, theory

EPS = np.finfo(np.float64).eps
# Every test uses N = 16 samples in k = 4 classes and d = 6 dimensions, so that each jitted function below compiles
# once.
D = 6
LAYOUTS = {"balanced": (4, 4, 4, 4), "imbalanced": (2, 3, 7, 4)}
# Jitted once per shape: op-by-op dispatch compiles every primitive separately and costs seconds per test; tau is a
# traced argument, so a new temperature does not recompile.
gradient = jax.jit(model.gradient)
autodiff = jax.jit(jax.grad(model.loss))
loss = jax.jit(model.loss)
loss_from_gram = jax.jit(model.loss_from_gram)
gram_autodiff = jax.jit(jax.grad(model.loss_from_gram))
metrics = jax.jit(model.metrics, static_argnums=2)
METRICS = ("nc1", "equinorm", "equiangularity", "max_angle", "gram_distance", "full_gram_distance", "rank")


def unit_features(seed, d, N):
    """H (d, N): i.i.d. Gaussian columns normalized to the sphere (generic, non-collapsed features)."""
    H = np.random.default_rng(seed).standard_normal((d, N))
    return H / np.linalg.norm(H, axis=0)


def collapsed(frame_kk, labels, d, seed):
    """Exactly collapsed features: the class means are the columns of frame_kk (k, k) (unit columns), embedded in R^d
    by a random orthogonal map; every sample sits on its class mean."""
    k = frame_kk.shape[0]
    embed = ortho_group.rvs(d, random_state=seed)[:, :k]
    return embed @ frame_kk[:, labels]


def etf_frame(k):
    """The simplex ETF's means (k, k): sqrt(k/(k-1)) (I - 11^T/k), unit columns with cosines -1/(k-1)."""
    return np.sqrt(k / (k - 1)) * (np.eye(k) - np.ones((k, k)) / k)


def softmax_tol(N, tau):
    """The round-off bound of one softmax-then-sum pass: eps (N + 2/tau + log N), times 4 for the handful of such
    passes (logsumexp, exp(S - lse), the product with H) in either computation."""
    return 4 * EPS * (N + 2 / tau + np.log(N))


@pytest.mark.parametrize("tau", [0.1, 0.5, 2.0])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_closed_form_gradient_equals_autodiff(layout, tau):
    """dL/dH = H (A + A^T), A = (P - positives)/(tau N), equals jax.grad(loss). The two differ only by round-off:
    softmax_tol relative to the gradient's scale max|dL/dH| (~1/tau); measured <= 1 eps/tau, over 60x inside."""
    y = jnp.asarray(theory.labels_of(LAYOUTS[layout]))
    for seed in range(3):
        H = jnp.asarray(unit_features(seed, D, len(y)))
        _, closed = gradient(H, y, tau)
        auto = autodiff(H, y, tau)
        scale = float(jnp.max(jnp.abs(auto)))
        np.testing.assert_allclose(closed, auto, rtol=0, atol=softmax_tol(len(y), tau) * scale)


@pytest.mark.parametrize("tau", [0.1, 0.5, 2.0])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_gradient_returns_the_loss_value(layout, tau):
    """The value that `gradient` returns beside dL/dH is L(H). L is a logsumexp minus a mean of S, both of size
    <= 1/tau + log N, so they agree to softmax_tol times that size (measured: bit for bit)."""
    y = jnp.asarray(theory.labels_of(LAYOUTS[layout]))
    H = jnp.asarray(unit_features(0, D, len(y)))
    value, _ = gradient(H, y, tau)
    np.testing.assert_allclose(value, loss(H, y, tau), rtol=0,
                               atol=softmax_tol(len(y), tau) * (1 / tau + np.log(len(y))))


@pytest.mark.parametrize("k, n, tau", [(2, 8, 0.5), (4, 4, 0.5), (8, 2, 0.3), (4, 4, 1.0), (2, 8, 0.1)])
def test_collapsed_etf_gram_has_the_balanced_closed_form_loss(k, n, tau):
    """For the collapsed ETF Gram (1 within a class, -1/(k-1) across), each anchor has n - 1 positives at S = 1/tau
    and n(k - 1) negatives at S = -1/((k-1) tau), so its loss is
        log((n-1) e^(1/tau) + n(k-1) e^(-1/((k-1) tau))) - 1/tau = log(n - 1 + n(k-1) e^(-k/((k-1) tau))),
    derived here by hand, and the mean over anchors is the same number. Round-off: softmax_tol times the size
    1/tau + log N of the logsumexp that the difference cancels."""
    y = theory.labels_of([n] * k)
    same = y[:, None] == y[None, :]
    G = np.where(same, 1.0, -1.0 / (k - 1))
    expected = np.log(n - 1 + n * (k - 1) * np.exp(-k / ((k - 1) * tau)))
    got = loss_from_gram(jnp.asarray(G), jnp.asarray(y), tau)
    np.testing.assert_allclose(got, expected, rtol=0, atol=softmax_tol(k * n, tau) * (1 / tau + np.log(k * n)))


@pytest.fixture(scope="module")
def rotated():
    """Generic features H (6, 16) on the imbalanced layout (2, 3, 7, 4), its rotation Q H by a random orthogonal Q,
    and the metrics of both against the ETF targets."""
    sizes = LAYOUTS["imbalanced"]
    k, y = len(sizes), theory.labels_of(sizes)
    H = unit_features(1, D, len(y))
    QH = ortho_group.rvs(D, random_state=2) @ H
    targets = (jnp.asarray(theory.etf(k)), jnp.asarray(theory.etf(k)[y][:, y]))
    return dict(y=y, H=H, QH=QH, k=k,
                before=metrics(jnp.asarray(H), jnp.asarray(y), k, *targets),
                after=metrics(jnp.asarray(QH), jnp.asarray(y), k, *targets))


def test_loss_is_invariant_under_rotation(rotated):
    """L depends on H only through H^T H, and (QH)^T (QH) = H^T H up to the rounding of the product Q H (d eps
    relative per entry, d = 6): the loss moves by at most softmax_tol-sized round-off (tau = 0.5)."""
    y = jnp.asarray(rotated["y"])
    before = loss(jnp.asarray(rotated["H"]), y, 0.5)
    after = loss(jnp.asarray(rotated["QH"]), y, 0.5)
    np.testing.assert_allclose(after, before, rtol=0, atol=softmax_tol(len(y), 0.5) * (2 + np.log(len(y))))


@pytest.mark.parametrize("name", METRICS)
def test_metric_is_invariant_under_rotation(rotated, name):
    """Every metric is a function of inner products of features and means, so Q H gives the same value. The values
    are O(1) here (generic features); nc1 goes through a pseudo-inverse whose conditioning (the spread of Sigma_B's
    eigenvalues, O(10) for random features) multiplies the d eps rounding of Q H: rtol 1e-12, atol 1e-14 for the
    distances that are themselves O(eps)-insensitive. rank is an integer and must match exactly."""
    before, after = rotated["before"][name], rotated["after"][name]
    if name == "rank":
        assert int(before) == int(after)
    else:
        np.testing.assert_allclose(after, before, rtol=1e-12, atol=1e-14)


def test_metrics_of_generic_features_are_not_collapsed(rotated):
    """Control for the collapse tests below: generic features are far from collapse (nc1, the ETF distances and the
    deviation from the ETF angle all O(0.1) or more) and span min(d, N) = 6 dimensions."""
    m = rotated["before"]
    for name in ("nc1", "equiangularity", "max_angle", "gram_distance", "full_gram_distance"):
        assert float(m[name]) > 0.05, (name, float(m[name]))
    assert int(m["rank"]) == D


@pytest.fixture(scope="module")
def etf_metrics():
    """The metrics of an exactly collapsed simplex ETF, k = 4 balanced classes of 4 in d = 6, against the ETF."""
    k, y = 4, theory.labels_of([4] * 4)
    H = collapsed(etf_frame(k), y, D, seed=3)
    return k, metrics(jnp.asarray(H), jnp.asarray(y), k, jnp.asarray(theory.etf(k)),
                            jnp.asarray(theory.etf(k)[y][:, y]))


@pytest.mark.parametrize("name", ["nc1", "equinorm", "equiangularity", "max_angle", "gram_distance",
                                  "full_gram_distance"])
def test_collapsed_etf_has_vanishing_collapse_metrics(etf_metrics, name):
    """At exact collapse onto the ETF every metric vanishes up to the rounding of the embedding and of the class
    means (a few eps per entry): the distances and spreads are linear in it, nc1 quadratic (within-class spread
    ~ eps^2). atol 64 eps = 1.4e-14."""
    _, m = etf_metrics
    np.testing.assert_allclose(m[name], 0.0, rtol=0, atol=64 * EPS)


def test_collapsed_etf_has_rank_k_minus_1(etf_metrics):
    """The ETF's means sum to zero: the features span k - 1 dimensions (the k-th singular value is round-off, far
    below metrics' rank_tol of 1e-6)."""
    k, m = etf_metrics
    assert int(m["rank"]) == k - 1


@pytest.fixture(scope="module")
def frame_metrics():
    """The metrics of features collapsed onto an orthogonal frame (the nonnegative optimum), classes (6, 6, 2, 2) in
    d = 6, against the identity."""
    sizes = (6, 6, 2, 2)
    k, y = len(sizes), theory.labels_of(sizes)
    H = collapsed(np.eye(k), y, D, seed=4)
    return k, metrics(jnp.asarray(H), jnp.asarray(y), k, jnp.eye(k), jnp.asarray(np.eye(k)[y][:, y]))


def test_orthogonal_frame_has_rank_k(frame_metrics):
    """k orthonormal class means span k dimensions."""
    k, m = frame_metrics
    assert int(m["rank"]) == k


@pytest.mark.parametrize("name", ["gram_distance", "full_gram_distance", "nc1"])
def test_orthogonal_frame_is_at_zero_distance_from_the_identity(frame_metrics, name):
    """The class means' normalized Gram is the identity's and H^T H is the block 0/1 Gram, and within-class spread
    is zero: round-off only, atol 64 eps as for the ETF."""
    _, m = frame_metrics
    np.testing.assert_allclose(m[name], 0.0, rtol=0, atol=64 * EPS)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_nc1_equals_trace_of_within_times_pinv_between(layout):
    """NC1 = tr(Sigma_W Sigma_B^+)/k computed directly in numpy: Sigma_W = (1/N) sum_i (h_i - mu_(y_i))(.)^T,
    Sigma_B = (1/k) sum_c (mu_c - mu_G)(.)^T with mu_G the mean of all N features (for imbalanced classes not the
    mean of the class means, so the imbalanced layout tells the two apart). Sigma_B has rank k - 1 (the n_c-weighted
    centred means sum to 0): pinv cuts its round-off eigenvalue with rcond 1e-10, between that eigenvalue (~1e-16
    relative) and the real ones (O(0.1) relative). Both sides round the same O(1) quantities through a
    pseudo-inverse of condition O(10): rtol 1e-11."""
    sizes = LAYOUTS[layout]
    k, y = len(sizes), theory.labels_of(sizes)
    H = unit_features(5, D, len(y))
    mu = np.stack([H[:, y == c].mean(axis=1) for c in range(k)], axis=1)
    within = H - mu[:, y]
    sigma_w = within @ within.T / len(y)
    centred = mu - H.mean(axis=1, keepdims=True)
    sigma_b = centred @ centred.T / k
    expected = np.trace(sigma_w @ np.linalg.pinv(sigma_b, rcond=1e-10, hermitian=True)) / k
    got = metrics(jnp.asarray(H), jnp.asarray(y), k, jnp.asarray(theory.etf(k)), jnp.eye(len(y)))["nc1"]
    np.testing.assert_allclose(got, expected, rtol=1e-11)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_masked_self_similarity_gives_finite_gradients_when_features_coincide(layout):
    """All features equal (the extreme of collapse, where every similarity ties with the self-similarity): the
    finite mask keeps the loss, the closed-form gradient, autodiff in H and autodiff in G finite. The gradient then
    vanishes (the softmax is uniform, and P and the positives both have unit row and column sums), which bounds its
    round-off by softmax_tol / tau."""
    y = jnp.asarray(theory.labels_of(LAYOUTS[layout]))
    h = jnp.asarray(unit_features(6, D, 1))
    H = jnp.tile(h, (1, len(y)))
    tau = 0.5
    value, closed = gradient(H, y, tau)
    auto = autodiff(H, y, tau)
    by_gram = gram_autodiff(H.T @ H, y, tau)
    chex.assert_tree_all_finite((value, closed, auto, by_gram))
    np.testing.assert_allclose(closed, 0.0, rtol=0, atol=softmax_tol(len(y), tau) / tau)
    np.testing.assert_allclose(auto, 0.0, rtol=0, atol=softmax_tol(len(y), tau) / tau)
