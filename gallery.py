"""The gallery: every simulator's presets run with their own sweeps, each figure and comparison table written to
docs/figures/ (`python run.py --gallery`; about 10 minutes on a 2-core CPU)."""

from __future__ import annotations

import os
import sys

import sims
from dynamics import export, report

FIGURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "docs", "figures")
# The presets' gallery runs, with enough seeds for the oracles' statistics (run under --x64 for float64).
RUNS = {
    "mfld": {
        "linear_oracle": dict(grid={"particles": [2, 8, 32, 128]}, seeds=256),
        "tanh2d_oracle": dict(grid={"particles": [4, 8, 16, 32, 64]}, seeds=64),
        "tanh2d_free_energy": dict(seeds=64),
        "poc_circles": dict(seeds=1),
        "poc_multi_index": dict(seeds=1),
    },
    "implicit_bias": {
        "figures": dict(seeds=1),
    },
    "neural_collapse": {
        "balanced_etf": dict(seeds=4),
        "relu_frame": dict(seeds=4),
        "step_table": dict(seeds=1),
    },
    "ntk_stability": {
        "figure1": dict(seeds=32),
        "xor": dict(seeds=8),
        "xor_small_step": dict(seeds=4),
    },
}


def make_all(names=None) -> None:
    os.makedirs(FIGURES, exist_ok=True)
    for name, presets in RUNS.items():
        if names and name not in names:
            continue
        module = sims.load(name)
        for preset, run in presets.items():
            grid = run.get("grid") or module.PRESET_SWEEPS.get(preset, {})
            print(f"gallery: {name} --preset={preset} sweep {grid}", file=sys.stderr, flush=True)
            ds = sims.sweep(name, grid, run["seeds"], preset=preset, quiet=False)
            stem = os.path.join(FIGURES, f"{name}-{preset}")
            export.write_figure(module.report.figure(ds), stem + ".png")
            rows = module.report.compare(ds)
            report.write_tables(rows, stem)
            print(report.format_table(rows))
