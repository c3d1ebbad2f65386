"""Config of `rft_vanishing_gradients`: reinforcement fine-tuning (RFT, ascend the expected reward) against supervised
fine-tuning (SFT, ascend log p(y*|x)) of a softmax policy (Razin et al., ICLR 2024, arXiv 2310.20703).

    python run.py --sim=rft_vanishing_gradients --x64                        # tabular RFT, 8 inputs; seconds
    python run.py --sim=rft_vanishing_gradients --preset=flow --x64          # closed forms, K x p0 x q x lr; ~1 min
    python run.py --sim=rft_vanishing_gradients --preset=inputs --x64        # stalled fraction against time
    python run.py --sim=rft_vanishing_gradients --preset=warmup --x64        # SFT warm-up against RFT time saved
    python run.py --sim=rft_vanishing_gradients --preset=digits --x64        # MLP on scikit-learn's digits

Symbols: K outputs, y* the labelled output, p = p(y*|x), p0 its initial value, V(x) = E_{y~p}[r(x, y)] the expected
reward, std = std_{y~p}[r(x, y)], eta the step (lr), time t = eta * step. The objective is the SUM over inputs, so each
input of a tabular (or orthonormal linear) policy follows its own single-input flow at rate eta.
"""

from __future__ import annotations

import jax

from dynamics.config import ConfigError, config, param

POLICIES = ("tabular", "linear", "mlp")
METHODS = ("rft", "sft", "reinforce", "normalized", "continuum", "sft_then_rft")
FEATURES = ("orthonormal", "gaussian", "digits")
REWARDS = ("indicator", "graded")
SAMPLED = ("reinforce", "normalized")


@config
class Config:
    policy: str = param("tabular", "tabular (logits are the parameters, one row per input), linear (z = W x), mlp "
                        "(one hidden layer, tanh)", choices=POLICIES)
    features: str = param("orthonormal", "inputs x of linear/mlp: orthonormal (decoupled, linear only), gaussian "
                          "(N(0, I/d): coupled) or digits (scikit-learn's 8x8 digits, d = 64, K = 10)",
                          choices=FEATURES)
    inputs: int = param(8, "n, inputs (prompts)", units="count", low=1)
    outputs: int = param(10, "K, outputs per input", units="count", low=2)
    dim: int = param(16, "d, input dimension of linear/mlp (digits: 64)", units="count", low=1)
    width: int = param(32, "hidden width of the mlp", units="count", low=1)
    reward: str = param("indicator", "indicator r = 1[y = y*], or graded r = 1 - |y - y*| / (K - 1)",
                        choices=REWARDS)
    method: str = param("rft", "rft (exact expected reward), sft (cross-entropy on y*), reinforce (sampled, "
                        "leave-one-out baseline), normalized (sampled, advantages / per-input sample std: GRPO), "
                        "continuum (ascend V^-q grad V), sft_then_rft (warmup SFT steps, then RFT)", choices=METHODS)
    q: float = param(0.0, "q of the continuum V^-q grad V: 0 is RFT, 1 is SFT (indicator reward)", units="[0, 1]",
                     traced=True, low=0.0, high=1.0)
    warmup: int = param(0, "SFT steps before RFT (method=sft_then_rft)", units="steps", traced=True, low=0)
    samples: int = param(8, "sampled outputs per input and step (reinforce, normalized)", units="count", low=1)
    p0: float = param(0.01, "initial p(y*|x) of the first input, set exactly (tabular, linear; non-target logits "
                      "equal)", units="(0, 1)", traced=True, low=0.0, high=1.0, low_inclusive=False,
                      high_inclusive=False)
    p0_min: float = param(0.0, "initial p(y*|x) of the last input; inputs log-spaced from p0 down to it (0: all p0)",
                          units="[0, 1)", traced=True, low=0.0, high=1.0, high_inclusive=False)
    pretrain_steps: int = param(100, "mlp: full-batch SFT steps on shifted labels (y* + 1 mod K) before fine-tuning, "
                                "which leaves the inputs a range of initial p(y*|x)", units="steps", low=0)
    pretrain_lr: float = param(0.5, "mlp: step of that pretraining (mean over inputs)", units="> 0", traced=True,
                               low=0.0, low_inclusive=False)
    lr: float = param(0.05, "eta, the fine-tuning step; time t = eta * step", units="> 0", traced=True, low=0.0,
                      low_inclusive=False)
    level: float = param(0.5, "reward level: time to reach it, fraction of inputs below it", units="(0, 1)",
                         traced=True, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    steps: int = param(20000, "fine-tuning steps (full batch)", units="count", low=1)
    record_every: int = param(200, "steps between records", units="count", low=1)

    def check(self) -> None:
        if self.features == "digits" and self.policy != "mlp":
            raise ConfigError(f"--features=digits: only with --policy=mlp (got --policy={self.policy}); allowed: "
                              "--policy=mlp, or features orthonormal/gaussian")
        if self.features == "digits" and self.outputs != 10:
            raise ConfigError(f"--outputs={self.outputs}: the digits data set has 10 classes; allowed: 10")
        if self.features == "digits" and self.dim != 64:
            raise ConfigError(f"--dim={self.dim}: the digits are 8x8 images; allowed: 64")
        if self.features == "digits" and self.inputs > 1797:
            raise ConfigError(f"--inputs={self.inputs}: the digits data set has 1797 images; allowed: <= 1797")
        if self.policy == "mlp" and self.features == "orthonormal":
            raise ConfigError("--features=orthonormal: the mlp takes gaussian or digits inputs; allowed: gaussian, "
                              "digits")
        if self.policy == "linear" and self.inputs > self.dim:
            raise ConfigError(f"--inputs={self.inputs}: a linear policy sets p0 exactly only for n <= d "
                              f"(--dim={self.dim}); allowed: <= {self.dim}")
        if self.method in SAMPLED and self.samples < 2:
            raise ConfigError(f"--samples={self.samples}: {self.method} needs a baseline from the other samples; "
                              "allowed: >= 2")
        if self.p0_min > self.p0:
            raise ConfigError(f"--p0_min={self.p0_min}: must be <= --p0={self.p0} (or 0)")
        # float32 logits cannot resolve RFT's per-step increment eta p0 (1 - p0) against a logit of size ~10: its ulp
        # is ~1e-6, and 1% accuracy needs the increment to be at least 100 ulps, eta p0 >= 1e-4.
        small = min(self.p0, self.p0_min or self.p0)
        if self.lr * small < 1e-4 and not jax.config.jax_enable_x64 and self.policy != "mlp":
            raise ConfigError(f"--p0_min={small:g}: RFT's step eta p0 = {self.lr * small:.1e} is below float32's "
                              "resolution of the logits; allowed: add --x64, or lr * p0 >= 1e-4")


PRESETS = {
    # The closed forms (tabular, one input): the continuum q = 0 (RFT), 1/2, 1 (SFT) in one compiled program per K.
    # T_RFT(K = 50, p0 = 1e-4 -> 1/2) = 9818, so 10^6 steps at eta = 0.01 reach it; larger eta finish sooner.
    "flow": dict(policy="tabular", inputs=1, method="continuum", lr=0.01, level=0.5, steps=1_000_000,
                 record_every=10_000),
    # 16 inputs, p0 log-spaced from 1e-1 to 1e-4: the fraction still below 1/2 against time, RFT (q = 0) and SFT (q = 1)
    "inputs": dict(policy="tabular", inputs=16, outputs=10, method="continuum", p0=0.1, p0_min=1e-4, lr=0.05,
                   steps=200_000, record_every=20),
    # Coupled inputs (Gaussian linear policy): SFT warm-up steps against the time RFT then needs; no closed form.
    "warmup": dict(policy="linear", features="gaussian", inputs=16, dim=32, outputs=10, method="sft_then_rft",
                   p0=0.1, p0_min=1e-3, lr=0.05, steps=40_000, record_every=400),
    # A tanh MLP on 128 digits, pretrained on shifted labels; RFT with and without an SFT warm-up.
    "digits": dict(policy="mlp", features="digits", inputs=128, dim=64, outputs=10, width=32, method="sft_then_rft",
                   pretrain_steps=100, pretrain_lr=0.5, lr=0.005, steps=20_000, record_every=400),
}
PRESET_SWEEPS = {
    "flow": {"outputs": [2, 10, 50], "p0": [1e-1, 1e-2, 1e-3, 1e-4], "q": [0.0, 0.5, 1.0], "lr": [0.01, 0.02, 0.04]},
    "inputs": {"q": [0.0, 1.0]},
    "warmup": {"warmup": [0, 20, 50, 100, 200]},
    "digits": {"warmup": [0, 20]},
}
# flow and inputs are deterministic (seeds repeat them bit for bit): one seed. warmup and digits draw their data (and
# the mlp's init) from the seed: 16 independent replicates give the ordering rows their standard errors.
PRESET_SEEDS = {"flow": 1, "inputs": 1, "warmup": 16, "digits": 8}
