"""`jepa_vs_mae`: deep linear self-distillation (JEPA) learns high-regression-coefficient features first, MAE
high-covariance ones (Littwin et al., NeurIPS 2024, arXiv 2407.03475), beside the exact per-feature ODEs.

Reads top-down: `configs.jepa_vs_mae` (the config), `model` (weights, covariances, objectives), `theory` (ODEs,
fixed points, critical times), `sim` (the dynamics), `report` (table and figures).
"""

from configs.jepa_vs_mae import PRESET_SEEDS, PRESET_SWEEPS, PRESETS, Config
from dynamics.simulator import Simulator
from sims.jepa_vs_mae import report, sim

SIMULATOR = Simulator(
    name="jepa_vs_mae", config=Config, setup=sim.setup, init=sim.init, step=sim.step, record=sim.record,
    final=sim.final, outputs=sim.OUTPUTS, compare=report.compare, figure=report.figure, presets=PRESETS,
    preset_sweeps=PRESET_SWEEPS, preset_seeds=PRESET_SEEDS, workspace=sim.workspace,
    watch=lambda weights: (weights.layers, weights.predictor))

__all__ = ["SIMULATOR"]
