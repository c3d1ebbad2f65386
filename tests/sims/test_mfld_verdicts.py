"""Power of mfld's verdicts: a known bug monkeypatched into the dynamics turns the linear_oracle preset's printed
verdicts DIFFERS on the rows it affects, while the unmutated preset agrees on every row (sims/mfld/report.py).

The preset runs at its default plan (`sims.preset_plan`: N = 8, PRESET_SEEDS = 256 seeds, 3000 steps at eta = 0.01),
in float64 as every test. Its rows and what each bug does to them (exact discrete-time oracle, theory note; the
unmutated rows see errors of 1.4% (loss), 0.4% (objective), 4.6% (model error), 2.3% (variance), 4.2% (rate)):

* the noise variance doubled (4 lambda eta instead of 2 lambda eta: the temperature doubled in the noise only): every
  stationary variance doubles, so the fluctuation variance 0.088 -> 0.176, the model error 0.011 -> 0.022, the
  objective +0.1 (lambda' p s^2: +18%) and the loss +0.0055 (its excess doubles: +2.5%). The relaxation rate,
  4 lambda' per unit time, does not change, and its row must keep agreeing.
* the L2 gradient halved (lambda' x instead of 2 lambda' x): the fluctuation variance doubles, m* moves (K = A +
  lambda' I), and the relaxation rate halves (2.01 -> 1.0).

Compiled programs are cached by the sim's functions and argument shapes, and a mutation patches a function the sim
calls while it is traced, so a mutated run starts and ends with `runner.clear_caches()`: else it would reuse the
unmutated program, or leave its own for later tests.
"""

import pytest

import sims
from dynamics import langevin, report, runner

pytestmark = pytest.mark.slow

NAME, PRESET = "mfld", "linear_oracle"
STATIONARY = ("loss", "objective", "model_error", "particle_variance")


def _verdicts() -> dict:
    """quantity -> printed verdict of every row of the preset at its default plan (one grid point)."""
    ds = sims.sweep(NAME, *sims.preset_plan(NAME, PRESET), preset=PRESET)
    return {r.quantity: report.verdict(r) for r in sims.load(NAME).compare(ds)}


@pytest.fixture(scope="module")
def unmutated():
    return _verdicts()


def _mutated(mp, module, name, replacement) -> dict:
    runner.clear_caches()
    mp.setattr(module, name, replacement)
    try:
        return _verdicts()
    finally:
        runner.clear_caches()


def test_unmutated_linear_oracle_agrees_on_every_row(unmutated):
    assert set(unmutated) == {*STATIONARY, "max dual D(g_rho)", "relaxation rate"}, unmutated
    assert all(v in ("agrees", "holds") for v in unmutated.values()), unmutated


def test_doubled_noise_variance_differs_on_every_stationary_row(monkeypatch):
    noise = langevin.langevin_noise
    verdicts = _mutated(monkeypatch, langevin, "langevin_noise", lambda temperature, lr: noise(2 * temperature, lr))
    assert all(verdicts[q] == "DIFFERS" for q in STATIONARY), verdicts
    assert verdicts["relaxation rate"] == "agrees", verdicts  # the rate does not depend on the noise


def test_halved_l2_gradient_differs_on_variance_objective_and_rate(monkeypatch):
    noisy_gd = langevin.noisy_gd
    verdicts = _mutated(monkeypatch, langevin, "noisy_gd",
                        lambda lr, temperature, l2: noisy_gd(lr, temperature, l2 / 2))
    for quantity in ("particle_variance", "objective", "model_error", "relaxation rate"):
        assert verdicts[quantity] == "DIFFERS", verdicts
