"""Sweeps at scale: the same arrays on 1, 2 and 4 devices, on 2 processes, chunked or not, and across a kill and
resume; an oversized sweep is refused before compiling.

Each member's randomness is `fold_in` of its own seed's key with the step, so which device, process or batch runs it
cannot change what it computes; only XLA's code generation for different batch shapes can change the last bits.
Measured on this project's CPUs: the arrays are bit-identical on 1, 2 and 4 devices, on 2 processes and across a
resume, and those comparisons are exact. Batches of one or two members are fused differently (FMA contraction and
reduction order) and differ by at most 3 ulp after 100 steps of the contracting linear-oracle dynamics; they are
compared to 64 ulp of each field's largest value, far below the O(1) change of any real difference (another key).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

import sims

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SWEEP = ["--preset=linear_oracle", "--particles=8", "--steps=100", "--record_every=10",
         "--sweep=temperature=0.05,0.1,0.2", "--seeds=3", "--test_samples=4", "--scaling=false", "--quiet",
         "--compilation_cache="]
FIELDS = ("loss", "objective", "dual", "particle_mean", "final_particles", "test_prediction")


def _cli(args, devices=1, **popen):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    return subprocess.Popen([sys.executable, "run.py", *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def _run(args, devices=1):
    proc = _cli(args, devices)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return out, err


def _assert_identical(a, b, ulps=0):
    for name in FIELDS:
        if ulps:
            scale = np.nanmax(np.abs(b[name].values))
            np.testing.assert_allclose(a[name].values, b[name].values, rtol=0,
                                       atol=ulps * np.finfo(b[name].dtype).eps * scale, err_msg=name)
        else:
            assert np.array_equal(a[name].values, b[name].values, equal_nan=True), name


@pytest.fixture(scope="module")
def one_device(tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "out"
    _run([*SWEEP, f"--out={out}"])
    return xr.load_dataset(out / "results.nc")


@pytest.mark.parametrize("devices", [2, 4])
def test_sweep_on_more_devices_gives_identical_arrays(one_device, tmp_path, devices):
    _run([*SWEEP, f"--out={tmp_path}"], devices)
    _assert_identical(xr.load_dataset(tmp_path / "results.nc"), one_device)


def test_sweep_on_two_processes_gives_identical_arrays(one_device, tmp_path):
    """Two processes on loopback, 2 CPU devices each, one jax.distributed sweep; only process 0 writes."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [_cli([*SWEEP, f"--out={tmp_path}", "--distributed", f"--coordinator_address=127.0.0.1:{port}",
                   "--num_processes=2", f"--process_id={i}"], devices=2) for i in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1][-2000:] for r in results]
    assert "wrote" in results[0][0] and "wrote" not in results[1][0]
    _assert_identical(xr.load_dataset(tmp_path / "results.nc"), one_device)


PARAMS = dict(preset="linear_oracle", particles=8, steps=100, record_every=10, test_samples=4)


@pytest.fixture(scope="module")
def unchunked():
    return sims.sweep("mfld", {"temperature": [0.05, 0.1, 0.2]}, 3, **PARAMS)


@pytest.mark.parametrize("chunk", [1, 2, 3, 9])
def test_chunked_sweep_equals_unchunked(unchunked, chunk):
    chunked = sims.sweep("mfld", {"temperature": [0.05, 0.1, 0.2]}, 3, chunk=chunk, **PARAMS)
    _assert_identical(chunked, unchunked, ulps=64 if chunk < 3 else 0)


def test_oversized_sweep_is_refused_with_one_line_before_compiling(tmp_path):
    proc = _cli(["--particles=100000", "--memory_limit=1MB", f"--out={tmp_path / 'out'}"])
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert err.strip().count("\n") == 0 and "--memory_limit=" in err and "needs about" in err, err
    assert not (tmp_path / "out").exists()


def test_killed_run_resumes_to_the_uninterrupted_result_without_redoing_finished_groups(tmp_path):
    """Three static groups; the run is killed (SIGKILL) once group 0 is finished and group 1 has a mid-scan carry
    checkpoint. The resumed run loads group 0, continues group 1 from its carry, and must equal a run that was
    never interrupted."""
    args = ["--preset=linear_oracle", "--sweep=particles=4,8,16", "--sweep=temperature=0.1,0.2", "--seeds=2",
            "--steps=40000", "--record_every=100", "--test_samples=4", "--quiet", "--checkpoint_seconds=0",
            "--compilation_cache="]
    killed = tmp_path / "killed"
    proc = _cli([*args, f"--out={killed}"])
    carry = killed / "checkpoint" / "batch-1-0.carry.npz"
    deadline = time.time() + 300
    while not carry.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert carry.exists(), "the run never reached group 1's carry checkpoint"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "results.nc").exists()
    assert not any(p.name.startswith(".tmp-") for p in killed.iterdir())
    finished = (killed / "checkpoint" / "batch-0-0.npz").stat().st_mtime_ns

    _run([f"--resume={killed}"])
    whole = tmp_path / "whole"
    _run([*args, f"--out={whole}"])
    resumed = xr.load_dataset(killed / "results.nc")
    _assert_identical(resumed, xr.load_dataset(whole / "results.nc"))
    assert json.loads(resumed.attrs["batches_from_checkpoint"]) == ["0-0"]
    assert finished  # group 0's file existed before the resume, which loaded rather than recomputed it
