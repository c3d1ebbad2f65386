"""The compile cache (dynamics/compile.py): one compilation per name and argument signature (shapes, dtypes,
shardings), new values reuse it, and the executable computes what the jitted function does."""

import jax
import jax.numpy as jnp
import numpy as np

from dynamics import compile as compile_lib


def _count(name, fn, *args):
    before = compile_lib.stats()["compiles"]
    out = compile_lib.compiled(name, fn, *args)(*args)
    return compile_lib.stats()["compiles"] - before, out


def test_new_values_reuse_and_new_shapes_or_dtypes_compile():
    fn = jax.jit(lambda x: jnp.cumsum(x) * 2)
    name = ("test_compile", object())  # a name no other test uses
    assert _count(name, fn, jnp.ones(4, jnp.float32))[0] == 1
    assert _count(name, fn, jnp.arange(4, dtype=jnp.float32))[0] == 0
    assert _count(name, fn, jnp.ones(5, jnp.float32))[0] == 1
    assert _count(name, fn, jnp.ones(5, jnp.int32))[0] == 1


def test_executable_computes_the_jitted_function():
    x = jnp.linspace(0.0, 1.0, 7)
    fn = jax.jit(lambda x: jnp.sin(x) @ x)
    _, out = _count(("test_compile_value", object()), fn, x)
    np.testing.assert_allclose(out, np.sin(np.asarray(x)) @ np.asarray(x), rtol=1e-12)


def test_a_prefetched_program_compiles_once_and_computes_the_function():
    x = jnp.linspace(0.0, 1.0, 9)
    fn = jax.jit(lambda x: jnp.cos(x) * 3)
    name = ("test_compile_prefetch", object())
    before = compile_lib.stats()["compiles"]
    compile_lib.prefetch(name, fn, jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding))
    out = compile_lib.compiled(name, fn, x)(x)
    assert compile_lib.stats()["compiles"] - before == 1
    np.testing.assert_allclose(out, 3 * np.cos(np.asarray(x)), rtol=1e-12)


def test_a_sweeps_prefetched_programs_are_the_ones_it_runs(monkeypatch):
    """Three static groups of the toy sim: four programs each (setup, start, one chunk shape, finish), each compiled
    once and on the background pool: the shapes and shardings prefetched from `jax.eval_shape` match the arrays the
    runner passes (a mismatch would compile the 12 again in the caller's thread)."""
    import threading

    from dynamics import runner, sweep
    from tests.dynamics import toy

    threads = []
    compile_one = compile_lib._compile
    monkeypatch.setattr(compile_lib, "_compile",
                        lambda lowered: threads.append(threading.current_thread().name) or compile_one(lowered))
    runner.clear_caches()
    sweep.run_groups(toy.SIMULATOR, toy.Config(), {"width": [2, 4, 6]}, [0, 1], quiet=True)
    assert len(threads) == 12 and all(name.startswith("xla-compile") for name in threads)
