"""dynamics.sweep: a sweep is the loop of single runs it stands for, compiled once per static shape (devices, hosts,
chunks and resumes: test_scale.py).

Equality tolerance: float64 runs whose only difference is the batch they were vmapped in. The linear-oracle dynamics
contract (|1 - eta kappa| < 1), so op-level rounding differences (1e-16) stay at rounding level; rtol 1e-10 is six
orders above that and far below any real difference between two runs.
"""

import numpy as np
import pytest

import sims
from dynamics import compile as compile_lib

SMALL = dict(preset="linear_oracle", steps=40, record_every=10, test_samples=4)
RTOL = 1e-10
FIELDS = ("loss", "objective", "dual", "particle_mean", "final_particles")


def _assert_same(a, b):
    for name in FIELDS:
        np.testing.assert_allclose(a[name].values, b[name].values, rtol=RTOL, atol=1e-14, err_msg=name)


@pytest.fixture(scope="module")
def grid_run():
    return sims.sweep("mfld", {"temperature": [0.05, 0.2], "particles": [4, 8]}, 2, **SMALL)


@pytest.mark.parametrize("temperature", [0.05, 0.2])
@pytest.mark.parametrize("particles", [4, 8])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.slow
def test_sweep_member_equals_single_run(grid_run, temperature, particles, seed):
    single = sims.run("mfld", seed=seed, temperature=temperature, particles=particles, **SMALL)
    member = grid_run.sel(temperature=temperature, particles=particles, seed=seed)
    _assert_same(member.dropna("particle", how="all"), single)


@pytest.mark.slow
def test_sweep_dims_are_grid_order_then_seed_then_step(grid_run):
    assert grid_run.loss.dims == ("temperature", "particles", "seed", "step")
    np.testing.assert_array_equal(grid_run.step.values, [0, 10, 20, 30, 40])


def test_new_traced_values_do_not_recompile():
    sims.sweep("mfld", {"temperature": [0.1, 0.2]}, 2, **SMALL)
    before = compile_lib.stats()["compiles"]
    sims.sweep("mfld", {"temperature": [0.3, 0.4]}, 2, lr=0.02, l2=0.3, **SMALL)
    assert compile_lib.stats()["compiles"] == before


def test_new_static_value_compiles_once_more():
    sims.sweep("mfld", {"temperature": [0.1, 0.2]}, 2, **SMALL)
    before = compile_lib.stats()["compiles"]
    sims.sweep("mfld", {"temperature": [0.1, 0.2]}, 2, particles=5, **SMALL)
    assert compile_lib.stats()["compiles"] == before + 4  # setup, start, advance, finish


@pytest.mark.slow
def test_adding_seeds_leaves_earlier_seeds_unchanged():
    two = sims.sweep("mfld", {}, 2, **SMALL)
    three = sims.sweep("mfld", {}, 3, **SMALL)
    _assert_same(two, three.isel(seed=slice(0, 2)))


def test_sweeping_a_parameter_named_like_an_output_is_refused_before_running():
    """implicit_bias has a parameter `loss` and an output `loss`: one Dataset cannot hold both, so the sweep is refused
    with a one-line error naming it, before anything compiles (it used to fail at export, after the whole run)."""
    from dynamics import sweep
    from dynamics.config import ConfigError

    with pytest.raises(ConfigError, match=r"--sweep=loss=\.\.\.: 'loss' is also the name"):
        sweep.plan(sims.load("implicit_bias"), sims.make_config("implicit_bias"), {"loss": ["exponential"]}, [0])
