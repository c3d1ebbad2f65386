"""The gallery: every registered simulator's gallery presets, each run with its own sweep and seeds
(`sims.preset_plan`), its figure and comparison table written to docs/figures/ (`python run.py --gallery`, under
`--x64` for float64; about 10 minutes on a 2-core CPU)."""

from __future__ import annotations

import os
import sys

import sims
from dynamics import export, report, simulator

FIGURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "docs", "figures")


def make_all(names=None, directory: str = FIGURES) -> None:
    """Runs the gallery presets of the sims in `names` (default: all) and writes NAME-PRESET.png/.txt/.csv/.tex."""
    os.makedirs(directory, exist_ok=True)
    for name, sim in sims.registry().items():
        if names and name not in names:
            continue
        for preset, grid in simulator.gallery_runs(sim).items():
            planned, seeds = sims.preset_plan(name, preset)
            grid = planned if grid is None else grid
            print(f"gallery: {name} --preset={preset} sweep {grid}, {seeds} seeds", file=sys.stderr, flush=True)
            ds = sims.sweep(name, grid, seeds, preset=preset, quiet=False)
            stem = os.path.join(directory, f"{name}-{preset}")
            if sim.figure is not None:
                export.write_figure(sim.figure(ds), stem + ".png")
            rows = sim.compare(ds)
            report.write_tables(rows, stem)
            print(report.format_table(rows))
