"""`mfld`: mean-field Langevin dynamics and propagation of chaos (Nitanda et al., ICML 2025, arXiv 2502.05784).

Reads top-down: `configs.mfld` (the config), `data`, `model`, `simulate` (dynamics and metrics), `theory`
(closed-form oracles), `report` (the comparison table and figure).
"""

from configs.mfld import PRESET_SEEDS, PRESET_SWEEPS, PRESETS, Config
from sims.mfld import report
from sims.mfld.sim import SIMULATION, SPEC, simulate

__all__ = ["Config", "PRESETS", "PRESET_SEEDS", "PRESET_SWEEPS", "SIMULATION", "SPEC", "report", "simulate"]
