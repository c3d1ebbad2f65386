"""Benchmark of `neural_collapse` on the machine it runs on, everything in float64 (the theory checks need it).

    python benchmarks/neural_collapse.py          # about 65-90 seconds on a 2-core CPU

1. Riemannian GD steps per second at N = 1000 features (k = 10 classes of n = 100, d = 32, tau = 0.5, lr = 0.5):
   the engine (`trajectory.simulate` of `sims.neural_collapse.SIMULATOR`, jitted, one record at the start and one
   at the end) against plain NumPy doing the very same step

       S = H^T H / tau (diagonal masked), P = row softmax of S, A = (P - positives) / (tau N), g = H (A + A^T),
       h_i <- normalize(h_i - lr tau N (g_i - (h_i . g_i) h_i)).

   Checked first: from the engine's own initial features, 20 steps of both give features that agree to 1e-10
   (max absolute difference; they agree to about 5e-16).
2. An 8-temperature sweep at N = 200 (k = 10, n = 20): one jitted `vmap` of `trajectory.simulate` over the
   temperatures (and their prepared refs), the way `dynamics.runner` vmaps sweep members, against a Python loop of
   the 8 single runs through one compiled single-run program (temperature is traced: no recompilation).

Every program is compiled ahead of time (compile seconds reported apart) and run warm; contenders are interleaved
repeat by repeat; the best of the repeats is reported, the median beside it. `prepare` (the relaxation's L-BFGS
optimum and its metrics, on the host) runs before and is not timed; the benchmark passes it few solver iterations,
since only the dynamics are measured. A shared 2-vCPU machine is noisy: read the load averages printed at the start
and the end beside the numbers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo root, for a direct run

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import sims  # noqa: E402
from benchmarks.mfld import _cpu_model, interleaved, machine_lines  # noqa: E402 -- printed and timed alike
from dynamics import trajectory  # noqa: E402
from sims.neural_collapse import SIMULATOR, sim  # noqa: E402

SIMULATION = SIMULATOR.simulation

# Part 1: the problem, engine steps per timed call, NumPy steps per timed call, repeats; the agreement check.
THROUGHPUT = dict(classes=10, per_class=100, dim=32, temperature=0.5, lr=0.5)
STEPS, NUMPY_STEPS, REPEATS = 200, 50, 3
CHECK_STEPS, CHECK_TOL = 20, 1e-10
# Part 2: the sweep's problem, temperatures, steps (record_every = steps) and repeats.
SWEEP = dict(classes=10, per_class=20, dim=32, lr=0.5)
TEMPERATURES = [float(t) for t in np.geomspace(0.3, 1.0, 8)]
SWEEP_STEPS, SWEEP_REPEATS = 500, 3
SOLVER_ITERATIONS = 20  # the relaxation's solver (untimed, host side): its optimum is not used by the timings


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _interleaved(fns: dict, repeats: int) -> dict[str, np.ndarray]:
    """Seconds per call of each function, interleaved repeat by repeat (`benchmarks.mfld.interleaved`), as arrays."""
    return {name: np.asarray(v) for name, v in interleaved(fns, repeats).items()}


def _compiled(fn, *args):
    """(fn jitted and compiled ahead of time for args, compile seconds)."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t0


def simulate_fn(steps: int):
    """The engine's whole run: init, `steps` steps in one scan, a record at the start and at the end, final."""
    return lambda c, k, r: trajectory.simulate(SIMULATION, c, k, r, steps=steps, record_every=steps)


class NumpyRGD:
    """Riemannian GD of unit features on the supervised contrastive loss, in plain NumPy (float64), the same step
    as `sims.neural_collapse.sim`: the masked log-sum-exp gradient g = H (A + A^T) of `model.gradient`, its
    projection onto each sphere's tangent space, the step lr tau N, and the renormalization. Written the way a
    careful NumPy user would: two BLAS products, in-place elementwise passes over the (N, N) similarities."""

    def __init__(self, labels, temperature: float, lr: float):
        labels = np.asarray(labels)
        same = (labels[:, None] == labels[None, :]) & ~np.eye(len(labels), dtype=bool)
        self.positives = same / same.sum(axis=1, keepdims=True)
        self.tau, self.N = float(temperature), len(labels)
        self.step_size = lr * self.tau * self.N
        self.masked = np.finfo(np.float64).min / 4  # as `model._masked`: finite, so no 0 * inf

    def gradient(self, H: np.ndarray) -> np.ndarray:
        S = H.T @ H
        S /= self.tau
        np.fill_diagonal(S, self.masked)
        S -= S.max(axis=1, keepdims=True)
        np.exp(S, out=S)
        S /= S.sum(axis=1, keepdims=True)          # P: the softmax over l != i
        S -= self.positives
        S /= self.tau * self.N                     # A
        return H @ (S + S.T)

    def step(self, H: np.ndarray) -> np.ndarray:
        g = self.gradient(H)
        g -= H * np.sum(H * g, axis=0)             # tangent projection
        H = H - self.step_size * g
        H /= np.linalg.norm(H, axis=0)             # retraction
        return H

    def run(self, H: np.ndarray, steps: int) -> np.ndarray:
        H = np.array(H, np.float64)
        for _ in range(steps):
            H = self.step(H)
        return H


def part_throughput() -> dict:
    N = THROUGHPUT["classes"] * THROUGHPUT["per_class"]
    config = sims.make_config("neural_collapse", **THROUGHPUT, steps=STEPS, record_every=STEPS,
                              solver_iterations=SOLVER_ITERATIONS)
    t0 = time.perf_counter()
    refs = jax.device_put(sim.prepare(config))
    prepare_seconds = time.perf_counter() - t0
    key = jax.random.key(0)
    reference = NumpyRGD(refs["labels"], config.temperature, config.lr)

    # Check: the engine's initial features (its own init, as `simulate` draws them), CHECK_STEPS steps of each.
    carry, _ = jax.jit(lambda c, k, r: trajectory.start(SIMULATION, c, trajectory.setup(SIMULATION, c, k, r), k))(
        config, key, refs)
    H0 = np.asarray(carry.state.params)
    check, _ = _compiled(simulate_fn(CHECK_STEPS), config, key, refs)
    engine_H = np.asarray(check(config, key, refs)["features"])
    numpy_H = reference.run(H0, CHECK_STEPS)
    moved = float(np.max(np.abs(numpy_H - H0)))
    agree = float(np.max(np.abs(engine_H - numpy_H)))
    print(f"  check: N={N}, {CHECK_STEPS} steps from the engine's initial features; max|H_engine - H_numpy| = "
          f"{agree:.1e} (tolerance {CHECK_TOL:g}; the features moved by up to {moved:.2f})")
    if not agree <= CHECK_TOL:
        raise SystemExit(f"engine and NumPy disagree: {agree:.3e} > {CHECK_TOL:g}")

    run, compile_seconds = _compiled(simulate_fn(STEPS), config, key, refs)
    jax.block_until_ready(run(config, key, refs))  # warm-up
    t = _interleaved(dict(engine=lambda: jax.block_until_ready(run(config, key, refs)),
                         numpy=lambda: reference.run(H0, NUMPY_STEPS)), REPEATS)
    per_step = dict(engine=t["engine"] / STEPS, numpy=t["numpy"] / NUMPY_STEPS)
    best = {k: float(v.min()) for k, v in per_step.items()}
    med = {k: float(np.median(v)) for k, v in per_step.items()}
    print(f"  N={N} (k={config.classes}, n={config.per_class}, d={config.dim}, tau={config.temperature:g}, "
          f"lr={config.lr:g}); prepare {prepare_seconds:.1f}s (untimed), engine compile {compile_seconds:.2f}s")
    for name, label in (("engine", f"engine (jitted trajectory.simulate, {STEPS} steps per call)"),
                        ("numpy", f"NumPy ({NUMPY_STEPS} steps per call)")):
        print(f"    {label:52s} {1 / best[name]:8,.1f} steps/s  ({best[name] * 1e3:.2f} ms/step, median "
              f"{med[name] * 1e3:.2f})")
    print(f"    engine / NumPy: {best['numpy'] / best['engine']:.2f}x (medians "
          f"{med['numpy'] / med['engine']:.2f}x)")
    return dict(N=N, best=best, median=med, compile=compile_seconds, agree=agree)


def _stack(trees):
    """One pytree whose leaves carry a leading member axis (numpy, in JAX's default dtypes)."""
    def stack(*xs):
        arr = np.stack([np.asarray(x) for x in xs])
        return arr.astype(jax.dtypes.canonicalize_dtype(arr.dtype))
    return jax.tree_util.tree_map(stack, *trees)


def part_sweep() -> dict:
    N = SWEEP["classes"] * SWEEP["per_class"]
    T = len(TEMPERATURES)
    configs = [sims.make_config("neural_collapse", **SWEEP, temperature=t, steps=SWEEP_STEPS,
                                record_every=SWEEP_STEPS, solver_iterations=SOLVER_ITERATIONS) for t in TEMPERATURES]
    t0 = time.perf_counter()
    refs = [jax.device_put(sim.prepare(c)) for c in configs]
    prepare_seconds = time.perf_counter() - t0
    key = jax.random.key(0)  # every member and every single run: seed 0, so member i of the sweep is loop run i

    single, single_compile = _compiled(simulate_fn(SWEEP_STEPS), configs[0], key, refs[0])
    batch_args = (jax.device_put(_stack(configs)), jnp.stack([key] * T), jax.device_put(_stack(refs)))
    swept, sweep_compile = _compiled(jax.vmap(simulate_fn(SWEEP_STEPS)), *batch_args)

    def sweep_run():
        return jax.block_until_ready(swept(*batch_args))

    def loop_run():
        return [jax.block_until_ready(single(c, key, r)) for c, r in zip(configs, refs)]

    sweep_H = np.asarray(sweep_run()["features"])  # warm-up, and the agreement of the two
    loop_H = np.stack([np.asarray(out["features"]) for out in loop_run()])
    diff = float(np.max(np.abs(sweep_H - loop_H)))
    t = _interleaved(dict(sweep=sweep_run, loop=loop_run), SWEEP_REPEATS)
    best = {k: float(v.min()) for k, v in t.items()}
    med = {k: float(np.median(v)) for k, v in t.items()}
    print(f"  N={N} (k={SWEEP['classes']}, n={SWEEP['per_class']}, d={SWEEP['dim']}), {SWEEP_STEPS} steps, {T} "
          f"temperatures {TEMPERATURES[0]:g}..{TEMPERATURES[-1]:g}, seed 0; prepare {prepare_seconds:.1f}s "
          f"(untimed)")
    print(f"    compile: vmapped sweep {sweep_compile:.2f}s, single run {single_compile:.2f}s (once, reused by all "
          f"{T} runs)")
    print(f"    warm, best of {SWEEP_REPEATS}: vmapped sweep {best['sweep']:.3f}s (median {med['sweep']:.3f}), loop of "
          f"{T} runs {best['loop']:.3f}s (median {med['loop']:.3f})")
    print(f"    sweep speed-up over loop: {best['loop'] / best['sweep']:.2f}x (medians "
          f"{med['loop'] / med['sweep']:.2f}x);  member-steps/s: sweep {T * SWEEP_STEPS / best['sweep']:,.0f}, "
          f"loop {T * SWEEP_STEPS / best['loop']:,.0f}")
    print(f"    sweep vs loop final features: max|diff| = {diff:.1e}")
    return dict(N=N, T=T, best=best, median=med, compile=sweep_compile, diff=diff)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # --help; no options
    t_start = time.perf_counter()
    sys.stdout.reconfigure(line_buffering=True)  # progress shows as it comes, also when piped
    print("== neural_collapse benchmark: Riemannian GD on the supervised contrastive loss ==")
    for line in machine_lines():
        print(line)
    print(f"load average at start (1, 5, 15 min): {_load()}")

    print("\n-- 1. Riemannian GD steps/s: engine vs NumPy (same step, float64)")
    r = part_throughput()
    print(f"\n-- 2. {len(TEMPERATURES)}-temperature sweep: one vmapped program vs a loop of single runs")
    s = part_sweep()

    b, sb = r["best"], s["best"]
    rows = [
        (f"RGD steps/s, N={r['N']}: engine | NumPy", f"{1 / b['engine']:,.1f}", f"{1 / b['numpy']:,.1f}",
         b["numpy"] / b["engine"], r["median"]["numpy"] / r["median"]["engine"]),
        (f"{s['T']}-temperature member-steps/s, N={s['N']}: sweep | loop", f"{s['T'] * SWEEP_STEPS / sb['sweep']:,.0f}",
         f"{s['T'] * SWEEP_STEPS / sb['loop']:,.0f}", sb["loop"] / sb["sweep"],
         s["median"]["loop"] / s["median"]["sweep"]),
    ]
    print(f"\n== summary (best of repeats; {_cpu_model()}, {os.cpu_count()} cores, jax {jax.__version__}, "
          f"{jax.devices()[0].platform}, {jnp.result_type(float).name}) ==")
    width = max(len(q) for q, *_ in rows)
    print(f"{'quantity':{width}s}  {'JAX':>10s}  {'baseline':>10s}  {'ratio':>7s}  {'(median)':>8s}")
    for quantity, jax_value, base_value, ratio, median in rows:
        print(f"{quantity:{width}s}  {jax_value:>10s}  {base_value:>10s}  {ratio:6.2f}x  {median:7.2f}x")
    print(f"engine compile {r['compile']:.2f}s (N={r['N']}), sweep compile {s['compile']:.2f}s (N={s['N']}); "
          f"engine vs NumPy agree to {r['agree']:.1e}, sweep vs loop to {s['diff']:.1e}")
    print(f"load average at end: {_load()}; total wall time {time.perf_counter() - t_start:.0f}s")


if __name__ == "__main__":
    main()
