"""`implicit_bias`: the max margin each optimizer maximizes on multiclass separable data (Fan, Schmidt,
Thrampoulidis 2025, arXiv 2502.04664).

Reads top-down: `configs.implicit_bias` (the config), `model` (losses, margins, the log-space gradient), `sim`
(data, dynamics, metrics), `theory` (the LP, QP and SDP references), `report` (table and figures).
"""

from configs.implicit_bias import PRESET_SEEDS, PRESET_SWEEPS, PRESETS, Config
from sims.implicit_bias import report
from sims.implicit_bias.sim import SIMULATION, SPEC, simulate

__all__ = ["PRESETS", "PRESET_SEEDS", "PRESET_SWEEPS", "SIMULATION", "SPEC", "Config", "report", "simulate"]
