"""mfld against exact oracle 2: the nonlinear neuron R tanh(a) tanh(w z) on the four-point data set, whose mean-field
optimum mu* is known by quadrature (theory note, "Exact oracle 2"), and propagation of chaos in N."""

import jax
import numpy as np
import pytest

import sims
from dynamics import report as report_lib
from dynamics.config import ConfigError
from dynamics.report import loglog_slope
from sims.mfld import data, report, theory

PARTICLES = [4, 8, 16, 32, 64]
REPLICAS = 320

# The theory note's reference values, stable to 1e-13 under grid refinement.
F_STAR = [0.26070926, 0.43842562, 0.61105047, 0.67968742]
FREE_ENERGY = -0.0694639012
LOSS = 0.0114645717
SECOND_MOMENT = 1.2847017


def test_quadrature_reproduces_reference_optimum():
    """The references are printed to 8-10 digits, so agreement is asked to their last digit (1e-8 absolute for
    f*, L and F0; 1e-7 for the 8-significant-digit second moment)."""
    config = sims.make_config("mfld", "tanh2d_oracle")
    d = data.make_data(config)
    opt = jax.jit(theory.quadrature_optimum)(config, d.z_train, d.y_train)
    np.testing.assert_allclose(opt.f_star, F_STAR, atol=1e-8)
    np.testing.assert_allclose(opt.free_energy, FREE_ENERGY, atol=1e-8)
    np.testing.assert_allclose(opt.loss, LOSS, atol=1e-8)
    np.testing.assert_allclose(opt.second_moment, SECOND_MOMENT, atol=1e-7)
    assert float(opt.gradient_norm) < 1e-14  # Newton converged: f_g* = y + g*


def _wide_grid(config, g_n, z_n, y_n, half_width, step):
    """D(g) and f_g(z_j) for the tanh2d Gibbs law by a plain trapezoid rule on a wide uniform grid, in numpy: an
    independent computation (no map, no truncation estimate). The a-integral depends on w only through
    u(w) = (1/n) sum_j g_j tanh(w z_j), so the (grid, grid) table is built a block of w at a time."""
    x = np.arange(-half_width, half_width + step / 2, step)
    lam, lam2, R = config.temperature, config.l2, config.output_scale
    ta, prior = np.tanh(x), -lam2 * x ** 2 / lam
    blocks = []
    for w in np.array_split(x, max(1, x.size // 512)):
        tw = np.tanh(w[:, None] * z_n[None, :])
        u = tw @ g_n / z_n.size
        log_p = -R * u[:, None] * ta[None, :] / lam + prior[None, :] - (lam2 * w ** 2 / lam)[:, None]
        top = log_p.max()
        e = np.exp(log_p - top)
        blocks.append((top, e.sum(), (e @ ta) @ tw))
    top = max(b[0] for b in blocks)
    z = sum(np.exp(t - top) * s for t, s, _ in blocks)
    f = R * sum(np.exp(t - top) * m for t, _, m in blocks) / z
    log_z = top + np.log(z) + 2 * np.log(step)
    return -np.mean(g_n * y_n + g_n ** 2 / 2) - lam * log_z, f


def test_quadrature_follows_a_wide_gibbs_law():
    """At lambda = 1, lambda' = 0.01 the prior's std is sqrt(lambda / 2 lambda') = 7.1: a fixed grid on [-7, 7] gave
    L(mu*) = -4.89. Against a plain trapezoid rule on [-95, 95] (12 std beyond 10) with step 0.04 (it moves by 7e-13
    when the step is halved): g* must be the dual's maximizer, |f_g* - y - g*| = n |grad D| <= 1e-10, which bounds
    |g* - g_true| by the same (D is 1/n-strongly concave), and L(mu*) = D(g*) must agree to 1e-10."""
    config = sims.make_config("mfld", "tanh2d_oracle", temperature=1.0, l2=0.01)
    d = data.make_data(config)
    opt = jax.jit(theory.quadrature_optimum)(config, d.z_train, d.y_train)
    z, y, g = (np.asarray(a, float) for a in (d.z_train[:, 0], d.y_train, opt.g))
    sigma = np.sqrt(config.temperature / (2 * config.l2))
    dual, f = _wide_grid(config, g, z, y, 12 * sigma + 10, 0.04)
    np.testing.assert_allclose(f - y - g, 0, atol=1e-10)
    np.testing.assert_allclose(float(opt.free_energy), dual, rtol=0, atol=1e-10)
    assert float(opt.error) <= theory.QUADRATURE_TOLERANCE


def test_quadrature_refuses_a_law_its_grid_cannot_resolve():
    """At lambda = 1e-4 the Gibbs law is a spike of width 0.03 on a 201-point grid: the error estimate is O(1)."""
    with pytest.raises(ConfigError, match=r"^--temperature=0\.0001 --l2=0\.1 --output_scale=2\.0: tanh2d's mu\*"):
        sims.make_config("mfld", "tanh2d_oracle", temperature=1e-4)


@pytest.fixture(scope="module")
def chaos():
    """N in {4, ..., 64}, 320 replicas, 4000 steps at eta = 0.02 (80 time units; the second half is averaged).
    320 replicas bring the excess F0's relative standard error to about 5% (N = 16) and 12% (N = 64), so the fitted
    slope's own standard error is about 0.04 and the +-0.15 window is about 4 of them."""
    return sims.sweep("mfld", {"particles": PARTICLES}, REPLICAS, preset="tanh2d_oracle", steps=4000,
                      record_every=100)


def _stationary(da):
    """Mean over replicas of each replica's time average over the second half, and its standard error."""
    per_seed = da.isel(step=slice(da.sizes["step"] // 2, None)).mean("step").values
    return per_seed.mean(), per_seed.std(ddof=1) / np.sqrt(per_seed.size)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["model_error", "excess_loss"])
def test_propagation_of_chaos_error_falls_as_one_over_n(chaos, name):
    """Theorem 1 with Lemma 1 bounds the model error by 2B/N with a constant free of the LSI constant; the excess
    E F0(rho) - F0(mu*) is not sign-definite, and its 1/N is the law the theory note reports measured. The fitted
    log-log slope must be -1 within 0.15 (the issue's window). The slope's sampling standard error, propagated from
    each point's, must be below 0.05 for that window to mean something; finite-N curvature takes the rest."""
    series = chaos.model_error if name == "model_error" else chaos.loss - chaos.theory_optimum_loss
    means, ses = map(np.asarray, zip(*(_stationary(series.sel(particles=n)) for n in PARTICLES)))
    assert np.all(means > 4 * ses), (means, ses)  # resolved above noise at every N
    slope, _ = loglog_slope(PARTICLES, means)
    lx = np.log(PARTICLES)
    slope_se = np.sqrt(np.sum(((lx - lx.mean()) / np.sum((lx - lx.mean()) ** 2) * ses / means) ** 2))
    assert slope_se < 0.05, slope_se
    assert abs(slope + 1) <= 0.15, (slope, means)


@pytest.mark.slow
def test_model_error_bound_is_reported_with_its_slack(chaos):
    """Theorem 1 via Lemma 1: E (1/n) sum_j (f_rho - f*)^2 <= 2B/N with B = L_l R^2 / 2 = 2. It holds about 45x
    below (the note: N x model error ~ 0.087 against 2B = 4), so the printed verdict must state the slack, "holds,
    loose xK", not a plain "holds" that would read as a sharp check."""
    rows = [r for r in report.compare(chaos) if r.quantity == "model_error"]
    assert [r.where for r in rows] == [f"particles={n}" for n in PARTICLES]
    assert all(report_lib.verdict(r).startswith("holds, loose") for r in rows), report_lib.format_table(rows)


@pytest.mark.slow
@pytest.mark.parametrize("n", PARTICLES)
def test_dual_is_a_lower_bound_for_every_sample(chaos, n):
    """Weak duality: D(g_rho) <= L(mu*) for every g, hence for every recorded sample (float64 rounding: 1e-12).
    L(mu*) here is D(g*) on the same grid, so this checks the recorded g_rho, not the dual itself: that is
    `test_quadrature_reproduces_reference_optimum`'s job, against the independent reference value."""
    ds = chaos.sel(particles=n)
    assert float(ds.dual.max()) <= float(ds.theory_dual) + 1e-12
