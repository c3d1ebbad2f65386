"""`jepa_vs_mae` dynamics: GD (or minibatch SGD) on a deep linear encoder and predictor under the JEPA or MAE
objective, each feature's gains recorded against time t = lr * step beside the scalar ODE's.

    W_l <- W_l - lr dLoss/dW_l,  V <- V - lr dLoss/dV,  (jepa_ema) target_l <- tau target_l + (1 - tau) W_l
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from configs.jepa_vs_mae import Config
from dynamics.simulator import Output, prediction
from sims.jepa_vs_mae import model, theory

__all__ = ["OUTPUTS", "State", "final", "init", "record", "setup", "step", "workspace"]


State = model.Weights


def _features(config: Config, dtype):
    lam, rho = config.features()
    return jnp.asarray(lam, dtype), jnp.asarray(rho, dtype)


def _keys(key):
    """(rotation key, init key): setup and init receive the same key."""
    return tuple(jax.random.split(key))


def setup(config: Config, key) -> dict:
    """The context: the covariances, the output basis Q_L of the init, and the theory (the ODE's v at every record,
    critical times, their Euler delay, fixed points)."""
    dtype = jnp.result_type(float)
    lam, rho = _features(config, dtype)
    d, L = lam.shape[0], config.depth
    k_rot, k_init = _keys(key)
    rot = model.rotation(k_rot, d, config.rotation, dtype) if config.structure == "full" else jnp.eye(1, dtype=dtype)
    cov = model.covariances(lam, rho, rot) if config.structure == "full" else {
        "sxx": jnp.diag(lam / rho), "syx": jnp.diag(lam), "syy": jnp.diag(lam * rho + lam / rho),
        "b": jnp.diag(rho), "sx": jnp.diag(jnp.sqrt(lam / rho))}
    _, q = model.init_weights(config.objective, config.structure, config.init, L, d, config.init_scale, k_init, dtype)
    records = config.steps // config.record_every + 1
    obj = config.objective
    path = theory.ode_path(obj, lam, rho, L, config.init_scale, config.lr, records, config.record_every)
    return {"cov": cov, "q": q, "ode_v": path, "lam": lam, "rho": rho,
            "critical_time": theory.critical_time(obj, lam, rho, L, config.init_scale),
            "euler_shift": theory.euler_shift(obj, lam, rho, L, config.init_scale, config.lr),
            "fixed_point": theory.encoder_fixed_point(obj, rho, L),
            "predictor_fixed_point": theory.predictor_fixed_point(obj, rho, L)}


def init(config: Config, context: dict, key) -> State:
    _, k_init = _keys(key)
    d = context["lam"].shape[0]
    w, _ = model.init_weights(config.objective, config.structure, config.init, config.depth, d, config.init_scale,
                              k_init, context["lam"].dtype)
    return State(w.layers, w.predictor, w.target)


def _moments(config: Config, context: dict, key) -> dict:
    if config.batch == 0:
        return context["cov"]
    return model.sample_moments(key, context["cov"], config.batch)


def step(config: Config, context: dict, state: State, key) -> State:
    m = _moments(config, context, key)
    g_layers, g_pred = jax.grad(model.loss, argnums=(1, 2))(config.objective, state.layers, state.predictor,
                                                            state.target, m)
    layers = state.layers - config.lr * g_layers
    predictor = state.predictor - config.lr * g_pred
    tau = config.ema if config.objective == "jepa_ema" else 0.0
    return State(layers, predictor, tau * state.target + (1 - tau) * layers)


def _aligned(config: Config, context: dict, state: State):
    """Encoder W and predictor V in the init's output basis (Q_L^T W, Q_L^T V Q_L or V Q_L for MAE)."""
    W = model.encoder(state.layers)
    if config.structure == "diagonal":
        return W, state.predictor
    q = context["q"]
    V = state.predictor @ q if config.objective == "mae" else q.T @ state.predictor @ q
    return q.T @ W, V


def record(config: Config, context: dict, state: State) -> dict:
    """encoder_gain (d,): the diagonal of W (in the init's output basis), predictor_gain (d,): of V; off_diagonal:
    |W - diag W|_F; loss: the population loss."""
    W, V = _aligned(config, context, state)
    diag = (lambda A: A) if W.ndim == 1 else jnp.diagonal
    off = jnp.zeros((), W.dtype) if W.ndim == 1 else jnp.linalg.norm(W - jnp.diag(jnp.diagonal(W)))
    return {"encoder_gain": diag(W), "predictor_gain": diag(V), "off_diagonal": off,
            "loss": model.loss(config.objective, state.layers, state.predictor, state.target, context["cov"])}


def final(config: Config, context: dict, state: State) -> dict:
    L = config.depth
    t = config.lr * config.record_every * jnp.arange(context["ode_v"].shape[0])
    return {"covariance": context["lam"], "coefficient": context["rho"], "time": t,
            "theory_encoder_gain": context["ode_v"] ** L, "theory_predictor_gain": context["ode_v"],
            "theory_critical_time": context["critical_time"], "theory_euler_shift": context["euler_shift"],
            "theory_fixed_point": context["fixed_point"],
            "theory_predictor_fixed_point": context["predictor_fixed_point"]}


def workspace(config: Config) -> int:
    """Bytes of a step's temporaries: a few (d, d) products per layer (full) or vectors (diagonal)."""
    d = len(config.features()[0])
    per = d * d if config.structure == "full" else d
    return 16 * (config.depth + 2) * per * jnp.dtype(jnp.result_type(float)).itemsize


OUTPUTS = {
    "encoder_gain": Output("w_i, the diagonal of the encoder W = W_L ... W_1", dims=("feature",)),
    "predictor_gain": Output("v_i, the diagonal of the predictor V", dims=("feature",)),
    "off_diagonal": Output("|W - diag W|_F, the encoder's off-diagonal mass"),
    "loss": Output("population loss 1/2 E|V W x - T y|^2"),
    "covariance": Output("lambda_i = E[y_i x_i]", dims=("feature",), seedless=True),
    "coefficient": Output("rho_i = lambda_i / sigma_i^2", dims=("feature",), seedless=True),
    "time": Output("t = lr * step of each record", dims=("record",), seedless=True),
    "theory_encoder_gain": prediction("wbar_i(t) of the scalar ODE (RK4), at each record", "encoder_gain",
                                      dims=("record", "feature")),
    "theory_predictor_gain": prediction("v_i(t) = wbar_i^(1/L) of the scalar ODE, at each record", "predictor_gain",
                                        dims=("record", "feature")),
    "theory_critical_time": prediction("time to half the fixed point under the ODE (closed form; MAE quadrature)",
                                       "encoder_gain", "time", dims=("feature",)),
    "theory_euler_shift": prediction("GD's first-order delay (lr/2) ln(f(v1)/f(v0)) behind the ODE's time",
                                     "encoder_gain", "time", dims=("feature",)),
    "theory_fixed_point": prediction("wbar*: rho^L (JEPA), rho^(L/(L+1)) (MAE)", "encoder_gain", dims=("feature",)),
    "theory_predictor_fixed_point": prediction("v*: rho (JEPA), rho^(1/(L+1)) (MAE)", "predictor_gain",
                                               dims=("feature",)),
}
