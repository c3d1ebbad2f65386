"""Benchmark of `icl_single_index` on the machine it runs on: stage I pretraining tasks per second (the one gradient
step of Algorithm 1 over T_1 tasks of N_1 = 256 prompt samples, data drawn on the fly), the engine's jitted, chunked
`model.stage1` against a NumPy implementation of the same gradient (written by hand: NumPy has no autodiff).

    python benchmarks/icl_single_index.py          # about a minute

Float32 for both (the default precision of a run). The two gradients are checked to agree on the same tasks first.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dynamics import xla_flags  # noqa: E402,F401

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from sims.icl_single_index import data, model  # noqa: E402

DIM, RANK, WIDTH, LENGTH, NOISE, GAMMA0 = 32, 2, 40, 256, 0.1, 1.0
TASKS = 1250 * DIM // 4  # a quarter of the reference budget: 10,000 tasks
LINK = (0.0, 1.0, 1.0)


def numpy_gradient(W, b, x, y):
    """d/dW of (1/2) sum_t (f_t - y_q)^2 with f_t = (gamma_0/m) phi_q . psi, psi = mean_i y_i phi_i, for tasks
    x (T, N + 1, d), y (T, N + 1) (the last sample is the query)."""
    pre = x @ W.T + b                      # (T, N + 1, m)
    active = pre > 0
    phi = np.where(active, pre, 0.0)
    psi = np.mean(y[:, :-1, None] * phi[:, :-1], axis=1)          # (T, m)
    scale = GAMMA0 / W.shape[0]
    r = scale * np.sum(phi[:, -1] * psi, axis=1) - y[:, -1]       # (T,)
    query = np.einsum("t,tj,tj,td->jd", r, psi, active[:, -1], x[:, -1], optimize=True)
    # optimize=True: NumPy's default einsum contracts five operands in one naive loop, 20x slower.
    prompt = np.einsum("t,tj,tij,ti,tid->jd", r, phi[:, -1], active[:, :-1], y[:, :-1], x[:, :-1],
                       optimize=True) / (x.shape[1] - 1)
    return scale * (query + prompt)


def numpy_tasks(rng, U, coefficients, tasks, length):
    theta = rng.standard_normal((tasks, U.shape[1])).astype(np.float32)
    beta = (theta / np.linalg.norm(theta, axis=1, keepdims=True)) @ U.T
    x = rng.standard_normal((tasks, length, U.shape[0])).astype(np.float32)
    z = np.einsum("tld,td->tl", x, beta)
    he = [np.ones_like(z), z, z * z - 1]
    y = sum(c * h / np.sqrt([1, 1, 2][i]) for i, (c, h) in enumerate(zip(coefficients, he)))
    return x, y + NOISE * rng.standard_normal(z.shape).astype(np.float32)


def numpy_stage1(rng, W, b, U, coefficients, tasks, chunk=256):
    grad = np.zeros_like(W)
    for start in range(0, tasks, chunk):
        x, y = numpy_tasks(rng, U, coefficients, min(chunk, tasks - start), LENGTH + 1)
        grad += numpy_gradient(W, b, x, y)
    return -grad / np.linalg.norm(grad, axis=1, keepdims=True)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # --help; no options
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
          f"jax {jax.__version__}, numpy {np.__version__}; devices {jax.devices()}")
    c = jnp.asarray(data.normalized_link(LINK), jnp.float32)
    U = data.subspace(jax.random.key(0), DIM, RANK, jnp.float32)
    W0, b0 = model.init_features(jax.random.key(1), WIDTH, DIM, jnp.float32)

    # Agreement: the hand-written gradient against autodiff of the same loss on the same 64 tasks.
    tasks = data.sample_tasks(jax.random.key(2), U, c, 64, LENGTH + 1, NOISE)
    Gamma0 = GAMMA0 * jnp.eye(WIDTH, dtype=jnp.float32) / WIDTH

    def loss(W):
        f = jax.vmap(lambda x, y: model.predict(W, b0, Gamma0, x[:-1], y[:-1], x[-1:])[0])(tasks.x, tasks.y)
        return 0.5 * jnp.sum((f - tasks.y[:, -1]) ** 2)

    auto = np.asarray(jax.grad(loss)(W0))
    hand = numpy_gradient(np.asarray(W0), np.asarray(b0), np.asarray(tasks.x), np.asarray(tasks.y))
    rel = np.abs(auto - hand).max() / np.abs(auto).max()
    print(f"check: hand-written NumPy gradient vs autodiff on 64 tasks: max relative difference {rel:.1e}")
    assert rel < 1e-4, rel  # float32 sums of 64 x 257 terms

    stage1 = jax.jit(lambda k: model.stage1(k, U, c, WIDTH, TASKS, LENGTH, NOISE, 0.0, GAMMA0))
    t0 = time.perf_counter()
    jax.block_until_ready(stage1(jax.random.key(3)))
    compile_and_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    W, _ = jax.block_until_ready(stage1(jax.random.key(4)))
    engine = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    W_np = numpy_stage1(rng, np.asarray(W0), np.asarray(b0), np.asarray(U), data.normalized_link(LINK), TASKS)
    reference = time.perf_counter() - t0
    print(f"stage I, d = {DIM}, m = {WIDTH}, N_1 = {LENGTH}, T_1 = {TASKS} (first call with compile "
          f"{compile_and_first:.1f} s)")
    print(f"  alignment: engine {float(model.alignment(W, U)):.3f}, NumPy {float(model.alignment(W_np, U)):.3f}")
    print(f"  engine {TASKS / engine:,.0f} tasks/s ({engine:.2f} s) | NumPy {TASKS / reference:,.0f} tasks/s "
          f"({reference:.2f} s) | engine / NumPy {reference / engine:.2f}x")


if __name__ == "__main__":
    main()
