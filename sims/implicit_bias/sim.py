"""`implicit_bias` dynamics: full-batch training of a linear multiclass classifier by one optimizer, the margin gaps
and correlations recorded along the way, and the exact max-margin references computed before the run.

    W_(t+1) = W_t - eta_t Delta_t,  eta_t = lr * t^-lr_decay,  Delta_t from the optimizer (dynamics.optimizers)
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from configs.implicit_bias import Config
from dynamics import config as config_lib
from dynamics import langevin, optimizers
from dynamics.simulator import Output, prediction
from sims.implicit_bias import model, theory

__all__ = ["OUTPUTS", "final", "init", "make_data", "optimizer", "prepare", "record", "setup", "step", "workspace"]

NORMS = theory.NORMS  # ("max", "fro", "spectral")


def make_data(config: Config) -> tuple[np.ndarray, np.ndarray]:
    """The paper's recipe: k centres ~ N(0, I_d), per_class points ~ N(centre, noise^2 I) around each, from
    `jax.random.key(data_seed)`. Returns x (n, d) float64 and y (n,) int32, class-major."""
    k_centres, k_points = jax.random.split(jax.random.key(config.data_seed))
    centres = np.asarray(langevin.gaussian(k_centres, (config.classes, config.dim), jnp.float32), np.float64)
    offsets = np.asarray(langevin.gaussian(k_points, (config.classes, config.per_class, config.dim), jnp.float32),
                         np.float64)
    x = (centres[:, None, :] + config.noise * offsets).reshape(-1, config.dim)
    return x, np.repeat(np.arange(config.classes, dtype=np.int32), config.per_class)


@functools.lru_cache(maxsize=32)
def _references(classes, dim, per_class, noise, data_seed):
    config = Config(classes=classes, dim=dim, per_class=per_class, noise=noise, data_seed=data_seed)
    x, y = make_data(config)
    try:
        optima = {"max": theory.max_norm_margin(x, y, classes), "fro": theory.frobenius_margin(x, y, classes),
                  "spectral": theory.spectral_margin(x, y, classes)}
    except theory.NotSeparableError as e:
        raise config_lib.ConfigError(f"--noise={noise}: {e}; allowed: data that a linear classifier separates "
                                     "(less noise, or larger dim)") from None
    dtype = jnp.result_type(float)
    out = {"x": x.astype(dtype), "y": y}
    for norm, opt in optima.items():
        out[f"gamma_{norm}"] = np.asarray(opt.gamma, dtype)
        out[f"W_{norm}"] = opt.W.astype(dtype)
    return out


def prepare(config: Config) -> dict[str, np.ndarray]:
    """Host side, before the run: the data and the exact max margins in the three norms (LP, QP, SDP), cached per
    data set so a sweep over optimizers or seeds solves them once."""
    return _references(config.classes, config.dim, config.per_class, float(config.noise), int(config.data_seed))


def optimizer(config: Config):
    """The config's optimizer as an optax chain on LogScaled gradients."""
    step = optimizers.polynomial_step(config.lr, config.lr_decay)
    o = config.optimizer
    if o == "gd":
        return optax.chain(optimizers.exp_scale(), step)
    if o == "adam":
        return optax.chain(optimizers.log_adam(config.beta1, config.beta2, config.eps), step)
    p, kind = {"ngd": (2.0, "entrywise"), "signgd": (math.inf, "entrywise"), "lp": (config.p, "entrywise"),
               "spectral": (math.inf, "schatten"), "schatten": (config.p, "schatten"),
               "signum": (math.inf, "entrywise"), "momentum_ngd": (2.0, "entrywise"),
               "muon": (math.inf, "schatten")}[o]
    chain = [optimizers.log_momentum(config.momentum)] if o in ("signum", "momentum_ngd", "muon") else []
    return optax.chain(*chain, optimizers.mantissa_direction(p, kind), step)


def _dynamics(config: Config, refs: dict):
    grad = lambda W: model.log_scaled_gradient(config, W, refs["x"], refs["y"])
    return langevin.particle_dynamics(grad, optimizer(config))


def setup(config: Config, key, refs: dict) -> dict:
    """The context: the data and the exact references that `prepare` computed (x (n, d), y (n,), gamma_<norm> and
    W_<norm> (k, d) for norm in max, fro, spectral)."""
    del key
    return refs


def init(config: Config, refs: dict, key) -> langevin.ParticleState:
    """W_0 = 0, as in the paper, with its optimizer's state."""
    del key
    init_fn, _ = _dynamics(config, refs)
    return init_fn(jnp.zeros((config.classes, config.dim), refs["x"].dtype))


def step(config: Config, refs: dict, weights: langevin.ParticleState, key) -> langevin.ParticleState:
    _, step_fn = _dynamics(config, refs)
    return step_fn(weights, key)


def _norm(W, norm):
    if norm == "max":
        return jnp.max(jnp.abs(W))
    if norm == "fro":
        return jnp.linalg.norm(W)
    return jnp.linalg.norm(W, 2)


def record(config: Config, refs: dict, weights: langevin.ParticleState) -> dict[str, jax.Array]:
    """loss; for each norm in (max, fro, spectral): gap_<norm> = gamma - m(W)/|W| (gamma at W = 0) and
    correlation_<norm> = <W, W*>_F / (|W|_F |W*|_F) with that norm's max-margin solution W* (0 at W = 0)."""
    W = weights.params
    z = model.logits(W, refs["x"])
    m = model.margin(z, refs["y"])
    fro = jnp.linalg.norm(W)
    out = {"loss": model.loss_value(config, z, refs["y"])}
    for norm in NORMS:
        size = _norm(W, norm)
        normalized = jnp.where(size > 0, m / jnp.where(size > 0, size, 1.0), 0.0)
        out[f"gap_{norm}"] = refs[f"gamma_{norm}"] - normalized
        star = refs[f"W_{norm}"]
        out[f"correlation_{norm}"] = jnp.where(fro > 0, jnp.sum(W * star) / (jnp.where(fro > 0, fro, 1.0)
                                                                              * jnp.linalg.norm(star)), 0.0)
    return out


def final(config: Config, refs: dict, weights: langevin.ParticleState) -> dict[str, jax.Array]:
    out = {"weights": weights.params, "data_x": refs["x"], "data_y": refs["y"]}
    for norm in NORMS:
        out[f"theory_margin_{norm}"] = refs[f"gamma_{norm}"]
        out[f"theory_weights_{norm}"] = refs[f"W_{norm}"]
    return out


def workspace(config: Config) -> int:
    """Bytes of a step's temporaries: a few (k, k, n/k, d)-sized products of the log-space gradient."""
    return 8 * jnp.dtype(jnp.result_type(float)).itemsize * config.classes ** 2 * config.per_class * config.dim


_NORM_NAMES = {"max": "max-norm", "fro": "Frobenius", "spectral": "spectral"}
OUTPUTS = {
    "loss": Output("training loss L(W)"),
    **{f"gap_{n}": Output(f"{_NORM_NAMES[n]} margin gap gamma - m(W)/|W|") for n in NORMS},
    **{f"correlation_{n}": Output(f"cosine of W with the {_NORM_NAMES[n]} max-margin solution") for n in NORMS},
    "weights": Output("W at the last step", dims=("class", "feature")),
    "data_x": Output("training inputs", dims=("sample", "feature"), seedless=True),
    "data_y": Output("training labels", dims=("sample",), seedless=True),
    **{f"theory_margin_{n}": prediction(f"gamma, the {_NORM_NAMES[n]} max margin (exact solver)") for n in NORMS},
    **{f"theory_weights_{n}": prediction(f"the {_NORM_NAMES[n]} max-margin solution W*", dims=("class", "feature"))
       for n in NORMS},
}
