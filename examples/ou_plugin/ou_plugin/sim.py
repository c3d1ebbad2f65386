"""`ou`: dynamics, theory and report, declared to the engine as one `Simulator`.

Euler-Maruyama:  X_{t+1} = (1 - h k) X_t + sqrt(2 T h) xi_t,  xi_t ~ N(0, I_N),  X_0 = 0.
Exact stationary variance of this chain (not of the continuous process, T/k):  v = 2 T h / (1 - (1 - h k)^2)
= 2 T / (k (2 - h k)), so the recorded mean square (1/N) sum_i X_i^2 has stationary mean v.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dynamics import report
from dynamics.simulator import Output, Simulator, prediction
from ou_plugin.config import PRESETS, Config


def setup(config: Config, key) -> dict:
    """The constants, built once per member and never carried: here only the theory value v."""
    h, k, T = config.lr, config.stiffness, config.temperature
    return {"theory_mean_square": 2 * T / (k * (2 - h * k))}


def init(config: Config, context, key) -> jax.Array:
    """X_0 = 0, shape (N,)."""
    return jnp.zeros(config.particles)


def step(config: Config, context, x: jax.Array, key) -> jax.Array:
    h, k, T = config.lr, config.stiffness, config.temperature
    return (1 - h * k) * x + jnp.sqrt(2 * T * h) * jax.random.normal(key, x.shape, x.dtype)


def record(config: Config, context, x: jax.Array) -> dict:
    return {"mean_square": jnp.mean(x ** 2)}


def final(config: Config, context, x: jax.Array) -> dict:
    return {"final_positions": x, **context}


def compare(ds) -> list:
    """The stationary mean square (second half of the run; seeds are the replicates) equals v."""
    return report.per_point(ds, lambda p, label, cfg, sel: [report.equal(
        "mean_square", label or "-", report.stationary(p.mean_square), float(p.theory_mean_square),
        "exact stationary variance of the Euler-Maruyama chain: 2T / (k (2 - hk))")])


def figure(ds):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.5))
    report.series(ds.mean_square).plot(ax=ax, label="simulated, mean over seeds")
    ax.axhline(float(ds.theory_mean_square.max()), color="k", ls="--", label="exact stationary value")
    ax.legend()
    return fig


SIMULATOR = Simulator(
    name="ou", config=Config, setup=setup, init=init, step=step, record=record, final=final, compare=compare,
    figure=figure, presets=PRESETS,
    outputs={
        "mean_square": Output("mean over particles of X^2", "length^2"),
        "final_positions": Output("X at the last step", "length", dims=("particle",)),
        "theory_mean_square": prediction("exact stationary mean square of the chain", "mean_square", "length^2"),
    },
)
