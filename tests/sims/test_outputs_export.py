"""Every registered sim's outputs survive a multi-group run's export: merged over disjoint groups (a scaling ladder,
`export.merge_disjoint`) and written to netCDF, whatever their dtypes. The default `ntk_stability` run once failed
at the write (a boolean output merged into an object array); CI runs the sims with --noscaling, one group, which
never merges."""

import jax
import numpy as np
import pytest
import xarray as xr

import sims
from dynamics import export, runner, trajectory


# Small problems where the host-side `prepare` (a solver) would otherwise dominate: dtypes do not depend on sizes.
SMALL = {"neural_collapse": dict(solver_iterations=5), "implicit_bias": dict(classes=3, dim=4, per_class=5)}


def _output_dtypes(name: str) -> dict:
    """Each output's (dtype, shape) from the traced program (`jax.eval_shape`: only `prepare` runs)."""
    spec = sims.load(name)
    config = sims.make_config(name, **SMALL.get(name, {}))
    context, carry, first = runner.member_shapes(spec, config)
    final = jax.eval_shape(lambda c, s: trajectory.finish(spec.simulation, config, c, s), context, carry)
    return {k: (v.dtype, v.shape) for k, v in {**first, **final}.items()}


@pytest.mark.parametrize("name", sorted(sims.names()))
def test_every_output_dtype_merges_over_groups_and_writes_to_netcdf(name, tmp_path):
    outputs = _output_dtypes(name)
    parts = []
    for n in (1, 2):  # two groups of a ladder: disjoint cells, each filling its own
        data = {k: (("n", "seed", *(f"{k}_{i}" for i in range(len(shape)))), np.ones((1, 1, *shape), dtype))
                for k, (dtype, shape) in outputs.items()}
        axes = {f"{k}_{i}": np.arange(size) for k, (_, shape) in outputs.items() for i, size in enumerate(shape)}
        parts.append(xr.Dataset(data, coords={"n": [n], "seed": [0], **axes}))
    merged = export.merge_disjoint(parts)
    export.write_netcdf(merged, str(tmp_path / "results.nc"))
    back = xr.load_dataset(tmp_path / "results.nc", engine="h5netcdf")
    assert set(back.data_vars) == set(outputs)
    for k in outputs:
        np.testing.assert_array_equal(back[k].values, 1)
