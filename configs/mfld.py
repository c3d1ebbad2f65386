"""Config of `mfld`: mean-field Langevin dynamics of a two-layer network (Nitanda et al., ICML 2025).

    python run.py --sim=mfld --particles=4096          # the teacher task; about a minute on a 2-core CPU
    python run.py --sim=mfld --preset=linear_oracle    # exact Gaussian oracle, every theory value closed-form
                                                       # (256 seeds; under a minute, float64)
    python run.py --sim=mfld --preset=tanh2d_oracle    # mu* by quadrature; 1/N propagation of chaos, N = 4 ... 64
                                                       # (384 seeds; ~5 minutes)
    python run.py --sim=mfld --preset=poc_circles      # the paper's Figure 1 (circles): error against N and M,
                                                       # a sweep over N with a 10,000-particle reference (4 seeds;
                                                       # 34 minutes on a busy 2-core CPU, most of it the reference)

Symbols: N particles, M ensemble members, lambda temperature, lambda' L2 weight (r(x) = lambda' |x|^2), eta step size,
n samples, d input dimension, R output scale (|h| <= R).
"""

from __future__ import annotations

from dynamics.config import ConfigError, config, param

MODELS = ("linear", "tanh2d", "tanh")
LOSSES = ("squared", "logistic")
DATASETS = ("teacher", "gaussian_linear", "four_point", "circles", "multi_index")


@config
class Config:
    particles: int = param(4096, "N, particles per network", units="count", low=1)
    ensemble: int = param(2, "M, independent networks averaged into the ensemble predictor", units="count", low=1)
    temperature: float = param(1e-2, "lambda, entropy weight (noise variance 2*lambda*eta per step)", units=">= 0",
                               traced=True, low=0.0)
    l2: float = param(1e-2, "lambda', L2 weight: r(x) = lambda' |x|^2", units=">= 0", traced=True, low=0.0)
    lr: float = param(0.05, "eta, step size of noisy gradient descent", units="time per step", traced=True,
                      low=0.0, low_inclusive=False)
    steps: int = param(2000, "steps of noisy gradient descent", units="count", low=1)
    record_every: int = param(20, "steps between recorded observables", units="count", low=1)
    model: str = param("tanh", "neuron h(x, z): linear x.z; tanh2d R tanh(a) tanh(w z); "
                       "tanh R tanh(x3) tanh(x1.z + x2) (the paper's)", choices=MODELS)
    loss: str = param("squared", "l(a, y): squared (a - y)^2/2, or logistic log(1 + exp(-y a)) for labels +-1",
                      choices=LOSSES)
    dataset: str = param("teacher", "training data: teacher (tanh teacher network), gaussian_linear, "
                         "four_point (the tanh2d oracle's), circles (two noisy circles), multi_index",
                         choices=DATASETS)
    samples: int = param(256, "n, training samples", units="count", low=1)
    test_samples: int = param(1024, "test samples, drawn like the training data", units="count", low=1)
    dim: int = param(8, "d, input dimension", units="count", low=1)
    teacher_width: int = param(4, "neurons of the teacher network (dataset=teacher)", units="count", low=1)
    output_scale: float = param(2.0, "R, output scale of the tanh neurons (|h| <= R)", units="> 0", traced=True,
                                low=0.0, low_inclusive=False)
    noise: float = param(0.1, "label noise std (teacher, gaussian_linear); std of the 2-D input noise (circles)",
                         units=">= 0", traced=True, low=0.0)
    init_scale: float = param(1.0, "std of the initial particles, x ~ N(0, init_scale^2 I)", units=">= 0",
                              traced=True, low=0.0)
    data_seed: int = param(0, "seed of the training and test data (shared by all seeds of a sweep)", units="int",
                           traced=True, low=0)
    interpolation: float = param(1.0, "s of thermodynamic integration: the drift uses (1-s) dF0/dmu(mu*) + "
                                 "s dF0/dmu(rho); 1 is mean-field Langevin (s < 1 needs an oracle: linear or tanh2d, "
                                 "squared loss)", units="[0, 1]", traced=True, low=0.0, high=1.0)
    particle_block: int = param(0, "B, particles per block of the tanh neuron's step and predictions: memory grows "
                                "as B n instead of N n (0: automatic, N while N n <= 2^22, else 2^22 / n; same "
                                "numbers to round-off)", units="count", low=0)

    def check(self) -> None:
        """Cross-field validation: raises ConfigError naming the offending parameter."""
        if self.model == "tanh2d" and self.dim != 1:
            raise ConfigError(f"--dim={self.dim}: model=tanh2d has scalar inputs; must be 1")
        if self.dataset == "four_point" and (self.dim, self.samples) != (1, 4):
            bad = ("dim", self.dim) if self.dim != 1 else ("samples", self.samples)
            raise ConfigError(f"--{bad[0]}={bad[1]}: dataset=four_point has 4 scalar samples; "
                              "must be dim=1, samples=4")
        if self.dataset == "circles" and self.dim != 2:
            raise ConfigError(f"--dim={self.dim}: dataset=circles is planar; must be 2")
        if self.interpolation < 1 and (self.model == "tanh" or self.loss != "squared"):
            raise ConfigError(f"--interpolation={self.interpolation}: needs mu* (model=linear or tanh2d, "
                              "loss=squared); allowed: 1 otherwise")
        if self.loss == "logistic" and self.dataset != "circles":
            raise ConfigError(f"--loss=logistic: needs labels +-1; allowed with dataset=circles only, "
                              f"not {self.dataset}")
        from sims.mfld.theory import check_quadrature  # here, not at the top: sims.mfld imports this module
        check_quadrature(self)  # tanh2d: refuses a Gibbs law that mu*'s quadrature grid cannot resolve


PRESETS = {
    # Exact oracle 1 of the theory note: Gaussian data, d=2, n=5, everything closed-form. The wide initial law
    # (fluctuation variance 9 (1 - 1/N) against 0.1 at stationarity) and records every 0.1 time units give the
    # relaxation-rate fit a transient of 4 e-folds (at N = 2 it sees a 9% error with 256 seeds; init_scale = 1: 19%);
    # the second half (15 time units, 30 relaxation times of the mean) is stationary to e^-15. N = 8: the excess
    # E F0 - F0(mu*) ~ lambda/N is 2.5% of F0 against F0's noise ~ 1/sqrt(N), so the loss row sees it (at N = 32
    # it is 0.65% against a detectable 0.71%).
    "linear_oracle": dict(model="linear", ensemble=1, dataset="gaussian_linear", dim=2, samples=5, temperature=0.1,
                          l2=0.5, lr=0.01, particles=8, steps=3000, record_every=10, init_scale=3.0),
    # Exact oracle 2: mu* by Newton on the dual over a quadrature grid.
    "tanh2d_oracle": dict(model="tanh2d", ensemble=1, dataset="four_point", dim=1, samples=4, output_scale=2.0,
                          temperature=0.1, l2=0.1, lr=0.02, particles=16, steps=4000, record_every=50),
    # The paper's Figure 1, circles task: n = 200, R = 10, logistic loss, eta = 0.1, lambda' = 0.1, lambda = 0.01,
    # 200 full-batch epochs; M = 20 systems per N, ensembles of the first M = 1..20 formed afterwards.
    "poc_circles": dict(model="tanh", ensemble=20, dataset="circles", loss="logistic", dim=2, samples=200,
                        test_samples=400, output_scale=10.0, noise=0.1, lr=0.1, l2=0.1, temperature=0.01,
                        particles=100, steps=200, record_every=20),
    # The paper's multi-index regression: n = 500, d = 100, MSE, eta = 0.01, 100 epochs.
    "poc_multi_index": dict(model="tanh", ensemble=20, dataset="multi_index", dim=100, samples=500,
                            test_samples=500, output_scale=10.0, lr=0.01, l2=0.1, temperature=0.01, particles=100,
                            steps=100, record_every=10),
}

# The sweep a preset runs when the command line gives none. The PoC figure: N from 50 to 500, and the mean-field
# reference f_inf, one network of N_inf = 10,000 particles (its first system), as in the paper.
REFERENCE_PARTICLES = 10_000
# Thermodynamic integration of the free-energy gap Delta_N over s in [0, 1]: the 5-point Gauss-Legendre nodes.
GAUSS_LEGENDRE_NODES = (0.04691007703066802, 0.23076534494715845, 0.5, 0.7692346550528415, 0.9530899229693319)
GAUSS_LEGENDRE_WEIGHTS = (0.11846344252809454, 0.23931433524968326, 0.28444444444444444, 0.23931433524968326,
                          0.11846344252809454)
PRESETS["tanh2d_free_energy"] = dict(PRESETS["tanh2d_oracle"], steps=2000, record_every=20)
PRESET_SWEEPS = {
    # Oracle 2's propagation of chaos: the model error and the excess F0 against N (theory note: slope -1).
    "tanh2d_oracle": {"particles": [4, 8, 16, 32, 64]},
    # Theorem 1's particle term: N Delta_N <= B, with Delta_N by thermodynamic integration (theory note).
    "tanh2d_free_energy": {"interpolation": list(GAUSS_LEGENDRE_NODES), "particles": [4, 8, 16, 32]},
    "poc_circles": {"particles": [50, 100, 200, 300, 400, 500, REFERENCE_PARTICLES]},
    "poc_multi_index": {"particles": [50, 100, 200, 300, 400, 500, REFERENCE_PARTICLES]},
}
# Seeds a preset runs with when --seeds is not given (`sims.preset_plan`), each the fewest whose rows are conclusive
# (measured in float64; docs/figures/mfld-<preset>.txt): linear_oracle's rows see 0.1-9% errors (N = 2 ... 128),
# tanh2d_oracle's slopes 9% (model error) and 8.5% (excess F0, whose noise is F0's O(1/sqrt N) fluctuation: 256
# seeds see only 10%). The PoC presets cost 1-5 CPU-minutes a seed (the 10^4-particle reference of 20 systems;
# poc_multi_index needs ~6 GB for it): their one-network slope sees 11% at 4 seeds (circles), the M = 20 rows
# need hundreds of seeds (`report._poc_rows`), out of reach here.
PRESET_SEEDS = {"linear_oracle": 256, "tanh2d_oracle": 384, "tanh2d_free_energy": 64, "poc_circles": 4,
                "poc_multi_index": 1}
