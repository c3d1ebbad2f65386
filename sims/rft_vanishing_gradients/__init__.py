"""`rft_vanishing_gradients`: reinforcement fine-tuning stalls where the reward's std is small, beside the closed
forms (Razin et al., "Vanishing Gradients in Reinforcement Finetuning of Language Models", ICLR 2024, arXiv
2310.20703).

Reads top-down: `configs.rft_vanishing_gradients` (the config and presets), `model` (policies, rewards, the logit
gradient of each objective), `sim` (initial state, dynamics, records), `theory` (closed-form passage times, the GD-flow
gap), `report` (the comparison table and figures).
"""

from configs.rft_vanishing_gradients import PRESET_SEEDS, PRESET_SWEEPS, PRESETS, Config
from dynamics.simulator import Simulator
from sims.rft_vanishing_gradients import report, sim

SIMULATOR = Simulator(
    name="rft_vanishing_gradients", config=Config, setup=sim.setup, init=sim.init, step=sim.step, record=sim.record,
    final=sim.final, outputs=sim.OUTPUTS, compare=report.compare, figure=report.figure, presets=PRESETS,
    preset_sweeps=PRESET_SWEEPS, preset_seeds=PRESET_SEEDS, prepare=sim.prepare,
    # hit_time holds -1 until the level is reached, and the recorded state is finite by construction: only the
    # parameters can diverge.
    watch=sim.watch)

__all__ = ["SIMULATOR"]
