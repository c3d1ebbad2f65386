"""ntk_stability against width: the generalization gap does not grow with m, and the training bound at
w* = w_0 + (log T / gamma) u* holds once m is large (theory note; the issue's acceptance). Float64 (conftest).

Every width of one seed sees the same data draw (the init is folded with m), so differences between widths are
paired over seeds.
"""

import numpy as np
import pytest

import sims
from dynamics.report import verdict
from sims.ntk_stability import report

pytestmark = pytest.mark.slow  # four widths x 32 draws

WIDTHS = [16, 64, 256, 1024]
# Both sweeps take the same 32 draws: the same shapes (n = 50, T = 200, no replicas; the rest is traced), so the
# second compiles nothing.
SEEDS = 32
# The gap where it is a generalization gap: 10% label noise on an overlapping mixture (separation 2), n = 50,
# eta = 4, T = 200. GD memorizes the flipped labels, the gap is ~0.1 and resolved to ~10% per width.
NOISY = dict(samples=50, separation=2.0, label_noise=0.1, lr=4.0, steps=200, record_every=100, replicas=0)
# The bound where it says something: a well-separated mixture (gamma ~ 0.17), n = 50, eta = 16, T = 200, so that
# ||w* - w_0||^2 / (eta T) = (log 200 / 0.17)^2 / 3200 ~ 0.3 < log 2. The bound is checked on every draw.
SEPARABLE = dict(samples=50, separation=6.0, lr=16.0, steps=200, record_every=100, replicas=0)


@pytest.fixture(scope="module")
def noisy():
    return sims.sweep("ntk_stability", {"width": WIDTHS}, SEEDS, **NOISY)


@pytest.fixture(scope="module")
def separable():
    return sims.sweep("ntk_stability", {"width": WIDTHS}, SEEDS, **SEPARABLE)


def final_gap(ds):
    return ds.generalization_gap.isel(step=-1)


@pytest.mark.parametrize("width", [256, 1024])
def test_generalization_gap_does_not_grow_with_width(noisy, width):
    # The gap's bound depends on ||w_T - w_0||, not on m. One-sided paired test at 3 standard errors (99.87%) of
    # gap(m) - gap(64) over the 32 shared draws. It can fail: the standard error of the difference is ~0.005, and
    # growth like sqrt(m), the width dependence of uniform-convergence bounds, would add 1-3x the gap (~0.13) at
    # m = 256, 1024. Measured: the gap falls, 0.128, 0.094, 0.083 at m = 64, 256, 1024.
    gap = final_gap(noisy)
    diff = gap.sel(width=width).values - gap.sel(width=64).values
    se = diff.std(ddof=1) / np.sqrt(diff.size)
    assert diff.mean() <= 3 * se, (diff.mean(), se)


def test_noisy_gap_is_resolved_from_zero(noisy):
    # Guards the width test against passing on noise alone: at m = 64 the gap is many standard errors above 0.
    gap = final_gap(noisy).sel(width=64).values
    assert gap.mean() > 5 * gap.std(ddof=1) / np.sqrt(gap.size), gap.mean()


@pytest.mark.parametrize("width", [256, 1024])
@pytest.mark.parametrize("loss", ["final_train_loss", "average_train_loss"])
def test_training_loss_is_below_the_bound_at_the_reference_point_once_width_is_large(separable, width, loss):
    # F_hat(w_T) and (1/T) sum_t F_hat(w_t) <= F_hat(w*) + ||w* - w_0||^2 / (eta T), w* = w_0 + (log T / gamma) u*,
    # for m large enough, on every draw. The bound is exact (no constant), so there is no tolerance.
    p = separable.sel(width=width)
    assert np.all(p[loss].values <= p.theory_train_bound.values), (p[loss].values, p.theory_train_bound.values)


def test_bound_says_something_at_large_width(separable):
    # The bound is below log 2, the loss of the zero predictor, on every draw at m = 1024 (measured <= 0.31).
    assert float(separable.theory_train_bound.sel(width=1024).max()) < np.log(2)


def test_reference_point_fits_the_training_set_only_at_large_width(separable):
    # Where the net follows its linearization along u*, y_i Phi(w*; x_i) >= y_i Phi(w_0; x_i) + log T (u* has margin
    # gamma and w* - w_0 = (log T / gamma) u*), so F_hat(w*) <= mean_i e^(-y_i Phi_0(x_i)) / T. At init
    # Phi_0 ~ N(0, s^2) with s^2 = E softplus(z)^2 ~ 0.5 (z ~ N(0, 1/d), ||x|| = 1), so E e^(-y Phi_0) = e^(s^2/2)
    # ~ 1.3 and the bound is ~0.0064 at T = 200; 0.02 allows three times that for the mean over n = 50 samples and
    # the linearization's remainder. Measured max over 16 of these draws: 0.011 at m = 256 and 1024, 0.25 at m = 16,
    # where the linearization fails on some draws: the bound's width condition.
    ref = separable.reference_train_loss
    assert float(ref.sel(width=[256, 1024]).max()) <= 0.02
    assert float(ref.sel(width=16).max()) > 0.02


def test_margin_programs_agree_at_every_width(separable):
    np.testing.assert_allclose(separable.ntk_margin_dual.values, separable.ntk_margin.values, rtol=1e-6)
    assert np.all(separable.ntk_margin_converged.values)


@pytest.mark.parametrize("width", [256, 1024])
def test_report_prints_the_bound_holding_with_its_smallest_slack_over_draws(separable, width):
    # The bound row prints "holds, loose xK" with K the smallest bound / loss ratio over the draws, recomputed
    # here from the dataset. It fails on a draw above the bound (VIOLATED), on a plain "holds" (the slack hidden),
    # or on another K. Measured K: tens (losses 0.002-0.006 against bounds 0.2-0.3).
    p = separable.sel(width=width)
    slack = float(np.min(p.theory_train_bound.values / p.final_train_loss.values))
    rows = [r for r in report.compare(separable)
            if r.quantity.startswith("final train loss") and r.where.split()[0] == f"width={width}"]
    assert len(rows) == 1 and slack > 3
    assert verdict(rows[0]) == f"holds, loose ×{slack:.3g}", (verdict(rows[0]), slack)


def test_report_prints_the_gap_not_growing_with_width(noisy):
    # The width rows: the gap at m = 64, 256, 1024 against m = 16, paired over the 32 shared draws. The gap falls
    # (0.20, 0.13, 0.09, 0.08), so each holds; growth with m beyond 3 paired standard errors would print VIOLATED.
    rows = [r for r in report.compare(noisy) if r.quantity == "generalization gap at T"]
    assert [r.where for r in rows] == [f"width={m}" for m in WIDTHS[1:]]
    assert all(verdict(r).startswith("holds") for r in rows), [verdict(r) for r in rows]
