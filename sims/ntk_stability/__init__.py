"""`ntk_stability`: deep smooth nets in NTK parameterization trained by GD on the logistic loss; the NTK margin at
init, algorithmic stability, the generalization gap against the stability bound, and XOR with a large step
(Taheri, Thrampoulidis, Mazumdar, ICLR 2025, arXiv 2410.10024).

Reads top-down: `configs.ntk_stability` (the config), `data`, `model` (the net, the loss, the NTK Gram), `margin`
(the NTK margin's two programs), `sim` (dynamics, replicas and records), `report` (table and figures).
"""

from configs.ntk_stability import PRESET_SWEEPS, PRESETS, Config
from sims.ntk_stability import report
from sims.ntk_stability.sim import SIMULATION, SPEC, simulate

__all__ = ["Config", "PRESETS", "PRESET_SWEEPS", "SIMULATION", "SPEC", "report", "simulate"]
