"""The statistics behind every verdict: false-alarm rate, power, the seeds an inconclusive row asks for, batch means
of correlated chains, and slope fits. Each claim is checked by Monte Carlo against its stated rate; with T repeats a
rate p is measured to sqrt(p (1 - p) / T), and each acceptance band below is at least 4 of those wide."""

import math

import numpy as np
import pytest

from dynamics import report, stats
from dynamics.stats import Estimate

RNG_SEED = 20261130


def _row(samples, theory=1.0, **kw):
    return report.equal("q", "", stats.across(samples), theory, "test", **kw)


def test_equality_false_alarm_rate_is_the_stated_level():
    """16 seeds at the true value: DIFFERS at rate LEVEL = 0.3% (T = 4000: expected 12, sd 3.5; accept <= 30)."""
    rng = np.random.default_rng(RNG_SEED)
    alarms = sum(report.verdict(_row(rng.normal(1.0, 0.5, 16))) == "DIFFERS" for _ in range(4000))
    assert alarms <= 30


def test_equality_detects_its_stated_deviation_with_80_percent_power():
    """A true deviation equal to `detectable(sigma / sqrt(n), n - 1)` is seen at rate POWER = 0.8
    (T = 2000: sd 0.009; accept 0.75-0.85)."""
    rng = np.random.default_rng(RNG_SEED + 1)
    shift = stats.detectable(0.5 / 4, 15)
    hits = sum(report.verdict(_row(rng.normal(1.0 + shift, 0.5, 16))) == "DIFFERS" for _ in range(2000))
    assert 0.75 <= hits / 2000 <= 0.85


def test_two_seeds_never_agree_even_at_the_true_value():
    """The old rule, t(1) x SE with 2 seeds, was 212 standard errors wide and agreed with a 100% error. Now a
    2-seed row has too few degrees of freedom: inconclusive, with the seeds to run."""
    rng = np.random.default_rng(RNG_SEED + 2)
    verdicts = {report.verdict(_row(rng.normal(1.0, 0.5, 2))) for _ in range(50)}
    assert all(v.startswith("inconclusive") and "--seeds=" in v for v in verdicts), verdicts


def test_seeds_needed_makes_the_row_conclusive():
    """The K that an inconclusive 8-seed row asks for is enough: over 20 different 8-seed rows, the runs at their K
    seeds detect a 10% error ("agrees", not inconclusive) in at least 80% of 200 repeats (K is sized for the 90%
    upper limit of the 8-seed noise estimate)."""
    rng = np.random.default_rng(RNG_SEED + 3)
    agree = 0
    for _ in range(20):
        few = _row(rng.normal(1.0, 0.5, 8))
        verdict = report.verdict(few)
        assert verdict.startswith("inconclusive")
        k = int(verdict.split("--seeds=")[1])
        assert k == stats.seeds_needed(few.estimate, 0.1)
        agree += sum(report.verdict(_row(rng.normal(1.0, 0.5, k))) == "agrees" for _ in range(10))
    assert agree >= 160


@pytest.mark.parametrize("phi", [0.0, 0.9])
def test_autocorrelation_time_of_an_ar1_chain(phi):
    """tau = (1 + phi) / (1 - phi) for x_t = phi x_{t-1} + e_t. Sokal's estimate has relative sd about
    sqrt(2 (2M + 1) / steps) for window M ~ 5 tau: 0.14 for one chain of 20,000 steps at tau = 19, 0.044 averaged
    over 10 chains; accept 15% (3.4 sd)."""
    rng = np.random.default_rng(RNG_SEED + 4)
    x = _ar1(rng, phi, 10, 20000)
    assert stats.autocorrelation_time(x) == pytest.approx((1 + phi) / (1 - phi), rel=0.15)


def _ar1(rng, phi, seeds, steps):
    x = np.zeros((seeds, steps))
    e = rng.normal(size=(seeds, steps)) * math.sqrt(1 - phi ** 2)  # stationary variance 1, mean 0
    x[:, 0] = rng.normal(size=seeds)
    for t in range(1, steps):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x


def test_batch_means_cover_the_mean_of_a_correlated_chain():
    """Two chains of an AR(1) with tau = 39: the batch-means interval covers the true mean 0 at about its 99.7%
    (400 repeats: accept >= 97%), while treating raw steps as independent covers far less (< 70%): the reason the
    layer never uses raw steps as replicates."""
    rng = np.random.default_rng(RNG_SEED + 5)
    covered = naive = 0
    for _ in range(400):
        x = _ar1(rng, 0.95, 2, 4000)
        est = stats.batch_means(x)
        covered += abs(est.mean) <= est.halfwidth
        naive += abs(x.mean()) <= stats.critical(x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    assert covered / 400 >= 0.97
    assert naive / 400 < 0.7


def test_batch_means_without_two_batches_leave_the_noise_unknown():
    """A chain shorter than 20 autocorrelation times gives no estimate of its noise: the row is inconclusive."""
    rng = np.random.default_rng(RNG_SEED + 6)
    est = stats.batch_means(_ar1(rng, 0.99, 1, 200))
    assert math.isnan(est.se)
    assert report.verdict(report.equal("q", "", est, 0.0, "", scale=1.0)).startswith("inconclusive")


def test_many_seeds_use_seed_averages_as_replicates():
    rng = np.random.default_rng(RNG_SEED + 7)
    x = rng.normal(size=(stats.SEED_REPLICATES, 50))
    est = stats.batch_means(x)
    assert est.dof == stats.SEED_REPLICATES - 1 and est.seeds == stats.SEED_REPLICATES
    assert est.se == pytest.approx(x.mean(axis=1).std(ddof=1) / math.sqrt(stats.SEED_REPLICATES))


def test_loglog_fit_propagates_independent_point_errors():
    """y = 3 x^-1 with 5% independent errors at 5 points: the fitted slope's interval covers -1 in >= 99% of 400
    repeats, and its standard error is the delta-method one, sqrt(sum c_i^2 0.05^2)."""
    rng = np.random.default_rng(RNG_SEED + 8)
    x = np.array([4.0, 8, 16, 32, 64])
    lx = np.log(x)
    c = (lx - lx.mean()) / np.sum((lx - lx.mean()) ** 2)
    covered = 0
    for _ in range(400):
        y = [Estimate(3 / xi * (1 + 0.05 * rng.normal()), 3 / xi * 0.05, 63, 64) for xi in x]
        fit = stats.loglog_fit(x, y)
        covered += abs(fit.mean + 1) <= fit.halfwidth
    assert covered / 400 >= 0.99
    assert fit.se >= math.sqrt(np.sum(c ** 2)) * 0.05 * 0.9


def test_slope_from_three_points_without_errors_is_inconclusive():
    """Residuals of 3 points give 1 degree of freedom: below MIN_DOF, so no verdict either way."""
    row = report.slope("slope", "", [1, 2, 4], [Estimate(v, math.nan, 0, 0) for v in (1.0, 0.52, 0.24)], -1.0, "")
    assert report.verdict(row).startswith("inconclusive")


def test_ratio_and_difference_propagate_independent_errors():
    a, b = Estimate(2.0, 0.1, 30, 31), Estimate(4.0, 0.2, 30, 31)
    assert stats.ratio(a, b).se == pytest.approx(0.5 * math.hypot(0.05, 0.05))
    assert stats.difference(a, b).se == pytest.approx(math.hypot(0.1, 0.2))
    assert stats.difference(a, b).dof > 30  # Welch-Satterthwaite pools the two


def test_a_diverged_chain_has_no_noise_estimate():
    est = stats.batch_means(np.array([[1.0, 2.0, np.nan, np.nan]]))
    assert math.isnan(est.se) and math.isnan(est.mean)
    assert report.verdict(report.equal("q", "", est, 1.0, "")) == "n/a"
