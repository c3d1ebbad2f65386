"""Config of `ntk_stability`: deep smooth nets in NTK parameterization trained by GD on the logistic loss; their NTK
margin at init, algorithmic stability and generalization gap against the bound (Taheri, Thrampoulidis, Mazumdar,
ICLR 2025, arXiv 2410.10024), and XOR learned in about log d large steps.

    python run.py --sim=ntk_stability                      # ~30 s: the ladder n = 50 ... 400, m = 64, L = 1
    python run.py --sim=ntk_stability --sweep=samples=50,100,200,400 --x64   # stability and gap against n
    python run.py --sim=ntk_stability --task=xor           # the xor preset's values at d = 64 (--scaling: 16 ... 256)
    python run.py --sim=ntk_stability --preset=xor         # d = 16 ... 1024, 8 seeds: 100% and steps vs ceil(log d)
    python run.py --sim=ntk_stability --preset=xor_small_step   # width x step at d = 64: the step size decides

Symbols: n training samples, d input dimension (inputs normalized to ||x|| <= 1), m width, L hidden layers,
eta the step size, T the steps, w_0 the init, gamma the NTK margin at init, rho = ||w - w_0||.
"""

from __future__ import annotations

import jax.numpy as jnp

from dynamics.config import ConfigError, config, param

ACTIVATIONS = ("gelu", "softplus", "tanh", "quadratic")
TASKS = ("mixture", "teacher", "xor")


@config
class Config:
    task: str = param("mixture", "data: mixture (two Gaussian classes at +-mu), teacher (labels of a fixed random "
                      "net: width 64, 2 hidden layers, the run's activation), or xor (y = x_1 x_2 on the hypercube, "
                      "the large-step experiment)", choices=TASKS)
    dim: int = param(10, "d, input dimension", units="count", low=2)
    samples: int = param(100, "n, training samples", units="count", low=2)
    samples_per_dim: int = param(0, "if > 0, n = samples_per_dim * d, overriding samples (linear sample complexity "
                                 "in a sweep over d)", units="count", low=0)
    test_samples: int = param(4000, "fresh samples that estimate the test loss F and the test accuracy",
                              units="count", low=1)
    separation: float = param(2.0, "mixture: ||mu|| before normalization (v = y mu + z, z ~ N(0, I_d), then "
                              "x = v / ||v|| on the unit sphere)", units=">= 0", traced=True, low=0.0)
    label_noise: float = param(0.0, "probability that a label is flipped (mixture and teacher)", units="[0, 0.5)",
                               traced=True, low=0.0, high=0.5, high_inclusive=False)
    width: int = param(64, "m, hidden width", units="count", low=1)
    second_layer: str = param("sign", "xor: the fixed second layer a_j, sign (random signs +-1, the XOR "
                              "literature's choice) or gaussian (a_j ~ N(0, 1)); see sims/ntk_stability/model.py",
                              choices=("sign", "gaussian"))
    xor_init: str = param("fan_in", "xor: the first layer's Gaussian init, fan_in (w_j ~ N(0, I_d / d), so that "
                          "w_j . x ~ N(0, 1) on the hypercube: the reading that reproduces the paper's claim) or "
                          "unit (w_j ~ N(0, I_d): w_j . x ~ N(0, d), outputs O(d / sqrt(m)) at init and l' "
                          "saturated); see sims/ntk_stability/data.py", choices=("fan_in", "unit"))
    depth: int = param(1, "L, hidden layers (a scan over identical layers: compile time does not grow with L)",
                       units="count", low=1)
    activation: str = param("softplus", "sigma, a smooth activation", choices=ACTIVATIONS)
    lr: float = param(2.0, "eta, the step size (0: eta = m, the paper's large step for xor)", units=">= 0",
                      traced=True, low=0.0)
    lr_per_width: float = param(0.0, "if > 0, eta = lr_per_width * m, overriding lr (a sweep over widths and "
                                "lr_per_width keeps eta / m on the grid)", units=">= 0", traced=True, low=0.0)
    steps: int = param(100, "T, gradient steps", units="count", low=1)
    batch: int = param(0, "mini-batch size of SGD, sampled with replacement each step (0: full-batch GD)",
                       units="count", low=0)
    batch_per_dim: int = param(0, "if > 0, the SGD batch is batch_per_dim * d, overriding batch", units="count",
                               low=0)
    record_every: int = param(5, "steps between recorded losses", units="count", low=1)
    replicas: int = param(8, "stability replicas: for i < replicas, one run with z_i replaced by a fresh sample "
                          "and one with z_i deleted, from the same init and randomness (0: none)", units="count",
                          low=0)
    data_seed: int = param(0, "seed of the data set (the draw S and the fresh z'_i); the run's seed draws the "
                           "init and SGD's batches", units="int", traced=True, low=0)
    margin_iterations: int = param(2000, "cap on the linear solves of each NTK-margin program (exact active-set "
                                   "methods; they stop at the optimum, typically after a few times the support "
                                   "size)", units="count", low=1)

    def check(self) -> None:
        if self.replicas > self.train_samples():
            raise ConfigError(f"--replicas={self.replicas}: must be <= n = {self.train_samples()} training samples")
        if self.task == "xor" and self.activation != "quadratic":
            raise ConfigError(f"--activation={self.activation}: --task=xor needs the paper's quadratic activation; "
                              "allowed: quadratic")
        if self.task == "xor" and self.depth != 1:
            raise ConfigError(f"--depth={self.depth}: --task=xor is the paper's one-hidden-layer net; allowed: 1")

    def train_samples(self) -> int:
        """n."""
        return self.samples_per_dim * self.dim if self.samples_per_dim else self.samples

    def batch_size(self) -> int:
        """SGD's batch size b (0: full batch)."""
        return self.batch_per_dim * self.dim if self.batch_per_dim else self.batch

    def step_size(self):
        """eta: lr_per_width * m where lr_per_width > 0, else lr, or m where lr = 0 (traced: a sweep over lr or
        lr_per_width stays one program)."""
        lr = jnp.where(jnp.asarray(self.lr) == 0, self.width, self.lr)
        return jnp.where(jnp.asarray(self.lr_per_width) > 0, self.lr_per_width * self.width, lr)


PRESETS = {
    # The paper's figure 1 (FashionMNIST, 2 hidden layers, n = 12k, m = 500) scaled to a CPU: a softplus net with
    # 2 hidden layers on a nearly separable Gaussian mixture (Bayes error Phi(-4) ~ 3e-5), train and test loss,
    # the generalization gap and ||w_t - w_0|| against steps, for two step sizes (the sweep below).
    "figure1": dict(task="mixture", dim=10, samples=200, separation=4.0, width=64, depth=2, activation="softplus",
                    lr=2.0, steps=400, record_every=10, replicas=16),
    # The XOR figure: constant width, eta = m, fixed second layer of random signs, the fan-in Gaussian init
    # (sims/ntk_stability/data.py: the reading that reproduces the claim), n and b linear in d; the fraction of seeds
    # at 100% test accuracy, and the steps to 99% and 100%, against ceil(log d). The theorem's constants in n = c d,
    # b = c' d are not known here: at c = 128, c' = 64 (below) 100% comes by ceil(log d) on most seeds; at c = 64,
    # c' = 16 about one step later, from the batches' noise sqrt(d / b).
    "xor": dict(task="xor", dim=64, samples_per_dim=128, batch_per_dim=64, test_samples=10000, width=16,
                second_layer="sign", xor_init="fan_in", activation="quadratic", lr=0.0, steps=20, record_every=1,
                replicas=0),
    # Width x step (the sweep below) on the xor preset's data at d = 64: m = 16 and 512, eta = m / 10 and m, for the
    # xor budget of 20 steps. The step size decides, not the width: by step ceil(log d) = 5 eta = m has learned xor at
    # both widths and eta = m / 10 at neither (each step multiplies the signal by 1 + 2 |l'| eta / m, 2 against 1.1).
    # The small step is slower, not stuck: 100% at steps 17-19 at m = 512, 73-95% by step 20 at m = 16.
    "xor_small_step": dict(task="xor", dim=64, samples_per_dim=128, batch_per_dim=64, test_samples=10000,
                           width=16, second_layer="sign", xor_init="fan_in", activation="quadratic", lr=0.0,
                           steps=20, record_every=1, replicas=0),
}
PRESET_SWEEPS = {"figure1": {"lr": [0.5, 2.0]}, "xor": {"dim": [16, 32, 64, 128, 256, 512, 1024]},
                 "xor_small_step": {"width": [16, 512], "lr_per_width": [0.1, 1.0]}}


def implied_preset(params: dict) -> str | None:
    """`--task=xor` without a preset is the XOR experiment: the `xor` preset's values for every field not given."""
    return "xor" if params.get("task") == "xor" else None
# Seeds a preset runs with when --seeds is not given (`sims.preset_plan`).
PRESET_SEEDS = {"figure1": 32, "xor": 8, "xor_small_step": 8}
