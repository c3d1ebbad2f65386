"""Benchmark of `implicit_bias` on the machine it runs on: SignGD steps per second on the paper's recipe (k = 10,
d = 25, 500 points), the engine's jitted scan against a NumPy loop of the same log-space update.

    python benchmarks/implicit_bias.py          # about 30 seconds

Both run float64 (the theory checks need it) and are checked to agree before timing.
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
from sims.implicit_bias import SIMULATOR, sim  # noqa: E402

STEPS = 2000


def numpy_signgd(x, y, k, steps, lr=0.1, decay=0.5):
    """SignGD with the log-space cross-entropy gradient, in plain NumPy."""
    W = np.zeros((k, x.shape[1]))
    onehot = np.eye(k, dtype=bool)[y]
    for t in range(1, steps + 1):
        z = x @ W.T
        log_p = z - z.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        log_w = np.where(onehot, -np.inf, log_p)
        off = np.exp(log_w - log_w.max())
        dz = off - onehot * off.sum(axis=1, keepdims=True)
        W -= lr * t ** -decay * np.sign(dz.T @ x)
    return W


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # --help; no options
    config = sims.make_config("implicit_bias", optimizer="signgd", steps=STEPS, record_every=STEPS)
    refs = sim.prepare(config)
    x, y = np.asarray(refs["x"]), np.asarray(refs["y"])
    run = jax.jit(lambda c, k, r: trajectory.simulate(SIMULATOR.simulation, c, k, r, steps=STEPS, record_every=STEPS))
    t0 = time.perf_counter()
    out = jax.block_until_ready(run(config, jax.random.key(0), refs))
    compile_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.block_until_ready(run(config, jax.random.key(0), refs))
    engine = time.perf_counter() - t0
    t0 = time.perf_counter()
    W = numpy_signgd(x, y, config.classes, STEPS)
    reference = time.perf_counter() - t0
    agree = np.max(np.abs(np.asarray(out["weights"]) - W))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}, "
          f"numpy {np.__version__}, {jax.devices()[0].platform}, float64")
    print(f"SignGD, k=10, d=25, n=500, {STEPS} steps; engine and NumPy weights agree to {agree:.1e}")
    print(f"engine: {STEPS / engine:,.0f} steps/s (compile {compile_seconds:.2f}s); NumPy: {STEPS / reference:,.0f} "
          f"steps/s; engine / NumPy = {reference / engine:.1f}x")


if __name__ == "__main__":
    main()
