"""`icl_single_index`: a pretrained transformer learns single-index tasks in context with a prompt length
independent of d (Oko, Song, Suzuki, Wu, NeurIPS 2024, arXiv 2411.02544).

Reads top-down: `configs.icl_single_index` (the config), `data` (tasks on a shared subspace), `model` (the paper's
MLP-feature + linear-attention model and Algorithm 1's two stages), `transformer` (a small flax transformer trained
end to end), `baselines` (learners that see only the prompt), `sim` (the pipeline), `report` (table and figure).
"""

from configs.icl_single_index import PRESET_SEEDS, PRESET_SWEEPS, PRESETS, Config
from dynamics.simulator import Simulator
from sims.icl_single_index import report, sim

SIMULATOR = Simulator(
    name="icl_single_index", config=Config, setup=sim.setup, init=sim.init, step=sim.step, record=sim.record,
    final=sim.final, outputs=sim.OUTPUTS, compare=report.compare, figure=report.figure, presets=PRESETS,
    preset_sweeps=PRESET_SWEEPS, preset_seeds=PRESET_SEEDS, workspace=sim.workspace,
    # The gallery draws the theory model and the prompt-only learners at d = 16 and 32 (run with --x64); the
    # transformer at the reference budget takes hours on a CPU.
    gallery={"reference": {"dim": [16, 32], "transformer_layers": [0]}})

__all__ = ["SIMULATOR"]
