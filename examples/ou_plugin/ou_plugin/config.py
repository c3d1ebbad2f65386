"""Config of `ou`: dX = -k X dt + sqrt(2T) dW, integrated by Euler-Maruyama with step `lr`.

    python run.py --sim=ou --seeds=64      # the stationary mean square beside its exact value; a few seconds
"""

from __future__ import annotations

from dynamics.config import ConfigError, config, param


@config
class Config:
    particles: int = param(1000, "N, independent particles", units="count", low=1)
    stiffness: float = param(1.0, "k, the restoring force's stiffness", units="1/time", traced=True, low=0.0,
                             low_inclusive=False)
    temperature: float = param(1.0, "T, the noise's temperature: dW scaled by sqrt(2T)", units=">= 0", traced=True,
                               low=0.0)
    lr: float = param(0.01, "h, the Euler-Maruyama step", units="time per step", traced=True, low=0.0,
                      low_inclusive=False)
    steps: int = param(2000, "steps", units="count", low=1)
    record_every: int = param(10, "steps between records", units="count", low=1)

    def check(self) -> None:
        if self.lr * self.stiffness >= 2:
            raise ConfigError(f"--lr={self.lr}: the chain is unstable for lr * stiffness >= 2; allowed: "
                              f"lr < {2 / self.stiffness:g}")


PRESETS = {"stiff": dict(stiffness=10.0, lr=0.01)}  # h k = 0.1: the discrete chain's variance is 5% below 1/k's T
