"""Benchmark of `jepa_vs_mae` on the machine it runs on: population GD steps per second for JEPA at L = 3, d = 2
(the inversion preset's data), the engine's jitted scan against a NumPy loop of the same full-matrix update.

    python benchmarks/jepa_vs_mae.py          # about 20 seconds

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
from sims.jepa_vs_mae import SIMULATOR  # noqa: E402

STEPS = 50000


def numpy_jepa(lam, rho, L, eps, lr, steps):
    """Full-matrix GD on 1/2 tr(P Sxx P^T) - tr(P Sxy T^T) (+ const), P = V W, T = sg(W), in plain NumPy."""
    d = lam.size
    sxx, syx = np.diag(lam / rho), np.diag(lam)
    layers = [eps ** (1 / L) * np.eye(d) for _ in range(L)]
    V = eps ** (1 / L) * np.eye(d)
    for _ in range(steps):
        prefix = [np.eye(d)]
        for Wl in layers:
            prefix.append(Wl @ prefix[-1])
        W = prefix[-1]
        G = V @ W @ sxx - W @ syx  # dLoss/dP; the target T = W is held fixed (stop-gradient)
        gV = G @ W.T
        gW = V.T @ G
        suffix = np.eye(d)
        grads = [None] * L
        for k in reversed(range(L)):
            grads[k] = suffix.T @ gW @ prefix[k].T
            suffix = suffix @ layers[k]
        layers = [Wl - lr * g for Wl, g in zip(layers, grads)]
        V = V - lr * gV
    W = np.eye(d)
    for Wl in layers:
        W = Wl @ W
    return W


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # --help; no options
    config = sims.make_config("jepa_vs_mae", "inversion", objective="jepa", depth=3, steps=STEPS,
                              record_every=STEPS)
    run = jax.jit(lambda c, k: trajectory.simulate(SIMULATOR.simulation, c, k, steps=STEPS, record_every=STEPS))
    t0 = time.perf_counter()
    out = jax.block_until_ready(run(config, jax.random.key(0)))
    compile_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.block_until_ready(run(config, jax.random.key(0)))
    engine = time.perf_counter() - t0
    lam, rho = (np.array(v) for v in config.features())
    t0 = time.perf_counter()
    W = numpy_jepa(lam, rho, 3, config.init_scale, config.lr, STEPS)
    reference = time.perf_counter() - t0
    agree = np.max(np.abs(np.asarray(out["encoder_gain"][-1]) - np.diag(W)))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}, "
          f"numpy {np.__version__}, {jax.devices()[0].platform}, float64")
    print(f"JEPA population GD, L=3, d=2, {STEPS} steps; engine and NumPy encoder gains agree to {agree:.1e}")
    print(f"engine: {STEPS / engine:,.0f} steps/s (compile {compile_seconds:.2f}s); NumPy: {STEPS / reference:,.0f} "
          f"steps/s; engine / NumPy = {reference / engine:.1f}x")


if __name__ == "__main__":
    main()
