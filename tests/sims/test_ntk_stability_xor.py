"""ntk_stability, task xor: a width-16 quadratic net with eta = m learns y = x_1 x_2 on the hypercube in about log d
SGD steps, and a wide net with small steps does not at the same sample count (theory note, "The XOR mechanism";
the issue's acceptance). Float64 (conftest).

What is and is not reproduced (sims/ntk_stability/data.py, README): with n = 64 d and batches of 16 d the steps to
99% test accuracy are ceil(log d) within a step; 100% on 10^4 fresh points is reached only by some seeds, the others
plateau at 99.8-99.99%, so steps to 100% are not tested.
"""

import math

import numpy as np
import pytest

import sims
from sims.ntk_stability import report

SEEDS = 8
DIMS = [16, 64, 256]
# At d = 64 and n = 16 d = d^2 / 4 samples, batches of 4 d: the same data for both regimes.
CONTRAST = dict(task="xor", activation="quadratic", dim=64, samples_per_dim=16, batch_per_dim=4,
                test_samples=10000, replicas=0)


@pytest.fixture(scope="module")
def ladder():
    return sims.sweep("ntk_stability", {"dim": DIMS}, SEEDS, preset="xor", steps=8)


@pytest.fixture(scope="module")
def large_step():
    return sims.sweep("ntk_stability", {}, SEEDS, **CONTRAST, width=16, lr=0.0, steps=30, record_every=10)


@pytest.fixture(scope="module")
def small_step():
    return sims.sweep("ntk_stability", {}, SEEDS, **CONTRAST, width=512, lr=51.2, steps=300, record_every=100)


@pytest.mark.parametrize("dim", DIMS)
def test_steps_to_99_percent_accuracy_are_ceil_log_d(ladder, dim):
    # The mechanism: the signal directions e_1 +- e_2 of each neuron grow by a constant factor per step, the noise
    # ones do not, and the signal must overtake noise of relative size ~sqrt(d): log d steps up to a constant
    # factor. We allow one step (the resolution of ceil) plus 3 standard errors of the mean over seeds (the steps
    # are integers with a seed-to-seed spread of about one step).
    steps = report.steps_to_accuracy(ladder.test_error.sel(dim=dim), 0.99).values
    assert np.all(np.isfinite(steps)), steps  # every seed gets there within 8 steps
    se = steps.std(ddof=1) / np.sqrt(steps.size)
    assert abs(steps.mean() - math.ceil(math.log(dim))) <= 1 + 3 * se, (steps, math.ceil(math.log(dim)))


def test_width_stays_constant_and_steps_grow_with_d(ladder):
    # log d growth, not a constant: from d = 16 to 256 ceil(log d) goes 3 -> 6; the mean steps must rise by at least
    # one step more than 3 standard errors of the difference.
    steps = report.steps_to_accuracy(ladder.test_error, 0.99)
    low, high = steps.sel(dim=16).values, steps.sel(dim=256).values
    se = np.hypot(low.std(ddof=1), high.std(ddof=1)) / np.sqrt(SEEDS)
    assert high.mean() - low.mean() >= 1 + 3 * se, (low, high)


def test_large_step_narrow_net_learns_xor_at_linear_sample_count(large_step):
    # Measured 0.984-0.998 final test accuracy over these 8 seeds after 30 steps (seed-to-seed std 0.005); 0.97 is
    # below them by more than 2 std plus the 10^4-point test set's binomial standard error (< 0.002 at 0.98).
    accuracy = 1 - large_step.test_error.isel(step=-1).values
    assert accuracy.min() >= 0.97, accuracy


def test_small_step_wide_net_does_not_learn_xor_at_the_same_samples(small_step):
    # Near the kernel regime (m = 512, eta = m / 10, 300 steps) the net interpolates the n = d^2 / 4 training points
    # but a kernel method needs ~d^2 samples for a degree-2 target: measured 0.77-0.82 test accuracy over these 8
    # seeds, rising by ~0.01 per 100 steps at the end (std 0.014). 0.9 is halfway to the large-step net's 0.99 and
    # 6 std above the best seed.
    accuracy = 1 - small_step.test_error.isel(step=-1).values
    train = small_step.train_error.isel(step=-1).values
    assert accuracy.max() < 0.9, accuracy
    assert np.all(train == 0), train  # it fits S: the failure is generalization, not optimization


def test_xor_runs_carry_no_ntk_gram(ladder):
    # XOR's sets are large (n = 64 d) and its net is not the deep net of the NTK-margin analysis.
    assert "ntk_gram" not in ladder and "ntk_margin" not in ladder
