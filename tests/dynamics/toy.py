"""A toy simulator for the engine's own tests, knowing no paper: a random walk x <- a x + s xi of `walkers` walkers,
whose context is a constant offset vector (so the context, the state and the records have known sizes)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dynamics.config import config, param
from dynamics.simulator import Output, Simulator, prediction


@config
class Config:
    walkers: int = param(8, "walkers", units="count", low=1)
    width: int = param(3, "entries of the context's offset vector", units="count", low=1)
    decay: float = param(0.5, "a, the walk's contraction", units="1", traced=True, low=0.0)
    noise: float = param(1.0, "s, the noise scale", units="1", traced=True, low=0.0)
    steps: int = param(10, "steps", units="count", low=1)
    record_every: int = param(5, "steps between records", units="count", low=1)


def setup(config, key):
    return {"offset": jnp.arange(config.width, dtype=jnp.result_type(float))}


def init(config, context, key):
    return jax.random.normal(key, (config.walkers,), jnp.result_type(float))


def kick(key, shape, dtype):
    """xi ~ N(0, I): looked up at trace time, so a test can patch it (a mutation of a function the sim calls)."""
    return jax.random.normal(key, shape, dtype)


def step(config, context, x, key):
    return config.decay * x + config.noise * kick(key, x.shape, x.dtype)


def record(config, context, x):
    return {"mean_square": jnp.mean(x ** 2)}


def final(config, context, x):
    return {"walkers": x, "offset": context["offset"],
            "theory_mean_square": jnp.asarray(config.noise ** 2 / (1 - config.decay ** 2), x.dtype)}


SIMULATOR = Simulator(
    name="toy", config=Config, setup=setup, init=init, step=step, record=record, final=final,
    outputs={"mean_square": Output("mean of x^2 over walkers"), "walkers": Output("x", dims=("walker",)),
             "offset": Output("the context's offset", dims=("entry",), seedless=True),
             "theory_mean_square": prediction("s^2 / (1 - a^2)", predicts="mean_square")},
    compare=lambda ds: [], presets={"fast": {"decay": 0.1}, "slow": {"decay": 0.9}})
