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

RECIPE = dict(classes=10, dim=25, per_class=50, noise=0.1, lr=0.1)


def _at(ds, name, step):
    return float(ds[name].sel(step=step))


@pytest.fixture(scope="module")
def methods():
    """One call: optimizer (static: one compilation each) x lr_decay (traced), 2 * 10^4 steps."""
    ds = sims.sweep("implicit_bias", {"optimizer": ["signgd", "ngd", "spectral", "gd"], "lr_decay": [0.5, 0.0]}, 1,
                    steps=20000, record_every=100, **RECIPE)
    return ds.isel(seed=0)


def test_dataset_carries_data_weights_series_and_optimal_margins(methods):
    for name in ("data_x", "data_y", "weights", "gap_max", "gap_fro", "gap_spectral", "correlation_max",
                 "theory_margin_max", "theory_margin_fro", "theory_margin_spectral"):
        assert name in methods, name
    assert methods.data_x.shape[-2:] == (500, 25) and methods.weights.shape[-2:] == (10, 25)


def test_signgd_closes_the_max_norm_gap_to_one_percent_at_ten_thousand_steps(methods):
    """Note: gap 0.069 at 10^4 against gamma_max ~ 15.4, i.e. 0.45%."""
    ds = methods.sel(optimizer="signgd", lr_decay=0.5)
    assert _at(ds, "gap_max", 10000) / float(ds.theory_margin_max) < 0.01


def test_signgd_max_norm_gap_falls_faster_than_t_to_the_minus_0_4(methods):
    """Theorem (a = 1/2): gap = O((log t + n)/sqrt t); the note measured 0.27 -> 0.069 over a decade (ratio 0.26,
    slope -0.6). The issue asks ratio < 0.35 and slope <= -0.4 over [10^3, 10^4]."""
    ds = methods.sel(optimizer="signgd", lr_decay=0.5)
    ratio = _at(ds, "gap_max", 10000) / _at(ds, "gap_max", 1000)
    assert ratio < 0.35, ratio
    window = ds.gap_max.sel(step=slice(1000, 10000))
    slope = np.polyfit(np.log(window.step.values), np.log(window.values), 1)[0]
    assert slope <= -0.4, slope


def test_signgd_with_decay_one_has_a_flat_log_log_gap(methods):
    """a = 1: the heuristic rate is n / log t, a log-log slope of about 0 (|slope| < 0.15 over a decade: log t
    changes by a factor 1.3 from 10^3 to 10^4, a slope of -0.12 at most)."""
    ds = sims.sweep("implicit_bias", {"lr_decay": [1.0]}, 1, optimizer="signgd", steps=10000, record_every=100,
                    **RECIPE).isel(seed=0, lr_decay=0)
    window = ds.gap_max.sel(step=slice(1000, 10000))
    slope = np.polyfit(np.log(window.step.values), np.log(window.values), 1)[0]
    assert abs(slope) < 0.15, slope


def test_ngd_closes_the_frobenius_gap_and_aligns_with_the_svm(methods):
    """Issue: Frobenius gap < 5% of gamma_2 at 2 * 10^4 steps and cosine with the SVM solution > 0.99."""
    ds = methods.sel(optimizer="ngd", lr_decay=0.5)
    assert _at(ds, "gap_fro", 20000) / float(ds.theory_margin_fro) < 0.05
    assert _at(ds, "correlation_fro", 20000) > 0.99


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


def test_signgd_gap_still_shrinks_at_a_hundred_thousand_steps():
    """The trap: with the naive softmax gradient SignGD's gap turns around and grows (1.09 at t = 100 back up to
    14 by 2 * 10^4 in float64). With the log-space gradient it keeps falling: over [10^4, 10^5] by more than 2x
    (t^-1/2 predicts 3.2x)."""
    ds = sims.run("implicit_bias", optimizer="signgd", steps=100000, record_every=1000, **RECIPE)
    assert _at(ds, "gap_max", 100000) < _at(ds, "gap_max", 10000) / 2
    assert np.all(np.diff(ds.gap_max.sel(step=slice(10000, None)).values) < 0)


@pytest.fixture(scope="module")
def adams():
    return sims.sweep("implicit_bias", {"eps": [0.0, 1e-8]}, 1, optimizer="adam", steps=100000, record_every=1000,
                      **RECIPE).isel(seed=0)


def test_adam_without_epsilon_reduces_the_max_norm_gap(adams):
    """Adam with eps = 0 tends to the max-norm margin, slowly (t^-1/3): the note has gap 2.8 at 2 * 10^4; over
    [10^3, 10^5] it must fall by more than 3x."""
    ds = adams.sel(eps=0.0)
    assert _at(ds, "gap_max", 100000) < _at(ds, "gap_max", 1000) / 3


def test_adam_with_epsilon_turns_toward_the_frobenius_solution(adams):
    """eps > 0: once sqrt(v) falls below eps Adam is GD-like, so over a long horizon the cosine with the SVM solution
    rises while the max-norm gap stalls (falls by under 10% over [10^4, 10^5]), unlike eps = 0."""
    ds = adams.sel(eps=1e-8)
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


def test_optimizers_seeds_and_decays_sweep_in_one_call():
    """Full batch from W_0 = 0 draws no randomness, so the seeds of a sweep must agree exactly."""
    ds = sims.sweep("implicit_bias", {"optimizer": ["signgd", "ngd"], "lr_decay": [0.5, 1.0]}, 2, steps=200,
                    record_every=20, **RECIPE)
    assert ds.gap_max.dims == ("optimizer", "lr_decay", "seed", "step")
    np.testing.assert_array_equal(ds.weights.isel(seed=0).values, ds.weights.isel(seed=1).values)


@pytest.mark.parametrize("optimizer,own", [("signum", "max"), ("momentum_ngd", "fro"), ("muon", "spectral")])
def test_momentum_versions_close_their_own_norm_gap(optimizer, own):
    """Signum, momentum-NGD and Muon apply the same direction to the momentum and tend to the same margin
    (rate O((d log t + dn)/sqrt t)): the own gap falls by more than 2x over [200, 5000], a t^-1/2 law giving 5x."""
    ds = sims.run("implicit_bias", optimizer=optimizer, steps=5000, record_every=100, **RECIPE)
    assert _at(ds, f"gap_{own}", 5000) < _at(ds, f"gap_{own}", 200) / 2


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
