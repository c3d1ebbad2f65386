"""Benchmark of `rft_vanishing_gradients` on the machine it runs on: exact-RFT GD steps per second of a tabular policy
(64 inputs, K = 50), the engine's jitted scan against a NumPy loop of the same update.

    python benchmarks/rft_vanishing_gradients.py          # about 20 seconds

Both run float64 and are checked to agree before timing.
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
from dynamics import trajectory  # noqa: E402
from sims.rft_vanishing_gradients import SIMULATOR, sim  # noqa: E402

STEPS = 20000


def numpy_rft(p0, K, lr, steps):
    """GD on the tabular logits z (n, K) along p * (r - V), reward 1[y = y*] with y* = i mod K."""
    n = p0.size
    y = np.arange(n) % K
    r = np.eye(K)[y]
    z = np.where(r > 0, np.log((K - 1) * p0 / (1 - p0))[:, None], 0.0)
    for _ in range(steps):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        V = (p * r).sum(axis=1, keepdims=True)
        z = z + lr * p * (r - V)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True) * r).sum(axis=1)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # --help; no options
    config = sims.make_config("rft_vanishing_gradients", inputs=64, outputs=50, p0=0.1, p0_min=1e-3, lr=0.05,
                              steps=STEPS, record_every=STEPS)
    prepared = sim.prepare(config)
    run = jax.jit(lambda c, k, pr: trajectory.simulate(SIMULATOR.simulation, c, k, pr, steps=STEPS,
                                                       record_every=STEPS))
    t0 = time.perf_counter()
    out = jax.block_until_ready(run(config, jax.random.key(0), prepared))
    compile_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.block_until_ready(run(config, jax.random.key(0), prepared))
    engine = time.perf_counter() - t0
    p0 = np.exp(np.linspace(np.log(0.1), np.log(1e-3), 64))
    t0 = time.perf_counter()
    V = numpy_rft(p0, 50, 0.05, STEPS)
    reference = time.perf_counter() - t0
    agree = np.max(np.abs(np.asarray(out["final_reward"]) - V))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}, "
          f"numpy {np.__version__}, {jax.devices()[0].platform}, float64")
    print(f"tabular RFT, n=64, K=50, {STEPS} steps; engine and NumPy rewards agree to {agree:.1e}")
    print(f"engine: {STEPS / engine:,.0f} steps/s (compile {compile_seconds:.2f}s, records and passage times "
          f"included); NumPy: {STEPS / reference:,.0f} steps/s; engine / NumPy = {reference / engine:.1f}x")


if __name__ == "__main__":
    main()
