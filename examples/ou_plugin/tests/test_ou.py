"""The plugin sim `ou`, installed from its own package: found by the engine, right, and its verdict can fail."""

import pytest

import sims
from dynamics import report


def test_ou_is_registered_through_its_entry_point():
    assert "ou" in sims.names()


@pytest.fixture(scope="module")
def ou():
    return sims.sweep("ou", {}, 64)


def test_stationary_mean_square_agrees_with_the_exact_value(ou):
    """64 seeds of 1000 particles: the row detects a 1% error, and agrees."""
    (row,) = sims.load("ou").compare(ou)
    assert report.verdict(row) == "agrees" and report.detects(row) < 0.01


def test_doubled_noise_variance_differs(monkeypatch):
    """A known bug, noise variance 4Th instead of 2Th, turns the verdict: the stationary value doubles."""
    import ou_plugin.sim as sim
    monkeypatch.setattr(sim, "step", lambda config, context, x, key: (1 - config.lr * config.stiffness) * x
                        + (4 * config.temperature * config.lr) ** 0.5 * __import__("jax").random.normal(key, x.shape))
    mutated = sim.SIMULATOR._replace(step=sim.step)
    load = sims.load
    monkeypatch.setattr(sims, "load", lambda name: mutated if name == "ou" else load(name))
    ds = sims.sweep("ou", {}, 64)
    (row,) = mutated.compare(ds)
    assert report.verdict(row) == "DIFFERS"
