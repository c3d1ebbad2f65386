"""Config of `implicit_bias`: which max-margin problem each optimizer solves on multiclass separable data
(Fan, Schmidt, Thrampoulidis 2025, "Implicit Bias of SignGD and Adam on Multiclass Separable Data").

    python run.py --sim=implicit_bias --optimizer=signgd --steps=10000      # about a minute on a 2-core CPU
    python run.py --sim=implicit_bias --preset=figures --x64                 # figures 1-2, 10^5 steps

Symbols: W (k x d) the linear classifier, eta_t = lr * t^-lr_decay the step size (eta_0 and a in the paper),
k classes, d dimension, sigma the within-class noise.
"""

from __future__ import annotations

from dynamics.config import config, param

OPTIMIZERS = ("gd", "ngd", "signgd", "lp", "spectral", "schatten", "signum", "momentum_ngd", "muon", "adam")
LOSSES = ("cross_entropy", "exponential", "pairlog")


@config
class Config:
    optimizer: str = param("signgd", "gd (plain), ngd (normalized), signgd, lp (entrywise p-norm steepest descent), "
                           "spectral, schatten (Schatten p-norm), signum, momentum_ngd, muon (momentum versions), "
                           "adam", choices=OPTIMIZERS)
    p: float = param(3.0, "p of the entrywise or Schatten p-norm (optimizer=lp or schatten)", units="> 1",
                     low=1.0, low_inclusive=False)
    lr: float = param(0.1, "eta_0, the step size at t = 1", units="> 0", traced=True, low=0.0, low_inclusive=False)
    lr_decay: float = param(0.5, "a in eta_t = eta_0 t^-a (the theorems take 1/2; plain GD takes 0)",
                            units="[0, 1]", traced=True, low=0.0, high=1.0)
    momentum: float = param(0.9, "beta of the momentum versions: m_t = g_t + beta m_(t-1)", units="[0, 1)",
                            traced=True, low=0.0, high=1.0, high_inclusive=False)
    beta1: float = param(0.9, "Adam's beta_1", units="[0, 1)", traced=True, low=0.0, high=1.0, high_inclusive=False)
    beta2: float = param(0.99, "Adam's beta_2", units="[0, 1)", traced=True, low=0.0, high=1.0,
                         high_inclusive=False)
    eps: float = param(0.0, "Adam's epsilon (0 is the theorem's Adam; 0/0 is guarded)", units=">= 0", traced=True,
                       low=0.0)
    loss: str = param("cross_entropy", "cross_entropy, exponential (sum_c exp(-(z_y - z_c))) or pairlog "
                      "(sum_c log(1 + exp(-(z_y - z_c))))", choices=LOSSES)
    classes: int = param(10, "k, classes", units="count", low=2)
    dim: int = param(25, "d, input dimension", units="count", low=1)
    per_class: int = param(50, "points per class (n = k * per_class)", units="count", low=1)
    noise: float = param(0.1, "sigma: points ~ N(centre, sigma^2 I) around centres ~ N(0, I_d)", units=">= 0",
                         traced=True, low=0.0)
    data_seed: int = param(0, "seed of the data (shared by all seeds of a sweep)", units="int", traced=True, low=0)
    steps: int = param(10000, "iterations (full batch)", units="count", low=1)
    record_every: int = param(10, "iterations between recorded observables", units="count", low=1)


PRESETS = {
    # The paper's figures 1-2: k = 10, d = 25, 50 per class, sigma = 0.1, eta_t = eta_0 / sqrt(t). The paper stops at
    # 10^4 steps; the preset runs 10^5 so that every own-norm slope over the last decade is in its asymptotic range
    # (over [10^3, 10^4] Adam's max-norm gap is still leaving its transient, slope -0.18, and spectral descent's
    # slows to -0.32 before it steepens to -0.56). About a minute in float64 on 2 cores.
    "figures": {"classes": 10, "dim": 25, "per_class": 50, "noise": 0.1, "lr": 0.1, "lr_decay": 0.5,
                "steps": 100000, "record_every": 100},
}
PRESET_SWEEPS = {"figures": {"optimizer": ["signgd", "ngd", "spectral", "adam"]}}
# Seeds a preset runs with when --seeds is not given (`sims.preset_plan`). One: the run is deterministic (full batch
# from W_0 = 0; init discards the key), so every seed repeats it exactly and the report's rows are exact numbers.
PRESET_SEEDS = {"figures": 1}
