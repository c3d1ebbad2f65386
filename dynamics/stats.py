"""Estimates from independent replicates, and the power of the tests built on them.

Every comparison of a simulated number with theory is a test at one false-alarm rate, `LEVEL` (two-sided 0.3%, three
standard errors when the degrees of freedom are many). Its power is stated too: `detectable(se, dof)` is the smallest
deviation from theory that the test sees with probability `POWER` (80%),

    detectable = (t_{1 - LEVEL/2, dof} + t_{POWER, dof}) * se,

the usual normal-approximation power formula with Student quantiles. A row whose detectable deviation is larger than
the deviation that matters is inconclusive, never "agrees"; `seeds_needed` says how many seeds would decide it, from
se ~ 1/sqrt(seeds).

What counts as a replicate (an `Estimate`'s `replicates`):
- seeds: each seed is an independent run, so the time averages of K seeds are K independent samples;
- batch means: within one chain, consecutive steps are correlated. The chain's tail is cut into batches at least
  `BATCH_TAUS` integrated autocorrelation times long (Sokal's automatic window), whose means are nearly independent
  (for an AR(1) chain adjacent batch means correlate by about tau / (2 * batch length) = 5%). With few seeds the
  batches of every seed are pooled; with `SEED_REPLICATES` seeds or more, the seeds alone are the replicates.
- never grid points that share noise: members of a sweep at different traced values share their seed's key (common
  random numbers), so a quantity combining grid points (an integral over s, a slope over N) must take its error
  across seeds of the whole combination, or propagate independent per-point errors only where the points draw
  independent noise.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np
from scipy import stats as _st

__all__ = ["LEVEL", "POWER", "MIN_DOF", "Estimate", "exact", "across", "autocorrelation_time", "batch_means",
           "critical", "detectable", "seeds_needed", "loglog_fit", "ratio", "difference"]

LEVEL = 0.003  # two-sided false-alarm rate of every test (a 99.7% interval)
POWER = 0.8  # the probability with which `detectable` deviations are seen
MIN_DOF = 3  # fewer degrees of freedom than this: the noise is not estimated well enough for any verdict
BATCH_TAUS = 10  # batch length in integrated autocorrelation times
SEED_REPLICATES = 10  # from this many seeds on, seeds alone are the replicates (no assumption on autocorrelation)


class Estimate(NamedTuple):
    """A number with its standard error from independent replicates.

    mean: the estimate. se: its standard error (0 for an exact number, NaN when nothing estimates the noise).
    dof: degrees of freedom of se (inf for an exact number). seeds: how many seeds it rests on, the unit that
    `--seeds` scales (se ~ 1/sqrt(seeds)); 0 when more seeds would not change se.
    """

    mean: float
    se: float = 0.0
    dof: float = math.inf
    seeds: int = 0

    @property
    def halfwidth(self) -> float:
        """Half-width of the two-sided (1 - LEVEL) interval."""
        return critical(self.dof) * self.se if self.se else 0.0


def exact(value: float) -> Estimate:
    """A number without sampling noise (a solver's output, a closed form)."""
    return Estimate(float(value))


def across(samples: Sequence[float], seeds: int | None = None) -> Estimate:
    """Mean of independent replicates and its standard error (ddof = 1). seeds: how many seeds they rest on
    (default: one replicate per seed)."""
    x = np.asarray(samples, float).ravel()
    n = x.size
    se = float(x.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return Estimate(float(x.mean()) if n else math.nan, se, n - 1 if n > 1 else 0, n if seeds is None else seeds)


def autocorrelation_time(chains: np.ndarray, c: float = 5.0) -> float:
    """Integrated autocorrelation time tau = 1 + 2 sum_t rho(t), in records, of chains of shape (chains, steps): the
    autocorrelation averaged over chains (each about its own mean), summed up to Sokal's window, the smallest M with
    M >= c tau(M). A constant chain has tau = 1."""
    x = np.atleast_2d(np.asarray(chains, float))
    n = x.shape[1]
    x = x - x.mean(axis=1, keepdims=True)
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(x, size, axis=1)
    acf = np.fft.irfft(f * np.conj(f), size, axis=1)[:, :n].mean(axis=0)
    if acf[0] <= 0:
        return 1.0
    taus = 2.0 * np.cumsum(acf / acf[0]) - 1.0
    window = np.arange(n) >= c * taus
    m = int(np.argmax(window)) if window.any() else n - 1
    return max(float(taus[m]), 1.0)


def batch_means(chains: np.ndarray) -> Estimate:
    """Mean of chains of shape (seeds, steps) and its standard error: across the seeds' time averages when there are
    `SEED_REPLICATES` seeds or more, else across batch means `BATCH_TAUS` autocorrelation times long, pooled over
    the seeds (se NaN when not even two batches fit)."""
    x = np.atleast_2d(np.asarray(chains, float))
    seeds, n = x.shape
    if not np.all(np.isfinite(x)):  # a diverged chain: its mean says so (n/a or DIVERGED), there is no noise estimate
        return Estimate(float(x.mean()), math.nan, 0, seeds)
    if seeds >= SEED_REPLICATES:
        return across(x.mean(axis=1))
    length = math.ceil(BATCH_TAUS * autocorrelation_time(x))
    per_seed = n // length
    if per_seed * seeds < 2:
        return Estimate(float(x.mean()), math.nan, 0, seeds)
    batches = x[:, n - per_seed * length:].reshape(seeds, per_seed, length).mean(axis=2)
    return across(batches, seeds=seeds)._replace(mean=float(x.mean()))


def critical(dof: float) -> float:
    """Half-width of the two-sided (1 - LEVEL) Student interval in standard errors (2.97 for infinite dof)."""
    return float(_st.t.ppf(1 - LEVEL / 2, dof)) if dof >= 1 else math.inf


def detectable(se: float, dof: float) -> float:
    """The smallest deviation from theory that the test detects with probability POWER."""
    if se == 0:
        return 0.0
    if not (dof >= 1 and math.isfinite(se)):
        return math.inf
    return (critical(dof) + float(_st.t.ppf(POWER, dof))) * se


def seeds_needed(estimate: Estimate, target: float) -> int | None:
    """Seeds at which `estimate`'s test would detect a deviation of `target` (absolute), from se ~ 1/sqrt(seeds) and
    dof ~ seeds; None when more seeds would not help (no seeds behind the estimate, or no estimate of the noise).

    The se behind an inconclusive row is itself uncertain (with few seeds, badly), so K is sized for its one-sided
    90% upper confidence limit, se sqrt(dof / chi2_{0.1}(dof)), and for the new run's own se estimate coming out two
    of its standard deviations (relative 1/sqrt(2 dof)) high: the run at K seeds is then conclusive in most cases.
    """
    e = estimate
    if e.seeds < 1 or not (math.isfinite(e.se) and e.se > 0) or target <= 0:
        return None
    se = e.se * math.sqrt(e.dof / _st.chi2.ppf(0.1, e.dof)) if math.isfinite(e.dof) and e.dof >= 1 else e.se
    per_seed = (e.dof + 1) / e.seeds if math.isfinite(e.dof) else 1.0  # replicates per seed (batches)

    def enough(k: int) -> bool:
        dof = max(1.0, per_seed * k - 1)
        return detectable(se * math.sqrt(e.seeds / k), dof) * (1 + 2 / math.sqrt(2 * dof)) <= target

    k = max(e.seeds, math.ceil(e.seeds * (detectable(se, math.inf) / target) ** 2))
    while not enough(k):
        k = math.ceil(k * 1.05) + 1
    return k


def loglog_fit(x: Sequence[float], y: Sequence[Estimate]) -> Estimate:
    """Least-squares slope of log y on log x. Its standard error is the larger of two: the per-point errors
    propagated through the fit (delta method, se(log y) = se(y)/y, Welch-Satterthwaite dof), valid when the points
    draw independent noise; and the residuals' (dof = points - 2), which also sees a law that is not a power law.
    Non-positive means give NaN."""
    lx = np.log(np.asarray(x, float))
    means = np.array([e.mean for e in y], float)
    if lx.size < 2 or not np.all(means > 0):
        return Estimate(math.nan, math.nan, 0, 0)
    ly = np.log(means)
    c = (lx - lx.mean()) / np.sum((lx - lx.mean()) ** 2)
    slope = float(c @ ly)
    resid = ly - (ly.mean() + slope * (lx - lx.mean()))
    res_dof = lx.size - 2
    se_res = math.sqrt(np.sum(resid ** 2) / res_dof * np.sum(c ** 2)) if res_dof > 0 else math.nan
    terms = np.array([(ci * e.se / m) ** 2 for ci, e, m in zip(c, y, means)])
    se_prop = math.sqrt(terms.sum()) if np.all(np.isfinite(terms)) else math.nan
    dofs = np.array([e.dof for e in y], float)
    prop_dof = float(terms.sum() ** 2 / np.sum(terms ** 2 / dofs)) if terms.sum() > 0 else math.inf
    seeds = min(e.seeds for e in y)
    if math.isnan(se_prop) or (math.isfinite(se_res) and se_res > se_prop):
        return Estimate(slope, se_res, res_dof, seeds if math.isfinite(se_prop) else 0)
    return Estimate(slope, se_prop, prop_dof, seeds)


def ratio(a: Estimate, b: Estimate) -> Estimate:
    """a / b for independent a and b, by the delta method."""
    r = a.mean / b.mean
    se = abs(r) * math.hypot(a.se / a.mean, b.se / b.mean)
    return Estimate(r, se, min(a.dof, b.dof), min(a.seeds, b.seeds))


def difference(a: Estimate, b: Estimate) -> Estimate:
    """a - b for independent a and b (Welch-Satterthwaite dof). For paired samples use `across(a_i - b_i)`."""
    va, vb = a.se ** 2, b.se ** 2
    dof = (va + vb) ** 2 / (va ** 2 / a.dof + vb ** 2 / b.dof) if va + vb > 0 else math.inf
    return Estimate(a.mean - b.mean, math.sqrt(va + vb), dof, min(a.seeds, b.seeds))
