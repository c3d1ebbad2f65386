"""`neural_collapse`: unconstrained features under the supervised contrastive loss, against the optimum of its convex
relaxation (Behnia and Thrampoulidis 2024, arXiv 2402.18884).

Reads top-down: `configs.neural_collapse` (the config), `model` (the loss, its gradient and the collapse metrics),
`sim` (dynamics and records), `theory` (the relaxation's solver and the closed forms), `report` (table and figures).
"""

from configs.neural_collapse import PRESET_SEEDS, PRESET_SWEEPS, PRESETS, Config
from sims.neural_collapse import report
from sims.neural_collapse.sim import SIMULATION, SPEC, simulate

__all__ = ["Config", "PRESETS", "PRESET_SEEDS", "PRESET_SWEEPS", "SIMULATION", "SPEC", "report", "simulate"]
