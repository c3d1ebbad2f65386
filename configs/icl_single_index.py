"""Config of `icl_single_index`: a transformer pretrained on single-index tasks whose index features share an
r-dimensional subspace learns new tasks in context with a prompt length independent of d (Oko, Song, Suzuki, Wu,
NeurIPS 2024, arXiv 2411.02544).

    python run.py --sim=icl_single_index --dim=32 --rank=2    # several minutes on 2 cores, most of it the transformer
    python run.py --sim=icl_single_index --sweep=dim=16,32,64 --x64          # the headline picture
    python run.py --sim=icl_single_index --preset=out_of_distribution       # a new subspace at test time

Symbols: d the input dimension, r the subspace's dimension, S = span(U) the subspace, beta = U theta the index
feature, sigma* the link with Hermite coefficients c_i (information exponent Q, degree P), m the MLP width,
T_1 / N_1 and T_2 / N_2 the tasks and prompt lengths of the two pretraining stages, N* the test prompt length.
"""

from __future__ import annotations

from dynamics.config import ConfigError, config, param


def link_coefficients(text: str) -> tuple[float, ...]:
    """c_0, ..., c_P from '0,1,1'; raises ValueError on anything else."""
    values = tuple(float(v) for v in text.replace(":", ",").split(","))
    if len(values) < 2 or not any(values[1:]):
        raise ValueError(text)
    return values


@config
class Config:
    dim: int = param(32, "d, input dimension", units="count", low=2)
    rank: int = param(2, "r, dimension of the subspace S that holds every task's beta", units="count", low=1)
    link: str = param("0,1,1", "c_0,...,c_P: sigma*(z) = sum_i c_i He_i(z)/sqrt(i!), rescaled to unit variance "
                      "(sum_(i>=1) c_i^2 = 1); the default is (He_1 + He_2/sqrt 2)/sqrt 2, Q = 1, P = 2",
                      units="coefficients")
    link_noise: float = param(0.0, "per-task link randomness: each nonzero c_i (i >= 1) is multiplied by "
                              "1 + link_noise * xi_i, xi_i ~ N(0, 1), per task", units=">= 0", traced=True, low=0.0)
    noise: float = param(0.1, "label noise std: y = sigma*(x . beta) + noise * N(0, 1)", units=">= 0", traced=True,
                         low=0.0)
    width: int = param(40, "m, MLP features phi(x) = relu(W x + b) in R^m", units="count", low=1)
    prompt_length: int = param(128, "N*, the longest test prompt; errors are reported at 8, 16, ..., N*",
                               units="count", low=8)
    tasks_stage1: int = param(0, "T_1, tasks of stage I's one gradient step (0: 1250 d, the reference's T_1 "
                              "proportional to d)", units="count", low=0)
    prompt_stage1: int = param(256, "N_1, prompt length in stage I", units="count", low=1)
    tasks_stage2: int = param(8000, "T_2, tasks of stage II's ridge regression for Gamma", units="count", low=1)
    ridge: float = param(1e-4, "ridge of stage II (on the m^2 entries of Gamma)", units=">= 0", traced=True,
                         low=0.0)
    init_gamma: float = param(1.0, "Gamma_0 = init_gamma * I / m before stage I (0 gives a zero gradient)",
                              units=">= 0", traced=True, low=0.0)
    test_tasks: int = param(256, "test tasks per prompt length: the independent replicates of every standard "
                            "error (paired across prompt lengths and, in a dim sweep, across d)", units="count", low=2)
    out_of_distribution: bool = param(False, "draw the test tasks' beta from a new random subspace, not S")
    subspace_seed: int = param(0, "seed of the subspace S (shared by every seed of a sweep)", units="int",
                               traced=True, low=0)
    prompt_only: bool = param(True, "run the learners that see only the prompt (off: their rows disappear, and the "
                              "run compiles and runs faster)")
    transformer_layers: int = param(2, "layers of the flax transformer (0: no transformer)", units="count", low=0)
    transformer_width: int = param(64, "its embedding width", units="count", low=4)
    transformer_heads: int = param(4, "its attention heads", units="count", low=1)
    batch: int = param(64, "prompts per Adam step of the transformer", units="count", low=1)
    lr: float = param(1e-3, "Adam step size of the transformer", units="> 0", traced=True, low=0.0,
                      low_inclusive=False)
    steps: int = param(400, "Adam steps of the transformer's pretraining", units="count", low=1)
    record_every: int = param(50, "steps between records of its training loss and in-context error",
                              units="count", low=1)

    def check(self) -> None:
        try:
            link_coefficients(self.link)
        except ValueError:
            raise ConfigError(f"--link={self.link}: must be comma-separated Hermite coefficients c_0,c_1,... with "
                              "some c_i != 0 for i >= 1") from None
        if self.rank > self.dim:
            raise ConfigError(f"--rank={self.rank}: must be <= --dim={self.dim}")
        if self.transformer_layers and self.transformer_width % self.transformer_heads:
            raise ConfigError(f"--transformer_heads={self.transformer_heads}: must divide "
                              f"--transformer_width={self.transformer_width}")

    def stage1_tasks(self) -> int:
        return self.tasks_stage1 or 1250 * self.dim

    def lengths(self) -> tuple[int, ...]:
        """The test prompt lengths 8, 16, ... up to N*."""
        out, n = [], 8
        while n < self.prompt_length:
            out.append(n)
            n *= 2
        return tuple(out) + (self.prompt_length,)


PRESETS = {
    # The theory note's reference run (float64 advised): r = 2, m = 40, N_1 = 256, T_1 = 1250 d, T_2 = 8000. 2048 test
    # tasks (the replicates of every row; paired across N and d): the d-ratio of the in-context error has SE ~1%,
    # the excess exponent ~0.017 (detects 6%).
    "reference": dict(dim=32, rank=2, link="0,1,1", noise=0.1, width=40, prompt_stage1=256, tasks_stage2=8000,
                      ridge=1e-4, prompt_length=128, test_tasks=2048),
    # A Q = 2 link at the same budget: stage I aligns much worse (N_1 T_1 should grow as d^(2Q+1)).
    "information_exponent_2": dict(dim=32, rank=2, link="0,0,1", noise=0.1, width=40, prompt_length=128,
                                   test_tasks=2048),
    # Test tasks from a new subspace: the pretrained features no longer fit.
    "out_of_distribution": dict(dim=32, rank=2, out_of_distribution=True, prompt_length=128, test_tasks=2048),
}
PRESET_SWEEPS = {"reference": {"dim": [16, 32, 64]}}
# One seed: the test tasks, not the seeds, are the replicates (one pretrained model per d, 2048 tasks each), and
# every verdict of these presets is conclusive at one seed (alignment is exact for the model; the task-based rows
# detect 6-10% errors). More seeds pool more tasks and average over pretrained models.
PRESET_SEEDS = {"reference": 1, "information_exponent_2": 1, "out_of_distribution": 1}
