"""Sweep scaling on the machine it runs on: (1) a vmapped sweep's member-steps per second against one run's, for 1,
16, 64 and 256 members of one program (the `tanh2d_oracle` preset here; `benchmarks/implicit_bias.py` runs the same
measurement for implicit_bias); (2) one sweep's wall time on 1, 2 and 4 CPU devices, and a first run (cold persistent
compilation cache) against a repeat run (warm cache).

    python benchmarks/sweep_scaling.py            # about 6 minutes on a 2-core CPU
    python benchmarks/sweep_scaling.py --quick    # part 1 at a small horizon, under a minute

Part 1 runs in this process through `dynamics.sweep.run_groups` (what `sims.sweep` calls), each case warmed up once
(its compile seconds reported apart), then timed best-of interleaved repeats. A case runs at two horizons, T and K T
steps, with record_every = T: the whole run's member-steps/s is members * T / t(T); the stepping rate is
members * (K - 1) T / (t(K T) - t(T)), which cancels what a run pays once (setup: the oracle's quadrature, the first
record, the engine's memory estimate: the `once s` column) and keeps the one record per T steps; K >= 2 is chosen so
that the difference spans at least `budget` member-steps (one run's stepping is otherwise lost in the noise).
Part 2 runs fresh `python run.py` processes (forced CPU devices need their own process); wall time is the whole
command, compile and run seconds the engine's own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# 32 members (16 temperatures x 2 seeds) of the teacher task, one network of N = 256 each: one static group.
SWEEP = ["--sim=mfld", "--particles=256", "--ensemble=1", "--test_samples=64", "--steps=400", "--sweep=temperature="
         + ",".join(f"{0.005 * 1.2 ** k:.5f}" for k in range(16)), "--seeds=2", "--scaling=false", "--quiet"]
MEMBERS = (16, 64, 256)
TARGET = 20.0  # issue 15: a 64-member sweep reaches 20x one run's member-steps/s


def machine_line() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"machine: {model}, {os.cpu_count()} cores ({usable} usable), {platform.platform()}"


def member_scaling(sim_name: str, base, param: str, values, *, members=MEMBERS, seed_members=(64,), repeats=3,
                   budget: int = 200_000):
    """Prints and returns {case: row} for one run, `members` values of the traced `param` (values(M) -> list) and
    `seed_members` seeds, all of `base` (steps = T, record_every = T). See the module docstring for the two rates."""
    import dataclasses

    import jax

    import sims
    from dynamics import compile as compile_lib
    from dynamics import sweep

    sim = sims.load(sim_name)
    T = base.steps
    cases = {"one run": ({}, [0])}
    cases.update({f"{m} {param} values": ({param: values(m)}, [0]) for m in members})
    cases.update({f"{m} seeds": ({}, list(range(m))) for m in seed_members})
    fns, size, K = {}, {}, {}
    for name, (grid, seeds) in cases.items():
        size[name] = len(seeds) * (len(next(iter(grid.values()))) if grid else 1)
        K[name] = max(2, -(-budget // (size[name] * T)) + 1)
        long = dataclasses.replace(base, steps=K[name] * T)
        for horizon, cfg in (("T", base), ("KT", long)):
            fns[name, horizon] = (lambda cfg=cfg, grid=grid, seeds=seeds:
                                  sweep.run_groups(sim, cfg, grid, seeds, quiet=True))
    compile_s = {}
    for (name, horizon), fn in fns.items():  # warm-up: compiles every program once
        before = compile_lib.stats()["compile_seconds"]
        fn()
        compile_s[name] = compile_s.get(name, 0.0) + compile_lib.stats()["compile_seconds"] - before
    times = {key: [] for key in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            time.sleep(0.05)
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
    rows = {}
    for name in cases:
        m, k = size[name], K[name]
        short, long_s = min(times[name, "T"]), min(times[name, "KT"])
        per_step = max(long_s - short, 1e-9) / ((k - 1) * T)  # seconds per step of the whole program
        rows[name] = dict(members=m, K=k, whole=m * T / short, stepping=m / per_step,
                          fixed=max(short - per_step * T, 0.0), seconds=short,
                          median=statistics.median(times[name, "T"]), compile=compile_s[name])
    one = rows["one run"]
    dtype = jax.numpy.result_type(float).name
    print(f"  {sim_name}, T = {T} steps, record_every = T, {dtype}, best of {repeats} interleaved repeats "
          f"(jax {jax.__version__}, {jax.devices()[0].platform})")
    print(f"  {'case':22s} {'run s':>7s} {'median':>7s} {'member-steps/s':>15s} {'x one':>6s} "
          f"{'stepping/s':>12s} {'x one':>6s} {'K':>3s} {'once s':>7s} {'compile s':>9s}")
    for name, r in rows.items():
        print(f"  {name:22s} {r['seconds']:7.3f} {r['median']:7.3f} {r['whole']:15,.0f} "
              f"{r['whole'] / one['whole']:6.1f} {r['stepping']:12,.0f} {r['stepping'] / one['stepping']:6.1f} "
              f"{r['K']:3d} {r['fixed']:7.3f} {r['compile']:9.2f}")
    for name, r in rows.items():
        if r["members"] == 64:
            met = "met" if r["whole"] / one["whole"] >= TARGET else "NOT met"
            print(f"  target {TARGET:g}x at 64 members ({name}): whole run {r['whole'] / one['whole']:.1f}x ({met}); "
                  f"stepping only {r['stepping'] / one['stepping']:.1f}x")
    return rows


def part_members(quick: bool) -> None:
    import numpy as np

    import sims

    steps = 1000 if quick else 4000  # the preset's horizon (its record_every is 50: here one record per T steps)
    base = sims.make_config("mfld", "tanh2d_oracle", steps=steps, record_every=steps)
    print(f"\n-- 1. members per program: mfld --preset=tanh2d_oracle (N = {base.particles}, n = {base.samples}), "
          "a temperature sweep and a seed sweep against one run")
    member_scaling("mfld", base, "temperature", lambda m: [float(t) for t in np.geomspace(0.05, 0.2, m)],
                   members=(64,) if quick else MEMBERS, seed_members=() if quick else (64,),
                   repeats=2 if quick else 3, budget=64_000 if quick else 2_000_000)


def run(devices: int, cache: str, out: str) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "run.py", *SWEEP, f"--out={out}", f"--compilation_cache={cache}"], cwd=ROOT,
                   env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    with open(os.path.join(out, "config.json")) as f:
        saved = json.load(f)
    return dict(wall=wall, compile=saved["compile_seconds"], run=saved["run_seconds"])


def part_devices() -> None:
    print("\n-- 2. devices and the persistent compilation cache: " + " ".join(SWEEP))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for devices in (1, 2, 4):
            r = run(devices, "", os.path.join(tmp, f"d{devices}"))
            rows.append((f"{devices} CPU device(s), no cache", r))
        cache = os.path.join(tmp, "cache")
        rows.append(("first run, cold compilation cache", run(1, cache, os.path.join(tmp, "first"))))
        rows.append(("repeat run, warm compilation cache", run(1, cache, os.path.join(tmp, "repeat"))))
    print(f"  {'case':40s} {'wall s':>8s} {'compile s':>10s} {'run s':>8s}")
    for label, r in rows:
        print(f"  {label:40s} {r['wall']:8.1f} {r['compile']:10.1f} {r['run']:8.1f}")
    one = rows[0][1]["run"]
    print("  run-time speed-up over 1 device: " + ", ".join(f"{d} devices {one / r['run']:.2f}x"
                                                            for d, (_, r) in zip((2, 4), rows[1:3])))
    print(f"  repeat / first wall time: {rows[4][1]['wall'] / rows[3][1]['wall']:.2f}; "
          f"compile {rows[3][1]['compile']:.1f}s -> {rows[4][1]['compile']:.1f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="part 1 only, at a small horizon (under a minute)")
    args = parser.parse_args()
    print(machine_line())
    part_members(args.quick)
    if not args.quick:
        part_devices()


if __name__ == "__main__":
    main()
