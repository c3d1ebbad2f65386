"""`run.py`, the command line, as a process: bad input, one end-to-end run, a diverging run and `--help`. Each
invocation is a child forked from a zygote that has imported the libraries and the simulators once
(tests/zygote.py): `python run.py ...` with its own stdout, stderr and exit status, without 4 s of imports each.

The contract (run.py's docstring): bad input gets exactly one line on stderr naming the parameter, the value and what
is allowed, exit status 2, no traceback and no files; a finished run exits 0; a diverged run exits 1 with the records
before the divergence written.
"""

import json
import os
import re
import subprocess

import numpy as np
import pytest
import xarray as xr

from tests.zygote import Zygote

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def known_bug(reason: str):
    """The contract is broken by a known defect in non-test code: the test must fail (strict), by an assertion."""
    return pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)


_ZYGOTE = []


def run_cli(*args: str) -> subprocess.CompletedProcess:
    if not _ZYGOTE:  # one per test process (xdist worker), started on first use; it ends with the worker
        _ZYGOTE.append(Zygote(["absl.app", "matplotlib.pyplot", "sims:registry"], REPO))
    return _ZYGOTE[0].run(["run.py", *args])


# --- bad input ------------------------------------------------------------------------------------------------------

def _case(args, needle, allowed, bug=None):
    """args: the bad command line; needle: `--name=value` that the line must name; allowed: a fragment of what the
    line must say is allowed; bug: the known defect that breaks the contract (a strict xfail)."""
    marks = [known_bug(bug)] if bug else []
    return pytest.param(args, needle, allowed, marks=marks, id=" ".join(args))


# Floats are echoed as parsed (`--temperature=-1.0`), which still contains what was typed.
BAD_INPUT = [
    _case(["--sim=nope"], "--sim=nope", "mfld"),
    _case(["--bogus=1"], "--bogus=1", "particles"),
    _case(["--particles=abc"], "--particles=abc", "an integer"),
    _case(["--particles=1.5"], "--particles=1.5", "an integer"),
    _case(["--particles=0"], "--particles=0", ">= 1"),
    _case(["--temperature=-1"], "--temperature=-1", ">= 0"),
    _case(["--lr=0"], "--lr=0", "> 0"),
    _case(["--steps=0"], "--steps=0", ">= 1"),
    _case(["--seeds=0"], "--seeds=0", ">= 1"),
    _case(["--sweep=bogus=1,2"], "--sweep=bogus=1,2", "particles"),
    _case(["--sweep=particles=4,0"], "--particles=0", ">= 1"),
    _case(["--steps=100", "--record_every=30"], "--record_every=30", "divide"),
    _case(["--preset=nope"], "--preset=nope", "linear_oracle"),
    _case(["--sim=neural_collapse", "--temperature=0.1"], "--temperature=0.1", "--x64"),
    _case(["--sim=neural_collapse", "--class_sizes=5:1:5:5"], "--class_sizes=5:1:5:5", ">= 2"),
    _case(["--sim=neural_collapse", "--minority_classes=4"], "--minority_classes=4", "< --classes=4"),
    _case(["--sim=neural_collapse", "--nonnegative=maybe"], "--nonnegative=maybe", "true or false"),
    _case(["--sim=icl_single_index", "--link=0,0"], "--link=0,0", "Hermite coefficients"),
    _case(["--sim=icl_single_index", "--rank=40"], "--rank=40", "<= --dim=32"),
    _case(["--sim=ntk_stability", "--task=xor", "--activation=gelu"], "--activation=gelu", "quadratic"),
    _case(["--sim=ntk_stability", "--replicas=500"], "--replicas=500", "<= n = 100"),
    _case(["--sim=ntk_stability", "--label_noise=0.5"], "--label_noise=0.5", "< 0.5"),
    _case(["--sim=ntk_stability", "--second_layer=uniform"], "--second_layer=uniform", "sign, gaussian"),
]


@pytest.mark.parametrize("args, needle, allowed", BAD_INPUT)
def test_bad_input_exits_2_with_one_line_naming_parameter_value_and_allowed_and_writes_nothing(
        tmp_path, args, needle, allowed):
    out = tmp_path / "out"
    proc = run_cli(*args, "--quiet", f"--out={out}")
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0] and allowed in lines[0], lines[0]
    assert not out.exists()


# --- one run end to end ---------------------------------------------------------------------------------------------

SMOKE_ARGS = ["--sim=mfld", "--preset=linear_oracle", "--particles=4", "--steps=200", "--record_every=20",
              "--seeds=2", "--test_samples=8", "--quiet"]  # float32: the default precision


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One small run (about 20 s: 3 particle counts x 3 compilations). Without --sweep the CLI adds the ladder
    N/8, N/4, N/2, N clipped at 1: particles 1, 2, 4."""
    out = tmp_path_factory.mktemp("smoke") / "out"
    return run_cli(*SMOKE_ARGS, f"--out={out}"), out


@pytest.fixture(scope="module")
def smoke_ds(smoke):
    return xr.load_dataset(smoke[1] / "results.nc", engine="h5netcdf")


def test_run_exits_0_and_prints_the_comparison_table(smoke):
    proc, _ = smoke
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert any(all(w in line.split() for w in ("quantity", "simulated", "theory", "verdict"))
               for line in proc.stdout.splitlines()), proc.stdout


def test_run_writes_results_config_tables_and_figure_and_no_temp_files(smoke):
    _, out = smoke
    assert sorted(os.listdir(out)) == ["comparison.csv", "comparison.tex", "comparison.txt", "config.json",
                                       "mfld.png", "results.nc"]


def test_exported_tables_hold_the_printed_rows_and_verdicts(smoke):
    """comparison.csv and .tex carry the same rows, in order, with the same verdicts as the printed table."""
    import csv
    proc, out = smoke
    printed = (out / "comparison.txt").read_text().strip()
    assert printed in proc.stdout
    with open(out / "comparison.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    body = printed.splitlines()[2:]
    assert len(rows) == len(body) > 0
    for row, line in zip(rows, body):
        assert line.startswith(row["quantity"]) and row["verdict"] in line
    tex = (out / "comparison.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex and tex.count("\\\\") == len(rows) + 1


def test_run_without_sweep_adds_the_particle_ladder(smoke_ds):
    assert json.loads(smoke_ds.attrs["grid"]) == {"particles": [1, 2, 4]}
    np.testing.assert_array_equal(smoke_ds.particles.values, [1, 2, 4])


def test_run_results_have_seed_and_step_axes(smoke_ds):
    np.testing.assert_array_equal(smoke_ds.seed.values, [0, 1])
    np.testing.assert_array_equal(smoke_ds.step.values, np.arange(0, 201, 20))
    assert smoke_ds.loss.dims == ("particles", "seed", "step")


@pytest.mark.parametrize("name", ["loss", "theory_loss", "z_train", "y_train", "final_particles"])
def test_run_results_hold_records_theory_and_data(smoke_ds, name):
    assert name in smoke_ds.data_vars


def test_run_results_attrs_hold_the_base_config(smoke_ds):
    config = json.loads(smoke_ds.attrs["config"])
    assert config["particles"] == 4 and config["steps"] == 200 and config["model"] == "linear"


def test_run_without_x64_keeps_float32(smoke):
    ds = xr.load_dataset(smoke[1] / "results.nc", engine="h5netcdf")
    assert ds.loss.dtype == np.float32 and ds.final_particles.dtype == np.float32


def test_run_config_json_has_config_versions_devices_and_timings(smoke):
    saved = json.loads((smoke[1] / "config.json").read_text())
    assert {"config", "jax", "devices", "compile_seconds", "run_seconds"} <= set(saved)
    assert saved["compile_seconds"] > 0 and saved["run_seconds"] > 0


def test_run_config_json_holds_the_config_as_an_object(smoke):
    saved = json.loads((smoke[1] / "config.json").read_text())
    assert isinstance(saved["config"], dict), type(saved["config"])
    assert saved["config"]["particles"] == 4


# --- a diverging run ------------------------------------------------------------------------------------------------

# linear_oracle: linear neurons, l2 weight lambda' = 0.5, so every particle's update is x <- (I - lr K) x + const
# with K >= 2 lambda' I = I: the stability limit is lr < 2 / kappa_max <= 2. At lr = 100 each step multiplies the
# particles by |1 - 100 kappa| >= 99, so from |x| ~ 1 they pass the float64 maximum 1.8e308 within
# 308 / log10(99) < 155 steps: well inside 200 steps, with records on both sides. (At lr = 5 the particles only grow
# ~9x a step and stay finite for 200 steps.)
DIVERGE_ARGS = ["--sim=mfld", "--preset=linear_oracle", "--lr=100", "--temperature=0", "--steps=200",
                "--record_every=10", "--scaling=false", "--quiet", "--x64", "--test_samples=8", "--seeds=1"]


@pytest.fixture(scope="module")
def diverged(tmp_path_factory):
    out = tmp_path_factory.mktemp("diverged") / "out"
    return run_cli(*DIVERGE_ARGS, f"--out={out}"), out


@pytest.fixture(scope="module")
def diverged_ds(diverged):
    return xr.load_dataset(diverged[1] / "results.nc", engine="h5netcdf")


def test_diverging_run_exits_1_with_a_line_naming_the_step(diverged, diverged_ds):
    proc, _ = diverged
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, proc.stderr
    found = [int(m.group(1)) for m in re.finditer(r"diverged.*\bat step (\d+)\b", proc.stderr)]
    assert len(found) == 1, proc.stderr
    assert diverged_ds.nonfinite_step.item() == found[0]


def test_diverging_run_writes_results_with_the_nonfinite_step(diverged_ds):
    k = diverged_ds.nonfinite_step.item()
    assert 0 < k <= 155, k


def test_diverging_run_records_are_nan_or_inf_from_the_first_record_after_the_divergence(diverged_ds):
    k = diverged_ds.nonfinite_step.item()
    after = diverged_ds.loss.where(diverged_ds.step >= k, drop=True)
    assert after.size > 0 and not np.isfinite(after.values).any(), after.values


def test_diverging_run_records_before_the_divergence_are_finite(diverged_ds):
    k = diverged_ds.nonfinite_step.item()
    before = diverged_ds.loss.where(diverged_ds.step < k, drop=True)
    assert before.size > 0 and np.isfinite(before.values).all(), before.values


# --- a boolean switch, float32, another sim ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def switch_run(tmp_path_factory):
    """neural_collapse with the bare switch --nonnegative, in float32 (about 10 s)."""
    out = tmp_path_factory.mktemp("switch") / "out"
    return run_cli("--sim=neural_collapse", "--nonnegative", "--imbalance=2", "--steps=400", "--record_every=200",
                   "--quiet", f"--out={out}"), out


def test_bare_boolean_switch_sets_the_field(switch_run):
    proc, out = switch_run
    assert proc.returncode == 0, proc.stderr
    with open(out / "config.json") as f:
        assert json.load(f)["config"]["nonnegative"] is True


def test_neural_collapse_run_reaches_the_orthogonal_frame_in_float32(switch_run):
    # Float32: the table's loss tolerance is 10 N eps max(1, L*) = 10 * 30 * 1.2e-7 * 2.3 = 8e-5 (report.py), and
    # every row with a verdict must hold; 400 steps at lr = 0.5 converge to round-off (tests/sims, float64).
    proc, out = switch_run
    assert "DIFFERS" not in proc.stdout and "VIOLATED" not in proc.stdout, proc.stdout
    ds = xr.load_dataset(out / "results.nc", engine="h5netcdf")
    assert ds.features.dtype == np.float32
    labels = ds.labels.values
    H = ds.features.isel(seed=0).values
    # Round-off of a float32 Gram entry: ~d eps = 1e-6; allow 1e-5.
    np.testing.assert_allclose(H.T @ H, (labels[:, None] == labels[None, :]).astype(float), atol=1e-5)


# --- --help ---------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def help_run():
    return run_cli("--help")


def test_help_exits_0(help_run):
    assert help_run.returncode == 0


def test_help_documents_config_flags_and_the_simulators(help_run):
    text = help_run.stdout + help_run.stderr
    assert "--particles" in text and "--temperature" in text and "mfld" in text
    assert "N, particles per network" in text  # the field's doc, from configs/mfld.py


def test_help_has_no_placeholder_before_config_docs(help_run):
    assert "(no help available)" not in help_run.stdout + help_run.stderr


# --- resume keeps the precision -------------------------------------------------------------------------------------

RESUME_ARGS = ["--sim=mfld", "--preset=linear_oracle", "--particles=4", "--steps=40", "--record_every=20",
               "--test_samples=4", "--scaling=false", "--quiet", "--compilation_cache=", "--seeds=2"]


def _interrupted(directory, *extra):
    """A run directory as `run.py` leaves it when killed right after its start: only checkpoint/argv.json."""
    (directory / "checkpoint").mkdir(parents=True)
    (directory / "checkpoint" / "argv.json").write_text(json.dumps([*RESUME_ARGS, *extra]))
    return directory


def test_resume_of_a_float64_run_continues_in_float64(tmp_path):
    """The regression: run.py set JAX up from the command line before restoring the saved flags, so a resumed
    --x64 run continued (and mixed groups) in float32."""
    out = _interrupted(tmp_path / "run", "--x64=true")
    proc = run_cli(f"--resume={out}")
    assert proc.returncode == 0, proc.stderr
    assert xr.load_dataset(out / "results.nc", engine="h5netcdf").loss.dtype == np.float64


@pytest.mark.parametrize("flag", ["--x64", "--nox64", "--steps=80"])
def test_resume_refuses_flags_that_change_what_is_computed(tmp_path, flag):
    out = _interrupted(tmp_path / "run", "--x64=false")
    proc = run_cli(f"--resume={out}", flag)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert flag.split("=")[0] in proc.stderr and "--quiet" in proc.stderr
    assert not (out / "results.nc").exists()


def test_resume_refuses_checkpoints_of_another_precision(tmp_path):
    """A library sweep's plan records the precision: float32 checkpoints are not continued in float64."""
    import sims
    from dynamics.checkpoint import Checkpoints
    from dynamics.config import ConfigError
    params = dict(preset="linear_oracle", particles=4, steps=40, record_every=20, test_samples=4)
    directory = tmp_path / "checkpoint"
    sims.sweep("mfld", {}, 1, checkpoint_dir=str(directory), **params)  # float64 here (conftest)
    plan = json.loads((directory / "plan.json").read_text())
    assert plan["precision"] == "float64"
    Checkpoints(str(directory)).check_plan({**plan, "precision": "float32"}, resume=False)  # as a float32 run would
    with pytest.raises(ConfigError, match="precision"):
        sims.sweep("mfld", {}, 1, checkpoint_dir=str(directory), resume=True, **params)


def test_unwritable_out_is_one_line_exit_2(tmp_path):
    """--out under a regular file cannot be created (as root, permissions would not stop it): one line, no traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = run_cli("--preset=linear_oracle", "--particles=4", "--steps=20", "--record_every=20", "--quiet",
                   f"--out={blocker}/out")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and f"--out={blocker}/out" in proc.stderr
