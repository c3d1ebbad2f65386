"""`ntk_stability` dynamics: GD (or mini-batch SGD) on the logistic loss, run side by side on the training set S and
on its stability replicas, with the losses, the distance from init and the stability estimates recorded along the
way, and the NTK margin and the bound's terms computed at the end.

Replicas (all vmapped in one step, from the same init w_0 and the same batch indices, i.e. common random numbers):
  r = 0: S;  r = 1..R: S^(i) with z_i replaced by a fresh z'_i (i = r - 1);  r = R+1..2R: S \\ {z_i} (weight 0).
The replace-one identity, exact for any algorithm A (Bousquet and Elisseeff 2002, Lemma 7):

    E[F(A(S)) - F_hat(A(S))] = E[l(A(S^(i)); z_i) - l(A(S); z_i)]                                        (gap)

Model stability delta(n) = mean_i ||w_T(S) - w_T(S^(i))||. The paper analyses the delete-one (leave-one-out)
variant, reported beside it. Under SGD a deleted sample keeps its place in the index draw with weight 0, and the
batch mean is rescaled by n / (n - 1), so the step stays an unbiased gradient of F_hat on S \\ {z_i}.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from configs.ntk_stability import Config
from dynamics.simulator import Output
from sims.ntk_stability import data as data_lib
from sims.ntk_stability import margin as margin_lib
from sims.ntk_stability import model

__all__ = ["Context", "State", "OUTPUTS", "setup", "init", "step", "record", "final", "workspace", "RECORDS"]

RECORDS = ("train_loss", "test_loss", "train_error", "test_error", "generalization_gap", "distance",
           "stability_replace", "stability_delete", "stability_gap_replace", "stability_gap_delete")


class Context(NamedTuple):
    """The run's constants: w0, the init (no replica axis); X (1+2R, n, d), y (1+2R, n), weights (1+2R, n): each
    replica's training set, replica 0 being S itself; data: `data_lib.Data` without its X and y (they are X[0] and
    y[0]: the training set is stored once, 0.5 GiB at d = 1024 in the XOR ladder)."""
    w0: dict
    X: jax.Array
    y: jax.Array
    weights: jax.Array
    data: data_lib.Data


class State(NamedTuple):
    """params: the replicas' parameters (each leaf with a leading replica axis 1 + 2R); opt: optax state;
    loss_sum: sum over the steps taken of F_hat(w_t(S)) (for the average-iterate bound)."""
    params: dict
    opt: Any
    loss_sum: jax.Array


def _optimizer(config: Config) -> optax.GradientTransformation:
    return optax.sgd(config.step_size())


def _replica_sets(d: data_lib.Data, R: int):
    """X (1+2R, n, d), y, weights (1+2R, n): S, the R replace-one sets and the R delete-one sets."""
    i = jnp.arange(R)
    X = jnp.broadcast_to(d.X, (1 + 2 * R, *d.X.shape)).at[1 + i, i].set(d.X_fresh)
    y = jnp.broadcast_to(d.y, (1 + 2 * R, *d.y.shape)).at[1 + i, i].set(d.y_fresh)
    w = jnp.ones(y.shape, d.X.dtype).at[1 + R + i, i].set(0.0)
    return X, y, w


def setup(config: Config, key) -> Context:
    """The data from (key, data_seed), w_0 with every entry N(0, 1) (folded with the shape, so runs at different
    widths do not share a prefix of their draws), and the replicas' training sets."""
    # fold_in(data key, data_seed) and fold_in(param key, width) in one vmapped call: the same keys, one hash.
    folds = jnp.stack([jnp.asarray(config.data_seed, "uint32"), jnp.asarray(config.width, "uint32")])
    data_key, param_key = jax.vmap(jax.random.fold_in)(jax.random.split(key), folds)
    dtype = jnp.result_type(float)
    d = data_lib.make_data(config, data_key, dtype)
    param_key = jax.random.fold_in(param_key, config.depth)
    w0 = model.init_params(param_key, config.dim, config.width, config.depth, dtype)
    if config.task == "xor" and config.xor_init == "fan_in":  # w_j ~ N(0, I_d / d): w_j . x ~ N(0, 1) (data.py)
        w0 = dict(w0, first=w0["first"] / jnp.sqrt(jnp.asarray(config.dim, dtype)))
    return Context(w0, *_replica_sets(d, config.replicas), d._replace(X=None, y=None))


def init(config: Config, context: Context, key) -> State:
    """Every replica starts at w_0 (common random numbers)."""
    del key
    R = config.replicas
    params = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (1 + 2 * R, *x.shape)), context.w0)
    return State(params, jax.vmap(_optimizer(config).init)(params), jnp.zeros((), context.X.dtype))


def _net(config: Config):
    return model.network(config.task, config.activation, config.second_layer)


def _batch_risk(config: Config, params, X, y, weights, idx):
    """F_hat on the replica's set, or its unbiased mini-batch estimate at indices idx (b,)."""
    if idx is None:
        return model.risk(_net(config), params, X, y, weights)
    losses = model.logistic(y[idx] * _net(config)(params, X[idx]))
    return jnp.sum(weights[idx] * losses) / (idx.shape[0] * jnp.mean(weights))


def step(config: Config, context: Context, state: State, key) -> State:
    b, n = config.batch_size(), config.train_samples()
    idx = jax.random.randint(key, (b,), 0, n) if b else None
    opt = _optimizer(config)

    def one(params, opt_state, X, y, weights):
        grads = jax.grad(_batch_risk, argnums=1)(config, params, X, y, weights, idx)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    current = _replica(state.params, 0)
    loss = model.risk(_net(config), current, context.X[0], context.y[0])
    params, opt_state = jax.vmap(one)(state.params, state.opt, context.X, context.y, context.weights)
    return state._replace(params=params, opt=opt_state, loss_sum=state.loss_sum + loss)


def _replica(params, r):
    return jax.tree_util.tree_map(lambda x: x[r], params)


def _distance(a, b):
    return jnp.linalg.norm(model.flatten(a) - model.flatten(b))


def record(config: Config, context: Context, state: State) -> dict[str, jax.Array]:
    """train_loss F_hat(w_t), test_loss F(w_t) (on the test set), their 0-1 errors and generalization_gap
    F - F_hat, distance ||w_t - w_0||; and, from the replicas, model stability mean_i ||w_t(S) - w_t(S^(i))|| and
    the gap estimate mean_i l(w_t(S^(i)); z_i) - l(w_t(S); z_i), replace-one and delete-one (NaN without them)."""
    d, net, R = context.data, _net(config), config.replicas
    X, y = context.X[0], context.y[0]
    w = _replica(state.params, 0)
    margins_train = y * net(w, X)
    margins_test = d.y_test * net(w, d.X_test)
    train, test = jnp.mean(model.logistic(margins_train)), jnp.mean(model.logistic(margins_test))
    out = dict(train_loss=train, test_loss=test, train_error=jnp.mean(margins_train <= 0),
               test_error=jnp.mean(margins_test <= 0), generalization_gap=test - train,
               distance=_distance(w, context.w0))
    nan = jnp.full((), jnp.nan, train.dtype)
    if not R:
        return {**out, **{name: nan for name in RECORDS[6:]}}
    flat = jax.vmap(model.flatten)(state.params)
    spread = jnp.linalg.norm(flat[1:] - flat[0], axis=1)
    # l(w_r; z_i) at the replaced point z_i = X[i] for every replica r, i < R: (1+2R, R).
    X_i, y_i = X[:R], y[:R]
    loss_at = jax.vmap(lambda p: model.logistic(y_i * net(p, X_i)))(state.params)
    diag = jnp.arange(R)
    out.update(stability_replace=jnp.mean(spread[:R]), stability_delete=jnp.mean(spread[R:]),
               stability_gap_replace=jnp.mean(loss_at[1 + diag, diag] - loss_at[0, diag]),
               stability_gap_delete=jnp.mean(loss_at[1 + R + diag, diag] - loss_at[0, diag]))
    return out


def final(config: Config, context: Context, state: State) -> dict[str, jax.Array]:
    """The data (not for xor, whose sets are large); the NTK Gram at w_0 and the margin (both programs), p*, u* (P,);
    the reference point
    w* = w_0 + (log T / gamma) u* with F_hat(w*), the average-iterate training loss and the bound's terms:
    theory_train_bound = F_hat(w*) + ||w* - w_0||^2 / (eta T) and rho^2 / (eta T), rho^2 / n at rho = ||w_T - w_0||;
    ntk_margin_converged says whether both margin programs met their optimality conditions."""
    net, T, eta, w0 = _net(config), config.steps, config.step_size(), context.w0
    X, y = context.X[0], context.y[0]
    dtype = X.dtype
    w = _replica(state.params, 0)
    out = dict(average_train_loss=state.loss_sum / T, final_train_loss=model.risk(net, w, X, y))
    rho_sq = _distance(w, w0) ** 2
    out.update(bound_optimization=rho_sq / (eta * T), bound_stability=rho_sq / config.train_samples())
    if config.task != "xor":
        K = model.ntk_gram(net, w0, X)
        m = margin_lib.ntk_margin(K, y, config.margin_iterations)
        u = model.vjp_direction(net, w0, X, m.weights * y)
        u = jax.tree_util.tree_map(lambda x: x / m.gamma, u)
        radius = jnp.log(jnp.asarray(T, dtype)) / m.gamma
        w_star = jax.tree_util.tree_map(lambda a, b: a + radius * b, w0, u)
        attained = jnp.min(y * jax.jvp(lambda p: net(p, X), (w0,), (u,))[1])
        reference = model.risk(net, w_star, X, y)
        out.update(inputs=X, labels=y, ntk_gram=K, ntk_margin=m.gamma, ntk_margin_dual=m.gamma_dual,
                   ntk_margin_converged=m.converged, ntk_weights=m.weights,
                   ntk_dual=m.dual, ntk_direction=model.flatten(u), ntk_margin_attained=attained,
                   reference_radius=radius, reference_train_loss=reference,
                   theory_train_bound=reference + radius ** 2 / (eta * T))
    return out


def _workspace_entries(config: Config) -> int:
    """Per replica, the step's activations and gradients (a few (b, m) arrays per layer and the parameters) and its
    training set; the test set's activations; the NTK Gram, its Jacobian and its programs' (n, n) temporaries."""
    n, b = config.train_samples(), config.batch_size() or config.train_samples()
    m, d, L = config.width, config.dim, config.depth
    per_replica = 4 * b * m * L + 3 * (m * d + (L - 1) * m * m) + n * (d + 2)
    P = m * d + (L - 1) * m * m + m
    gram = 8 * n * n + min(n * P, model.JACOBIAN_LIMIT) if config.task != "xor" else 0
    return (1 + 2 * config.replicas) * per_replica + 4 * config.test_samples * (m + d) + gram


def workspace(config: Config) -> int:
    return jnp.dtype(jnp.result_type(float)).itemsize * _workspace_entries(config)


OUTPUTS = {
    "train_loss": Output("training loss F_hat(w_t) on S"),
    "test_loss": Output("test loss F(w_t), on the test set"),
    "train_error": Output("training 0-1 error"),
    "test_error": Output("test 0-1 error"),
    "generalization_gap": Output("F(w_t) - F_hat(w_t)"),
    "distance": Output("distance from init |w_t - w_0|"),
    "stability_replace": Output("model stability mean_i |w_t(S) - w_t(S^(i))|, replace-one"),
    "stability_delete": Output("model stability mean_i |w_t(S) - w_t(S minus z_i)|, delete-one"),
    "stability_gap_replace": Output("replace-one estimate of the generalization gap, mean_i l(w(S^(i)); z_i) - "
                                    "l(w(S); z_i)", predicts="generalization_gap"),
    "stability_gap_delete": Output("delete-one estimate of the generalization gap"),
    "average_train_loss": Output("average-iterate training loss (1/T) sum_t F_hat(w_t)"),
    "final_train_loss": Output("last-iterate training loss F_hat(w_T)"),
    "bound_optimization": Output("rho^2 / (eta T), rho = |w_T - w_0|"),
    "bound_stability": Output("rho^2 / n, the stability term without its e^O(L) constant"),
    "inputs": Output("training inputs x_i", dims=("sample", "feature")),
    "labels": Output("training labels y_i in {-1, 1}", dims=("sample",)),
    "ntk_gram": Output("NTK Gram K_ij = <grad f(x_i), grad f(x_j)> at w_0", dims=("sample", "sample2")),
    "ntk_margin": Output("NTK margin gamma (primal program)"),
    "ntk_margin_dual": Output("NTK margin gamma (dual program)"),
    "ntk_margin_converged": Output("1 if both margin programs met their optimality conditions"),
    "ntk_weights": Output("p*, the margin's optimal weights on the samples", dims=("sample",)),
    "ntk_dual": Output("the dual program's solution", dims=("sample",)),
    "ntk_direction": Output("u*, the max-NTK-margin direction in parameter space", dims=("parameter",)),
    "ntk_margin_attained": Output("min_i y_i <grad f(x_i), u*> (equals gamma at the optimum)"),
    "reference_radius": Output("log T / gamma, the reference point's distance from w_0"),
    "reference_train_loss": Output("F_hat(w*) at w* = w_0 + (log T / gamma) u*"),
    "theory_train_bound": Output("F_hat(w*) + |w* - w_0|^2 / (eta T), the training bound",
                                 predicts="average_train_loss"),
}
