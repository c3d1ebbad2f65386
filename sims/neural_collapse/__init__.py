"""`neural_collapse`: unconstrained features under the supervised contrastive loss, against the optimum of its convex
relaxation (Behnia and Thrampoulidis 2024, arXiv 2402.18884).

Reads top-down: `configs.neural_collapse` (the config), `model` (the loss, its gradient and the collapse metrics),
`sim` (dynamics and records), `theory` (the relaxation's solver and the closed forms), `report` (table and figures).
"""

from configs.neural_collapse import PRESET_SEEDS, PRESET_SWEEPS, PRESETS, Config
from dynamics.simulator import Simulator
from sims.neural_collapse import report, sim

SIMULATOR = Simulator(
    name="neural_collapse", config=Config, setup=sim.setup, init=sim.init, step=sim.step, record=sim.record,
    final=sim.final, outputs=sim.OUTPUTS, compare=report.compare, figure=report.figure, presets=PRESETS,
    preset_sweeps=PRESET_SWEEPS, preset_seeds=PRESET_SEEDS, scaling_grid=report.scaling_grid,
    workspace=sim.workspace, prepare=sim.prepare)

__all__ = ["SIMULATOR"]
