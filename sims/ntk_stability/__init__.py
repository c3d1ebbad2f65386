"""`ntk_stability`: deep smooth nets in NTK parameterization trained by GD on the logistic loss; the NTK margin at
init, algorithmic stability, the generalization gap against the stability bound, and XOR with a large step
(Taheri, Thrampoulidis, Mazumdar, ICLR 2025, arXiv 2410.10024).

Statements implemented (the paper's text was not reachable; the theory note's reconstruction is followed):
- the training bound in its average-iterate form, (1/T) sum_t F_hat(w_t) <= F_hat(w*) + ||w* - w_0||^2 / (eta T),
  and the same for the last iterate, at the reference point w* = w_0 + (log T / gamma) u* of the NTK-margin analysis
  (Ji and Telgarsky 2020), with no hidden constant;
- the test bound's stability term e^{O(L)} rho^2 / n, reported through the constant gap n / rho^2 (not asserted: the
  constant is not given);
- stability through the replace-one identity (exact) and delete-one replicas (the paper's leave-one-out notion);
- XOR as in `data` (Theorem 2.4 of the theory note).

Reads top-down: `configs.ntk_stability` (the config), `data`, `model` (the net, the loss, the NTK Gram), `margin`
(the NTK margin's two programs), `sim` (dynamics, replicas and records), `report` (table and figures).
"""

from configs.ntk_stability import PRESET_SEEDS, PRESET_SWEEPS, PRESETS, Config, implied_preset
from dynamics.simulator import Simulator
from sims.ntk_stability import report, sim

SIMULATOR = Simulator(
    name="ntk_stability", config=Config, setup=sim.setup, init=sim.init, step=sim.step, record=sim.record,
    final=sim.final, outputs=sim.OUTPUTS, compare=report.compare, figure=report.figure, presets=PRESETS,
    preset_sweeps=PRESET_SWEEPS, preset_seeds=PRESET_SEEDS, scaling_grid=report.scaling_grid,
    implied_preset=implied_preset, workspace=sim.workspace)

__all__ = ["SIMULATOR"]
