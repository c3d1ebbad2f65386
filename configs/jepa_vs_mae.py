"""Config of `jepa_vs_mae`: which features deep linear self-distillation (JEPA) and reconstruction (MAE) learn first
(Littwin et al., "How JEPA Avoids Noisy Features", NeurIPS 2024, arXiv 2407.03475).

    python run.py --sim=jepa_vs_mae --x64                       # JEPA, L = 3: feature B (high rho) learned first
    python run.py --sim=jepa_vs_mae --preset=inversion --x64    # t_A / t_B against depth, JEPA and MAE (~20 s)
    python run.py --sim=jepa_vs_mae --preset=ode --x64          # GD against the scalar ODE, L = 1..4 (~1 min)

Symbols: two views x, y in R^d with Sigma^xx = diag(lambda_i / rho_i), Sigma^yx = E[y x^T] = diag(lambda_i), so
lambda_i is the cross-covariance of feature i and rho_i = lambda_i / sigma_i^2 its regression coefficient; encoder
W = W_L ... W_1 (L layers of d x d), predictor V (d x d), init eps^(1/L) I; time t = lr * step.
"""

from __future__ import annotations

import math

from dynamics.config import ConfigError, config, param

OBJECTIVES = ("jepa", "mae", "jepa_ema")
STRUCTURES = ("full", "diagonal")
INITS = ("identity", "orthogonal")
MAX_FEATURES = 4096


def parse_list(name: str, text: str) -> tuple[float, ...]:
    """A comma list of positive finite numbers, or ConfigError naming the parameter."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise ConfigError(f"--{name}={text}: must be a comma list of positive numbers, e.g. 1,0.8")
    return values


@config
class Config:
    objective: str = param("jepa", "jepa: 1/2 E|V W x - sg(W y)|^2 (stop-gradient target, no EMA); mae: "
                           "1/2 E|V W x - y|^2; jepa_ema: the target is an EMA of the encoder's layers (rate ema)",
                           choices=OBJECTIVES)
    depth: int = param(3, "L, encoder layers", units="count", low=1, high=8)
    covariances: str = param("1,0.8", "lambda_i = E[y_i x_i], the cross-covariance of each feature (comma list)",
                             units="> 0")
    coefficients: str = param("0.5,1", "rho_i = lambda_i / sigma_i^2, each feature's regression coefficient "
                              "(comma list, as long as covariances)", units="> 0")
    grid: int = param(0, "n > 0: the features are the first listed one (the reference) and an n x n grid of "
                      "(lambda, rho) spanning the listed ranges (the phase plane); 0: the listed features",
                      units="count", low=0, high=60)
    structure: str = param("full", "full: every layer a d x d matrix; diagonal: only their diagonals (the exact "
                           "reduction for diagonal data and init, O(d) per step: the phase plane)",
                           choices=STRUCTURES)
    init: str = param("identity", "identity: W_l = V = eps^(1/L) I; orthogonal: the same balanced init in random "
                      "orthogonal hidden bases, W_l = eps^(1/L) Q_l Q_(l-1)^T (equivalent by symmetry)",
                      choices=INITS)
    init_scale: float = param(0.01, "eps: the encoder product starts at eps I, each layer at eps^(1/L)",
                              units="(0, 1)", traced=True, low=0.0, high=1.0, low_inclusive=False,
                              high_inclusive=False)
    ema: float = param(0.9, "tau of jepa_ema: target layers <- tau target + (1 - tau) online, after each step",
                       units="[0, 1)", traced=True, low=0.0, high=1.0, high_inclusive=False)
    lr: float = param(0.01, "eta, the GD step; time t = eta * step", units="> 0", traced=True, low=0.0,
                      low_inclusive=False)
    batch: int = param(0, "pairs (x, y) per step, y = B x + xi (B = Sigma^yx Sigma^xx^-1, xi ~ N(0, Sigma^xx)); "
                       "0: the population loss (exact expectations, no samples)", units="count", low=0)
    rotation: float = param(0.0, "theta: Sigma^yx = R diag(lambda) R^T, R the Cayley rotation of theta A, A a "
                            "random antisymmetric matrix of spectral norm 1 per seed (non-commuting covariances)",
                            units="rad", traced=True, low=0.0, high=math.pi)
    steps: int = param(200000, "GD steps", units="count", low=1)
    record_every: int = param(200, "steps between records", units="count", low=1)

    def features(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(lambda_i, rho_i) of every feature, the grid's included."""
        lam, rho = parse_list("covariances", self.covariances), parse_list("coefficients", self.coefficients)
        if self.grid:
            n = self.grid
            ls = [min(lam) + (max(lam) - min(lam)) * i / (n - 1) for i in range(n)] if n > 1 else [lam[0]]
            rs = [min(rho) + (max(rho) - min(rho)) * i / (n - 1) for i in range(n)] if n > 1 else [rho[0]]
            lam = (lam[0],) + tuple(a for a in ls for _ in rs)
            rho = (rho[0],) + tuple(b for _ in ls for b in rs)
        return lam, rho

    def check(self) -> None:
        lam = parse_list("covariances", self.covariances)
        rho = parse_list("coefficients", self.coefficients)
        if len(lam) != len(rho):
            raise ConfigError(f"--coefficients={self.coefficients}: has {len(rho)} entries but --covariances="
                              f"{self.covariances} has {len(lam)}; allowed: lists of equal length")
        lam, rho = self.features()
        if len(lam) > MAX_FEATURES or (self.structure == "full" and len(lam) > 256):
            raise ConfigError(f"--grid={self.grid}: {len(lam)} features; allowed: at most 256 with "
                              f"--structure=full, {MAX_FEATURES} with diagonal")
        if self.structure == "diagonal" and (self.init != "identity" or self.rotation > 0):
            raise ConfigError(f"--structure=diagonal: holds only identity init and diagonal covariances (got --init="
                              f"{self.init}, --rotation={self.rotation}); allowed: --structure=full for those")
        L = self.depth
        fixed = min(r ** L if self.objective != "mae" else r ** (L / (L + 1)) for r in rho)
        if not self.init_scale < fixed / 2:
            raise ConfigError(f"--init_scale={self.init_scale}: must be below half the smallest fixed point "
                              f"{fixed:.4g} (rho^L for jepa, rho^(L/(L+1)) for mae at L = {L}), else a feature "
                              "starts past its critical level; allowed: a smaller init_scale")


PRESETS = {
    # Population GD against the scalar ODE at L = 1..4 (swept). eps = 0.1 keeps the JEPA critical times short
    # (10-36): the trajectory error of GD is ~ 0.3 lr in w whatever the horizon, so 1e-4 needs lr = 2.5e-4 and the
    # run length is what a short horizon buys. lr is swept (2.5e-4, 1e-3, 4e-3: horizons 50, 200, 800): the error
    # slope against lr, and the fixed points reached to 1e-8 by the longest horizon.
    "ode": {"covariances": "1,0.6", "coefficients": "0.8,1", "init_scale": 0.1, "steps": 200000,
            "record_every": 100},
    # The theory note's order inversion: A (lambda 1, rho 0.5) against B (lambda 0.8, rho 1), eps = 0.01, times to
    # half the fixed point. JEPA's slowest time (A at L = 4) is ~2100, so T = 3000; MAE's times are 4-13, so records
    # every 0.2 in t (interpolation error < 1e-4 of t).
    "inversion": {"covariances": "1,0.8", "coefficients": "0.5,1", "init_scale": 0.01, "lr": 0.02,
                  "steps": 150000, "record_every": 10},
    # The (lambda, rho) plane: the reference A = (1, 0.5) and a 15 x 15 grid over [0.4, 1] x [0.5, 1]; diagonal
    # structure (exact for this data and init), eps = 0.01. The slowest JEPA feature at L = 4 (0.4, 0.5) is ~5300.
    "phase": {"covariances": "1,0.4", "coefficients": "0.5,1", "grid": 15, "structure": "diagonal",
              "init_scale": 0.01, "lr": 0.05, "steps": 150000, "record_every": 100},
    # Minibatch SGD on Gaussian pairs against the diagonal (population) prediction, JEPA at L = 3, 16 seeds. At
    # batch 16 the noise is strong enough that A never reaches half its fixed point in some seeds (SGD diffuses
    # along the valley of stationary points, v = rho and any w); at 64 every seed does, and the order holds.
    "minibatch": {"covariances": "1,0.8", "coefficients": "0.5,1", "batch": 64, "init_scale": 0.01, "lr": 0.02,
                  "steps": 75000, "record_every": 50},
    # Non-commuting covariances: Sigma^yx rotated by a random angle-0.2 rotation per seed in d = 4, 16 seeds.
    "rotated": {"covariances": "1,0.8,0.9,0.7", "coefficients": "0.5,1,0.6,0.9", "rotation": 0.2,
                "init_scale": 0.01, "lr": 0.02, "steps": 75000, "record_every": 50},
}
PRESET_SWEEPS = {
    "ode": {"objective": ["jepa", "mae"], "depth": [1, 2, 3, 4], "lr": [2.5e-4, 1e-3, 4e-3]},
    "inversion": {"objective": ["jepa", "mae"], "depth": [1, 2, 3, 4]},
    "phase": {"objective": ["jepa", "mae"], "depth": [1, 2, 3, 4]},
}
# Seeds a preset runs when --seeds is not given. The population presets are deterministic (the identity init
# discards the key): one seed. minibatch and rotated draw noise or a rotation per seed: 16 independent replicates.
PRESET_SEEDS = {"ode": 1, "inversion": 1, "phase": 1, "minibatch": 16, "rotated": 16}
