"""ntk_stability, task xor: a width-16 quadratic net with eta = m and the fan-in Gaussian init learns y = x_1 x_2 on
the hypercube to 100% test accuracy in about log d SGD steps, and the step size, not the width, decides it (theory
note, "The XOR mechanism"; sims/ntk_stability/data.py says which reading of the paper is implemented). Float64.

The verdicts are the report's: fractions of seeds over all seeds (a seed that never gets there counts), tested
against 1 with their standard error across seeds.
"""

import numpy as np
import pytest

import sims
from dynamics.report import verdict
from sims.ntk_stability import report

SEEDS = 8
DIMS = [16, 64, 256]


@pytest.fixture(scope="module")
def ladder():
    # The xor preset (n = 128 d, b = 64 d, m = 16, eta = m) for 8 steps: 100% comes by step 4, 5, 6 at most.
    return sims.sweep("ntk_stability", {"dim": DIMS}, SEEDS, preset="xor", steps=8)


@pytest.fixture(scope="module")
def grid():
    # The xor_small_step preset: width x step at d = 64 for the xor budget of 20 steps, its default seeds.
    return sims.sweep("ntk_stability", *sims.preset_plan("ntk_stability", "xor_small_step"), preset="xor_small_step")


def _rows(ds, quantity):
    return {r.where: r for r in report.compare(ds) if r.quantity.startswith(quantity)}


@pytest.mark.slow
def test_every_seed_reaches_100_percent_test_accuracy_within_8_steps(ladder):
    # "holds" needs all 8 seeds at 100% on the 10^4 fresh points: one seed short makes the row inconclusive, two
    # VIOLATED (a fraction 6/8 sits 0.6 tolerances below 1 at 7 degrees of freedom).
    rows = _rows(ladder, "seeds at 100% test accuracy within T = 8 steps")
    assert {where: verdict(r) for where, r in rows.items()} == {f"dim={d}": "holds" for d in DIMS}


@pytest.mark.slow
def test_every_seed_reaches_99_percent_by_ceil_log_d_at_64_and_256(ladder):
    # The theorem's ceil(log d) steps, read at 99%: 8 of 8 seeds at d = 64 and 256 (measured steps 3-5 against 5,
    # and 5-6 against 6). At d = 16, ceil(log 16) = 3 leaves 0.23 steps over log 16 and one seed takes 4 steps.
    rows = _rows(ladder, "seeds at 99% test accuracy by step ceil(log d)")
    assert [verdict(rows[f"dim={d}"]) for d in (64, 256)] == ["holds", "holds"]


@pytest.mark.slow
def test_steps_to_100_percent_grow_with_d(ladder):
    # log d growth, not a constant: from d = 16 to 256 ceil(log d) goes 3 -> 6 and the mechanism's log_2 sqrt(d) by
    # 2; the mean steps (every seed gets there, previous test) must rise by at least one step more than 3 standard
    # errors of the difference.
    steps = report.steps_to_accuracy(ladder.test_error, 1.0)
    low, high = steps.sel(dim=16).values, steps.sel(dim=256).values
    se = np.hypot(low.std(ddof=1), high.std(ddof=1)) / np.sqrt(SEEDS)
    assert high.mean() - low.mean() >= 1 + 3 * se, (low, high)


def test_steps_to_accuracy_counts_a_seed_that_never_gets_there_as_inf():
    import xarray as xr
    error = xr.DataArray([[0.5, 0.0, 0.0], [0.5, 0.1, 0.01]], dims=("seed", "step"), coords={"step": [0, 5, 10]})
    np.testing.assert_array_equal(report.steps_to_accuracy(error, 1.0).values, [5.0, np.inf])
    np.testing.assert_array_equal(report.steps_to_accuracy(error, 0.99).values, [5.0, 10.0])


@pytest.mark.slow
def test_large_step_beats_the_small_step_at_both_widths(grid):
    # At step ceil(log 64) = 5, the theorem's count, the accuracy at eta = m exceeds eta = m / 10 at each width, paired
    # over seeds (same data and init): measured 1.0 against 0.51-0.57 at m = 16 and 0.69-0.71 at m = 512. By step 20
    # the small step has caught up at m = 512 (100% at steps 17-19) but not at m = 16 (0.73-0.95): slower, not stuck.
    rows = _rows(grid, "test accuracy at step ceil(log d) = 5, eta = m")
    assert {where: verdict(r) for where, r in rows.items()} == {"width=16": "holds", "width=512": "holds"}


@pytest.mark.slow
def test_large_step_reaches_100_percent_at_both_widths(grid):
    # eta = m at m = 512 learns xor as at m = 16: a wide net with the large step is not in the kernel regime.
    rows = _rows(grid, "seeds at 100% test accuracy within T = 20 steps")
    assert {where: verdict(r) for where, r in rows.items()} == {"width=16 lr_per_width=1.0": "holds",
                                                                 "width=512 lr_per_width=1.0": "holds"}


@pytest.mark.slow
def test_xor_runs_carry_no_ntk_gram(ladder):
    # XOR's sets are large (n = 128 d) and its net is not the deep net of the NTK-margin analysis.
    assert "ntk_gram" not in ladder and "ntk_margin" not in ladder
