"""mfld invariants: every model, loss and data set runs, stays finite, keeps float64 under x64, and gives outputs of
the documented shapes; the same seed gives the same arrays."""

import chex
import numpy as np
import pytest

import sims

TINY = dict(particles=6, ensemble=2, steps=20, record_every=10, samples=8, test_samples=5)
CASES = {
    "teacher-tanh": dict(dataset="teacher", model="tanh", dim=3),
    "gaussian-linear": dict(dataset="gaussian_linear", model="linear", dim=3),
    "four_point-tanh2d": dict(dataset="four_point", model="tanh2d", dim=1, samples=4),
    "circles-logistic": dict(dataset="circles", model="tanh", loss="logistic", dim=2, output_scale=10.0),
    "multi_index-tanh": dict(dataset="multi_index", model="tanh", dim=4),
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    params = {**TINY, **CASES[request.param]}
    return params, sims.run("mfld", seed=0, **params)


def test_every_float_output_is_float64_under_x64(case):
    _, ds = case
    for name, var in ds.data_vars.items():
        if var.dtype.kind == "f":
            assert var.dtype == np.float64, name


def test_observables_are_finite(case):
    _, ds = case
    for name in ("loss", "objective", "test_loss", "particle_mean", "particle_variance", "final_particles",
                 "test_prediction", "ensemble_variance"):
        assert np.all(np.isfinite(ds[name].values)), name
    assert int(ds.nonfinite_step) == -1


def test_output_shapes_follow_the_config(case):
    params, ds = case
    p = {"linear": params["dim"], "tanh2d": 2, "tanh": params["dim"] + 2}[params["model"]]
    n_test = params["samples"] if params["dataset"] == "four_point" else params["test_samples"]
    assert ds.final_particles.shape == (params["ensemble"], params["particles"], p)
    assert ds.z_train.shape == (params["samples"], params["dim"])
    assert ds.test_prediction.shape == (params["ensemble"], n_test)
    assert ds.loss.shape == (params["steps"] // params["record_every"] + 1,)


def test_same_seed_gives_the_same_arrays(case):
    params, ds = case
    again = sims.run("mfld", seed=0, **params)
    chex.assert_trees_all_equal(again.final_particles.values, ds.final_particles.values)
    chex.assert_trees_all_equal(again.loss.values, ds.loss.values)


def test_circles_classes_are_balanced_and_noiseless_points_lie_on_their_circle():
    ds = sims.run("mfld", seed=0, **{**TINY, **CASES["circles-logistic"], "noise": 0.0})
    radius = np.linalg.norm(ds.z_train.values, axis=1)
    np.testing.assert_allclose(radius, 1.5 + 0.5 * ds.y_train.values, rtol=1e-12)
    assert sorted(set(ds.y_train.values)) == [-1.0, 1.0] and ds.y_train.values.sum() == 0
