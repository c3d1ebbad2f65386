"""mfld against exact oracle 1: the linear neuron h(x, z) = x.z with squared loss (theory note, "Exact oracle 1").

The Euler-Maruyama chain of N particles has an exactly Gaussian stationary law, so every stationary expectation is a
closed form in discrete time (sims/mfld/theory.py). Each check compares a replica average with it.

Tolerances: replicas (seeds) are independent, so a per-seed time average over the stationary half of the run is one
i.i.d. sample; its mean has standard error std/sqrt(R). We allow 4 standard errors: a two-sided Gaussian tail of 6e-5
per comparison, under 0.5% for the ~60 comparisons of this file together.
"""

import dataclasses

import chex
import numpy as np
import pytest

import sims
from dynamics import report as report_lib
from sims.mfld import report, theory

pytestmark = pytest.mark.slow  # every test reads a sweep of 64-1000 replicas

PARTICLES = [2, 8, 32, 128]
REPLICAS = 1000
Z_SE = 4.0


def _tail(da):
    """Per-seed time average over the stationary second half of the run: one i.i.d. sample per seed."""
    tail = da.isel(step=slice(da.sizes["step"] // 2, None))
    return tail.mean("step")


def _agree(samples, expected, what):
    samples = np.asarray(samples)
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])
    assert np.all(np.abs(mean - expected) <= Z_SE * se), (what, mean, expected, se)


@pytest.fixture(scope="module")
def stationary():
    """N in {2, 8, 32, 128}, 1000 replicas each, 2000 steps at eta = 0.01. The first half (10 time units) is burn-in:
    the slowest relaxation, of the mean at rate kappa_min >= 2 lambda' = 1, leaves e^-10 |m_0 - m*| < 5e-5 (the
    preset's init_scale = 3: |m_0| ~ 3 sqrt(p / N)), a twentieth of the mean's standard error at N = 128
    (sqrt(lambda / (N kappa) / 1000) ~ 9e-4)."""
    return sims.sweep("mfld", {"particles": PARTICLES}, REPLICAS, preset="linear_oracle", test_samples=4,
                      steps=2000, record_every=50)


@pytest.mark.parametrize("n", PARTICLES)
def test_mean_is_unbiased(stationary, n):
    ds = stationary.sel(particles=n)
    _agree(_tail(ds.particle_mean.isel(system=0)).values, ds.theory_mean.values, "E m = m*")


@pytest.mark.parametrize("n", PARTICLES)
def test_covariance_of_the_mean_matches_discrete_time_formula(stationary, n):
    ds = stationary.sel(particles=n)
    dev = ds.particle_mean.isel(system=0) - ds.theory_mean
    outer = (dev.rename(coordinate="i") * dev.rename(coordinate="j")).transpose("seed", "step", "i", "j")
    _agree(_tail(outer).values, ds.theory_mean_cov.values, "Cov(m)")


@pytest.mark.parametrize("n", PARTICLES)
def test_fluctuation_variance_matches_discrete_time_formula(stationary, n):
    ds = stationary.sel(particles=n)
    _agree(_tail(ds.particle_variance.isel(system=0)).values, float(ds.theory_particle_variance),
           "s^2 (1 - 1/N) / (1 - lambda' eta)")


@pytest.mark.parametrize("n", PARTICLES)
def test_excess_loss_matches_discrete_time_formula(stationary, n):
    ds = stationary.sel(particles=n)
    _agree(_tail(ds.loss).values, float(ds.theory_loss), "E F0(rho)")


@pytest.mark.parametrize("n", PARTICLES)
def test_model_error_matches_lambda_over_n_formula(stationary, n):
    ds = stationary.sel(particles=n)
    _agree(_tail(ds.model_error).values, float(ds.theory_model_error), "E |f_rho - f*|^2")


@pytest.mark.parametrize("n", PARTICLES)
def test_expected_objective_equals_optimum_objective_for_every_n(stationary, n):
    """Equipartition: E F(rho_X) = F(mu*) for every N in continuous time. In discrete time the chain adds the exact
    O(eta) bias E F_eta - F(mu*) of the oracle, so the simulation must sit at F(mu*) + that bias."""
    ds = stationary.sel(particles=n)
    config = sims.make_config("mfld", "linear_oracle", particles=n)
    exact = theory.linear_oracle(config, ds.z_train.values, ds.y_train.values)
    continuous = theory.linear_oracle(dataclasses.replace(config, lr=1e-12), ds.z_train.values, ds.y_train.values)
    chex.assert_trees_all_close(continuous.objective, continuous.optimum_objective, rtol=1e-9)
    bias = float(exact.objective - exact.optimum_objective)
    assert abs(bias) < 0.02 * abs(float(exact.optimum_objective))  # O(eta) = 1% at eta = 0.01
    _agree(_tail(ds.objective).values, float(exact.optimum_objective) + bias, "E F = F(mu*) + O(eta)")


@pytest.mark.parametrize("n", PARTICLES)
def test_dual_bound_holds_for_every_sample(stationary, n):
    """Weak duality D(g) <= L(mu*) is a theorem for every g, so every recorded sample must obey it (up to float64
    rounding of sums of O(1) terms, 1e-12)."""
    ds = stationary.sel(particles=n)
    assert float(ds.dual.max()) <= float(ds.theory_dual) + 1e-12


def test_dual_maximum_equals_gaussian_free_energy(stationary):
    """Strong duality for the linear neuron: max_g D(g) = L(mu*), where D is the closed-form Gaussian log-partition
    dual and L(mu*) = F(m*, s^2) - lambda p/2 log(2 pi e s^2) is computed from the Gibbs law directly. D is a concave
    quadratic in g, maximized by Newton's method from one step; both sides are float64 sums of O(1) terms (1e-12)."""
    import jax
    ds = stationary.sel(particles=8)
    config = sims.make_config("mfld", "linear_oracle", particles=8)
    z, y = ds.z_train.values, ds.y_train.values
    dual = lambda g: theory.dual_linear(config, g, z, y)
    g0 = np.zeros_like(y)
    g_star = g0 - np.linalg.solve(jax.hessian(dual)(g0), jax.grad(dual)(g0))
    free_energy = theory.linear_oracle(config, z, y).free_energy
    np.testing.assert_allclose(dual(g_star), free_energy, rtol=0, atol=1e-12)
    np.testing.assert_allclose(jax.grad(dual)(g_star), 0, atol=1e-12)


def test_model_error_falls_as_one_over_n(stationary):
    from dynamics.report import loglog_slope
    errors = [float(_tail(stationary.model_error.sel(particles=n)).mean()) for n in PARTICLES]
    slope, se = loglog_slope(PARTICLES, errors)
    # Exact law lambda/N zK^-1z: slope -1 exactly; the fit's own standard error bounds the sampling part.
    assert abs(slope + 1) <= Z_SE * se + 0.02, (slope, se)


@pytest.fixture(scope="module")
def ensembles():
    """N = 8 with M = 1 and M = 4 systems averaged (static: one compilation each), 1000 replicas."""
    return sims.sweep("mfld", {"ensemble": [1, 4]}, REPLICAS, preset="linear_oracle", particles=8, test_samples=4,
                      steps=2000, record_every=50)


def test_ensemble_of_m_divides_model_error_by_m(ensembles):
    one = _tail(ensembles.model_error.sel(ensemble=1)).values
    four = _tail(ensembles.model_error.sel(ensemble=4)).values
    _agree(four, float(ensembles.theory_model_error.sel(ensemble=4)), "model error of M = 4")
    ratio = one.mean() / four.mean()
    # Delta method: the ratio's relative standard error is the root sum of squares of the two relative errors.
    rel_se = np.hypot(one.std(ddof=1) / one.mean(), four.std(ddof=1) / four.mean()) / np.sqrt(REPLICAS)
    assert abs(ratio - 4) <= Z_SE * 4 * rel_se, (ratio, rel_se)


STEP_SIZES = [0.16, 0.08, 0.04, 0.02]


@pytest.fixture(scope="module")
def step_sizes():
    """N = 128, 512 replicas, eta in {0.16, ..., 0.02} vmapped in one program (lr is traced). 2000 steps give the
    smallest eta 40 time units, 20 relaxation times of the fluctuations."""
    return sims.sweep("mfld", {"lr": STEP_SIZES}, 512, preset="linear_oracle", particles=128, test_samples=4,
                      steps=2000, record_every=20)


def test_fluctuation_variance_bias_has_slope_one_in_step_size(step_sizes):
    """v(eta) / v(0) - 1 = lambda' eta / (1 - lambda' eta): first order in eta. The fitted log-log slope of the
    simulated bias must match the same fit of the exact bias (slightly above 1 from the 1/(1 - lambda' eta) factor)."""
    from dynamics.report import loglog_slope
    ds = step_sizes
    config = sims.make_config("mfld", "linear_oracle", particles=128)
    continuous = config.temperature / (2 * config.l2) * (1 - 1 / 128)
    samples = np.stack([_tail(ds.particle_variance.sel(lr=eta).isel(system=0)).values for eta in STEP_SIZES])
    bias = samples.mean(axis=1) / continuous - 1
    bias_se = samples.std(axis=1, ddof=1) / np.sqrt(samples.shape[1]) / continuous
    exact = [float(ds.theory_particle_variance.sel(lr=eta)) / continuous - 1 for eta in STEP_SIZES]
    slope, _ = loglog_slope(STEP_SIZES, bias)
    exact_slope, _ = loglog_slope(STEP_SIZES, exact)
    # Propagate each point's standard error to the slope of a least-squares fit on log eta (weights are fixed).
    lx = np.log(STEP_SIZES)
    weights = (lx - lx.mean()) / np.sum((lx - lx.mean()) ** 2)
    slope_se = np.sqrt(np.sum((weights * bias_se / bias) ** 2))
    assert np.all(bias > Z_SE * bias_se), (bias, bias_se)  # the bias is resolved at every step size
    assert abs(slope - exact_slope) <= Z_SE * slope_se, (slope, exact_slope, slope_se)
    assert abs(exact_slope - 1) < 0.1


@pytest.fixture(scope="module")
def step_sweep():
    """eta in {0.01, 0.02} swept (traced: one program), N = 32, 64 seeds, 1500 steps recorded every 10."""
    return sims.sweep("mfld", {"lr": [0.01, 0.02]}, 64, preset="linear_oracle", particles=32, test_samples=4,
                      steps=1500)


def test_relaxation_rate_converts_steps_with_the_grid_points_step_size(step_sweep):
    """The fitted rate is per unit time t = eta * step with each grid point's own eta (the base config's eta = 0.01
    doubled the rate at eta = 0.02: 3.86 against 2.02). At eta = 0.02 the row must not differ from the exact
    -2 log|1 - 2 lambda' eta| / eta and must be able to see that factor 2 (tolerance below half the theory)."""
    rows = {r.where: r for r in report.compare(step_sweep) if r.quantity == "relaxation rate"}
    for eta in (0.01, 0.02):
        row = rows[f"lr={eta}"]
        config = sims.make_config("mfld", "linear_oracle", lr=eta)
        np.testing.assert_allclose(row.theory, -2 * np.log(1 - 2 * config.l2 * eta) / eta, rtol=1e-12)
        assert abs(row.simulated - row.theory) <= row.tolerance < row.theory / 2, report_lib.format_table([row])
