"""The gallery: every simulator's presets run with their own sweeps, each figure and comparison table written to
docs/figures/ (`python run.py --gallery`; about 10 minutes on a 2-core CPU)."""

from __future__ import annotations

import os
import sys

import sims
from dynamics import export, report

FIGURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "docs", "figures")
# The presets in the gallery; each runs with its own sweep and seeds (`sims.preset_plan`: PRESET_SWEEPS and
# PRESET_SEEDS, sized for conclusive verdicts), except where a grid is given here (run under --x64 for float64).
RUNS = {
    "mfld": {
        "linear_oracle": dict(grid={"particles": [2, 8, 32, 128]}),
        "tanh2d_oracle": {},
        "tanh2d_free_energy": {},
        "poc_circles": {},
        "poc_multi_index": {},
    },
    "implicit_bias": {
        "figures": {},
    },
    "neural_collapse": {
        "balanced_etf": {},
        "relu_frame": {},
        "step_table": {},
    },
    "ntk_stability": {
        "figure1": {},
        "xor": {},
        "xor_small_step": {},
    },
}


def make_all(names=None) -> None:
    os.makedirs(FIGURES, exist_ok=True)
    for name, presets in RUNS.items():
        if names and name not in names:
            continue
        module = sims.load(name)
        for preset, run in presets.items():
            grid, seeds = sims.preset_plan(name, preset)
            grid = run.get("grid", grid)
            print(f"gallery: {name} --preset={preset} sweep {grid}, {seeds} seeds", file=sys.stderr, flush=True)
            ds = sims.sweep(name, grid, seeds, preset=preset, quiet=False)
            stem = os.path.join(FIGURES, f"{name}-{preset}")
            export.write_figure(module.report.figure(ds), stem + ".png")
            rows = module.report.compare(ds)
            report.write_tables(rows, stem)
            print(report.format_table(rows))
