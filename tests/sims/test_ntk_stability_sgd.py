"""ntk_stability beyond the default full-batch 2-layer run: mini-batch SGD with replicas on the teacher task, the
scan over depth, sweeps over depth and step size, and reproducibility. Float64 (conftest)."""

import numpy as np
import pytest

import sims

pytestmark = pytest.mark.slow  # depth x step-size SGD sweeps

# A gelu teacher task with SGD (b = 16 of n = 40) and 2 replicas of each kind; dim = 7 is used by no other test.
SGD = dict(task="teacher", activation="gelu", dim=7, samples=40, width=16, batch=16, steps=20, record_every=10,
           replicas=2, test_samples=200)


@pytest.fixture(scope="module")
def depth_lr():
    return sims.sweep("ntk_stability", {"depth": [1, 3], "lr": [0.5, 1.0]}, 2, **SGD)


def test_depth_and_step_size_sweep_compiles_once_per_depth(depth_lr):
    # Each depth is one static group of four programs (setup, start, advance, finish); lr and the seeds are traced and
    # add none.
    assert depth_lr.attrs["compilations"] == 4 * 2
    assert depth_lr.train_loss.dims == ("depth", "lr", "seed", "step")


def test_sgd_runs_with_replicas_at_every_depth_are_finite(depth_lr):
    for name in ("train_loss", "test_loss", "stability_replace", "stability_delete", "stability_gap_delete"):
        assert np.all(np.isfinite(depth_lr[name].values)), name


def test_sgd_replicas_move_apart_from_the_run_on_s(depth_lr):
    # A swapped or deleted sample changes every batch that draws it, so each replica leaves w_t(S) after the first
    # step that draws sample i (probability 1 - (1 - 1/40)^(16 * 20) ~ 1 over 20 steps).
    last = depth_lr.isel(step=-1)
    assert np.all(last.stability_replace.values > 0) and np.all(last.stability_delete.values > 0)


def test_deep_net_margins_agree_at_every_depth(depth_lr):
    np.testing.assert_allclose(depth_lr.ntk_margin_dual.values, depth_lr.ntk_margin.values, rtol=1e-6)


def test_teacher_labels_are_signs(depth_lr):
    labels = depth_lr.labels.values
    assert set(np.unique(labels)) == {-1.0, 1.0}


def test_same_seed_gives_the_same_arrays():
    a = sims.run("ntk_stability", seed=5, **SGD)
    b = sims.run("ntk_stability", seed=5, **SGD)
    for name in ("train_loss", "stability_replace", "ntk_gram", "ntk_direction"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    c = sims.run("ntk_stability", seed=6, **SGD)
    assert not np.array_equal(a.train_loss.values, c.train_loss.values)
