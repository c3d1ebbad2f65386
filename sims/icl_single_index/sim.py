"""`icl_single_index` pipeline as an engine simulation: everything but the transformer's training happens in `setup`
(the theory model's two stages, its in-context errors, the prompt-only baselines and the projection floor, all
jitted, kept as the run's constants); the state is the flax transformer's, the steps its Adam steps, recorded with its
in-context error; `final` keeps both.

Evaluation: `test_tasks` tasks from the test subspace (S, or a new one with out_of_distribution), each with a prompt
of N* samples and QUERIES further query points; at each length N in 8, 16, ..., N* every learner sees the first N
prompt samples and predicts the queries. Errors are mean squared errors against the noisy labels (so the floor
includes the noise variance), averaged per task; standard errors are over tasks. The transformer predicts the sample
that follows each prompt length (its causal sequence gives every length in one pass). The per-task errors are kept
(`task_error_<learner>`, NaN where a learner saw fewer tasks) for the report's paired tests: given the pretrained
model, the test tasks are independent draws, each task's error one replicate. The projection floor is computed on
the first FLOOR_TASKS test tasks (its spread over tasks is ~13% of its mean, so 256 tasks pin it to <1%).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from configs.icl_single_index import Config, link_coefficients
from dynamics.simulator import Output
from sims.icl_single_index import baselines, data, model, transformer

__all__ = ["State", "OUTPUTS", "setup", "init", "step", "record", "final", "workspace", "LEARNERS", "QUERIES"]

QUERIES = 16
TWO_LAYER_TASKS = 64
FLOOR_SAMPLES = 4096
FLOOR_TASKS = 256
FLOOR_CHUNK = 16  # tasks per vectorized chunk of the floor: 16 x 8192 samples x d inputs at a time
LEARNERS = ("icl", "linear", "krr_poly", "krr_rbf", "two_layer")


def _link(config: Config):
    return jnp.asarray(data.normalized_link(link_coefficients(config.link)), jnp.result_type(float))


def _subspaces(config: Config):
    """U (d, r) of pretraining and the test subspace (a fresh one out of distribution), from subspace_seed."""
    key = jax.random.key(config.subspace_seed)
    U = data.subspace(key, config.dim, config.rank, jnp.result_type(float))
    fresh = data.subspace(jax.random.fold_in(key, 1), config.dim, config.rank, U.dtype)
    return U, (fresh if config.out_of_distribution else U)


def _mean_se(errors):
    """Mean and standard error over the last axis."""
    n = errors.shape[-1]
    return jnp.mean(errors, axis=-1), jnp.std(errors, axis=-1, ddof=1) / jnp.sqrt(n)


def _baseline_errors(config: Config, key, x, y, lengths):
    """(learner, length, task) squared errors of the prompt-only learners (NaN with prompt_only off)."""
    if not config.prompt_only:
        return {name: jnp.full((len(lengths), x.shape[0]), jnp.nan, x.dtype) for name in LEARNERS[1:]}
    ridges = baselines.ridge_grid()
    degree = len(link_coefficients(config.link)) - 1
    out = {name: [] for name in LEARNERS[1:]}
    for N in lengths:
        prompt_x, prompt_y, qx, qy = x[:, :N], y[:, :N], x[:, -QUERIES:], y[:, -QUERIES:]
        err = lambda pred: jnp.mean((pred - qy) ** 2, axis=1)
        out["linear"].append(err(jax.vmap(lambda a, b, q: baselines.linear_ridge(a, b, q, ridges))(
            prompt_x, prompt_y, qx)))
        for kernel in ("poly", "rbf"):
            out[f"krr_{kernel}"].append(err(jax.vmap(lambda a, b, q: baselines.kernel_ridge(
                a, b, q, kernel, ridges, degree))(prompt_x, prompt_y, qx)))
        # GD on the prompt costs steps x width per task: it sees the first TWO_LAYER_TASKS test tasks only.
        n = min(TWO_LAYER_TASKS, x.shape[0])
        keys = jax.random.split(jax.random.fold_in(key, N), n)
        out["two_layer"].append(jnp.mean((jax.vmap(lambda a, b, q, k: baselines.two_layer_gd(a, b, q, k))(
            prompt_x[:n], prompt_y[:n], qx[:n], keys) - qy[:n]) ** 2, axis=1))
    return {name: jnp.stack(v) for name, v in out.items()}


class State(NamedTuple):
    """params, opt_state: the transformer's; loss: its last training batch's loss."""
    params: Any
    opt_state: Any
    loss: jax.Array


def _keys(key):
    """(stage I, stage II, test tasks, floor, baselines, transformer) keys: `setup` and `init` get the same key."""
    return jax.random.split(key, 6)


def setup(config: Config, key) -> dict:
    """Every number computed before the transformer trains: the two-stage model (W, b, Gamma per length), its
    in-context errors, the baselines', the projection floor, the test prompts (test_x, test_y) and the subspaces."""
    U, U_test = _subspaces(config)
    c = _link(config)
    k_stage1, k_stage2, k_test, k_floor, k_base, _ = _keys(key)
    W, b = model.stage1(k_stage1, U, c, config.width, config.stage1_tasks(), config.prompt_stage1, config.noise,
                        config.link_noise, config.init_gamma)
    lengths = config.lengths()
    test = data.sample_tasks(k_test, U_test, c, config.test_tasks, config.prompt_length + QUERIES, config.noise,
                             config.link_noise)
    gammas, icl = [], []
    for N in lengths:
        Gamma = model.stage2(jax.random.fold_in(k_stage2, N), W, b, U, c, config.tasks_stage2, N, config.noise,
                             config.link_noise, config.ridge)
        pred = jax.vmap(lambda x, y: model.predict(W, b, Gamma, x[:N], y[:N], x[-QUERIES:]))(test.x, test.y)
        icl.append(jnp.mean((pred - test.y[:, -QUERIES:]) ** 2, axis=1))
        gammas.append(Gamma)
    n_floor = min(config.test_tasks, FLOOR_TASKS)
    floor = jax.lax.map(lambda a: model.projection_floor(a[0], W, b, a[1], a[2], config.noise, FLOOR_SAMPLES),
                        (jax.random.split(k_floor, n_floor), test.beta[:n_floor], test.link[:n_floor]),
                        batch_size=FLOOR_CHUNK)
    errors = dict(icl=jnp.stack(icl), **_baseline_errors(config, k_base, test.x, test.y, lengths))
    return dict(subspace=U, test_subspace=U_test, W=W, b=b, Gamma=jnp.stack(gammas),
                alignment=model.alignment(W, U), floor=floor, test_x=test.x, test_y=test.y,
                **{f"error_{name}": e for name, e in errors.items()})


def init(config: Config, theory: dict, key) -> State:
    """The transformer's parameters and Adam state (a zero placeholder without a transformer)."""
    dtype = theory["subspace"].dtype
    if config.transformer_layers:
        params, opt_state = transformer.init(_keys(key)[5], _module(config), config.dim, _optimizer(config))
    else:
        params, opt_state = jnp.zeros((), dtype), ()
    return State(params, opt_state, jnp.zeros((), dtype))


def _module(config: Config) -> transformer.Transformer:
    return transformer.Transformer(layers=config.transformer_layers, width=config.transformer_width,
                                   heads=config.transformer_heads)


def _optimizer(config: Config):
    return transformer.adam(config.lr)


def step(config: Config, theory: dict, state: State, key) -> State:
    if not config.transformer_layers:
        return state
    U, _ = _subspaces(config)
    # Sequences of N* + 1 samples train every prompt length 0..N* at once.
    params, opt_state, loss = transformer.train_step(state.params, state.opt_state, key, U, _link(config),
                                                     config.noise, config.link_noise, config.batch,
                                                     config.prompt_length + 1, _optimizer(config))
    return state._replace(params=params, opt_state=opt_state, loss=loss)


def _transformer_errors(config: Config, th: dict, state: State):
    """(length, task) squared errors of the transformer's prediction of sample N after a prompt of N samples."""
    lengths = config.lengths()
    seq = config.prompt_length + 1
    pred = transformer.predict_at(state.params, th["test_x"][:, :seq], th["test_y"][:, :seq], lengths)
    target = th["test_y"][:, jnp.asarray(lengths)]  # (task, length)
    return ((pred - target) ** 2).T


def record(config: Config, theory: dict, state: State) -> dict[str, jax.Array]:
    """train_loss: the transformer's last batch loss (all prompt lengths); transformer_error: its in-context error
    at each length (mean over test tasks); NaN without a transformer."""
    if not config.transformer_layers:
        nan = jnp.full((len(config.lengths()),), jnp.nan, state.loss.dtype)
        return dict(train_loss=jnp.full((), jnp.nan, state.loss.dtype), transformer_error=nan)
    return dict(train_loss=state.loss, transformer_error=jnp.mean(_transformer_errors(config, theory, state), axis=1))


def _padded(errors, tasks: int):
    """errors (..., n) NaN-padded to (..., tasks)."""
    pad = [(0, 0)] * (errors.ndim - 1) + [(0, tasks - errors.shape[-1])]
    return jnp.pad(errors, pad, constant_values=jnp.nan)


def final(config: Config, th: dict, state: State) -> dict[str, jax.Array]:
    """Per learner `error_<learner>` and `error_<learner>_se` (length,) and the per-task errors
    `task_error_<learner>` (length, task), NaN-padded where a learner saw fewer tasks; `floor`, `floor_se` and
    `task_floor` (task,); stage I's `alignment`; the subspaces, W, b and Gamma (length, neuron, neuron2); the prompt
    lengths."""
    tasks = config.test_tasks
    out = {name: th[name] for name in ("subspace", "test_subspace", "W", "b", "Gamma", "alignment")}
    out["lengths"] = jnp.asarray(config.lengths(), jnp.int32)
    out["floor"], out["floor_se"] = _mean_se(th["floor"])
    out["task_floor"] = _padded(th["floor"], tasks)
    names = LEARNERS + (("transformer",) if config.transformer_layers else ())
    for name in names:
        errors = _transformer_errors(config, th, state) if name == "transformer" else th[f"error_{name}"]
        out[f"error_{name}"], out[f"error_{name}_se"] = _mean_se(errors)
        out[f"task_error_{name}"] = _padded(errors, tasks)
    if not config.transformer_layers:
        nan = jnp.full((len(config.lengths()),), jnp.nan, th["floor"].dtype)
        out["error_transformer"], out["error_transformer_se"] = nan, nan
        out["task_error_transformer"] = jnp.full((len(config.lengths()), tasks), jnp.nan, nan.dtype)
    return out


def workspace(config: Config) -> int:
    """Bytes of the temporaries: stage II's normal equations (m^2 x m^2) dominate, with a chunk of tasks' features
    and the transformer's activations."""
    return jnp.dtype(jnp.result_type(float)).itemsize * (
        2 * config.width ** 4 + model.TASK_CHUNK * (config.prompt_length + QUERIES) * (config.width + config.dim)
        + 8 * config.batch * (2 * config.prompt_length + 2) * max(config.transformer_width, 1) * 4)


_NAMES = {"icl": "the pretrained model (Algorithm 1)", "linear": "linear ridge on the prompt",
          "krr_poly": "polynomial kernel ridge on the prompt", "krr_rbf": "RBF kernel ridge on the prompt",
          "two_layer": "a two-layer net trained by GD on the prompt", "transformer": "the trained transformer"}
OUTPUTS = {
    "train_loss": Output("the transformer's last training batch loss (all prompt lengths)"),
    "transformer_error": Output("the transformer's in-context error, mean over test tasks", dims=("length",)),
    "subspace": Output("U, the pretraining subspace", dims=("feature", "direction"), seedless=True),
    "test_subspace": Output("the test tasks' subspace (U, or a fresh one out of distribution)",
                            dims=("feature", "direction"), seedless=True),
    "W": Output("stage I first-layer weights", dims=("neuron", "feature")),
    "b": Output("stage I biases", dims=("neuron",)),
    "Gamma": Output("stage II attention matrix Gamma per prompt length", dims=("length", "neuron", "neuron2")),
    "alignment": Output("stage I alignment mean_j |P_S w_j| / |w_j| (1 in S, ~sqrt(r/d) at random)"),
    "lengths": Output("prompt lengths N", units="count", dims=("length",), seedless=True),
    # The floor depends on the seed's stage I features: a per-seed theory value, not a seedless one.
    "floor": Output("projection floor min_a E(y - a.phi(x))^2 on stage I's features, the in-context error's limit as "
                    "N* -> infinity, mean over tasks", predicts="error_icl"),
    "floor_se": Output("standard error of the floor over tasks"),
    "task_floor": Output("the floor per test task (NaN past FLOOR_TASKS)", dims=("task",)),
    **{f"error_{n}": Output(f"in-context squared error of {d}, mean over test tasks", dims=("length",))
       for n, d in _NAMES.items()},
    **{f"error_{n}_se": Output(f"standard error over test tasks of error_{n}", dims=("length",)) for n in _NAMES},
    **{f"task_error_{n}": Output(f"in-context squared error of {d} per test task (NaN where not evaluated)",
                                 dims=("length", "task")) for n, d in _NAMES.items()},
}
