"""Config of `neural_collapse`: unconstrained features trained by Riemannian GD on the supervised contrastive loss,
against the optimum of its convex relaxation (Behnia and Thrampoulidis 2024, arXiv 2402.18884).

    python run.py --sim=neural_collapse --classes=4 --per_class=5 --dim=10 --temperature=0.5   # seconds on a CPU
    python run.py --sim=neural_collapse --imbalance=10 --x64          # STEP imbalance: not an ETF
    python run.py --sim=neural_collapse --nonnegative --x64           # ReLU features: the orthogonal frame
    python run.py --sim=neural_collapse --preset=step_table --x64     # the STEP table (R x tau), minutes

Symbols: k classes, n_c class sizes, N = sum_c n_c features in R^d, tau the temperature; STEP imbalance has k_M
majority classes of n_M = R n_m samples and k_m minority classes of n_m samples.
"""

from __future__ import annotations

import jax

from dynamics.config import ConfigError, config, param


@config
class Config:
    classes: int = param(4, "k, classes", units="count", low=2)
    per_class: int = param(5, "n, samples per class (under STEP imbalance n_m, the minority size)", units="count",
                           low=2)
    imbalance: int = param(1, "R = n_M / n_m of STEP imbalance (1: balanced)", units="ratio", low=1)
    minority_classes: int = param(0, "k_m, classes of the minority under STEP imbalance (0: half of them, rounded "
                                  "down); the k_M = k - k_m majority classes come first", units="count", low=0)
    class_sizes: str = param("", "explicit class sizes n_c separated by ':' or ',' (e.g. 15:15:5:5); overrides "
                             "per_class and imbalance", units="counts >= 2")
    dim: int = param(10, "d, feature dimension (the relaxation is tight once d >= rank of its optimum)",
                     units="count", low=1)
    temperature: float = param(0.5, "tau, the loss's temperature (below 0.2 the loss needs --x64)", units="> 0",
                               traced=True, low=0.0, low_inclusive=False)
    nonnegative: bool = param(False, "ReLU features: project onto the nonnegative orthant before renormalizing")
    lr: float = param(0.5, "step size of Riemannian GD in units of 1 / (tau N): h_i <- normalize(h_i - lr tau N "
                      "grad_i), so one value suits every tau and N", units="> 0", traced=True, low=0.0,
                      low_inclusive=False)
    momentum: float = param(0.0, "heavy-ball momentum beta of Riemannian GD (the buffer is projected onto the tangent "
                            "space each step; the step is lr (1 - beta), so lr stays the long-run step)",
                            units="[0, 1)", traced=True, low=0.0, high=1.0, high_inclusive=False)
    steps: int = param(2000, "Riemannian GD steps (full batch)", units="count", low=1)
    record_every: int = param(20, "steps between recorded metrics", units="count", low=1)
    solver_iterations: int = param(600, "L-BFGS iterations of the convex relaxation's solver (Burer-Monteiro, "
                                   "d = N)", units="count", low=1)

    def sizes(self) -> tuple[int, ...]:
        """n_c for c = 0..k-1: explicit, STEP (majority first) or balanced."""
        if self.class_sizes:
            return tuple(int(s) for s in self.class_sizes.replace(",", ":").split(":"))
        minority = self.minority_classes or self.classes // 2
        return (self.imbalance * self.per_class,) * (self.classes - minority) + (self.per_class,) * minority

    def check(self) -> None:
        if self.class_sizes:
            try:
                sizes = self.sizes()
            except ValueError:
                sizes = ()
            if len(sizes) != self.classes or min(sizes) < 2:
                raise ConfigError(f"--class_sizes={self.class_sizes}: must be --classes={self.classes} integers "
                                  ">= 2 separated by ':'")
        elif self.minority_classes >= self.classes:
            raise ConfigError(f"--minority_classes={self.minority_classes}: must be < --classes={self.classes}")
        if self.temperature < 0.2 and not jax.config.jax_enable_x64:
            raise ConfigError(f"--temperature={self.temperature}: below 0.2 the loss's exponentials need float64; "
                              "allowed: add --x64, or --temperature >= 0.2")


PRESETS = {
    # Graf et al. / the paper's balanced case: k = 4, n = 5, d = 10 collapses onto the simplex ETF at every tau (swept
    # over tau = 0.3, 0.5, 1 in PRESET_SWEEPS). tau = 0.3 is there for power: a loss that counts the anchor as its
    # own positive keeps the ETF for tau >= k / ((k - 1) log N) = 0.445 and misses it below (tests/sims/
    # test_neural_collapse_verdicts.py). Round-off by step 300 at tau = 0.3 (600 at 0.25), so 1000 steps suffice.
    "balanced_etf": dict(classes=4, per_class=5, dim=10, temperature=0.5, steps=1000, record_every=10),
    # ReLU features (Kini et al.): a collapsed orthogonal frame whatever the class sizes (here STEP, R = 3).
    "relu_frame": dict(classes=4, per_class=5, imbalance=3, dim=10, temperature=0.5, nonnegative=True,
                       steps=2000, record_every=20),
    # The STEP table: k_M = k_m = 2, n_m = 5, n_M = 5R, d = 8 > k (the paper's benign-landscape condition; at d = 4
    # and R = 100 plain GD stalls for thousands of steps near a saddle where the minority means merge). Momentum
    # escapes it in a few hundred steps. Measured |L - L*| (1 seed, x64): round-off by step 500 at tau = 0.5 (every
    # R), by 1500 at tau = 0.3; tau = 1, R = 100 is the slowest (6.6e-13 at step 5000, 20x inside its tolerance).
    # The paper's tau = 0.1 is left out: there the reduced program's curvature is ~1e-4 and GD's loss gap falls only
    # like t^-0.8 (9e-6 at step 5000), its cosines still 0.05-0.4 off, so its rows could only say "not converged";
    # tau = 0.2 reaches round-off at R = 100 only at the last step (rank 8, not 3, at step 5000).
    "step_table": dict(classes=4, per_class=5, minority_classes=2, dim=8, temperature=0.5, momentum=0.9,
                       steps=5000, record_every=100),
}
PRESET_SWEEPS = {"balanced_etf": {"temperature": [0.3, 0.5, 1.0]},
                 "step_table": {"imbalance": [2, 5, 10, 100], "temperature": [0.3, 0.5, 1.0]}}
# Seeds a preset runs with when --seeds is not given (`sims.preset_plan`). Every row is exact (round-off tolerances),
# so one seed already decides it; more seeds test the claim that EVERY initialization ends at the optimum: K seeds
# that all pass catch a share 1 - 0.2^(1/K) of initializations that miss with 80% probability (report.missed_share):
# 16 seeds see a 9.6% share in the cheap presets (N = 20, 40); step_table (N up to 1010) checks a second seed.
PRESET_SEEDS = {"balanced_etf": 16, "relu_frame": 16, "step_table": 2}
