"""`implicit_bias`: the max margin each optimizer maximizes on multiclass separable data (Fan, Schmidt,
Thrampoulidis 2025, arXiv 2502.04664).

Reads top-down: `configs.implicit_bias` (the config), `model` (losses, margins, the log-space gradient), `sim`
(data, dynamics, metrics), `theory` (the LP, QP and SDP references), `report` (table and figures).
"""

from configs.implicit_bias import PRESET_SEEDS, PRESET_SWEEPS, PRESETS, Config
from dynamics.simulator import Simulator
from sims.implicit_bias import report, sim

SIMULATOR = Simulator(
    name="implicit_bias", config=Config, setup=sim.setup, init=sim.init, step=sim.step, record=sim.record,
    final=sim.final, outputs=sim.OUTPUTS, compare=report.compare, figure=report.figure, presets=PRESETS,
    preset_sweeps=PRESET_SWEEPS, preset_seeds=PRESET_SEEDS, workspace=sim.workspace, prepare=sim.prepare,
    # The momentum optimizers hold a log-scale of -inf (their zero momentum) in their state: only W must stay finite.
    watch=lambda weights: weights.params)

__all__ = ["SIMULATOR"]
