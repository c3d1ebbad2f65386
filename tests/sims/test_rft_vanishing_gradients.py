"""rft_vanishing_gradients against independent references: the closed forms (theory.py, checked here against scipy's
solve_ivp), a NumPy loop of the same GD update, REINFORCE's unbiasedness across seeds, and bad input."""

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import sims
from dynamics import report
from dynamics.config import ConfigError
from sims.rft_vanishing_gradients import theory

NAME = "rft_vanishing_gradients"


def numpy_gd_time(K, p0, lr, q, level=0.5):
    """Full K-logit GD in NumPy on V^-q p (r - V), the passage time interpolated in logit(V) between steps."""
    z = np.zeros(K)
    z[0] = math.log((K - 1) * p0 / (1 - p0))
    V, n = p0, 0
    while True:
        e = np.exp(z - z.max())
        p = e / e.sum()
        V = p[0]
        r = np.eye(K)[0]
        z = z + lr * V ** -q * p * (r - V)
        e = np.exp(z - z.max())
        V_new = (e / e.sum())[0]
        if V_new >= level:
            lg = lambda v: math.log(v / (1 - v))
            return lr * (n + (lg(level) - lg(V)) / (lg(V_new) - lg(V)))
        n += 1


@pytest.mark.parametrize("q", [0.0, 0.5, 1.0])
def test_closed_forms_match_solve_ivp(q):
    """T_q(p0 -> 1/2) from the closed forms / quadrature equals the flow dp/dt = c p^(2-q)(1-p)^2 integrated by an
    independent ODE solver (rtol 1e-10) to 1e-7 relative."""
    for K, p0 in [(2, 0.1), (10, 0.01), (50, 1e-3)]:
        c = K / (K - 1)
        hit = lambda t, y: y[0] - 0.5
        hit.terminal = True
        sol = solve_ivp(lambda t, y: [c * y[0] ** (2 - q) * (1 - y[0]) ** 2], (0, 1e5), [p0], events=hit,
                        rtol=1e-11, atol=1e-14, method="DOP853")
        assert theory.time_q(K, p0, 0.5, q) == pytest.approx(sol.t_events[0][0], rel=1e-7)


def test_note_table_values():
    """The theory note's table: T_RFT(10, 0.01) = 97.36, T_SFT(10, 0.001) = 7.1152, T_RFT(50, 0.005) = 205.39."""
    assert theory.time_rft(10, 0.01, 0.5) == pytest.approx(97.36, abs=0.01)
    assert theory.time_sft(10, 0.001, 0.5) == pytest.approx(7.1152, abs=1e-4)
    assert theory.time_rft(50, 0.005, 0.5) == pytest.approx(205.39, abs=0.01)


@pytest.fixture(scope="module")
def small():
    """Tabular, one input, K = 10: the continuum at q = 0, 1/2, 1 and p0 = 0.1, 0.01 at eta = 0.02, one program."""
    return sims.sweep(NAME, {"q": [0.0, 0.5, 1.0], "p0": [0.1, 0.01]}, 1, inputs=1, outputs=10, method="continuum",
                      lr=0.02, steps=6000, record_every=200)


def test_engine_equals_numpy_loop_of_the_same_update(small):
    """The engine's passage times equal a NumPy loop of the same GD update to 1e-9 relative (float64 round-off over
    ~5000 steps)."""
    for q in (0.0, 0.5, 1.0):
        for p0 in (0.1, 0.01):
            sim = float(small.hit_time.sel(q=q, p0=p0).isel(seed=0, input=0))
            assert sim == pytest.approx(numpy_gd_time(10, p0, 0.02, q), rel=1e-9)


def test_gd_flow_gap_is_the_derived_first_order_term(small):
    """T_GD - T_flow = (eta/2) ln[g(1/2)/g(p0)] + O(eta^2): at eta = 0.02 within 2% of the first-order term."""
    for q in (0.0, 0.5, 1.0):
        for p0 in (0.1, 0.01):
            gap = float(small.hit_time.sel(q=q, p0=p0).isel(seed=0, input=0)) - theory.time_q(10, p0, 0.5, q)
            assert gap == pytest.approx(theory.gd_gap(p0, 0.5, q, 0.02), rel=0.02)


def test_small_run_agrees_on_every_row(small):
    rows = sims.load(NAME).compare(small)
    assert rows and all(report.verdict(r) in ("agrees", "holds", "-") for r in rows), report.format_table(rows)


def test_orthonormal_linear_policy_equals_tabular():
    """z = W x with orthonormal x decouples the inputs exactly: the same passage times as the tabular policy."""
    kw = dict(inputs=4, outputs=5, p0=0.1, p0_min=0.01, method="rft", lr=0.05, steps=2000, record_every=2000)
    tab = sims.run(NAME, policy="tabular", **kw)
    lin = sims.run(NAME, policy="linear", features="orthonormal", dim=6, **kw)
    np.testing.assert_allclose(lin.hit_time.values, tab.hit_time.values, rtol=1e-9)


def test_reinforce_is_unbiased_and_normalized_is_shown():
    """The leave-one-out REINFORCE estimate of dV/dz_y* agrees with the exact gradient across 32 seeds (its row
    detects a 10% bias); GRPO's normalized advantages are shown, not tested."""
    ds = sims.sweep(NAME, {}, 32, inputs=4, outputs=5, p0=0.2, method="reinforce", samples=4, lr=0.05, steps=200,
                    record_every=10)
    (row,) = [r for r in sims.load(NAME).compare(ds) if r.quantity.startswith("sampled")]
    assert report.verdict(row) == "agrees" and report.detects(row) < 0.1, report.format_table([row])


@pytest.mark.parametrize("params, words", [
    (dict(features="digits", policy="tabular"), "--features=digits"),
    (dict(policy="linear", inputs=20, dim=16), "--inputs=20"),
    (dict(method="reinforce", samples=1), "--samples=1"),
    (dict(p0=0.01, p0_min=0.1), "--p0_min=0.1"),
    (dict(q=1.5), "--q=1.5"),
    (dict(policy="mlp", features="orthonormal"), "--features=orthonormal"),
])
def test_bad_input_is_one_line_naming_the_parameter(params, words):
    with pytest.raises(ConfigError) as err:
        sims.make_config(NAME, **params)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_every_preset_builds_and_the_cli_flags_exist():
    sim = sims.load(NAME)
    for preset in sim.presets:
        sims.make_config(NAME, preset)
        sims.check(NAME, sim.preset_sweeps[preset], 1, preset=preset)
