"""`icl_single_index`: a pretrained transformer learns single-index tasks in context with a prompt length
independent of d (Oko, Song, Suzuki, Wu, NeurIPS 2024, arXiv 2411.02544).

Reads top-down: `configs.icl_single_index` (the config), `data` (tasks on a shared subspace), `model` (the paper's
MLP-feature + linear-attention model and Algorithm 1's two stages), `transformer` (a small flax transformer trained
end to end), `baselines` (learners that see only the prompt), `sim` (the pipeline), `report` (table and figure).
"""

from configs.icl_single_index import PRESET_SEEDS, PRESET_SWEEPS, PRESETS, Config
from sims.icl_single_index import report
from sims.icl_single_index.sim import SIMULATION, SPEC, simulate

__all__ = ["Config", "PRESETS", "PRESET_SEEDS", "PRESET_SWEEPS", "SIMULATION", "SPEC", "report", "simulate"]
