"""implicit_bias against the paper's claims on its recipe (k = 10, d = 25, 50 per class, sigma = 0.1): each
optimizer closes the margin gap of its own norm at the theorems' rate, and only that one.

Everything here is deterministic (full batch, W_0 = 0, fixed data seed): no sampling error. Thresholds are the
issue's, each checked against the theory note's reference run in a comment; where the note gives a rate, the
threshold leaves room for the log factor and the seed's constants, not for a different rate.
"""

import numpy as np
import pytest

import sims
from dynamics import compile as compile_lib
from sims.implicit_bias import model

RECIPE = {"classes": 10, "dim": 25, "per_class": 50, "noise": 0.1, "lr": 0.1}


def _at(ds, name, step):
    return float(ds[name].sel(step=step))


@pytest.fixture(scope="module")
def methods():
    """One call: optimizer (static: one compilation each) x lr_decay (traced), 2 * 10^4 steps."""
    ds = sims.sweep("implicit_bias", {"optimizer": ["signgd", "ngd", "spectral", "gd"], "lr_decay": [0.5, 0.0]}, 1,
                    steps=20000, record_every=100, **RECIPE)
    return ds.isel(seed=0)


@pytest.mark.slow
def test_dataset_carries_data_weights_series_and_optimal_margins(methods):
    for name in ("data_x", "data_y", "weights", "gap_max", "gap_fro", "gap_spectral", "correlation_max",
                 "theory_margin_max", "theory_margin_fro", "theory_margin_spectral"):
        assert name in methods, name
    assert methods.data_x.shape[-2:] == (500, 25) and methods.weights.shape[-2:] == (10, 25)


@pytest.mark.slow
def test_signgd_closes_the_max_norm_gap_to_one_percent_at_ten_thousand_steps(methods):
    """Note: gap 0.069 at 10^4 against gamma_max ~ 15.4, i.e. 0.45%."""
    ds = methods.sel(optimizer="signgd", lr_decay=0.5)
    assert _at(ds, "gap_max", 10000) / float(ds.theory_margin_max) < 0.01


@pytest.mark.slow
def test_signgd_max_norm_gap_falls_faster_than_t_to_the_minus_0_4(methods):
    """Theorem (a = 1/2): gap = O((log t + n)/sqrt t); the note measured 0.27 -> 0.069 over a decade (ratio 0.26,
    slope -0.6). The issue asks ratio < 0.35 and slope <= -0.4 over [10^3, 10^4]."""
    ds = methods.sel(optimizer="signgd", lr_decay=0.5)
    ratio = _at(ds, "gap_max", 10000) / _at(ds, "gap_max", 1000)
    assert ratio < 0.35, ratio
    window = ds.gap_max.sel(step=slice(1000, 10000))
    slope = np.polyfit(np.log(window.step.values), np.log(window.values), 1)[0]
    assert slope <= -0.4, slope


@pytest.mark.slow
def test_signgd_with_decay_one_has_a_flat_log_log_gap(methods):
    """a = 1: the heuristic rate is n / log t, a log-log slope of about 0 (|slope| < 0.15 over a decade: log t
    changes by a factor 1.3 from 10^3 to 10^4, a slope of -0.12 at most)."""
    ds = sims.sweep("implicit_bias", {"lr_decay": [1.0]}, 1, optimizer="signgd", steps=10000, record_every=100,
                    **RECIPE).isel(seed=0, lr_decay=0)
    window = ds.gap_max.sel(step=slice(1000, 10000))
    slope = np.polyfit(np.log(window.step.values), np.log(window.values), 1)[0]
    assert abs(slope) < 0.15, slope


@pytest.mark.slow
def test_ngd_closes_the_frobenius_gap_and_aligns_with_the_svm(methods):
    """Issue: Frobenius gap < 5% of gamma_2 at 2 * 10^4 steps and cosine with the SVM solution > 0.99."""
    ds = methods.sel(optimizer="ngd", lr_decay=0.5)
    assert _at(ds, "gap_fro", 20000) / float(ds.theory_margin_fro) < 0.05
    assert _at(ds, "correlation_fro", 20000) > 0.99


@pytest.mark.slow
def test_gd_frobenius_gap_falls_as_one_over_log_t(methods):
    """Soudry et al.: GD with a constant step reaches the SVM direction at rate 1/log t, so gap * log t stays
    within 20% of its mean over t in [10^2, 2 * 10^4] (a t^-0.1 rate would change it by 60% there)."""
    ds = methods.sel(optimizer="gd", lr_decay=0.0)
    t = np.array([100, 1000, 10000, 20000])
    product = np.array([_at(ds, "gap_fro", s) for s in t]) * np.log(t)
    assert np.all(np.abs(product / product.mean() - 1) < 0.2), product
    correlation = ds.correlation_fro.sel(step=slice(100, None)).values
    assert np.all(np.diff(correlation) >= -1e-9)  # the cosine rises monotonically


@pytest.mark.parametrize("optimizer,own", [("signgd", "max"), ("ngd", "fro"), ("spectral", "spectral")])
@pytest.mark.slow
def test_each_method_closes_only_its_own_norm_gap(methods, optimizer, own):
    """Figure 1's content: over the last decade the own-norm gap falls by at least 2x; every other norm's gap
    changes by less than 25% (a plateau) and stays above the own gap's relative size."""
    ds = methods.sel(optimizer=optimizer, lr_decay=0.5)
    for norm in ("max", "fro", "spectral"):
        early, late = _at(ds, f"gap_{norm}", 2000), _at(ds, f"gap_{norm}", 20000)
        gamma = float(ds[f"theory_margin_{norm}"])
        if norm == own:
            assert late < early / 2, (norm, early, late)
        else:
            assert abs(late - early) < 0.25 * abs(early), (norm, early, late)
            assert late / gamma > _at(ds, f"gap_{own}", 20000) / float(ds[f"theory_margin_{own}"])


@pytest.fixture(scope="module")
def adam_eps():
    return sims.run("implicit_bias", optimizer="adam", eps=1e-8, steps=100000, record_every=1000, **RECIPE)


@pytest.mark.slow
def test_adam_with_epsilon_turns_toward_the_frobenius_solution(adam_eps):
    """eps > 0: once sqrt(v) falls below eps Adam is GD-like, so over a long horizon the cosine with the SVM solution
    rises while the max-norm gap stalls (falls by under 10% over [10^4, 10^5]), unlike eps = 0 (whose max-norm gap
    falls 5.5x there: the figures preset's verdict row, tests/sims/test_implicit_bias_verdicts.py)."""
    ds = adam_eps
    assert _at(ds, "correlation_fro", 100000) > _at(ds, "correlation_fro", 10000)
    assert _at(ds, "correlation_fro", 100000) > _at(ds, "correlation_max", 100000)
    assert _at(ds, "gap_max", 100000) > 0.9 * _at(ds, "gap_max", 10000)


def test_new_learning_rates_do_not_recompile():
    sims.sweep("implicit_bias", {"lr": [0.1, 0.05]}, 1, steps=100, record_every=10, **{**RECIPE, "lr": 0.1})
    before = compile_lib.stats()["compiles"]
    sims.sweep("implicit_bias", {"lr": [0.2, 0.02]}, 1, steps=100, record_every=10, lr_decay=1.0,
               **{k: v for k, v in RECIPE.items() if k != "lr"})
    assert compile_lib.stats()["compiles"] == before


@pytest.mark.parametrize("loss", ["cross_entropy", "exponential", "pairlog"])
def test_log_space_gradient_equals_autodiff(loss):
    """Where nothing underflows, exp(scale) * mantissa is the gradient of the mean loss (float64: 1e-12)."""
    import jax
    config = sims.make_config("implicit_bias", loss=loss, classes=4, dim=3, per_class=5)
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    W = jax.random.normal(k1, (4, 3))
    x = jax.random.normal(k2, (20, 3))
    y = jax.random.randint(k3, (20,), 0, 4)
    g = model.log_scaled_gradient(config, W, x, y)
    auto = jax.grad(lambda W: model.loss_value(config, model.logits(W, x), y))(W)
    np.testing.assert_allclose(np.exp(g.log_scale) * g.mantissa, auto, rtol=1e-12, atol=1e-14)


def test_optimizers_and_decays_sweep_in_one_call_with_one_run_per_grid_point():
    """One call sweeps a static (optimizer) and a traced (lr_decay) parameter; each grid point is its own run, so a
    traced value that the program ignored would repeat the same series."""
    ds = sims.sweep("implicit_bias", {"optimizer": ["signgd", "ngd"], "lr_decay": [0.5, 1.0]}, 1, steps=200,
                    record_every=20, **RECIPE)
    assert ds.gap_max.dims == ("optimizer", "lr_decay", "seed", "step")
    gaps = ds.gap_max.isel(seed=0, step=-1).values
    assert np.all(np.abs(gaps[:, 0] - gaps[:, 1]) > 1e-3 * np.abs(gaps[:, 0])), gaps
    assert np.all(np.abs(gaps[0] - gaps[1]) > 1e-3 * np.abs(gaps[0])), gaps


def _numpy_momentum_weights(optimizer, x, y, k, steps, lr, decay, beta):
    """W after `steps` steps of the momentum method written out in NumPy from the paper's definitions: cross-entropy
    gradient G = (softmax(x W^T) - onehot(y))^T x / n (no underflow this early), m_t = G_t + beta m_(t-1),
    W <- W - lr t^-decay Delta(m_t), Delta = sign(m) (Signum), m/|m|_F (momentum-NGD), U V^T of m's SVD (Muon)."""
    n, d = x.shape
    W, m = np.zeros((k, d)), np.zeros((k, d))
    onehot = np.eye(k)[y]
    for t in range(1, steps + 1):
        z = x @ W.T
        S = np.exp(z - z.max(axis=1, keepdims=True))
        S /= S.sum(axis=1, keepdims=True)
        m = (S - onehot).T @ x / n + beta * m
        if optimizer == "signum":
            direction = np.sign(m)
        elif optimizer == "momentum_ngd":
            direction = m / np.linalg.norm(m)
        else:
            u, _, vt = np.linalg.svd(m, full_matrices=False)
            direction = u @ vt
        W = W - lr * t ** -decay * direction
    return W


def _centred(W):
    """W minus its class mean (k, d). Muon's direction U V^T is not unique: the gradient's rows sum to 0 (1^T G = 0),
    so its smallest singular value is round-off and LAPACK returns an arbitrary (1/sqrt k) 1 v^T term for it. Both
    sides carry such a term, different ones; it shifts every logit equally, so the gradient never sees it, and
    centring removes exactly it."""
    return W - W.mean(axis=0, keepdims=True)


@pytest.mark.parametrize("optimizer", ["signum", "momentum_ngd", "muon"])
def test_momentum_versions_follow_the_momentum_recursion(optimizer):
    """The simulated weights after 40 steps equal the NumPy recursion's to 1e-9 relative (float64 round-off over 40
    steps is ~1e-15). Without momentum (log_momentum monkeypatched to pass g_t through) they differ by 0.5-0.8,
    relative: from the second step on the direction of g_t differs from that of sum_s beta^(t-s) g_s."""
    cfg = {"classes": 3, "dim": 5, "per_class": 4, "noise": 0.1, "lr": 0.1, "lr_decay": 0.5, "momentum": 0.9}
    ds = sims.run("implicit_bias", optimizer=optimizer, steps=40, record_every=40, **cfg)
    expected = _numpy_momentum_weights(optimizer, ds.data_x.values, ds.data_y.values, 3, 40, 0.1, 0.5, 0.9)
    simulated = ds.weights.values
    if optimizer == "muon":
        simulated, expected = _centred(simulated), _centred(expected)
    np.testing.assert_allclose(simulated, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("optimizer,own", [("signum", "max"), ("momentum_ngd", "fro"), ("muon", "spectral")])
def test_momentum_versions_close_their_own_norm_gap(optimizer, own):
    """Signum, momentum-NGD and Muon apply the same direction to the momentum and tend to the same margin
    (rate O((d log t + dn)/sqrt t)): the own gap falls by more than 2x over [200, 5000], a t^-1/2 law giving 5x.
    (The same holds without momentum; that momentum is applied is the recursion test's claim.)"""
    ds = sims.run("implicit_bias", optimizer=optimizer, steps=5000, record_every=100, **RECIPE)
    assert _at(ds, f"gap_{own}", 5000) < _at(ds, f"gap_{own}", 200) / 2


@pytest.mark.parametrize("optimizer", ["signum", "momentum_ngd", "muon", "adam"])
def test_a_zero_momentum_held_in_log_space_is_not_divergence(optimizer):
    """The momentum's zero start is a log-scale of -inf in the optimizer state, by design: only W is watched, so a
    run that stays finite reports nonfinite_step = -1 (it read 0 when the whole state was watched)."""
    ds = sims.run("implicit_bias", optimizer=optimizer, steps=20, record_every=10, **RECIPE)
    assert int(ds.nonfinite_step) == -1 and np.all(np.isfinite(ds.weights.values))


@pytest.mark.parametrize("optimizer,p", [("lp", 3.0), ("schatten", 3.0)])
def test_p_norm_descent_runs_and_increases_its_normalized_margin(optimizer, p):
    """No exact p-norm reference is solved for p = 3; steepest descent in any norm still drives the normalized margin
    up, so the Frobenius-normalized margin (gamma_2 - gap_fro) must grow over the run."""
    ds = sims.run("implicit_bias", optimizer=optimizer, p=p, steps=2000, record_every=100, **RECIPE)
    assert _at(ds, "gap_fro", 2000) < _at(ds, "gap_fro", 100)


def test_non_separable_data_is_a_one_line_config_error():
    from dynamics.config import ConfigError
    with pytest.raises(ConfigError, match="not linearly separable"):
        sims.run("implicit_bias", classes=10, dim=1, per_class=50, noise=1.0, steps=10, record_every=10)
