"""Checkpoints (dynamics/checkpoint.py): the plan guards a resume, batches and carries round-trip exactly, a finished
batch drops its carry, and a reader or a run without a directory writes nothing."""

import os

import numpy as np
import pytest

from dynamics.checkpoint import Checkpoints
from dynamics.config import ConfigError

PLAN = {"sim": "toy", "grid": {"lr": [0.1, 0.2]}, "seeds": [0, 1], "x64": True}


def test_resume_of_another_sweep_is_refused_naming_what_differs(tmp_path):
    Checkpoints(str(tmp_path / "checkpoint")).check_plan(PLAN, resume=False)
    Checkpoints(str(tmp_path / "checkpoint")).check_plan(PLAN, resume=True)  # the same sweep: accepted
    with pytest.raises(ConfigError, match=r"differs in seeds, x64\)"):
        Checkpoints(str(tmp_path / "checkpoint")).check_plan({**PLAN, "seeds": [0], "x64": False}, resume=True)


def test_finished_batch_round_trips_and_drops_its_carry(tmp_path):
    c = Checkpoints(str(tmp_path))
    c.save_carry(1, 2, [np.arange(3.0)], {"loss": np.ones((2, 4))}, done=4)
    outputs = {"loss": np.random.default_rng(0).normal(size=(2, 5)), "weights": np.eye(2)}
    c.save_batch(1, 2, outputs, ("loss",))
    loaded, records = c.load_batch(1, 2)
    assert records == ("loss",) and set(loaded) == {"loss", "weights"}
    for k in outputs:
        np.testing.assert_array_equal(loaded[k], outputs[k])
    assert c.load_carry(1, 2) is None and not os.path.exists(tmp_path / "batch-1-2.carry.npz")


def test_carry_round_trips_with_its_records_and_progress(tmp_path):
    c = Checkpoints(str(tmp_path))
    leaves = [np.arange(6.0).reshape(2, 3), np.array([7], np.int32)]
    c.save_carry(0, 0, leaves, {"loss": np.ones((2, 3))}, done=3)
    got, records, done = c.load_carry(0, 0)
    assert done == 3 and len(got) == 2
    for a, b in zip(got, leaves):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    np.testing.assert_array_equal(records["loss"], np.ones((2, 3)))


@pytest.mark.parametrize("checkpoints", [Checkpoints(None), Checkpoints("READER", writer=False)])
def test_no_directory_or_a_reader_writes_nothing(tmp_path, checkpoints):
    if checkpoints.directory:
        checkpoints.directory = str(tmp_path / "reader")
    checkpoints.check_plan(PLAN, resume=False)
    checkpoints.save_batch(0, 0, {"x": np.ones(2)}, ())
    checkpoints.save_carry(0, 0, [np.ones(2)], {}, done=1)
    assert checkpoints.load_batch(0, 0) is None and checkpoints.load_carry(0, 0) is None
    assert list(tmp_path.iterdir()) == []
