"""Benchmark of the `mfld` engine on the machine it runs on, everything in float32.

    python benchmarks/mfld.py            # full run, about 15-20 minutes on a 2-core CPU (part 5: a million particles)
    python benchmarks/mfld.py --quick    # smoke test, well under a minute

1. Particle-steps per second of the engine (the jitted `lax.scan` of `sims.mfld.SIMULATOR.step` that
   `dynamics.trajectory.advance` builds) against plain NumPy doing the same update (paper eq. 3), for
   N in {1024, 4096, 16384}, model=tanh, n=1024 samples, d=16, M=1. Checked first: from the same particles with
   the noise off, the engine (float32) and NumPy (float64) agree to a relative 1e-3.
2. The engine's step time over that of its two matrix products alone (X1 @ Z^T, G @ Z), and the noise's share;
   beside the automatic particle block, the other choice (blocked where one block is automatic, else unblocked).
   And f_rho's reduction sum_i w_i t_i alone: as a vector-matrix product, plain and vmapped (XLA:CPU emits a batched
   one as a naive loop on an Intel Xeon, an order of magnitude slower), and as the two-row matrix product
   the sim uses, vmapped.
3. A 16-temperature vmapped sweep (`dynamics.sweep.run_groups`) against a Python loop of 16 single runs: a moderate
   size (tanh, N=1024, n=256, d=16) and the `tanh2d_oracle` preset of the theory checks (N=16, n=4), where per-step
   overhead dominates (record_every=steps there, so the per-record dual quadrature does not dominate).
4. The README's main command (`run.py --sim=mfld --particles=4096`) cold, in a fresh process without compilation
   cache: wall, compile and run seconds.
5. The peak resident memory of `run.py --sim=mfld --particles=1000000 --samples=1024 --dim=16 --steps=20` (with its
   scaling ladder), from the child process's ru_maxrss.

Timing: every program runs once to warm up (compile time is reported apart); contenders are interleaved repeat by
repeat; the best of the repeats is reported, the median beside it. Shared 2-vCPU machines are noisy (1.5-2x spread
from run to run), so read the minimum as "what the code can do" and the median as "what you will usually get".
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import glob
import os
import platform
import re
import json
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo root, for a direct run

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import jaxlib  # noqa: E402
import numpy as np  # noqa: E402

from configs.mfld import PRESETS, Config  # noqa: E402
from dynamics import compile as compile_lib  # noqa: E402
from dynamics import config as config_lib  # noqa: E402
from dynamics import sweep, trajectory  # noqa: E402
from sims.mfld import SIMULATOR, model  # noqa: E402

SIZES = {
    # Parts 1-2: particles, samples n, dim d, engine / NumPy steps per timed call, repeats. Part 3: the moderate
    # sweep's particles, samples, steps (record_every=20); the small sweep's steps (record_every=steps); repeats.
    # The agreement check's particles and steps.
    "full": dict(particles=(1024, 4096, 16384), samples=1024, dim=16, steps=200, numpy_steps=40, repeats=3,
                 sweep_particles=1024, sweep_samples=256, sweep_steps=400, small_steps=2000, sweep_repeats=2,
                 check_particles=512, check_steps=5),
    "quick": dict(particles=(512,), samples=256, dim=16, steps=20, numpy_steps=10, repeats=2,
                  sweep_particles=256, sweep_samples=64, sweep_steps=40, small_steps=200, sweep_repeats=1,
                  check_particles=128, check_steps=5),
}
TEMPERATURES = [float(t) for t in np.geomspace(1e-3, 1e-1, 16)]          # moderate sweep
SMALL_TEMPERATURES = [float(t) for t in np.geomspace(0.05, 0.2, 16)]     # tanh2d_oracle sweep
TARGET_NUMPY, TARGET_MATMUL, TARGET_SWEEP = 5.0, 2.0, 8.0  # issue 15's targets (the sweep's: issue 6)
TARGET_MEMORY_GB, TARGET_COMPILE, TARGET_WALL = 2.0, 8.0, 35.0


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _openblas_lib():
    """numpy's bundled scipy-openblas, if it is there (for read-only queries and the thread count)."""
    for path in glob.glob(os.path.join(os.path.dirname(np.__file__) + ".libs", "libscipy_openblas*.so*"))[:1]:
        with contextlib.suppress(OSError, AttributeError):
            lib = ctypes.CDLL(path)
            lib.scipy_openblas_get_corename64_.restype = ctypes.c_char_p
            lib.scipy_openblas_get_num_threads64_, lib.scipy_openblas_set_num_threads64_  # noqa: B018 -- must exist
            return lib
    return None


def _blas_line() -> str:
    """Which BLAS numpy uses: build info, plus the runtime core type and threads of its bundled OpenBLAS."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        parts = [f"{blas.get('name')} {blas.get('version')}"]
    except Exception:  # noqa: BLE001 -- old numpy: no dict mode
        parts = ["unknown (numpy.show_config() has no dict mode)"]
    lib = _openblas_lib()
    if lib is not None:
        parts.append(f"runtime core={lib.scipy_openblas_get_corename64_().decode()} "
                     f"threads={lib.scipy_openblas_get_num_threads64_()}")
    env = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP_NUM", "MKL_NUM"))}
    parts.append("env " + (" ".join(f"{k}={v}" for k, v in sorted(env.items())) if env else "OPENBLAS_*: unset"))
    return "; ".join(parts)


@contextlib.contextmanager
def blas_threads(lib, k: int):
    """Runs the block with numpy's bundled OpenBLAS (`_openblas_lib()`) limited to k threads."""
    before = lib.scipy_openblas_get_num_threads64_()
    lib.scipy_openblas_set_num_threads64_(k)
    try:
        yield
    finally:
        lib.scipy_openblas_set_num_threads64_(before)


def machine_lines() -> list[str]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"machine: {_cpu_model()} | {os.cpu_count()} logical cores ({usable} usable) | {platform.platform()}",
        f"software: python {platform.python_version()} | jax {jax.__version__} | jaxlib {jaxlib.__version__} | "
        f"numpy {np.__version__}",
        f"devices: {jax.devices()} | float dtype: {jnp.result_type(float).name}"
        + (f" | XLA_FLAGS={os.environ['XLA_FLAGS']}" if os.environ.get("XLA_FLAGS") else ""),
        f"numpy BLAS: {_blas_line()}",
    ]


def interleaved(fns: dict, repeats: int, pause: float = 0.1) -> dict[str, list[float]]:
    """Seconds per call of each function, interleaved repeat by repeat (so drift hits all alike). The untimed pause
    lets the previous contender's spinning worker threads (OpenBLAS, XLA) go idle before the next one starts."""
    out = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            time.sleep(pause)
            t0 = time.perf_counter()
            fn()
            out[name].append(time.perf_counter() - t0)
    return out


class NumpyMFLD:
    """The paper's eq. 3 for model=tanh, squared loss, written in plain NumPy (forward and backward by hand).

        h(x, z) = R tanh(a) tanh(w.z + b),  x = (w, b, a),  f(z_j) = (1/N) sum_i h(x^i, z_j),  s_j = (f(z_j) - y_j)/n
        grad_w = R tanh(a_i) sum_j (1 - t_ij^2) s_j z_j,   grad_b = R tanh(a_i) sum_j (1 - t_ij^2) s_j,
        grad_a = R (1 - tanh(a_i)^2) sum_j t_ij s_j,        t_ij = tanh(w_i.z_j + b_i)
        x <- x - lr (grad + 2 l2 x) + sqrt(2 temperature lr) xi,   xi ~ N(0, I) from numpy's Generator.

    Written the way a careful NumPy user would: BLAS for the two (N, d, n) products and the mean over particles,
    in-place elementwise work on the (N, n) activations, no Python loop over particles or samples.
    """

    def __init__(self, cfg: Config, data, dtype, seed: int = 0):
        if cfg.model != "tanh" or cfg.loss != "squared":
            raise ValueError("NumpyMFLD implements model=tanh with the squared loss only")
        self.dtype = np.dtype(dtype)
        cast = self.dtype.type
        self.z, self.y, self.d = np.asarray(data.z_train, dtype), np.asarray(data.y_train, dtype), cfg.dim
        self.R, self.lr, self.l2 = cast(cfg.output_scale), cast(cfg.lr), cast(cfg.l2)
        self.noise = cast(np.sqrt(2.0 * cfg.temperature * cfg.lr))
        self.rng = np.random.default_rng(seed)

    def grad(self, x: np.ndarray) -> np.ndarray:
        """grad_x dF0/dmu at every particle: (N, d + 2)."""
        d, z, R, cast = self.d, self.z, self.R, self.dtype.type
        pre = x[:, :d] @ z.T                                  # (N, n): first matrix product
        pre += x[:, d:d + 1]
        t = np.tanh(pre, out=pre)                             # forward tanh, in place
        ta = np.tanh(x[:, d + 1])
        f = (R * ta) @ t / cast(x.shape[0])                   # f(z_j) = mean_i h(x^i, z_j)
        s = (f - self.y) / cast(z.shape[0])                   # d1l(f, y) / n, squared loss
        g_t = t @ s                                           # sum_j t_ij s_j, before t is overwritten
        G = np.multiply(t, t, out=t)
        np.subtract(1, G, out=G)
        G *= s                                                # (1 - t^2) s_j
        out = np.empty_like(x)
        out[:, :d] = G @ z                                    # second matrix product
        out[:, d] = G.sum(axis=1)
        out[:, :d + 1] *= (R * ta)[:, None]
        out[:, d + 1] = R * (1 - ta * ta) * g_t
        return out

    def step(self, x: np.ndarray) -> np.ndarray:
        g = self.grad(x)
        g += (2 * self.l2) * x
        x = x - self.lr * g
        if self.noise > 0:
            x += self.noise * self.rng.standard_normal(x.shape, dtype=self.dtype)
        return x

    def run(self, x: np.ndarray, steps: int) -> np.ndarray:
        for _ in range(steps):
            x = self.step(x)
        return x


def make_config(**params) -> Config:
    return config_lib.build(Config, model="tanh", loss="squared", dataset="teacher", ensemble=1, **params)


def _compiled(fn, *args):
    """(compiled fn, compile seconds, number of dot ops in the compiled HLO)."""
    t0 = time.perf_counter()
    compiled = fn.lower(*args).compile()
    return compiled, time.perf_counter() - t0, len(re.findall(r"\bdot\(", compiled.as_text()))


def engine_scan(cfg: Config, key, steps: int):
    """The engine's `steps` steps (one `trajectory.advance` chunk, one record), jitted, and its arguments
    (cfg, context, initial carry): setup and start have run."""
    simulation = SIMULATOR.simulation
    context = jax.jit(lambda c, k: trajectory.setup(simulation, c, k))(cfg, key)
    carry, _ = jax.jit(lambda c, x, k: trajectory.start(simulation, c, x, k))(cfg, context, key)
    return jax.jit(lambda c, x, k: trajectory.advance(simulation, c, x, k, 1, steps)), (cfg, context, carry)


def engine_program(cfg: Config, key, steps: int):
    """The engine running `steps` steps (`engine_scan`), compiled: (run, compile seconds, dots, initial carry,
    context); run() executes and blocks until the result is ready."""
    fn, args = engine_scan(cfg, key, steps)
    compiled, seconds, dots = _compiled(fn, *args)
    return (lambda: jax.block_until_ready(compiled(*args))), seconds, dots, args[2], args[1]


def matmul_only_scan(N: int, n: int, d: int, steps: int):
    """A jitted scan of only the step's two matrix products, X1 @ Z^T (N x d x n) and G @ Z (N x n x d), each
    feeding the next and the carry so XLA can neither drop nor hoist them, and its arguments (X, Z)."""
    k1, k2 = jax.random.split(jax.random.key(1))
    X, Z = jax.random.normal(k1, (N, d), jnp.float32), jax.random.normal(k2, (n, d), jnp.float32)
    eps = 1e-3 / n

    def body(X, _):
        return X + eps * ((X @ Z.T) @ Z), None   # (N, n) then (N, d)

    return jax.jit(lambda X, Z: jax.lax.scan(body, X, None, length=steps)[0]), (X, Z)


def matmul_only_program(N: int, n: int, d: int, steps: int):
    """`matmul_only_scan`, compiled: (run, compile seconds, dots)."""
    fn, args = matmul_only_scan(N, n, d, steps)
    compiled, seconds, dots = _compiled(fn, *args)
    return (lambda: jax.block_until_ready(compiled(*args))), seconds, dots


def noise_only_program(N: int, p: int, steps: int, cfg: Config):
    """A jitted scan drawing only the step's Langevin noise, as the engine does (fold_in, split, normal (1, N, p))."""
    x, key = jnp.zeros((1, N, p), jnp.float32), jax.random.key(2)
    scale = float(np.sqrt(2 * cfg.temperature * cfg.lr))

    def body(x, t):
        k = jax.random.split(jax.random.fold_in(key, t), 1)[0]
        return x + scale * jax.random.normal(k, x.shape, x.dtype), None

    compiled = jax.jit(lambda x: jax.lax.scan(body, x, jnp.arange(steps))[0]).lower(x).compile()
    return lambda: jax.block_until_ready(compiled(x))


def weighted_rows_programs(N: int, n: int, steps: int) -> dict:
    """f_rho's reduction sum_i w_i t_i over an (N, n) array, `steps` times in a scan, three ways: the plain
    vector-matrix product, the same under `vmap` (one system, as the sim's M axis and the runner's member axis make
    it), and the two-row matrix product the sim uses (`model._weighted_rows`) under `vmap`."""
    k1, k2 = jax.random.split(jax.random.key(3))
    t, w = jax.random.normal(k1, (N, n), jnp.float32), jax.random.normal(k2, (N,), jnp.float32)

    def scan(product):
        def body(w, _):  # each product feeds the next weights, so XLA can neither drop nor hoist it
            return w + 1e-9 * jnp.sum(product(w, t)), None
        return lambda w, t: jax.lax.scan(body, w, None, length=steps)[0]

    vecmat = scan(lambda w, t: w @ t)
    two_row = scan(model._weighted_rows)
    programs = dict(plain=(jax.jit(vecmat), (w, t)), vmapped=(jax.jit(jax.vmap(vecmat)), (w[None], t[None])),
                    two_row=(jax.jit(jax.vmap(two_row)), (w[None], t[None])))
    out = {}
    for name, (fn, args) in programs.items():
        compiled = fn.lower(*args).compile()
        out[name] = (lambda c=compiled, a=args: jax.block_until_ready(c(*a)))
    return out


def check_agreement(size: dict) -> str:
    """Engine step (float32) vs the NumPy reference (float64) from the same particles, no noise."""
    steps = size["check_steps"]
    cfg = make_config(particles=size["check_particles"], samples=size["samples"], dim=size["dim"],
                      temperature=0.0, steps=steps, record_every=steps)
    run, _, _, carry, context = engine_program(cfg, jax.random.key(0), steps)
    x0 = np.asarray(carry.state.params[0], np.float64)
    ref = NumpyMFLD(cfg, context.data, np.float64).run(x0, steps)
    x = np.asarray(run()[0].state.params[0], np.float64)
    rel = np.max(np.abs(x - ref)) / np.max(np.abs(ref))
    moved = np.max(np.abs(ref - x0))
    rel_move = np.max(np.abs((x - x0) - (ref - x0))) / moved
    line = (f"  engine vs NumPy float64: max|dx|/max|x| = {rel:.2e}, on the displacement x_T - x_0 "
            f"(max {moved:.2e}): {rel_move:.2e}")
    if not (rel < 1e-3 and rel_move < 1e-3):
        raise AssertionError(f"{line}\nthe engine and the NumPy reference disagree")
    return line + "  OK"


def part_throughput(size: dict) -> list[dict]:
    """Parts 1 and 2 for each N: engine, NumPy (two BLAS settings), matmul-only and noise-only, interleaved."""
    rows = []
    lib = _openblas_lib()
    blas_default = lib.scipy_openblas_get_num_threads64_() if lib is not None else "?"
    n, d, steps, repeats = (size[k] for k in ("samples", "dim", "steps", "repeats"))
    for N in size["particles"]:
        # NumPy has no per-call overhead to amortise: fewer steps at large N give the same per-step time.
        np_steps = max(5, min(size["numpy_steps"], size["numpy_steps"] * 4096 // N))
        cfg = make_config(particles=N, samples=n, dim=d, steps=steps, record_every=steps)
        engine, engine_compile, engine_dots, carry, context = engine_program(cfg, jax.random.key(0), steps)
        matmul, matmul_compile, dots = matmul_only_program(N, n, d, steps)
        noise = noise_only_program(N, carry.state.params.shape[-1], steps, cfg)
        # The other blocking choice beside the automatic one: blocked (B = N/4) where one block is automatic, and
        # unblocked where the automatic choice blocks.
        auto = model.particle_block(cfg, n)
        other_block = max(1, N // 4) if auto >= N else N
        other = engine_program(dataclasses.replace(cfg, particle_block=other_block), jax.random.key(0), steps)[0]
        reference = NumpyMFLD(cfg, context.data, np.float32)
        x0 = np.asarray(carry.state.params[0], np.float32)

        def numpy_run():
            return reference.run(x0, np_steps)

        def numpy_1thread():
            with blas_threads(lib, 1):
                return reference.run(x0, np_steps)

        rows_programs = weighted_rows_programs(N, n, steps)
        contenders = dict(engine=engine, other=other, matmul=matmul, noise=noise, numpy=numpy_run,
                          **{f"rows_{k}": v for k, v in rows_programs.items()})
        if lib is not None:  # else numpy's BLAS threads cannot be limited
            contenders["numpy1"] = numpy_1thread
        for fn in contenders.values():  # warm-up: first execution, page faults, BLAS thread start
            fn()
        t = interleaved(contenders, repeats)
        per_step = {k: np.array(v) / (np_steps if k.startswith("numpy") else steps) for k, v in t.items()}
        best = {k: float(v.min()) for k, v in per_step.items()}
        med = {k: float(np.median(v)) for k, v in per_step.items()}
        # The NumPy baseline is the faster of its two BLAS settings (the comparison is against NumPy at its best).
        for stat in (best, med):
            stat["numpy_best"] = min(stat["numpy"], stat.get("numpy1", np.inf))
        rows.append(dict(N=N, best=best, median=med, engine_compile=engine_compile, block=auto, other=other_block))
        print(f"\n  N={N}, n={n}, d={d}, {steps} engine steps per call ({np_steps} NumPy), best/median of {repeats}:")
        print(f"    compile: engine {engine_compile:.2f}s, matmul-only {matmul_compile:.2f}s  "
              f"(dots in compiled HLO: engine {engine_dots}, matmul-only {dots})")
        for k, label in (("engine", f"engine (trajectory.advance), automatic block B={auto}"),
                         ("other", f"engine with B={other_block} ({'unblocked' if other_block >= N else 'blocked'})"),
                         ("numpy", f"NumPy float32, BLAS threads as configured ({blas_default})"),
                         ("numpy1", "NumPy float32, BLAS limited to 1 thread"),
                         ("matmul", "matmul-only scan (X1@Z^T, G@Z)"),
                         ("noise", "noise-only scan (jax.random.normal)"),
                         ("rows_plain", "sum_i w_i t_i: vector-matrix product"),
                         ("rows_vmapped", "sum_i w_i t_i: vector-matrix product, vmapped"),
                         ("rows_two_row", "sum_i w_i t_i: two-row matrix product, vmapped")):
            if k in best:
                rate = "" if k.startswith("rows") else f"  {N / best[k]:11,.0f} particle-steps/s"
                print(f"    {label:50s} {best[k] * 1e3:8.3f} ms/step (median {med[k] * 1e3:8.3f}){rate}")
        print(f"    engine / NumPy speed: {best['numpy_best'] / best['engine']:.2f}x (medians: "
              f"{med['numpy_best'] / med['engine']:.2f}x);  engine step / matmul-only: "
              f"{best['engine'] / best['matmul']:.2f}x (medians: {med['engine'] / med['matmul']:.2f}x)")
    return rows


def part_sweep(label: str, base: Config, temperatures: list[float], repeats: int) -> dict:
    """Part 3: one vmapped sweep over `temperatures` against a Python loop of single runs (warm timings)."""
    def swept():
        return sweep.run_groups(SIMULATOR, base, {"temperature": temperatures}, seeds=[0], quiet=True)

    def looped():
        return [g for t in temperatures
                for g in sweep.run_groups(SIMULATOR, dataclasses.replace(base, temperature=t), {}, [0], quiet=True)]

    cold, final = {}, {}
    for name, fn in (("sweep", swept), ("loop", looped)):
        before, t0 = compile_lib.stats(), time.perf_counter()
        final[name] = np.concatenate([g.outputs["final_particles"] for g in fn()]).reshape(len(temperatures), -1)
        after = compile_lib.stats()
        cold[name] = (time.perf_counter() - t0, after["compiles"] - before["compiles"],
                      after["compile_seconds"] - before["compile_seconds"])
    before = compile_lib.stats()["compiles"]
    t = interleaved(dict(sweep=swept, loop=looped), repeats)
    recompiles = compile_lib.stats()["compiles"] - before
    best = {k: min(v) for k, v in t.items()}
    med = {k: float(np.median(v)) for k, v in t.items()}
    diff = float(np.max(np.abs(final["sweep"] - final["loop"])) / np.max(np.abs(final["loop"])))
    T, steps = len(temperatures), base.steps
    print(f"\n  {label}: model={base.model}, N={base.particles}, n={base.samples}, d={base.dim}, {steps} steps "
          f"(record_every={base.record_every}), {T} temperatures {temperatures[0]:g}..{temperatures[-1]:g}, seed 0:")
    for k in ("sweep", "loop"):
        print(f"    first call ({k}): {cold[k][0]:.2f}s wall, {cold[k][1]} compilations taking {cold[k][2]:.2f}s")
    print(f"    warm ({repeats} repeats, {recompiles} recompilations): vmapped sweep {best['sweep']:.3f}s "
          f"(median {med['sweep']:.3f}),  loop of {T} runs {best['loop']:.3f}s (median {med['loop']:.3f})")
    print(f"    sweep speed-up over loop: {best['loop'] / best['sweep']:.2f}x (medians "
          f"{med['loop'] / med['sweep']:.2f}x);  member-steps/s: sweep {T * steps / best['sweep']:,.0f}, "
          f"loop {T * steps / best['loop']:,.0f}")
    print(f"    sweep vs loop final particles, max|diff|/max|x| = {diff:.1e} (same noise: member key = seed)")
    return dict(label=label, best=best, median=med, N=base.particles)


def run_cli(args: list[str]) -> dict:
    """`python run.py ARGS` in a fresh process with no compilation cache (cold): its wall seconds, peak resident
    memory (the child's ru_maxrss) and the compile and run seconds it wrote to config.json."""
    import resource

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as out:
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        subprocess.run([sys.executable, os.path.join(root, "run.py"), *args, "--compilation_cache=", "--quiet",
                        f"--out={out}/run"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kB on Linux; the largest child so far
        with open(os.path.join(out, "run", "config.json")) as f:
            timings = json.load(f)
    return dict(wall=wall, peak_gb=peak * 1024 / 1e9, grew=peak > before, compile=timings["compile_seconds"],
                run=timings["run_seconds"])


def part_cli(mode: str) -> list[tuple]:
    """Parts 4 and 5: the README's main command cold (compile and wall time), and a million particles' peak memory
    (the README's command; --quick: 100,000 particles, 2 steps)."""
    main_args = ["--sim=mfld", "--particles=4096"] if mode == "full" else ["--sim=mfld", "--particles=512",
                                                                          "--steps=100"]
    big_n, big_steps = (1_000_000, 20) if mode == "full" else (100_000, 2)
    big_args = ["--sim=mfld", f"--particles={big_n}", "--samples=1024", "--dim=16", f"--steps={big_steps}",
                f"--record_every={big_steps}"]
    print(f"\n-- 4. cold run of the main command: python run.py {' '.join(main_args)} (no compilation cache)")
    cold = run_cli(main_args)
    print(f"    wall {cold['wall']:.1f}s: compile (waited) {cold['compile']:.1f}s, run {cold['run']:.1f}s")
    print(f"\n-- 5. peak memory: python run.py {' '.join(big_args)} (with its scaling ladder N/8 .. N)")
    big = run_cli(big_args)
    shown = f"{big['peak_gb']:.2f} GB" if big["grew"] else f"<= {big['peak_gb']:.2f} GB (an earlier child's peak)"
    print(f"    peak resident memory {shown}, wall {big['wall']:.0f}s (compile {big['compile']:.1f}s, run "
          f"{big['run']:.1f}s)")
    return [(f"main command cold compile (waited), {' '.join(main_args[1:])}", cold["compile"], "s", -TARGET_COMPILE),
            (f"main command cold wall time, {' '.join(main_args[1:])}", cold["wall"], "s", -TARGET_WALL),
            (f"peak resident memory, N={big_n:,} n=1024 d=16 ({big_steps} steps, ladder)", big["peak_gb"], "GB",
             -TARGET_MEMORY_GB)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test in well under a minute")
    mode = "quick" if parser.parse_args(argv).quick else "full"
    size = SIZES[mode]
    t_start = time.perf_counter()
    sys.stdout.reconfigure(line_buffering=True)  # progress shows as it comes, also when piped
    print(f"== mfld engine benchmark ({mode}) ==")
    for line in machine_lines():
        print(line)
    print("load average at start (1, 5, 15 min): " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    if jnp.result_type(float) != jnp.float32:
        print("WARNING: jax_enable_x64 is on; the engine runs in float64 while the targets assume float32")

    print(f"\n-- check: same algorithm (temperature=0, N={size['check_particles']}, n={size['samples']}, "
          f"d={size['dim']}, {size['check_steps']} steps; engine float32 vs NumPy float64)")
    print(check_agreement(size))

    print("\n-- 1/2. throughput: engine vs NumPy, and engine step vs its matrix products alone")
    rows = part_throughput(size)

    print("\n-- 3. vmapped temperature sweep vs a loop of single runs (dynamics.sweep.run_groups)")
    moderate = make_config(particles=size["sweep_particles"], samples=size["sweep_samples"], dim=size["dim"],
                           steps=size["sweep_steps"], record_every=20)
    small = config_lib.build(Config, **{**PRESETS["tanh2d_oracle"], "steps": size["small_steps"],
                                        "record_every": size["small_steps"]})
    sweeps = [part_sweep("moderate", moderate, TEMPERATURES, size["sweep_repeats"]),
              part_sweep("small (tanh2d_oracle)", small, SMALL_TEMPERATURES, size["sweep_repeats"])]

    cli_rows = part_cli(mode)

    # (quantity, value, unit, target: > 0 means at least, < 0 at most, None none)
    table = [(f"engine / NumPy speed (particle-steps/s), N={r['N']}", r["best"]["numpy_best"] / r["best"]["engine"],
              "x", TARGET_NUMPY) for r in rows]
    table += [(f"engine step / matmul-only step, N={r['N']}", r["best"]["engine"] / r["best"]["matmul"], "x",
               -TARGET_MATMUL) for r in rows]
    table += cli_rows
    table += [(f"16-temperature sweep speed-up over loop, {s['label']}, N={s['N']}",
               s["best"]["loop"] / s["best"]["sweep"], "x", TARGET_SWEEP) for s in sweeps]
    for r in rows:
        b, N = r["best"], r["N"]
        table += [(f"engine step with B={r['other']} / automatic B={r['block']}, N={N}", b["other"] / b["engine"], "x",
                   None)]
        table += [(f"engine particle-steps/s, N={N}", N / b["engine"], "/s", None),
                  (f"NumPy particle-steps/s (faster BLAS setting), N={N}", N / b["numpy_best"], "/s", None),
                  (f"noise-only scan / engine step, N={N}", b["noise"] / b["engine"], "%", None),
                  (f"sum_i w_i t_i vmapped: vector-matrix / two-row product, N={N}",
                   b["rows_vmapped"] / b["rows_two_row"], "x", None),
                  (f"engine compile time, N={N}", r["engine_compile"], "s", None)]
    print(f"\n== summary ({mode}; best of repeats; {_cpu_model()}, {os.cpu_count()} cores, "
          f"{jax.devices()[0].platform}, {jnp.result_type(float).name}) ==")
    width = max(len(q) for q, *_ in table)
    print(f"{'quantity':{width}s}  {'value':>12s}  {'target':>8s}  met")
    for quantity, value, unit, target in table:
        shown = {"x": f"{value:.2f}x", "/s": f"{value:,.0f}", "%": f"{100 * value:.0f}%", "s": f"{value:.2f}s",
                 "GB": f"{value:.2f} GB"}[unit]
        sign = "x" if unit == "x" else f" {unit}"
        goal = "" if target is None else (f">= {target:g}{sign}" if target > 0 else f"<= {-target:g}{sign}")
        met = "" if target is None else ("yes" if (value >= target if target > 0 else value <= -target) else "NO")
        met = met and ("(quick: sizes below the targets')" if mode == "quick" else met)
        print(f"{quantity:{width}s}  {shown:>12s}  {goal:>8s}  {met}")
    print(f"total wall time {time.perf_counter() - t_start:.0f}s")


if __name__ == "__main__":
    main()
