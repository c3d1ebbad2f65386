"""Benchmark of `implicit_bias` on the machine it runs on, SignGD on the paper's recipe (k = 10, d = 25, 500 points):
(1) steps per second of the engine's jitted scan against a NumPy loop of the same log-space update; (2) members per
program: a 16-, 64- and 256-member lr sweep and a 64-seed sweep against one run, in member-steps per second
(`sweep_scaling.member_scaling`: whole runs, and the stepping rate with what a run pays once cancelled).

    python benchmarks/implicit_bias.py            # about 6 minutes on a 2-core CPU
    python benchmarks/implicit_bias.py --quick    # smaller horizons, 64 members only: under a minute

Everything runs float64 (the theory checks need it); the engine and NumPy are checked to agree before timing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import sims  # noqa: E402
from dynamics import trajectory  # noqa: E402
from sims.implicit_bias import SIMULATOR, sim  # noqa: E402
from sweep_scaling import machine_line, member_scaling  # noqa: E402  (benchmarks/, this script's directory)

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


def part_numpy(steps: int) -> None:
    config = sims.make_config("implicit_bias", optimizer="signgd", steps=steps, record_every=steps)
    refs = sim.prepare(config)
    x, y = np.asarray(refs["x"]), np.asarray(refs["y"])
    run = jax.jit(lambda c, k, r: trajectory.simulate(SIMULATOR.simulation, c, k, r, steps=steps, record_every=steps))
    t0 = time.perf_counter()
    out = jax.block_until_ready(run(config, jax.random.key(0), refs))
    compile_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.block_until_ready(run(config, jax.random.key(0), refs))
    engine = time.perf_counter() - t0
    t0 = time.perf_counter()
    W = numpy_signgd(x, y, config.classes, steps)
    reference = time.perf_counter() - t0
    agree = np.max(np.abs(np.asarray(out["weights"]) - W))
    print(f"\n-- 1. one run against NumPy (numpy {np.__version__})")
    print(f"SignGD, k=10, d=25, n=500, {steps} steps; engine and NumPy weights agree to {agree:.1e}")
    print(f"engine: {steps / engine:,.0f} steps/s (compile {compile_seconds:.2f}s); NumPy: {steps / reference:,.0f} "
          f"steps/s; engine / NumPy = {reference / engine:.1f}x")


def part_members(quick: bool) -> None:
    steps = 100 if quick else 500
    base = sims.make_config("implicit_bias", optimizer="signgd", steps=steps, record_every=steps)
    print("\n-- 2. members per program: an lr sweep and a seed sweep against one run (dynamics.sweep.run_groups)")
    member_scaling("implicit_bias", base, "lr", lambda m: [float(v) for v in np.geomspace(0.01, 1.0, m)],
                   members=(64,) if quick else (16, 64, 256), seed_members=() if quick else (64,),
                   repeats=2 if quick else 3, budget=16_000 if quick else 64_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller horizons, 64 members only (under a minute)")
    args = parser.parse_args()
    print(machine_line())
    part_numpy(200 if args.quick else STEPS)
    part_members(args.quick)


if __name__ == "__main__":
    main()
