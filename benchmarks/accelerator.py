"""Accelerator benchmark: the engine on whatever backend JAX finds (CPU, GPU, TPU), float32, one script unchanged.

    python benchmarks/accelerator.py            # N = 1e4, 1e5, 1e6 and a 1024-member sweep: ~6 min on a 2-core CPU
    python benchmarks/accelerator.py --quick    # N = 1e3, 1e4 and a 64-member sweep: under a minute there (CI)
    python benchmarks/accelerator.py --particles=1e5,1e6,1e7 --members=4096    # other sizes

1. mfld particle-steps/s (model=tanh, n=1024, d=16, M=1) at each N with the automatic particle block
   (`sims.mfld.model.particle_block`), against the device's matmul-only scan of the step's two products
   (`benchmarks/mfld.py`) and against the same step unblocked (particle_block=N). A program whose memory (the
   engine's estimate, `dynamics.runner.member_bytes`, then the compiled program's) exceeds the device's is skipped,
   and said so. Each call runs `steps` steps and one record (predictions on the training data and on
   test_samples=64 test points: under half a step's cost).
2. A sweep of the tiny tanh2d_oracle preset (N=16, n=4, record_every=steps): M members (temperatures x seeds)
   against one, through `dynamics.sweep.run_groups` on its default devices (all of them: cold with its compile
   statistics, then warm end to end, which includes each member's setup: mu*'s quadrature) and through the same
   compiled advance program run_groups built, timed alone (the steps and one record, no setup).
3. Peak memory per particle at the largest N run: the device's peak_bytes_in_use where the backend keeps it, the
   compiled program's memory_analysis() (temp + argument + output bytes) everywhere, the process's peak RSS on CPU.
   Sizes run largest first, so the device's (never reset) peak after that first program is its own.
4. The compile time of every program built: lower().compile() timed, or `dynamics.compile.stats()`.

Timing as in benchmarks/mfld.py: a warm-up call, contenders interleaved repeat by repeat, best of the repeats
(median beside). A timed sample repeats its call until it lasts `sample_seconds`, so a fast device is timed too.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo root, for a direct run

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.mfld import (SMALL_TEMPERATURES, _compiled, engine_scan, interleaved, machine_lines,  # noqa: E402
                             make_config, matmul_only_scan)
from configs.mfld import PRESETS, Config  # noqa: E402
from dynamics import compile as compile_lib  # noqa: E402
from dynamics import config as config_lib  # noqa: E402
from dynamics import devices as devices_lib  # noqa: E402
from dynamics import runner, sweep  # noqa: E402
from sims.mfld import SIMULATOR, model  # noqa: E402

SIZES = {
    # Part 1: particles, samples n, dim d; steps per call = particle_steps / N within [min_steps, max_steps]; timed
    # repeats; seconds per timed sample. Part 2: members, steps (record_every=steps).
    "full": dict(particles=(10 ** 4, 10 ** 5, 10 ** 6), samples=1024, dim=16, particle_steps=5 * 10 ** 5,
                 min_steps=10, max_steps=200, repeats=3, sample_seconds=0.5, members=1024, sweep_steps=2000),
    "quick": dict(particles=(10 ** 3, 10 ** 4), samples=1024, dim=16, particle_steps=2 * 10 ** 5, min_steps=10,
                  max_steps=50, repeats=2, sample_seconds=0.05, members=64, sweep_steps=200),
}


def _mb(n) -> str:
    return "?" if n is None else f"{n / 2 ** 20:,.1f} MB"


def memory_limit() -> int:
    """Bytes one program on one device may use: the accelerator's own limit; on CPU the host's (what
    `dynamics.sweep.memory_limit` shares among forced host devices: a program here runs on one of them)."""
    limit = sweep.memory_limit()
    return limit * jax.local_device_count() if jax.devices()[0].platform == "cpu" else limit


def device_memory(field: str = "peak_bytes_in_use") -> int | None:
    """A field of the first device's memory_stats(), or None where the backend keeps none (CPU)."""
    with contextlib.suppress(Exception):  # noqa: BLE001 -- a backend without memory statistics may raise
        stats = jax.devices()[0].memory_stats()
        if stats and field in stats:
            return int(stats[field])
    return None


def program_bytes(compiled) -> int | None:
    """temp + argument + output bytes of a compiled program (`memory_analysis()`), or None where unavailable."""
    with contextlib.suppress(Exception):  # noqa: BLE001 -- not every backend analyses memory
        m = compiled.memory_analysis()
        return int(m.temp_size_in_bytes + m.argument_size_in_bytes + m.output_size_in_bytes)
    return None


def _proc_status(field: str) -> int | None:
    """VmRSS or VmHWM (peak RSS) of this process in bytes, from /proc (Linux), else None."""
    with contextlib.suppress(OSError, StopIteration, ValueError), open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith(field + ":")).split()[1]) * 1024
    return None


def _reset_peak_rss() -> bool:
    """Resets VmHWM to the current RSS (Linux >= 4.0), so the next read is the peak since now."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")
        f.flush()
        return True
    return False


def device_lines(limit: int) -> list[str]:
    devices = jax.devices()
    kinds = sorted({f"{d.platform}: {d.device_kind}" for d in devices})
    own = device_memory("bytes_limit")
    return [f"backend: {jax.default_backend()} | {len(devices)} device(s), {jax.local_device_count()} local, "
            f"{jax.process_count()} process(es) | kind: {'; '.join(kinds)}",
            f"device memory: {'bytes_limit ' + _mb(own) if own else 'no memory_stats() (host memory)'}; a program "
            f"here may use {_mb(limit)} | persistent compilation cache: "
            f"{jax.config.jax_compilation_cache_dir or 'off (compiles are cold)'}"]


def timed(fns: dict, size: dict, warm: dict | None = None) -> dict[str, dict]:
    """Warm-up call of each (unless `warm` holds its seconds), then `interleaved` samples of as many calls as last
    `sample_seconds`: for each name, dict(best, median) seconds per call."""
    loops, warm = {}, dict(warm or {})
    for name, fn in fns.items():
        if name not in warm:
            t0 = time.perf_counter()
            fn()
            warm[name] = time.perf_counter() - t0
        calls = max(1, math.ceil(size["sample_seconds"] / max(warm[name], 1e-9)))
        loops[name] = (lambda fn=fn, calls=calls: [fn() for _ in range(calls)], calls)
    t = interleaved({name: loop for name, (loop, _) in loops.items()}, size["repeats"])
    return {name: dict(best=min(t[name]) / calls, median=float(np.median(t[name])) / calls)
            for name, (_, calls) in loops.items()}


def _program(fn, args):
    """(run, compiled, compile seconds, dots): run() executes and blocks until the result is ready."""
    compiled, seconds, dots = _compiled(fn, *args)
    return (lambda: jax.block_until_ready(compiled(*args))), compiled, seconds, dots


def _add_if_fits(fns: dict, notes: list, compiles: list, limit: int, name: str, label: str, scan) -> None:
    """Compiles `scan` (fn, args), logs its compile time under `label`, and adds its run to `fns` as `name` unless
    the compiled program needs more than `limit` bytes (then a note says so)."""
    run, compiled, seconds, dots = _program(*scan)
    compiles.append((f"{label} ({dots} dots)", seconds))
    need = program_bytes(compiled)
    if need is not None and need > limit:
        notes.append(f"{name} SKIPPED: the compiled program needs {_mb(need)} > {_mb(limit)}")
    else:
        fns[name] = run


def part_particles(size: dict, limit: int, compiles: list) -> tuple[list[dict], dict | None]:
    """Part 1 (and the memory of part 3), largest N first: rows of per-step seconds, and the largest run's memory."""
    n, d = size["samples"], size["dim"]
    rows, memory = [], None
    for N in sorted(size["particles"], reverse=True):
        steps = max(size["min_steps"], min(size["max_steps"], size["particle_steps"] // N))
        cfg = make_config(particles=N, samples=n, test_samples=64, dim=d, steps=steps, record_every=steps)
        block = model.particle_block(cfg, n)
        print(f"\n  N={N:,}, n={n}, d={d}, {steps} steps + one record per call; automatic block B={block:,}")
        estimate = runner.member_bytes(SIMULATOR, cfg)
        if estimate > limit:
            print(f"    SKIPPED: the engine estimates {_mb(estimate)} > {_mb(limit)} on this device")
            continue
        t0 = time.perf_counter()
        fn, args = engine_scan(cfg, jax.random.key(0), steps)
        compiles.append((f"mfld setup+start N={N:,} (jit: compile and run)", time.perf_counter() - t0))
        run, compiled, seconds, dots = _program(fn, args)
        compiles.append((f"mfld advance N={N:,}, B={block:,} ({dots} dots)", seconds))
        need = program_bytes(compiled)
        if need is not None and need > limit:
            print(f"    SKIPPED: the compiled step needs {_mb(need)} > {_mb(limit)} on this device")
            continue
        warm = {}
        if memory is None:  # the first (largest) program run: its peak memory, in its warm-up call
            reset, rss, t0 = _reset_peak_rss(), _proc_status("VmRSS"), time.perf_counter()
            run()
            warm["engine"] = time.perf_counter() - t0
            memory = dict(N=N, estimate=estimate, program=need, device_peak=device_memory(), rss=rss,
                          rss_peak=_proc_status("VmHWM") if reset else None)
        fns, notes = {"engine": run}, []
        if block < N:
            flat = dataclasses.replace(cfg, particle_block=N)
            flat_estimate = runner.member_bytes(SIMULATOR, flat)
            if flat_estimate > limit:
                notes.append(f"unblocked SKIPPED: the engine estimates {_mb(flat_estimate)} > {_mb(limit)}")
            else:
                _add_if_fits(fns, notes, compiles, limit, "unblocked", f"mfld advance N={N:,}, unblocked",
                             engine_scan(flat, jax.random.key(0), steps))
        else:
            notes.append("unblocked: the automatic block is all N particles already")
        _add_if_fits(fns, notes, compiles, limit, "matmul", f"matmul-only scan N={N:,}",
                     matmul_only_scan(N, n, d, steps))
        print(f"    memory: engine estimate {_mb(estimate)}, compiled step {_mb(need)}; timing "
              f"{', '.join(fns)}: best/median of {size['repeats']}")
        t = timed(fns, size, warm)
        row = {k: dict(best=v["best"] / steps, median=v["median"] / steps) for k, v in t.items()}
        rows.append(dict(N=N, block=block, steps=steps, **row))
        for k, label in (("engine", f"engine, automatic block B={block:,}"), ("unblocked", "engine, unblocked (B=N)"),
                         ("matmul", "matmul-only scan (X1@Z^T, G@Z)")):
            if k in row:
                print(f"    {label:36s} {row[k]['best'] * 1e3:10.3f} ms/step (median {row[k]['median'] * 1e3:10.3f})"
                      f"  {N / row[k]['best']:14,.0f} particle-steps/s")
        for note in notes:
            print(f"    {note}")
        ratios = [f"engine / {k}: {row['engine']['best'] / row[k]['best']:.2f}x (medians "
                  f"{row['engine']['median'] / row[k]['median']:.2f}x)" for k in ("matmul", "unblocked") if k in row]
        print("    step time, " + ";  ".join(ratios) if ratios else "    no ratio: nothing to compare with")
    return sorted(rows, key=lambda r: r["N"]), memory


def print_memory(memory: dict | None) -> list[tuple[str, str]]:
    """Part 3: bytes per particle at the largest N run; returns summary rows."""
    if memory is None:
        print("  no size ran")
        return []
    N = memory["N"]
    per = lambda b: "?" if b is None else f"{b / N:,.0f} B/particle ({_mb(b)})"
    print(f"  N={N:,}: compiled step (memory_analysis: temp + argument + output) {per(memory['program'])}")
    print(f"  N={N:,}: the engine's estimate (runner.member_bytes) {per(memory['estimate'])}")
    if memory["device_peak"] is not None:
        print(f"  N={N:,}: device peak_bytes_in_use {per(memory['device_peak'])}")
    else:
        print("  device peak: this backend keeps no memory_stats()")
    if memory["rss_peak"] is not None:
        grown = memory["rss_peak"] - memory["rss"]
        print(f"  N={N:,}: process peak RSS during the first call {_mb(memory['rss_peak'])} (RSS before it "
              f"{_mb(memory['rss'])}, grown {per(grown)})")
    elif jax.devices()[0].platform == "cpu":
        print("  process peak RSS: /proc/self/clear_refs is not available here")
    best = memory["device_peak"] if memory["device_peak"] is not None else memory["program"]
    source = "device peak" if memory["device_peak"] is not None else "compiled step"
    rows = [(f"peak memory per particle, N={N:,} ({source})", per(best))]
    if memory["rss_peak"] is not None:
        rows.append((f"process peak RSS, N={N:,}", _mb(memory["rss_peak"])))
    return rows


def _advance_program(base, grid: dict, seeds: list, devices):
    """run() of the advance program `run_groups` compiled for the first batch of this sweep (a cache hit in
    `dynamics.compile`), chained from its carry, and the batch's member count."""
    configs = sweep.members_config(base, {}, grid, seeds)
    size = sweep.batch_size(SIMULATOR, configs[0], len(configs), len(devices), None, sweep.memory_limit())
    configs, seeds = configs[:size], (seeds * (len(configs) // len(seeds)))[:size]
    key, fns, cfg, keys, _ = runner._inputs(SIMULATOR, configs, seeds, devices)  # the runner's own programs
    context = compile_lib.compiled((*key, "setup"), fns["setup"], cfg, keys)(cfg, keys)
    carry = [compile_lib.compiled((*key, "start"), fns["start"], cfg, context, keys)(cfg, context, keys)[0]]
    every, chunk = base.record_every, runner.chunk_records(base.steps // base.record_every)
    advance = compile_lib.compiled((*key, "advance", chunk, every), fns["advance"](chunk, every), cfg, context,
                                   carry[0])

    def run():
        carry[0] = jax.block_until_ready(advance(cfg, context, carry[0])[0])  # the carry is donated: chain it

    return run, size, -(-size // len(devices)) * len(devices), chunk * every


def part_sweep(size: dict, compiles: list) -> list[tuple[str, str]]:
    """Part 2: one member against a sweep of `members`, cold and warm through run_groups, and the advance alone."""
    steps, members = size["sweep_steps"], size["members"]
    base = config_lib.build(Config, **{**PRESETS["tanh2d_oracle"], "steps": steps, "record_every": steps})
    temperatures = SMALL_TEMPERATURES[:math.gcd(members, len(SMALL_TEMPERATURES))]
    cases = {"one member": ({}, [0]),
             f"{members} members": ({"temperature": temperatures}, list(range(members // len(temperatures))))}
    devices = devices_lib.sweep_devices()
    print(f"\n  tanh2d_oracle: N={base.particles}, n={base.samples}, {steps} steps, record_every={steps}; sweep = "
          f"{len(temperatures)} temperatures x {members // len(temperatures)} seeds; run_groups' default devices: "
          f"{len(devices)}")
    end_to_end, programs = {}, {}
    for label, (grid, seeds) in cases.items():
        count = len(seeds) * (len(temperatures) if grid else 1)
        before, t0 = compile_lib.stats(), time.perf_counter()
        sweep.run_groups(SIMULATOR, base, grid, seeds, quiet=True)
        cold = time.perf_counter() - t0
        after = compile_lib.stats()
        waited, work = (after[k] - before[k] for k in ("compile_seconds", "compile_work_seconds"))
        compiles.append((f"run_groups {label}: {after['compiles'] - before['compiles']} programs side by side "
                         f"(waited {waited:.2f}s; work)", work))
        t0 = time.perf_counter()
        group = sweep.run_groups(SIMULATOR, base, grid, seeds, quiet=True)[0]
        warm = time.perf_counter() - t0
        end_to_end[label] = (count, group.run_seconds)
        print(f"    {label}: cold run_groups {cold:.2f}s wall, {after['compiles'] - before['compiles']} programs "
              f"compiled ({waited:.2f}s waited, {work:.2f}s of compile work); warm {warm:.2f}s wall, "
              f"run {group.run_seconds:.3f}s: {count * steps / group.run_seconds:,.0f} member-steps/s end to end")
        before = compile_lib.stats()["compiles"]
        run, batch, padded, per_call = _advance_program(base, grid, seeds, devices)
        if compile_lib.stats()["compiles"] != before:
            print("    WARNING: the advance program compiled again (not run_groups' own)")
        programs[label] = (run, batch, padded, per_call)
    t = timed({label: p[0] for label, p in programs.items()}, size)
    rate = {label: batch * per_call / t[label]["best"] for label, (_, batch, _, per_call) in programs.items()}
    rate_med = {label: batch * per_call / t[label]["median"] for label, (_, batch, _, per_call) in programs.items()}
    print(f"    the advance program alone ({steps} steps + one record per call; members padded to a multiple of the "
          f"devices), best/median of {size['repeats']}:")
    for label, (_, batch, padded, _) in programs.items():
        print(f"      {label:14s} {padded:6d} in the program {t[label]['best'] * 1e3:10.2f} ms/call "
              f"(median {t[label]['median'] * 1e3:10.2f})  {rate[label]:12,.0f} member-steps/s")
    one, many = cases
    ratio = rate[many] / rate[one]
    ratio_e2e = (end_to_end[many][0] / end_to_end[many][1]) / (end_to_end[one][0] / end_to_end[one][1])
    print(f"    member-steps/s, {many} / one member: {ratio:.1f}x advance alone (medians "
          f"{rate_med[many] / rate_med[one]:.1f}x); {ratio_e2e:.1f}x warm run_groups end to end")
    return [(f"member-steps/s, {many} (advance alone)", f"{rate[many]:,.0f}"),
            ("member-steps/s, one member (advance alone)", f"{rate[one]:,.0f}"),
            (f"{many} / one member, member-steps/s (advance alone)", f"{ratio:.1f}x"),
            (f"{many} / one member, member-steps/s (run_groups, warm)", f"{ratio_e2e:.1f}x")]


def _counts(text: str) -> tuple[int, ...]:
    return tuple(int(float(v)) for v in text.split(","))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: under a minute on a 2-core CPU (CI)")
    parser.add_argument("--particles", type=_counts, help="part 1's N, comma-separated (e.g. 1e4,1e5,1e6)")
    parser.add_argument("--members", type=int, help="part 2's sweep members (a multiple of 16 sweeps 16 temperatures)")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    size = dict(SIZES[mode])
    size.update({k: v for k, v in (("particles", args.particles), ("members", args.members)) if v})
    t_start = time.perf_counter()
    sys.stdout.reconfigure(line_buffering=True)
    limit = memory_limit()
    print(f"== accelerator benchmark ({mode}) ==")
    for line in machine_lines() + device_lines(limit):
        print(line)
    if hasattr(os, "getloadavg"):
        print("load average at start (1, 5, 15 min): " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    if jnp.result_type(float) != jnp.float32:
        print("WARNING: jax_enable_x64 is on; everything runs in float64, not the float32 this benchmark assumes")
    compiles: list[tuple[str, float]] = []

    print("\n-- 1. mfld particle-steps/s (tanh, M=1): automatic block, matmul-only scan, unblocked; largest N first")
    rows, memory = part_particles(size, limit, compiles)
    print("\n-- 3. peak memory per particle at the largest N run")
    memory_rows = print_memory(memory)
    print(f"\n-- 2. a {size['members']}-member sweep against one member (dynamics.sweep.run_groups)")
    sweep_rows = part_sweep(size, compiles)
    print("\n-- 4. compile times (cold, each program built)")
    for label, seconds in compiles:
        print(f"  {label:66s} {seconds:7.2f}s")
    total = sum(s for _, s in compiles)
    print(f"  {'total':66s} {total:7.2f}s")

    table = []
    for r in rows:
        N = r["N"]
        table.append((f"particle-steps/s, N={N:,} (automatic B={r['block']:,})", f"{N / r['engine']['best']:,.0f}"))
        for k, label in (("matmul", "matmul-only scan"), ("unblocked", "unblocked step")):
            value = f"{r['engine']['best'] / r[k]['best']:.2f}x" if k in r else "skipped"
            value = "automatic B = N" if k == "unblocked" and r["block"] >= N else value
            table.append((f"step time / {label}, N={N:,}", value))
    table += sweep_rows + memory_rows + [("compile seconds, all programs", f"{total:.2f}s")]
    device = jax.devices()[0]
    print(f"\n== summary ({mode}; best of repeats; {device.platform}: {device.device_kind} x{len(jax.devices())}; "
          f"{jnp.result_type(float).name}) ==")
    width = max(len(q) for q, _ in table)
    for quantity, value in table:
        print(f"{quantity:{width}s}  {value:>28s}")
    print(f"total wall time {time.perf_counter() - t_start:.0f}s")


if __name__ == "__main__":
    main()
