"""Sweep scaling on the machine it runs on: one sweep's wall time on 1, 2 and 4 CPU devices, and a first run
(cold persistent compilation cache) against a repeat run (warm cache).

    python benchmarks/sweep_scaling.py          # about 2 minutes on a 2-core CPU

Each measurement is a fresh `python run.py` process (forced CPU devices need their own process); wall time is the
whole command, compile and run seconds are the engine's own, from the run's config.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 32 members (16 temperatures x 2 seeds) of the teacher task, one network of N = 256 each: one static group.
SWEEP = ["--sim=mfld", "--particles=256", "--ensemble=1", "--test_samples=64", "--steps=400", "--sweep=temperature="
         + ",".join(f"{0.005 * 1.2 ** k:.5f}" for k in range(16)), "--seeds=2", "--scaling=false", "--quiet"]


def run(devices: int, cache: str, out: str) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "run.py", *SWEEP, f"--out={out}", f"--compilation_cache={cache}"], cwd=ROOT,
                   env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    with open(os.path.join(out, "config.json")) as f:
        saved = json.load(f)
    return dict(wall=wall, compile=saved["compile_seconds"], run=saved["run_seconds"])


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # --help; no options
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    print("sweep: " + " ".join(SWEEP))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for devices in (1, 2, 4):
            r = run(devices, "", os.path.join(tmp, f"d{devices}"))
            rows.append((f"{devices} CPU device(s), no cache", r))
        cache = os.path.join(tmp, "cache")
        rows.append(("first run, cold compilation cache", run(1, cache, os.path.join(tmp, "first"))))
        rows.append(("repeat run, warm compilation cache", run(1, cache, os.path.join(tmp, "repeat"))))
    print(f"{'case':40s} {'wall s':>8s} {'compile s':>10s} {'run s':>8s}")
    for label, r in rows:
        print(f"{label:40s} {r['wall']:8.1f} {r['compile']:10.1f} {r['run']:8.1f}")
    one = rows[0][1]["run"]
    print("run-time speed-up over 1 device: " + ", ".join(f"{d} devices {one / r['run']:.2f}x"
                                                          for d, (_, r) in zip((2, 4), rows[1:3])))
    print(f"repeat / first wall time: {rows[4][1]['wall'] / rows[3][1]['wall']:.2f}; "
          f"compile {rows[3][1]['compile']:.1f}s -> {rows[4][1]['compile']:.1f}s")


if __name__ == "__main__":
    main()
