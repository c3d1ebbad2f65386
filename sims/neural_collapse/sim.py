"""`neural_collapse` dynamics: Riemannian GD of unconstrained features on the supervised contrastive loss, the
collapse metrics recorded along the way, and the relaxation's optimum (with the closed forms) computed before.

    h_i <- normalize(h_i - lr tau N (g_i - (h_i . g_i) h_i)),   g = dL/dH = H (A + A^T)   (model.gradient)

The step is measured in units of 1/(tau N) because L's gradient per feature scales as 1/(tau N) and its curvature
as 1/(tau^2 N): one `lr` then converges at every N and, for tau >= 0.3, every temperature (lr = 0.5 reaches
|L - L*| < 1e-13 within 500 steps at k = 4, n = 5).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from configs.neural_collapse import Config
from dynamics import langevin, manifold
from dynamics.simulator import Output, prediction
from sims.neural_collapse import model, theory

__all__ = ["METRICS", "OUTPUTS", "final", "init", "prepare", "record", "setup", "step", "workspace"]

METRICS = ("nc1", "equinorm", "equiangularity", "max_angle", "gram_distance", "full_gram_distance", "rank")
COSINES = ("alpha", "beta", "gamma")


def _geometry(sizes: tuple[int, ...], minority: int, tau: float, nonnegative: bool):
    """The closed-form loss, class-mean Gram, STEP cosines (alpha, beta, gamma) and the reduced program's curvature,
    where the paper has them (else NaN / None). minority: k_m of a STEP layout (0: explicit class sizes)."""
    k = len(sizes)
    nan3 = (math.nan,) * 3
    if nonnegative:
        return theory.nonnegative_loss(sizes, tau), np.eye(k), nan3, math.nan
    if not minority:
        return ((theory.balanced_loss(k, sizes[0], tau), theory.etf(k), nan3, math.nan) if len(set(sizes)) == 1
                else (math.nan, None, nan3, math.nan))
    if len(set(sizes)) == 1:
        cosines = (-1.0 / (k - 1),) * 3
        loss, gram, curvature = theory.balanced_loss(k, sizes[0], tau), theory.etf(k), math.nan
    else:
        opt = theory.step_program(k - minority, minority, sizes[0], sizes[-1], tau)
        cosines, loss, curvature = tuple(opt[:3]), opt.loss, opt.curvature
        gram = theory.step_gram(k - minority, minority, *cosines)
    # A cosine among one class alone does not exist.
    alpha, beta, gamma = cosines
    return loss, gram, (alpha if k - minority > 1 else math.nan, beta if minority > 1 else math.nan, gamma), curvature


@functools.lru_cache(maxsize=64)
def _references(sizes: tuple[int, ...], minority: int, tau: float, nonnegative: bool, iterations: int,
                dtype: str) -> dict[str, np.ndarray]:
    labels = theory.labels_of(sizes)
    k = len(sizes)
    optimum = theory.relaxation_optimum(labels, tau, nonnegative, iterations)
    gram = np.asarray(optimum.gram, np.float64)
    closed_loss, closed_class_gram, cosines, curvature = _geometry(sizes, minority, tau, nonnegative)
    class_gram = theory.class_block_means(gram, labels, k) if closed_class_gram is None else closed_class_gram
    star = model.metrics(model.gram_factor(jnp.asarray(gram, dtype)), jnp.asarray(labels), k,
                         jnp.asarray(class_gram, dtype), jnp.asarray(gram, dtype))
    out = dict(labels=labels, gram=gram, class_gram=class_gram, loss=np.float64(optimum.loss),
               loss_closed_form=np.float64(closed_loss), curvature=np.float64(curvature),
               solver_residual=np.float64(optimum.residual),
               **dict(zip(COSINES, map(np.float64, cosines))),
               **{f"metric_{m}": np.asarray(v) for m, v in star.items() if m not in ("gram_distance",
                                                                                  "full_gram_distance")})
    return {name: v.astype(dtype) if np.issubdtype(v.dtype, np.floating) else v for name, v in out.items()}


def prepare(config: Config) -> dict[str, np.ndarray]:
    """Host side, before the run: labels (N,), the relaxation's optimum G* (N, N) and loss L*, the predicted class
    geometry (k, k) (the ETF, the orthogonal frame, STEP's reduced program, or G*'s class blocks), the closed-form
    loss and STEP cosines (NaN where none applies), and the metrics of G* itself. Cached per (class sizes, tau), so
    the seeds of a sweep share one solve."""
    return _references(config.sizes(), _minority(config), float(config.temperature), config.nonnegative,
                       config.solver_iterations, jnp.dtype(jnp.result_type(float)).name)


def _minority(config: Config) -> int:
    """k_m of the STEP layout (balanced included, R = 1), or 0 for explicit class sizes."""
    return 0 if config.class_sizes else config.minority_classes or config.classes // 2


def _dynamics(config: Config, refs: dict):
    N = refs["labels"].shape[0]
    optimizer, retract = manifold.riemannian_gd(config.lr * config.temperature * N * (1 - config.momentum), axis=0,
                                                nonnegative=config.nonnegative, momentum=config.momentum)
    grad = lambda H: model.gradient(H, refs["labels"], config.temperature)[1]
    return langevin.particle_dynamics(grad, optimizer, retract)


def setup(config: Config, key, refs: dict) -> dict:
    """The context: `prepare`'s labels (N,) and the relaxation's optimum with its closed forms."""
    del key
    return refs


def init(config: Config, refs: dict, key) -> langevin.ParticleState:
    """h_i uniform on the sphere S^(d-1) (on its nonnegative orthant for ReLU features), independently per seed
    and per shape (d and N are folded into the key, so runs at different d do not share their draws)."""
    N = refs["labels"].shape[0]
    key = jax.random.fold_in(jax.random.fold_in(key, config.dim), N)
    H = langevin.gaussian(key, (config.dim, N))
    H = jnp.abs(H) if config.nonnegative else H
    init_fn, _ = _dynamics(config, refs)
    return init_fn(H / jnp.linalg.norm(H, axis=0))


def step(config: Config, refs: dict, features: langevin.ParticleState, key) -> langevin.ParticleState:
    _, step_fn = _dynamics(config, refs)
    return step_fn(features, key)


def record(config: Config, refs: dict, features: langevin.ParticleState) -> dict[str, jax.Array]:
    """loss L(H); loss_gap = L - L* (L* the relaxation's optimum, so >= 0 up to round-off); and `model.metrics`
    against the predicted class geometry and G*."""
    H = features.params
    value = model.loss(H, refs["labels"], config.temperature)
    out = dict(loss=value, loss_gap=value - refs["loss"])
    out.update(model.metrics(H, refs["labels"], config.classes, refs["class_gram"], refs["gram"]))
    return out


def _block_cosines(C, minority: int, classes: int) -> jax.Array:
    """(alpha, beta, gamma): mean cosine among majority means, among minority means, and across (NaN if empty, and
    all NaN without a STEP layout)."""
    if not minority:
        return (jnp.full((), jnp.nan, C.dtype),) * 3
    major = jnp.arange(classes) < classes - minority
    off = ~jnp.eye(classes, dtype=bool)
    def mean(mask):
        return jnp.sum(jnp.where(mask, C, 0.0)) / jnp.where(jnp.any(mask), jnp.sum(mask), jnp.nan)
    return (mean(off & major[:, None] & major[None, :]), mean(off & ~major[:, None] & ~major[None, :]),
            mean(major[:, None] & ~major[None, :]))


def final(config: Config, refs: dict, features: langevin.ParticleState) -> dict[str, jax.Array]:
    """The features (d, N) and labels; class_cosines (k, k) of the uncentred class means and their STEP block
    means alpha, beta, gamma; the theory: theory_gram G*, theory_class_gram, theory_loss L*,
    theory_loss_closed_form, theory_alpha/beta/gamma and theory_curvature (STEP's reduced program), the metrics of
    G* (theory_<metric>), and the solver's stationarity (the norm of its final gradient)."""
    H = features.params
    mu = model.class_means(H, refs["labels"], config.classes)
    unit = mu / jnp.linalg.norm(mu, axis=0)
    cosines = unit.T @ unit
    minority = _minority(config)
    out = dict(features=H, labels=refs["labels"], class_cosines=cosines,
               **dict(zip(COSINES, _block_cosines(cosines, minority, config.classes))),
               theory_gram=refs["gram"], theory_class_gram=refs["class_gram"], theory_loss=refs["loss"],
               theory_loss_closed_form=refs["loss_closed_form"], theory_solver_residual=refs["solver_residual"],
               theory_curvature=refs["curvature"])
    out.update({f"theory_{c}": refs[c] for c in COSINES})
    out.update({f"theory_{m}": refs[f"metric_{m}"] for m in METRICS if f"metric_{m}" in refs})
    return out


def workspace(config: Config) -> int:
    """The step's temporaries: a handful of (N, N) similarity-sized arrays and the (d, N) gradient."""
    n = sum(config.sizes())
    return jnp.dtype(jnp.result_type(float)).itemsize * (8 * n ** 2 + 4 * config.dim * n)


_METRIC_NAMES = {"nc1": "NC1: within-class over between-class variability", "equinorm": "equinorm: std/mean of the "
                 "class-mean norms", "equiangularity": "equiangularity: std of the class-mean cosines",
                 "max_angle": "max-angle deviation of the class-mean cosines from -1/(k-1)",
                 "gram_distance": "distance of the class means' Gram to the predicted geometry",
                 "full_gram_distance": "|H'H - G*|_F / N", "rank": "numerical rank of H"}
_COSINE_NAMES = {"alpha": "mean cosine among majority class means", "beta": "mean cosine among minority class means",
                 "gamma": "mean cosine between majority and minority class means"}
OUTPUTS = {
    "loss": Output("supervised contrastive loss L(H)"),
    "loss_gap": Output("L(H) - L*, L* the convex relaxation's optimum"),
    **{m: Output(_METRIC_NAMES[m]) for m in METRICS},
    "features": Output("features H at the last step (unit columns)", dims=("feature", "sample")),
    "labels": Output("class of each sample", dims=("sample",), seedless=True),
    "class_cosines": Output("cosines of the uncentred class means", dims=("class", "class2")),
    **{c: Output(_COSINE_NAMES[c]) for c in COSINES},
    "theory_gram": prediction("G*, the relaxation's optimal Gram", dims=("sample", "sample2")),
    "theory_class_gram": prediction("the predicted class-mean Gram", dims=("class", "class2")),
    "theory_loss": prediction("L*, the relaxation's optimum (L-BFGS on a Burer-Monteiro factor)", "loss"),
    "theory_loss_closed_form": prediction("the paper's closed-form loss, where it has one", "loss"),
    "theory_solver_residual": prediction("norm of the relaxation solver's final Riemannian gradient"),
    "theory_curvature": prediction("smallest curvature of STEP's reduced program at its optimum"),
    **{f"theory_{c}": prediction(f"{_COSINE_NAMES[c]}, STEP's reduced program", c) for c in COSINES},
    **{f"theory_{m}": prediction(f"{_METRIC_NAMES[m]}, of G*", m) for m in (*METRICS[:4], "rank")},
}
