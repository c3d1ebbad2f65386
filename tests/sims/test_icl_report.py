"""The statistics of sims/icl_single_index/report.py against independent computations: the random-init alignment
against Monte Carlo, and the standard errors of the excess exponent and of the paired ratio against their actual
spread over many synthetic test sets whose per-task errors are correlated across prompt lengths (as the sim's are:
every N uses the same tasks) and across d (common random numbers). NumPy only, about a second."""

import math

import numpy as np

from sims.icl_single_index import report

LENGTHS = np.array([8, 16, 32, 64, 128])
REPLICATIONS = 400  # synthetic test sets; the relative SE of their spread's estimate is 1/sqrt(2 * 400) = 3.5%


def test_random_alignment_is_the_mean_projection_of_a_uniform_direction():
    # 200,000 directions uniform on the sphere of R^16, |P_S w| on the first two coordinates: the Monte-Carlo mean has
    # SE ~ 0.2 / sqrt(2e5) = 4.5e-4; within 4 SE.
    rng = np.random.default_rng(0)
    w = rng.standard_normal((200_000, 16))
    proj = np.linalg.norm(w[:, :2], axis=1) / np.linalg.norm(w, axis=1)
    assert abs(report.random_alignment(16, 2) - proj.mean()) < 4 * proj.std() / math.sqrt(proj.size)


def _synthetic(rng, tasks: int, floor_tasks: int, exponent: float = -1.0):
    """Per-task errors e_ik = F + A N_k^exponent * g_i * u_ik: a task factor g_i shared by every length (strong
    correlation across N, as in the sim) and a length-specific factor u_ik; floors f_i = F + 0.3 F v_i on the first
    floor_tasks tasks (NaN after). E e_k - F is an exact power law."""
    g = rng.gamma(2.0, 0.5, (tasks, 1))
    u = rng.gamma(16.0, 1 / 16, (tasks, LENGTHS.size))
    errors = 0.03 + 3.0 * LENGTHS ** exponent * g * u
    floors = np.full(tasks, np.nan)
    floors[:floor_tasks] = 0.03 * (1 + 0.3 * rng.standard_normal(floor_tasks))
    return errors, floors


def test_excess_slope_recovers_the_exponent_with_a_calibrated_error():
    # Over 400 synthetic test sets of 512 tasks (floors on the first 128): the estimates scatter about the true -1
    # (their mean within 4 SE of it), and the reported standard error (per-task delta method) matches their actual
    # spread within 15% (4 SE of a spread estimated from 400 sets). Propagating per-length errors as if independent
    # (stats.loglog_fit of per-length means) misses the correlation across N: it overstates the error by 24% here.
    rng = np.random.default_rng(1)
    estimates = [report.excess_slope(LENGTHS, *_synthetic(rng, 512, 128)) for _ in range(REPLICATIONS)]
    values = np.array([e.mean for e in estimates])
    se = np.median([e.se for e in estimates])
    assert abs(values.mean() + 1) < 4 * values.std() / math.sqrt(REPLICATIONS), values.mean()
    assert abs(se / values.std() - 1) < 0.15, (se, values.std())


def test_paired_ratio_error_is_calibrated_for_correlated_pairs():
    # Pairs (a_i, b_i) sharing a task factor (common random numbers), E a / E b = 1.2: the ratio's reported SE
    # matches its spread over 400 sets of 1024 tasks within 15%, and the mean is within 4 SE of 1.2.
    rng = np.random.default_rng(2)

    def one():
        g = rng.gamma(1.0, 0.1, 1024)
        return report.paired_ratio(1.2 * g * rng.gamma(8.0, 1 / 8, 1024), g * rng.gamma(8.0, 1 / 8, 1024))

    estimates = [one() for _ in range(REPLICATIONS)]
    values = np.array([e.mean for e in estimates])
    se = np.median([e.se for e in estimates])
    assert abs(values.mean() - 1.2) < 4 * values.std() / math.sqrt(REPLICATIONS), values.mean()
    assert abs(se / values.std() - 1) < 0.15, (se, values.std())
