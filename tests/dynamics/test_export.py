"""`dynamics.export`: atomic writes, netCDF round trip, and sweep groups merged into one labelled Dataset."""

import json
import os

import chex
import numpy as np
import pytest
import xarray as xr

from dynamics import export
from dynamics.simulator import Output, Simulator
from dynamics.sweep import Group


# --- atomic_path ----------------------------------------------------------------------------------------------------

def test_atomic_path_that_finishes_leaves_only_the_target(tmp_path):
    target = tmp_path / "out" / "results.txt"
    with export.atomic_path(str(target)) as tmp:
        assert os.path.dirname(tmp) == str(target.parent)
        with open(tmp, "w") as f:
            f.write("done")
    assert os.listdir(target.parent) == ["results.txt"]
    assert target.read_text() == "done"


def test_atomic_path_that_raises_leaves_neither_target_nor_temp_file(tmp_path):
    target = tmp_path / "out" / "results.txt"
    with pytest.raises(RuntimeError, match="interrupted"):
        with export.atomic_path(str(target)) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("interrupted")
    assert os.listdir(target.parent) == []


def test_atomic_path_that_raises_keeps_the_previous_target_intact(tmp_path):
    target = tmp_path / "results.txt"
    target.write_text("previous")
    with pytest.raises(RuntimeError):
        with export.atomic_path(str(target)) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == ["results.txt"]
    assert target.read_text() == "previous"


# --- to_dataset -----------------------------------------------------------------------------------------------------

def _refuse(*args):
    raise AssertionError("to_dataset must only read the spec's dims and seedless, never run the simulation")


SPEC = Simulator(name="dummy", config=None, setup=_refuse, init=_refuse, step=_refuse, record=_refuse, final=_refuse,
                 compare=_refuse, outputs=dict(loss=Output("loss"), w=Output("w", dims=("unit",)),
                                               curve=Output("curve", dims=("unit",)),
                                               data=Output("data", dims=("sample",), seedless=True)))
LRS, SEEDS, RECORDS, SAMPLES, EVERY = [0.1, 0.2], [0, 1, 2], 4, 5, 7


def _group(width: int) -> Group:
    """A static group `width` with traced lr (2 values) x 3 seeds. Values encode their cell, so a misplaced value
    shows: loss[l, s, t] = 1000 width + 100 l + 10 s + t."""
    lead = (len(LRS), len(SEEDS))
    l, s = np.meshgrid(np.arange(lead[0]), np.arange(lead[1]), indexing="ij")
    base = 1000 * width + 100 * l + 10 * s
    loss = base[..., None] + np.arange(RECORDS)                                    # record, no own axis
    curve = loss[..., None] + 0.5 * np.arange(width)                               # record with a `unit` axis
    w = base[..., None] + 0.25 * np.arange(width)                                  # final, `unit` axis
    data = np.broadcast_to(100.0 * width + np.arange(SAMPLES), lead + (SAMPLES,))  # same for every seed
    return Group(static={"width": width}, traced={"lr": list(LRS)}, seeds=list(SEEDS),
                 outputs=dict(loss=loss.astype(float), curve=curve, w=w, data=np.array(data)),
                 record_names=("loss", "curve"), run_seconds=0.0)


ATTRS = dict(sim="dummy", x64=True, config={"lr": 0.1, "width": 2}, seeds=[0, 1, 2], compile_seconds=1.5)


@pytest.fixture(scope="module")
def ds():
    # Grid order puts the traced `lr` before the static `width`: the opposite of how groups are built.
    return export.to_dataset(SPEC, [_group(2), _group(3)], ["lr", "width"], EVERY, ATTRS)


@pytest.mark.parametrize("name, dims", [
    ("loss", ("lr", "width", "seed", "step")),
    ("curve", ("lr", "width", "seed", "step", "unit")),
    ("w", ("lr", "width", "seed", "unit")),
    ("data", ("lr", "width", "sample")),
])
def test_to_dataset_orders_dims_grid_then_seed_then_own_axes(ds, name, dims):
    assert ds[name].dims == dims


def test_to_dataset_stores_seedless_outputs_without_a_seed_dim(ds):
    assert "seed" not in ds.data.dims
    chex.assert_trees_all_equal(ds.data.sel(width=3, lr=0.2).values, 300.0 + np.arange(SAMPLES))


def test_to_dataset_labels_grid_and_seed_coordinates(ds):
    chex.assert_trees_all_equal(ds.lr.values, np.array(LRS))
    chex.assert_trees_all_equal(ds.width.values, np.array([2, 3]))
    chex.assert_trees_all_equal(ds.seed.values, np.array(SEEDS))


def test_to_dataset_gives_records_a_step_coordinate_of_record_every_multiples(ds):
    chex.assert_trees_all_equal(ds.step.values, np.arange(RECORDS) * EVERY)


@pytest.mark.parametrize("width", [2, 3])
def test_to_dataset_puts_every_value_in_its_cell(ds, width):
    got = ds.loss.sel(width=width, lr=0.2, seed=1).values
    chex.assert_trees_all_equal(got, 1000.0 * width + 100 + 10 + np.arange(RECORDS))


def test_to_dataset_pads_the_shorter_trailing_axis_with_nan(ds):
    assert ds.sizes["unit"] == 3
    w2, w3 = ds.w.sel(width=2), ds.w.sel(width=3)
    assert np.isnan(w2.sel(unit=2)).all() and np.isfinite(w2.sel(unit=[0, 1])).all()
    assert np.isfinite(w3).all()
    chex.assert_trees_all_equal(w2.sel(lr=0.1, seed=0).values[:2], np.array([2000.0, 2000.25]))
    assert np.isnan(ds.curve.sel(width=2, unit=2)).all() and np.isfinite(ds.curve.sel(width=3)).all()


def test_to_dataset_turns_bool_attrs_into_int_and_containers_into_json(ds):
    assert ds.attrs["x64"] == 1 and type(ds.attrs["x64"]) is int
    assert json.loads(ds.attrs["config"]) == {"lr": 0.1, "width": 2}
    assert json.loads(ds.attrs["seeds"]) == [0, 1, 2]
    assert ds.attrs["sim"] == "dummy" and ds.attrs["compile_seconds"] == 1.5


def test_to_dataset_of_one_group_keeps_its_static_value_as_a_dim():
    one = export.to_dataset(SPEC, [_group(3)], ["width", "lr"], EVERY, {})
    assert one.loss.dims == ("width", "lr", "seed", "step")
    chex.assert_trees_all_equal(one.width.values, np.array([3]))


def test_to_dataset_rejects_an_output_whose_rank_does_not_match_its_dims():
    group = _group(2)
    bad = group._replace(outputs={**group.outputs, "w": group.outputs["w"][..., None]})
    with pytest.raises(ValueError, match="'w'"):
        export.to_dataset(SPEC, [bad], ["width", "lr"], EVERY, {})


# --- write_netcdf ---------------------------------------------------------------------------------------------------

def test_write_netcdf_round_trips_values_dims_and_attrs(ds, tmp_path):
    path = tmp_path / "results.nc"
    export.write_netcdf(ds, str(path))
    back = xr.load_dataset(path, engine="h5netcdf")
    xr.testing.assert_identical(back.drop_attrs(), ds.drop_attrs())
    assert set(back.attrs) == set(ATTRS)
    assert back.attrs["x64"] == 1
    assert json.loads(back.attrs["config"]) == ATTRS["config"]
    assert os.listdir(tmp_path) == ["results.nc"]


def test_write_json_writes_a_parseable_file_and_no_temp_file(tmp_path):
    path = tmp_path / "config.json"
    export.write_json({"config": {"particles": 4}, "devices": ["cpu:0"]}, str(path))
    assert json.loads(path.read_text()) == {"config": {"particles": 4}, "devices": ["cpu:0"]}
    assert os.listdir(tmp_path) == ["config.json"]


@pytest.mark.parametrize("grid", [{"width": [3, 5, 1]}, {"width": [4, 2], "decay": [0.2, 0.7]}])
def test_merging_disjoint_groups_equals_xarrays_outer_merge(grid):
    """Groups of different shapes (the context's width) with a traced axis beside them: the preallocated
    merge gives exactly xr.merge's outer join (values, NaN padding, dtypes, coordinate order)."""
    from dynamics import sweep
    from tests.dynamics import toy

    groups = sweep.run_groups(toy.SIMULATOR, toy.Config(), grid, [0, 1], quiet=True)
    parts = [export._group_dataset(toy.SIMULATOR, g, 5) for g in groups]
    expected = xr.merge(parts, join="outer", compat="no_conflicts", combine_attrs="drop")
    xr.testing.assert_identical(export.merge_disjoint(parts), expected)


def test_merging_disjoint_groups_stores_booleans_as_xarray_does_and_writes_them(tmp_path):
    """A boolean output (ntk_stability's ntk_margin_converged) of groups that together fill every cell (a scaling
    ladder, one seed): xr.merge's outer join makes it float64; the preallocated merge must too, not an object array
    of bools, which netCDF cannot store."""
    parts = [xr.Dataset({"ok": (("n", "seed"), np.array([[ok]])), "count": (("n", "seed"), np.array([[3]]))},
                        coords={"n": [n], "seed": [0]}) for n, ok in [(50, True), (100, False)]]
    merged = export.merge_disjoint(parts)
    xr.testing.assert_identical(merged, xr.merge(parts, join="outer", compat="no_conflicts", combine_attrs="drop"))
    export.write_netcdf(merged, str(tmp_path / "results.nc"))
    back = xr.load_dataset(tmp_path / "results.nc", engine="h5netcdf")
    assert back["ok"].dtype == np.float64
    np.testing.assert_array_equal(back["ok"].values, [[1.0], [0.0]])
