"""Benchmark of `ntk_stability` on the machine it runs on, in float64 (the stability estimates are differences of
nearby runs):

    python benchmarks/ntk_stability.py          # about a minute

1. GD steps per second of one data draw with its 16 stability replicas (n = 200, d = 10, m = 64, softplus, R = 8:
   S, 8 replace-one and 8 delete-one sets): the engine's `sim.step` scanned under jit, every replica in one vmapped
   step, against NumPy doing the same step for all replicas at once with batched matmuls (forward and backward by
   hand). Checked first: after 50 steps both give parameters that agree to 1e-10.
2. A 16-seed run (the steps, records and the NTK margin of each seed): one jitted `vmap` over the seeds, the way a
   sweep runs them, against a Python loop of 16 calls of the compiled single-seed program.
3. Cold compile seconds of the default run's programs (`python run.py --sim=ntk_stability`: its ladder n = 50 ... 400,
   four programs per n), run first, as the engine compiles them (here in float64), beside their run seconds.

Compile seconds are reported apart; the best of 3 timed calls is reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import sims  # noqa: E402
from dynamics.simulator import simulate  # noqa: E402
from sims.ntk_stability import SIMULATOR  # noqa: E402
from sims.ntk_stability import sim  # noqa: E402

PROBLEM = dict(samples=200, dim=10, width=64, activation="softplus", lr=2.0, replicas=8, test_samples=1000)
STEPS, CHECK_STEPS, REPEATS, SEEDS = 400, 50, 3, 16


def numpy_gd(W, v, X, y, c, lr, steps):
    """Full-batch GD of Phi = v . softplus(W x / sqrt(d)) / sqrt(m) on the weighted logistic risk, for every replica
    at once: W (r, m, d), v (r, m), X (r, n, d), y and c (r, n)."""
    m, d = W.shape[1:]
    total = c.sum(axis=1, keepdims=True)
    for _ in range(steps):
        Z = np.matmul(X, W.transpose(0, 2, 1)) / np.sqrt(d)             # (r, n, m)
        H = np.logaddexp(0.0, Z)
        f = np.einsum("rnm,rm->rn", H, v) / np.sqrt(m)
        g = -c * y / (1.0 + np.exp(y * f)) / total                       # dF_hat/df
        grad_v = np.einsum("rnm,rn->rm", H, g) / np.sqrt(m)
        back = g[:, :, None] * v[:, None, :] / np.sqrt(m) / (1.0 + np.exp(-Z))
        grad_W = np.matmul(back.transpose(0, 2, 1), X) / np.sqrt(d)
        W, v = W - lr * grad_W, v - lr * grad_v
    return W, v


def best(fn) -> float:
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # --help; no options
    default = sims.load("ntk_stability").scaling_grid(sims.make_config("ntk_stability"))
    ladder = sims.sweep("ntk_stability", default, 1)
    config = sims.make_config("ntk_stability", steps=STEPS, record_every=STEPS, **PROBLEM)
    context = sim.setup(config, jax.random.key(0))
    state = sim.init(config, context, jax.random.key(0))

    def gd(steps):
        def run(state, key):
            return jax.lax.scan(lambda s, k: (sim.step(config, context, s, k), None), state,
                                jax.random.split(key, steps))[0].params
        return jax.jit(run)

    args = [np.asarray(x) for x in (state.params["first"], state.params["out"], context.X, context.y, context.weights)]
    engine_check = gd(CHECK_STEPS)(state, jax.random.key(1))
    W, v = numpy_gd(*args, config.lr, CHECK_STEPS)
    agree = max(np.max(np.abs(np.asarray(engine_check["first"]) - W)),
                np.max(np.abs(np.asarray(engine_check["out"]) - v)))
    assert agree < 1e-10, agree

    t0 = time.perf_counter()
    run = gd(STEPS).lower(state, jax.random.key(1)).compile()
    compile_steps = time.perf_counter() - t0
    engine = best(lambda: jax.block_until_ready(run(state, jax.random.key(1))))
    reference = best(lambda: numpy_gd(*args, config.lr, STEPS))

    keys = jax.random.split(jax.random.key(2), SEEDS)
    one = jax.jit(lambda k: simulate(SIMULATOR, config, k))
    batched = jax.jit(jax.vmap(lambda k: simulate(SIMULATOR, config, k)))
    t0 = time.perf_counter()
    one = one.lower(keys[0]).compile()
    batched = batched.lower(keys).compile()
    compile_sweep = time.perf_counter() - t0
    loop = best(lambda: [jax.block_until_ready(one(k)) for k in keys])
    vmapped = best(lambda: jax.block_until_ready(batched(keys)))

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}, "
          f"numpy {np.__version__}, {jax.devices()[0].platform}, float64")
    print(f"GD with 1 + 2R = {1 + 2 * config.replicas} replicas, n = 200, d = 10, m = 64, {STEPS} steps; engine and "
          f"NumPy parameters agree to {agree:.1e} after {CHECK_STEPS} steps")
    print(f"  engine: {STEPS / engine:,.0f} steps/s (compile {compile_steps:.1f}s); NumPy (batched matmuls): "
          f"{STEPS / reference:,.0f} steps/s; engine / NumPy = {reference / engine:.1f}x")
    print(f"{SEEDS} seeds, each {STEPS} steps with records and the NTK margin: vmapped {vmapped:.2f}s, loop of "
          f"{SEEDS} compiled calls {loop:.2f}s; loop / vmapped = {loop / vmapped:.1f}x (compile {compile_sweep:.1f}s)")
    print(f"default run (ladder {default}, 1 seed): cold compile {ladder.attrs['compile_seconds']:.1f}s in "
          f"{ladder.attrs['compilations']} programs, run {ladder.attrs['run_seconds']:.1f}s")


if __name__ == "__main__":
    main()
