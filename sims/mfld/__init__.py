"""`mfld`: mean-field Langevin dynamics and propagation of chaos (Nitanda et al., ICML 2025, arXiv 2502.05784).

Reads top-down: `configs.mfld` (the config), `data`, `model`, `sim` (dynamics and metrics), `theory`
(closed-form oracles), `report` (the comparison table), `figure`.
"""

from configs.mfld import PRESET_SEEDS, PRESET_SWEEPS, PRESETS, Config
from dynamics.simulator import Simulator
from sims.mfld import report, sim

SIMULATOR = Simulator(
    name="mfld", config=Config, setup=sim.setup, init=sim.init, step=sim.step, record=sim.record, final=sim.final,
    outputs=sim.OUTPUTS, compare=report.compare, figure=report.figure, presets=PRESETS, preset_sweeps=PRESET_SWEEPS,
    preset_seeds=PRESET_SEEDS, scaling_grid=report.scaling_grid, workspace=sim.workspace,
    # The linear oracle's gallery figure sets N against the stationary values, so it draws an N ladder; the preset's
    # own plan is one N (the verdicts need only one).
    gallery={"linear_oracle": {"particles": [2, 8, 32, 128]}, "tanh2d_oracle": None, "tanh2d_free_energy": None,
             "poc_circles": None, "poc_multi_index": None})

__all__ = ["SIMULATOR"]
